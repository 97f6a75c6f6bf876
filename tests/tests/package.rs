//! The Debian package: built by scripts/package-deb.sh (cargo-deb, installed
//! from crates.io when missing), inspected with `dpkg-deb -c/-I`, unpacked with
//! `dpkg -x` into a throw-away root, its unit verified there with
//! `systemd-analyze verify`, and the installed binary run with
//! `--version` and `--config.check` against the installed /etc/opsmon/opsmon.yml.
//! The maintainer scripts are checked with `sh -n` and for what they create.
//!
//! Wall time: 20–40 s when the release binary is already built (the first
//! run also installs cargo-deb, a few minutes).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn output(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Builds the package once and returns its path.
fn package() -> PathBuf {
    // The release binary the other tests run is the one packed: the harness
    // built it, and a nested `cargo build` would wait on cargo's lock.
    let binary = opsmon_e2e::exporter_bin();
    let profile = binary.parent().unwrap();
    assert!(
        profile.file_name().is_some_and(|n| n == "release"),
        "the package test needs the release build (cargo test --release): {}",
        binary.display()
    );
    let stdout = output(
        Command::new(workspace().join("scripts/package-deb.sh"))
            .arg("--no-build")
            .env("CARGO_TARGET_DIR", profile.parent().unwrap())
            .current_dir(workspace()),
        "scripts/package-deb.sh --no-build",
    );
    let path = stdout.lines().rev().map(str::trim).find(|l| l.ends_with(".deb")).unwrap_or_else(|| {
        panic!("scripts/package-deb.sh printed no .deb path:\n{stdout}");
    });
    let path = PathBuf::from(path);
    let path = if path.is_absolute() { path } else { workspace().join(path) };
    assert!(path.is_file(), "{} missing", path.display());
    path
}

#[test]
fn debian_package_installs_a_working_exporter_into_a_throw_away_root() {
    let dpkg_deb = opsmon_e2e::require_tool("dpkg-deb", "dpkg");
    let analyze = opsmon_e2e::require_tool("systemd-analyze", "systemd");
    let deb = package();

    // Contents: binary, unit, config, secrets file (0640), man page, completions.
    let contents = output(Command::new(&dpkg_deb).arg("-c").arg(&deb), "dpkg-deb -c");
    let entry = |path: &str| contents.lines().find(|l| l.ends_with(path) || l.contains(&format!("{path} ")));
    for path in [
        "./usr/bin/opsmon-exporter",
        "./etc/opsmon/opsmon.yml",
        "./etc/default/opsmon-exporter",
        "/systemd/system/opsmon-exporter.service",
        "./usr/share/bash-completion/completions/opsmon-exporter",
        "./usr/share/zsh/vendor-completions/_opsmon-exporter",
        "./usr/share/fish/vendor_completions.d/opsmon-exporter.fish",
    ] {
        assert!(entry(path).is_some(), "{path} not in the package:\n{contents}");
    }
    assert!(contents.contains("./usr/share/man/man1/opsmon-exporter.1"), "no man page:\n{contents}");
    let secrets = entry("./etc/default/opsmon-exporter").unwrap();
    assert!(secrets.starts_with("-rw-r-----"), "the secrets file is 0640: {secrets}");

    // Control: name, dependencies, conffiles, maintainer scripts.
    let info = output(Command::new(&dpkg_deb).arg("-I").arg(&deb), "dpkg-deb -I");
    assert!(info.contains("Package: opsmon-exporter"), "{info}");
    assert!(info.lines().any(|l| l.trim_start().starts_with("Depends:") && l.contains("adduser")), "{info}");
    let control = tempfile::tempdir().unwrap();
    output(Command::new(&dpkg_deb).arg("-e").arg(&deb).arg(control.path()), "dpkg-deb -e");
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    for conffile in ["/etc/opsmon/opsmon.yml", "/etc/default/opsmon-exporter"] {
        assert!(conffiles.lines().any(|l| l == conffile), "{conffile} is not a conffile:\n{conffiles}");
    }
    for script in ["postinst", "postrm"] {
        let path = control.path().join(script);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no {script} in the package"));
        output(Command::new("sh").arg("-n").arg(&path), &format!("sh -n {script}"));
        assert!(!text.contains("#DEBHELPER#"), "cargo-deb fills in the systemd snippets: {script}");
    }
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system") && postinst.contains("opsmon"), "{postinst}");
    assert!(postinst.contains("chmod 0640 /etc/default/opsmon-exporter"), "{postinst}");
    assert!(postinst.contains("systemctl"), "the unit is enabled and started: {postinst}");

    // Unpacked into a throw-away root.
    let root = tempfile::tempdir().unwrap();
    output(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()), "dpkg -x");
    let unit = ["lib/systemd/system", "usr/lib/systemd/system"]
        .iter()
        .map(|dir| root.path().join(dir).join("opsmon-exporter.service"))
        .find(|p| p.is_file())
        .expect("the unit is installed");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(unit_text.contains("EnvironmentFile=-/etc/default/opsmon-exporter"), "{unit_text}");
    assert!(unit_text.contains("ExecStart=/usr/bin/opsmon-exporter"), "{unit_text}");
    // The installed unit, with its binary path pointing into the throw-away
    // root (a bare root has no sysinit.target or /bin/kill for `--root`).
    let binary = root.path().join("usr/bin/opsmon-exporter");
    let checked_unit = root.path().join("opsmon-exporter.service");
    std::fs::write(&checked_unit, unit_text.replace("/usr/bin/opsmon-exporter", binary.to_str().unwrap()))
        .unwrap();
    let verify = Command::new(&analyze).arg("verify").arg(&checked_unit).output().unwrap();
    let verify_text =
        format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(
        verify.status.success() && verify_text.trim().is_empty(),
        "systemd-analyze verify:\n{verify_text}"
    );

    let version = output(Command::new(&binary).arg("--version"), "opsmon-exporter --version");
    assert_eq!(version.trim(), format!("opsmon-exporter {}", env!("CARGO_PKG_VERSION")));
    let config = root.path().join("etc/opsmon/opsmon.yml");
    let check = output(
        Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg("--config.check")
            .env_remove("DATA_SOURCE_NAME")
            .env_remove("REDIS_ADDR"),
        "--config.check of the installed /etc/opsmon/opsmon.yml",
    );
    assert!(check.contains("configuration OK") && check.contains("collectors enabled: host"), "{check}");
    let man = root.path().join("usr/share/man/man1");
    let page = std::fs::read_dir(&man).unwrap().next().unwrap().unwrap().path();
    assert!(
        page.file_name().unwrap().to_string_lossy().starts_with("opsmon-exporter.1"),
        "{}",
        page.display()
    );
    let bash =
        std::fs::read_to_string(root.path().join("usr/share/bash-completion/completions/opsmon-exporter"))
            .unwrap();
    assert!(bash.contains("--path.procfs") && bash.contains("--no-collector.host"), "{bash}");
}

