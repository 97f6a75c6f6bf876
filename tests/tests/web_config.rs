//! `--web.config.file` end to end: basic auth with bcrypt hashes, TLS with a
//! generated certificate, client-certificate authentication, plain HTTP
//! refused when TLS is on, a reload when the file changes, and malformed
//! files refused at start-up with file:line (exit 2, no secret in the output).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsmon_e2e::{exporter_bin, free_port, get, get_with};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "Pr0m-scrape-pw-5521";

/// The exporter started without the harness' plain-HTTP readiness check
/// (which cannot pass over TLS); killed on drop.
struct Exporter {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl Exporter {
    fn start(web_config: &Path) -> Exporter {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(exporter_bin())
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.config.file={}", web_config.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut exporter = Exporter { child, port, log };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(exporter.child.try_wait().unwrap().is_none(), "exited early:\n{}", exporter.log());
            assert!(started.elapsed() < Duration::from_secs(20), "never listened:\n{}", exporter.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        exporter
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64_encode::encode;
    format!("Basic {}", encode(format!("{user}:{password}").as_bytes()))
}

/// Just enough base64 for an Authorization header.
mod base64_encode {
    pub fn encode(data: &[u8]) -> String {
        const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[test]
fn basic_auth_needs_the_right_password_and_follows_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    let exporter = Exporter::start(&web);

    assert_eq!(get(&exporter.url("/metrics")).unwrap().status, 401, "no credentials");
    let unauthorized = get(&exporter.url("/-/healthy")).unwrap();
    assert_eq!(unauthorized.status, 401);
    assert!(unauthorized.headers["www-authenticate"].starts_with("Basic"), "{:?}", unauthorized.headers);
    let wrong =
        get_with(&exporter.url("/metrics"), &[("Authorization", &basic("prometheus", "wrong"))]).unwrap();
    assert_eq!(wrong.status, 401, "wrong password");
    let other_user =
        get_with(&exporter.url("/metrics"), &[("Authorization", &basic("admin", PASSWORD))]).unwrap();
    assert_eq!(other_user.status, 401, "unknown user");
    for _ in 0..3 {
        let right = get_with(&exporter.url("/metrics"), &[("Authorization", &basic("prometheus", PASSWORD))])
            .unwrap();
        assert_eq!(right.status, 200, "right password (then cached)");
        assert!(right.text().contains("process_resident_memory_bytes "));
    }

    // A new password in the file is in force within a few seconds.
    let new_hash = bcrypt::hash("rotated-pw-7", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{new_hash}'\n")).unwrap();
    let started = Instant::now();
    loop {
        let rotated =
            get_with(&exporter.url("/metrics"), &[("Authorization", &basic("prometheus", "rotated-pw-7"))])
                .unwrap();
        if rotated.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the file change was never picked up:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let old =
        get_with(&exporter.url("/metrics"), &[("Authorization", &basic("prometheus", PASSWORD))]).unwrap();
    assert_eq!(old.status, 401, "the old password no longer works");

    // A broken edit is logged and the working settings stay.
    std::fs::write(&web, "basic_auth_users: [not, a, map]\n").unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let still =
        get_with(&exporter.url("/metrics"), &[("Authorization", &basic("prometheus", "rotated-pw-7"))])
            .unwrap();
    assert_eq!(still.status, 200);
    let log = exporter.log();
    assert!(log.contains("web config not reloaded"), "{log}");
    for secret in [PASSWORD, "rotated-pw-7", &hash, &new_hash] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

/// A CA, a server certificate for 127.0.0.1 it signed, and a client
/// certificate it signed, as PEM files in `dir`.
struct Pki {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn make_pki(dir: &Path) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "opsmon test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &ca).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();

    let mut client_params = rcgen::CertificateParams::new(vec!["prometheus".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    Pki { ca_pem: ca.pem(), client_cert_pem: client.pem(), client_key_pem: client_key.serialize_pem() }
}

fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().unwrap()
}

/// GET `path` over TLS trusting `pki`'s CA, with a client certificate when
/// `with_client_cert`; the response's status line, or why there is none.
async fn https_status(port: u16, pki: &Pki, with_client_cert: bool, path: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(&pki.ca_pem) {
        roots.add(cert).unwrap();
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = if with_client_cert {
        use rustls::pki_types::pem::PemObject;
        let key = PrivatePkcs8KeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).unwrap();
        builder.with_client_auth_cert(pem_certs(&pki.client_cert_pem), PrivateKeyDer::Pkcs8(key)).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let exchange = async {
        let mut tls = connector
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.map_err(|e| format!("read: {e}"))?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        answer
            .lines()
            .next()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| "no answer".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.map_err(|_| "timed out".to_owned())?
}

#[tokio::test]
async fn tls_with_a_generated_certificate_and_plain_http_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let web = dir.path().join("web.yml");
    // Relative paths are relative to the web config file.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\n",
    )
    .unwrap();
    let exporter = Exporter::start(&web);
    let port = exporter.port;

    let status = https_status(port, &pki, false, "/metrics").await;
    assert_eq!(status.as_deref(), Ok("HTTP/1.1 200 OK"), "{}", exporter.log());
    let plain =
        tokio::task::spawn_blocking(move || get(&format!("http://127.0.0.1:{port}/metrics"))).await.unwrap();
    assert!(plain.is_err() || plain.as_ref().is_ok_and(|r| r.status != 200), "plain HTTP served: {plain:?}");
}

#[tokio::test]
async fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_ca_file: {0}/ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let exporter = Exporter::start(&web);

    let with_cert = https_status(exporter.port, &pki, true, "/metrics").await;
    assert_eq!(with_cert.as_deref(), Ok("HTTP/1.1 200 OK"), "{}", exporter.log());
    let without = https_status(exporter.port, &pki, false, "/metrics").await;
    assert!(without.is_err(), "served without a client certificate: {without:?}");

    // A certificate from another CA is refused too.
    let other = tempfile::tempdir().unwrap();
    let stranger = make_pki(other.path());
    let mixed = Pki {
        ca_pem: pki.ca_pem.clone(),
        client_cert_pem: stranger.client_cert_pem,
        client_key_pem: stranger.client_key_pem,
    };
    let foreign = https_status(exporter.port, &mixed, true, "/metrics").await;
    assert!(foreign.is_err(), "served with a foreign client certificate: {foreign:?}");
}

fn check_fails(web: &Path) -> (Option<i32>, String) {
    let output = Command::new(exporter_bin())
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--web.config.file={}", web.display()))
        .output()
        .unwrap();
    (
        output.status.code(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

#[test]
fn malformed_web_configs_stop_start_up_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let web: PathBuf = dir.path().join("web.yml");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();

    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prometheus: '{hash}'\ntls_server_confg:\n  cert_file: a\n"),
    )
    .unwrap();
    let (code, output) = check_fails(&web);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains(&format!("{}:3:", web.display())), "{output}");
    assert!(!output.contains(&hash), "{output}");

    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: {PASSWORD}\n")).unwrap();
    let (code, output) = check_fails(&web);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("basic_auth_users.prometheus: not a bcrypt hash"), "{output}");
    assert!(!output.contains(PASSWORD), "{output}");

    std::fs::write(&web, "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n").unwrap();
    let (code, output) = check_fails(&web);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("missing.crt"), "{output}");

    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
    )
    .unwrap();
    let (code, output) = check_fails(&web);
    assert_eq!(code, Some(2), "{output}");

    let (code, output) = check_fails(&dir.path().join("absent.yml"));
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("absent.yml"), "{output}");
}
