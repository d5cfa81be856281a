//! The Debian package's files agree with the code and with each other: the shipped
//! `/etc/hostmcp/hostmcp.toml` resolves with today's config loader to a loopback server with
//! no token in clear, each of its settings has a comment, and the units, the logrotate
//! snippet and `[package.metadata.deb]` name the same paths. (tests/e2e/test_package.py
//! installs the real package into a Debian root.)

use std::path::{Path, PathBuf};

use hostmcp::{
    cli::ServeArgs,
    config::{AuthSetting, Config, EnvSnapshot, FileConfig},
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The environment the units give the server (`Environment=XDG_STATE_HOME=/var/lib`).
fn unit_env() -> EnvSnapshot {
    EnvSnapshot {
        token: None,
        state_home: Some(PathBuf::from("/var/lib")),
        home: None,
        config_home: None,
    }
}

#[test]
fn shipped_config_resolves_to_a_loopback_server_with_its_state_and_audit_log_in_place() {
    let file = FileConfig::parse(&read("packaging/hostmcp.toml")).unwrap();
    let config = Config::resolve(&ServeArgs::default(), &unit_env(), file).unwrap();
    assert!(!config.listen.is_empty());
    assert!(
        config
            .listen
            .iter()
            .all(|address| address.ip().is_loopback())
    );
    // No token in the file: the server makes one in the state directory the unit provides.
    assert!(matches!(
        config.auth,
        AuthSetting::GeneratedToken { ref state_dir } if state_dir == Path::new("/var/lib/hostmcp")
    ));
    assert_eq!(config.run_as.as_deref(), Some("hostmcp"));
    let audit = config.audit.expect("the audit log is on");
    assert_eq!(audit.path, Path::new("/var/log/hostmcp/audit.jsonl"));
    assert!(audit.redact_env_values);
    assert!(config.tls.is_none() && !config.allow_plaintext);
}

#[test]
fn shipped_config_keeps_no_secret() {
    let text = read("packaging/hostmcp.toml");
    for line in text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
    {
        let key = line.split('=').next().unwrap_or("").trim();
        assert!(
            !["sha256", "token", "key_file", "key"].contains(&key),
            "{line}"
        );
    }
}

/// The settings (`key = value` lines) that are not directly under a comment line.
fn uncommented_settings(text: &str) -> Vec<String> {
    let mut previous = "";
    let mut missing = Vec::new();
    for line in text.lines().map(str::trim) {
        let is_setting = !line.is_empty() && !line.starts_with('#') && !line.starts_with('[');
        if is_setting && !previous.starts_with('#') {
            missing.push(line.to_owned());
        }
        if !line.is_empty() {
            previous = line;
        }
    }
    missing
}

#[test]
fn every_setting_of_the_shipped_config_has_its_comment() {
    assert_eq!(
        uncommented_settings(&read("packaging/hostmcp.toml")),
        Vec::<String>::new()
    );
    // Near miss: the check sees a setting without one.
    assert_eq!(
        uncommented_settings("# listen\nlisten = []\n\n[audit]\nenabled = true\n"),
        ["enabled = true"]
    );
}

/// The `(source, destination)` pairs of `[package.metadata.deb] assets`.
fn deb_assets() -> Vec<(String, String)> {
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|asset| {
            let asset = asset.as_array().unwrap();
            (
                asset[0].as_str().unwrap().to_owned(),
                asset[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn package_installs_each_packaging_file_where_the_units_look_for_it() {
    let assets = deb_assets();
    let installs = |source: &str, destination: &str| {
        assets
            .iter()
            .any(|(s, d)| s == source && d.trim_end_matches('/') == destination)
    };
    assert!(installs("target/release/hostmcp", "usr/bin"));
    assert!(installs(
        "packaging/hostmcp.toml",
        "etc/hostmcp/hostmcp.toml"
    ));
    assert!(installs(
        "packaging/hostmcp.logrotate",
        "etc/logrotate.d/hostmcp"
    ));
    for unit in ["hostmcp.service", "hostmcp-strict.service"] {
        assert!(installs(
            &format!("packaging/{unit}"),
            &format!("usr/lib/systemd/system/{unit}")
        ));
        let text = read(&format!("packaging/{unit}"));
        assert!(
            text.contains("\nExecStart=/usr/bin/hostmcp serve --config /etc/hostmcp/hostmcp.toml"),
            "{unit}"
        );
        assert!(
            text.contains("\nEnvironment=XDG_STATE_HOME=/var/lib\n"),
            "{unit}"
        );
        assert!(text.contains("\nStateDirectory=hostmcp\n"), "{unit}");
        assert!(text.contains("\nLogsDirectory=hostmcp\n"), "{unit}");
        assert!(text.contains("\nNoNewPrivileges=yes\n"), "{unit}");
        assert!(text.contains("\nRestart=on-failure\n"), "{unit}");
    }
    // Near miss: a path the package does not ship is not found.
    assert!(!installs("packaging/hostmcp.toml", "etc/hostmcp.toml"));
}

#[test]
fn logrotate_rotates_the_configured_audit_log_and_signals_only_the_server() {
    let text: String = read("packaging/hostmcp.logrotate")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        text.starts_with("/var/log/hostmcp/audit.jsonl {\n"),
        "{text}"
    );
    // The anchor file (audit.jsonl.anchor) must never be rotated: no glob.
    assert!(!text.contains('*'), "{text}");
    assert!(!text.contains("copytruncate"), "{text}");
    assert!(text.contains("\tnocreate\n"), "{text}");
    assert!(text.contains("--kill-whom=main --signal=HUP"), "{text}");
}