/// The package's /etc/opsmon/opsmon.yml (deploy/opsmon-minimal.yml): valid
/// without any environment, and with the peers' variables a real start
/// watches a real PostgreSQL and Redis (with a password, never shown).
#[test]
fn minimal_config_watches_postgres_and_redis_from_the_environment() {
    use opsmon_e2e::servers::{PgServer, RedisServer};
    use opsmon_e2e::{Process, get, parse_exposition};

    let config = workspace().join("deploy/opsmon-minimal.yml");
    let config_flag = format!("--config.file={}", config.display());
    let alone = output(
        Command::new(opsmon_e2e::exporter_bin())
            .args([config_flag.as_str(), "--config.check"])
            .env_remove("DATA_SOURCE_NAME")
            .env_remove("REDIS_ADDR"),
        "--config.check of deploy/opsmon-minimal.yml",
    );
    assert!(alone.contains("collectors enabled: host\n"), "{alone}");

    let pg = PgServer::start(&[]);
    let redis = RedisServer::start(Some("minimal-secret"), &[]);
    let env = [
        ("DATA_SOURCE_NAME", pg.url("postgres")),
        ("REDIS_ADDR", redis.address()),
        ("REDIS_PASSWORD", "minimal-secret".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let exporter = Process::exporter_with_env(&[config_flag.as_str()], &env);
    let text = get(&exporter.url("/metrics")).unwrap().text();
    let families = parse_exposition(&text);
    assert_eq!(families["pg_up"].value(&[]), Some(1.0), "{}", exporter.log());
    assert_eq!(families["redis_up"].value(&[]), Some(1.0), "{}", exporter.log());
    for collector in ["host", "postgres", "redis"] {
        assert_eq!(
            families["opsmon_exporter_collector_success"].value(&[("collector", collector)]),
            Some(1.0),
            "{collector}: {}",
            exporter.log()
        );
    }
    assert!(!text.contains("smartalk_"), "no SmarTalk business families");
    assert!(!text.contains("minimal-secret") && !exporter.log().contains("minimal-secret"));
    assert!(!text.contains(&pg.password) && !exporter.log().contains(&pg.password));
}
