//! `--web.config.file` in the Prometheus exporter-toolkit format: TLS
//! (`tls_server_config`: certificate and key, client CA with
//! `client_auth_type`, minimum version) and HTTP basic auth
//! (`basic_auth_users`: bcrypt hashes). The file and the files it names are
//! re-read when they change; a change that does not load is logged and the
//! previous settings are kept. Passwords and hashes never reach a log line.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// How often the files are checked for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Verified `(user, password)` results kept; bcrypt costs ~0.1–0.3 s each.
const AUTH_CACHE_ENTRIES: usize = 1024;
/// bcrypt verifications running at once.
pub const CONCURRENT_BCRYPT: usize = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    tls_server_config: Option<TlsServerConfig>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    min_version: Option<String>,
}

/// What a loaded file enforces.
pub struct Loaded {
    tls: Option<Arc<rustls::ServerConfig>>,
    users: BTreeMap<String, String>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        f.debug_struct("Loaded")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The web configuration in force, re-read when its files change.
#[derive(Debug)]
pub struct WebConfig {
    path: PathBuf,
    current: RwLock<Arc<Loaded>>,
    fingerprint: Mutex<Vec<Option<(SystemTime, u64)>>>,
    /// sha256(user ‖ hash ‖ password) of verified credentials, so bcrypt runs once per credential.
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slots: tokio::sync::Semaphore,
}

/// A problem in the web config, as `file:line:column: message` when the
/// position is known.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WebConfigError(String);

impl WebConfig {
    /// Loads `path`, or explains what is wrong with it.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let (loaded, fingerprint) = load(path)?;
        Ok(WebConfig {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(loaded)),
            fingerprint: Mutex::new(fingerprint),
            verified: Mutex::new(HashSet::new()),
            bcrypt_slots: tokio::sync::Semaphore::new(CONCURRENT_BCRYPT),
        })
    }

    /// The settings in force.
    pub fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Re-reads the files if any changed since the last load; on failure the
    /// previous settings stay. Returns whether new settings were loaded.
    pub fn reload_if_changed(&self) -> bool {
        let current = self.current();
        let now = fingerprint(&self.path, &current_files(&self.path));
        {
            let mut seen = self.fingerprint.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *seen == now {
                return false;
            }
            *seen = now;
        }
        match load(&self.path) {
            Ok((loaded, fingerprint)) => {
                tracing::info!(file = %self.path.display(), tls = loaded.tls.is_some(), users = loaded.users.len(), "web config reloaded");
                *self.fingerprint.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fingerprint;
                *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
                self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                true
            }
            Err(error) => {
                drop(current);
                tracing::error!(%error, "web config not reloaded; keeping the previous one");
                false
            }
        }
    }

    /// Whether the request's `Authorization` header satisfies
    /// `basic_auth_users` (always true without users). Runs at most
    /// [`CONCURRENT_BCRYPT`] bcrypt verifications at once on blocking
    /// threads, so a flood of wrong passwords cannot take the threads the
    /// collectors need; cached results answer at once.
    pub async fn authorize(
        self: &Arc<Self>,
        loaded: &Arc<Loaded>,
        authorization: Option<&hyper::header::HeaderValue>,
    ) -> bool {
        if loaded.users.is_empty() {
            return true;
        }
        let Some(credentials) = authorization.and_then(parse_basic) else {
            return false;
        };
        if let Some(ok) = self.cached(loaded, &credentials) {
            return ok;
        }
        let Ok(_permit) = self.bcrypt_slots.acquire().await else { return false };
        let (config, loaded) = (Arc::clone(self), Arc::clone(loaded));
        tokio::task::spawn_blocking(move || config.check(&loaded, &credentials)).await.unwrap_or(false)
    }

    fn cached(&self, loaded: &Loaded, (user, password): &(String, String)) -> Option<bool> {
        let (known, hash) = user_hash(loaded, user);
        let cached = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.contains(&cache_key(user, hash, password)).then_some(known)
    }

    /// Blocking: verifies (bcrypt) unless cached, and caches the result.
    pub fn authorized(&self, loaded: &Loaded, authorization: Option<&hyper::header::HeaderValue>) -> bool {
        if loaded.users.is_empty() {
            return true;
        }
        authorization.and_then(parse_basic).is_some_and(|credentials| self.check(loaded, &credentials))
    }

    fn check(&self, loaded: &Loaded, (user, password): &(String, String)) -> bool {
        let (known, hash) = user_hash(loaded, user);
        let key = cache_key(user, hash, password);
        if self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&key) {
            return known;
        }
        // bcrypt's own comparison is constant-time.
        // Evaluated before `known` so an unknown user costs the same.
        let verified = bcrypt::verify(password.as_bytes(), hash).unwrap_or(false);
        let ok = known && verified;
        // Only successes are cached: a flood of wrong passwords cannot evict
        // the right ones (and is held to CONCURRENT_BCRYPT verifications).
        if ok {
            let mut cache = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= AUTH_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }
}

impl Loaded {
    /// The TLS settings, if TLS is on.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }
}

/// Whether `user` exists, and the hash to verify against. An unknown user
/// still costs one bcrypt run, so timing does not tell which names exist.
fn user_hash<'a>(loaded: &'a Loaded, user: &str) -> (bool, &'a str) {
    const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
    match loaded.users.get(user) {
        Some(hash) => (true, hash.as_str()),
        None => (false, UNKNOWN_USER_HASH),
    }
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0_u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// `Basic base64(user:password)` → `(user, password)`.
fn parse_basic(value: &hyper::header::HeaderValue) -> Option<(String, String)> {
    use base64::Engine;
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 4096 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The files a config names (certificate, key, CA), read leniently for change detection.
fn current_files(path: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let Ok(file) = serde_saphyr::from_str::<FileFormat>(&text) else { return Vec::new() };
    referenced_files(path, &file)
}

fn referenced_files(path: &Path, file: &FileFormat) -> Vec<PathBuf> {
    let Some(tls) = &file.tls_server_config else { return Vec::new() };
    let mut files = vec![resolve(path, &tls.cert_file), resolve(path, &tls.key_file)];
    files.extend(tls.client_ca_file.as_ref().map(|ca| resolve(path, ca)));
    files
}

fn fingerprint(path: &Path, files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    std::iter::once(path)
        .chain(files.iter().map(PathBuf::as_path))
        .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

/// Relative paths are relative to the web config file, as in exporter-toolkit.
fn resolve(config: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_owned()
    } else {
        config.parent().unwrap_or_else(|| Path::new(".")).join(file)
    }
}

type LoadResult = Result<(Loaded, Vec<Option<(SystemTime, u64)>>), WebConfigError>;

fn load(path: &Path) -> LoadResult {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| {
        WebConfigError(format!("{shown}: cannot read web config file (--web.config.file): {e}"))
    })?;
    if !metadata.is_file() || metadata.len() > 1 << 20 {
        return Err(WebConfigError(format!(
            "{shown}: not a regular file of at most 1 MiB (--web.config.file)"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        WebConfigError(format!("{shown}: cannot read web config file (--web.config.file): {e}"))
    })?;
    let file: FileFormat = serde_saphyr::from_str(&text).map_err(|e| {
        // Only the position and serde's message: never the text around it,
        // which may hold password hashes.
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or_default().trim();
        let message = message
            .strip_prefix("error: line ")
            .and_then(|rest| rest.split_once(": ").map(|(_, m)| m))
            .unwrap_or(message);
        let message = message.rfind(" at line ").map_or(message, |at| &message[..at]);
        WebConfigError(format!(
            "{shown}:{line}:{column}: {message}; expected tls_server_config (cert_file, key_file, client_ca_file, client_auth_type, min_version) and basic_auth_users (user: bcrypt hash)"
        ))
    })?;
    let users = file.basic_auth_users.clone().unwrap_or_default();
    for (user, hash) in &users {
        if user.contains(':') || bcrypt_cost(hash).is_none() {
            return Err(WebConfigError(format!(
                "{shown}: basic_auth_users.{user}: {}",
                if user.contains(':') {
                    "a user name cannot contain ':'"
                } else {
                    "not a bcrypt hash ($2a$, $2b$ or $2y$ with cost 4..=31); make one with `htpasswd -nBC 10 USER`"
                }
            )));
        }
    }
    let tls = match &file.tls_server_config {
        None => None,
        Some(tls) => Some(Arc::new(
            tls_config(path, tls).map_err(|e| WebConfigError(format!("{shown}: tls_server_config: {e}")))?,
        )),
    };
    let fingerprint = fingerprint(path, &referenced_files(path, &file));
    Ok((Loaded { tls, users }, fingerprint))
}

fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = hash
        .strip_prefix("$2a$")
        .or_else(|| hash.strip_prefix("$2b$"))
        .or_else(|| hash.strip_prefix("$2y$"))?;
    let (cost, salt_and_hash) = rest.split_once('$')?;
    let cost: u32 = cost.parse().ok()?;
    ((4..=31).contains(&cost) && salt_and_hash.len() == 53).then_some(cost)
}

fn tls_config(config_path: &Path, tls: &TlsServerConfig) -> Result<rustls::ServerConfig, String> {
    let cert_file = resolve(config_path, &tls.cert_file);
    let key_file = resolve(config_path, &tls.key_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|e| format!("cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("cert_file {}: no PEM certificate in it", cert_file.display()));
    }
    // The key's own error text could quote key material: only say what failed.
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|_| format!("key_file {}: no readable PEM private key in it", key_file.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(other) => {
            return Err(format!("min_version {other:?} is not supported; use TLS12 or TLS13"));
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let Some(ca_file) = &tls.client_ca_file else {
                return Err(format!("client_auth_type {auth_type} needs client_ca_file"));
            };
            let ca_file = resolve(config_path, ca_file);
            let mut roots = rustls::RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca_file)
                .and_then(|iter| iter.collect::<Result<_, _>>())
                .map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))?;
            for ca in cas {
                roots.add(ca).map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier.build().map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))?,
            )
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "client_auth_type {auth_type} (a client certificate without verification) is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
            ));
        }
        other => {
            return Err(format!(
                "client_auth_type {other:?} is unknown; use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file/key_file do not form a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn basic(user: &str, password: &str) -> HeaderValue {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("header")
    }

    #[test]
    fn basic_auth_with_bcrypt_and_a_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.yml");
        let hash = bcrypt::hash("s3cret-pw", 4).expect("hash");
        std::fs::write(&path, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).expect("write");
        let config = WebConfig::load(&path).expect("loads");
        let loaded = config.current();
        assert!(config.authorized(&loaded, Some(&basic("prometheus", "s3cret-pw"))));
        assert!(config.authorized(&loaded, Some(&basic("prometheus", "s3cret-pw"))), "cached");
        assert!(!config.authorized(&loaded, Some(&basic("prometheus", "wrong"))));
        assert!(!config.authorized(&loaded, Some(&basic("nobody", "s3cret-pw"))));
        assert!(!config.authorized(&loaded, None));
        assert!(!config.authorized(&loaded, Some(&HeaderValue::from_static("Basic !!!"))));
        assert!(!format!("{loaded:?}").contains(&hash), "no hash in Debug");
    }

    #[test]
    fn malformed_files_name_file_and_line_without_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "basic_auth_users:\n  admin: '$2y$10$secrethashsecrethash'\ntls_server_confg:\n  cert_file: x\n",
        )
        .expect("write");
        let error = WebConfig::load(&path).expect_err("typo").to_string();
        assert!(error.contains("web.yml:3:"), "{error}");
        assert!(!error.contains("secrethash"), "{error}");
        std::fs::write(&path, "basic_auth_users:\n  admin: 'plaintext-password'\n").expect("write");
        let error = WebConfig::load(&path).expect_err("not bcrypt").to_string();
        assert!(error.contains("basic_auth_users.admin: not a bcrypt hash"), "{error}");
        assert!(!error.contains("plaintext-password"), "{error}");
    }
}
