//! Configuration resolution: precedence, validation errors with their hints, defaults.

use std::path::PathBuf;

use super::*;
use crate::auth::TokenSet;

fn args() -> ServeArgs {
    ServeArgs::default()
}

fn env() -> EnvSnapshot {
    EnvSnapshot {
        token: None,
        state_home: Some(PathBuf::from("/state")),
        home: Some(PathBuf::from("/home/u")),
        config_home: None,
    }
}

fn file(text: &str) -> FileConfig {
    FileConfig::parse(text).unwrap()
}

const DIGEST: &str = "f620b25af173bdc1a7739d0a6fe2dbf36e1c86ed8e94d6ac42eef2207660fcad";

#[test]
fn defaults_are_loopback_port_8000_with_a_generated_token() {
    let config = Config::resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert_eq!(config.listen, vec![DEFAULT_LISTEN]);
    assert_eq!(config.listen[0].to_string(), "127.0.0.1:8000");
    assert!(matches!(
        config.auth,
        AuthSetting::GeneratedToken { ref state_dir } if state_dir == &PathBuf::from("/state/hostmcp")
    ));
    assert_eq!(config.limits, CommandLimits::default());
}

#[test]
fn state_dir_falls_back_to_home() {
    let env = EnvSnapshot {
        state_home: None,
        ..env()
    };
    assert_eq!(
        env.state_dir().unwrap(),
        PathBuf::from("/home/u/.local/state/hostmcp")
    );
    let nothing = EnvSnapshot::default();
    assert!(matches!(nothing.state_dir(), Err(ConfigError::NoStateDir)));
}

#[test]
fn flags_override_the_file() {
    let args = ServeArgs {
        listen: vec!["127.0.0.1:9000".parse().unwrap()],
        ..args()
    };
    let config = Config::resolve(&args, &env(), file(r#"listen = ["127.0.0.1:7000"]"#)).unwrap();
    assert_eq!(config.listen, vec!["127.0.0.1:9000".parse().unwrap()]);
    let config = Config::resolve(
        &ServeArgs::default(),
        &env(),
        file(r#"listen = ["127.0.0.1:7000"]"#),
    )
    .unwrap();
    assert_eq!(config.listen, vec!["127.0.0.1:7000".parse().unwrap()]);
}

#[test]
fn env_token_and_file_tokens_are_all_accepted() {
    let env = EnvSnapshot {
        token: Some(Secret::new("from-env")),
        ..env()
    };
    let text = format!("[[tokens]]\nname = \"ci\"\nsha256 = \"{DIGEST}\"\nrole = \"read\"\n");
    let config = Config::resolve(&args(), &env, file(&text)).unwrap();
    let AuthSetting::Tokens(tokens) = config.auth else {
        panic!("expected tokens")
    };
    let set = TokenSet::new(tokens);
    let default = set.authenticate("from-env").unwrap();
    assert_eq!((default.name(), default.role()), ("default", Role::Admin));
    // DIGEST is sha256("hostmcp-test-token").
    let ci = set.authenticate("hostmcp-test-token").unwrap();
    assert_eq!((ci.name(), ci.role()), ("ci", Role::Read));
}

#[test]
fn a_file_token_without_role_is_an_operator() {
    let text = format!("[[tokens]]\nname = \"ci\"\nsha256 = \"{DIGEST}\"\n");
    let AuthSetting::Tokens(tokens) = Config::resolve(&args(), &env(), file(&text)).unwrap().auth
    else {
        panic!("expected tokens")
    };
    assert_eq!(tokens[0].role(), Role::Operator);
}

#[test]
fn a_bad_digest_is_named_with_a_hint() {
    let text = "[[tokens]]\nname = \"ci\"\nsha256 = \"abc\"\n";
    let error = Config::resolve(&args(), &env(), file(text)).unwrap_err();
    assert!(matches!(error, ConfigError::BadDigest { index: 0, .. }));
    assert!(error.to_string().contains("tokens[0]"));
    assert!(error.hint().contains("hostmcp token create"));
}

#[test]
fn duplicate_names_and_unknown_roles_are_refused() {
    let text = format!(
        "[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\n[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\n"
    );
    assert!(matches!(
        Config::resolve(&args(), &env(), file(&text)),
        Err(ConfigError::DuplicateTokenName { .. })
    ));
    let text = format!("[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nrole = \"root\"\n");
    assert!(matches!(
        Config::resolve(&args(), &env(), file(&text)),
        Err(ConfigError::UnknownRole { .. })
    ));
}

#[test]
fn a_clear_text_token_key_in_the_file_is_an_error_naming_the_key() {
    let error = FileConfig::parse("[[tokens]]\nname = \"a\"\ntoken = \"secret\"\n").unwrap_err();
    assert!(error.contains("token"), "{error}");
    let error = FileConfig::parse("listn = []").unwrap_err();
    assert!(error.contains("listn"), "{error}");
}

#[test]
fn no_auth_is_accepted_on_loopback_only() {
    let loopback = ServeArgs {
        no_auth: true,
        listen: vec![
            "127.0.0.1:8000".parse().unwrap(),
            "[::1]:8000".parse().unwrap(),
        ],
        ..args()
    };
    assert!(matches!(
        Config::resolve(&loopback, &env(), FileConfig::default())
            .unwrap()
            .auth,
        AuthSetting::Disabled
    ));
    for addr in ["0.0.0.0:8000", "192.0.2.1:8000", "[::]:8000"] {
        let open = ServeArgs {
            no_auth: true,
            listen: vec![addr.parse().unwrap()],
            ..args()
        };
        assert!(
            matches!(
                Config::resolve(&open, &env(), FileConfig::default()),
                Err(ConfigError::NoAuthOffLoopback { .. })
            ),
            "{addr}"
        );
    }
}

#[test]
fn limits_are_read_and_checked() {
    let config = Config::resolve(
        &args(),
        &env(),
        file(
            "[limits]\ndefault_timeout_secs = 5\nmax_timeout_secs = 60\nmax_output_bytes = 4096\n",
        ),
    )
    .unwrap();
    assert_eq!(config.limits.default_timeout, Duration::from_secs(5));
    assert_eq!(config.limits.max_timeout, Duration::from_secs(60));
    assert_eq!(config.limits.max_output_bytes, 4096);
    for bad in [
        "[limits]\ndefault_timeout_secs = 0\n",
        "[limits]\ndefault_timeout_secs = 100\nmax_timeout_secs = 10\n",
        "[limits]\nmax_output_bytes = 10\n",
    ] {
        assert!(
            matches!(
                Config::resolve(&args(), &env(), file(bad)),
                Err(ConfigError::BadLimits(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn result_budget_defaults_is_read_and_has_a_floor() {
    let default = Config::resolve(&args(), &env(), file("")).unwrap();
    assert_eq!(default.limits.result_budget_bytes, 100 * 1024);
    let set = Config::resolve(
        &args(),
        &env(),
        file("[limits]\nresult_budget_bytes = 4096\n"),
    );
    assert_eq!(set.unwrap().limits.result_budget_bytes, 4096);
    let below = Config::resolve(
        &args(),
        &env(),
        file("[limits]\nresult_budget_bytes = 4095\n"),
    );
    assert!(matches!(below, Err(ConfigError::BadLimits(_))));
}

#[test]
fn allowed_hosts_and_origins_combine_flags_and_file() {
    let args = ServeArgs {
        allowed_hosts: vec!["a.example".into()],
        ..args()
    };
    let config = Config::resolve(
        &args,
        &env(),
        file("allowed_hosts = [\"b.example\"]\nallowed_origins = [\"http://localhost:6274\"]\n"),
    )
    .unwrap();
    assert_eq!(config.allowed_hosts, vec!["a.example", "b.example"]);
    assert_eq!(config.allowed_origins, vec!["http://localhost:6274"]);
}

#[test]
fn token_expiry_is_read_as_a_point_in_time() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let text = format!(
        "[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nexpires = 2027-01-31T00:00:00Z\n\
         [[tokens]]\nname = \"b\"\nsha256 = \"{DIGEST}0\"\n"
    );
    // The second entry's digest is invalid: the error proves the first one parsed.
    assert!(matches!(
        Config::resolve(&args(), &env(), file(&text)),
        Err(ConfigError::BadDigest { index: 1, .. })
    ));
    let text = format!(
        "[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nexpires = 2000-02-29T12:30:00+02:00\n"
    );
    let AuthSetting::Tokens(tokens) = Config::resolve(&args(), &env(), file(&text)).unwrap().auth
    else {
        panic!("expected tokens")
    };
    let expiry = UNIX_EPOCH + Duration::from_secs(951_820_200);
    assert!(tokens[0].is_expired(expiry));
    assert!(!tokens[0].is_expired(expiry - Duration::from_secs(1)));
    assert!(tokens[0].is_expired(SystemTime::now()));
    let set = TokenSet::new(tokens);
    assert_eq!(
        set.authenticate("hostmcp-test-token"),
        Err(crate::auth::AuthError::Expired)
    );
}

#[test]
fn an_expiry_without_offset_is_refused() {
    let text = format!("[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nexpires = 2027-01-31\n");
    assert!(matches!(
        Config::resolve(&args(), &env(), file(&text)),
        Err(ConfigError::BadExpiry { .. })
    ));
}

/// The instant a token whose `expires` is `value` expires at, read through `Config::resolve`.
fn expiry(value: &str) -> Result<std::time::SystemTime, ConfigError> {
    use std::time::UNIX_EPOCH;
    let text = format!("[[tokens]]\nname = \"a\"\nsha256 = \"{DIGEST}\"\nexpires = {value}\n");
    let AuthSetting::Tokens(tokens) = Config::resolve(&args(), &env(), file(&text))?.auth else {
        panic!("expected tokens")
    };
    // The first second at which the token is expired: it is valid one second before.
    let mut seconds = 0u64;
    let mut step = 1u64 << 40;
    while step > 0 {
        if !tokens[0].is_expired(UNIX_EPOCH + Duration::from_secs(seconds + step - 1)) {
            seconds += step;
        }
        step /= 2;
    }
    Ok(UNIX_EPOCH + Duration::from_secs(seconds))
}

#[test]
fn expiry_dates_at_the_calendar_edges_are_the_right_instants() {
    use std::time::UNIX_EPOCH;
    let at = |seconds: u64| UNIX_EPOCH + Duration::from_secs(seconds);
    // Leap day, with an offset.
    assert_eq!(
        expiry("2000-02-29T12:30:00+02:00").unwrap(),
        at(951_820_200)
    );
    // The last second of a year and the first of the next; an offset crossing the boundary.
    assert_eq!(expiry("2026-12-31T23:59:59Z").unwrap(), at(1_798_761_599));
    assert_eq!(expiry("2027-01-01T00:00:00Z").unwrap(), at(1_798_761_600));
    assert_eq!(
        expiry("2027-01-01T00:00:00+01:00").unwrap(),
        at(1_798_758_000)
    );
    assert_eq!(
        expiry("2026-12-31T23:30:00-00:30").unwrap(),
        at(1_798_761_600)
    );
    // A leap second is the first second of the next minute.
    assert_eq!(expiry("2016-12-31T23:59:60Z").unwrap(), at(1_483_228_800));
    // Fractions of a second are dropped.
    assert_eq!(
        expiry("2027-01-01T00:00:00.999Z").unwrap(),
        at(1_798_761_600)
    );
    // The epoch itself is a point in time; a second before it (here or by offset) is refused.
    assert_eq!(expiry("1970-01-01T00:00:00Z").unwrap(), at(0));
    for before_1970 in [
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "1900-01-01T00:00:00Z",
    ] {
        assert!(
            matches!(expiry(before_1970), Err(ConfigError::BadExpiry { .. })),
            "{before_1970}"
        );
    }
}

#[test]
fn plaintext_off_loopback_needs_tls_or_an_explicit_flag() {
    let open = ServeArgs {
        listen: vec!["0.0.0.0:8000".parse().unwrap()],
        ..args()
    };
    let error = Config::resolve(&open, &env(), FileConfig::default()).unwrap_err();
    assert!(matches!(error, ConfigError::PlaintextOffLoopback { .. }));
    assert!(error.hint().contains("--allow-plaintext"));
    let allowed = ServeArgs {
        allow_plaintext: true,
        ..open
    };
    assert!(
        Config::resolve(&allowed, &env(), FileConfig::default())
            .unwrap()
            .allow_plaintext
    );
    let tls = ServeArgs {
        listen: vec!["0.0.0.0:8443".parse().unwrap()],
        tls_cert: Some("/c.pem".into()),
        tls_key: Some("/k.pem".into()),
        ..args()
    };
    let config = Config::resolve(&tls, &env(), FileConfig::default()).unwrap();
    assert_eq!(config.tls.unwrap().cert, PathBuf::from("/c.pem"));
    // The near miss: loopback needs neither.
    assert!(Config::resolve(&args(), &env(), FileConfig::default()).is_ok());
}

#[test]
fn a_tls_table_needs_both_files() {
    let error = Config::resolve(&args(), &env(), file("[tls]\ncert = \"/c.pem\"\n")).unwrap_err();
    assert!(matches!(error, ConfigError::IncompleteTls));
}

#[test]
fn on_revoke_defaults_to_kill_reads_finish_and_refuses_anything_else() {
    let resolve = |text: &str| {
        Config::resolve(&args(), &env(), file(text))
            .unwrap()
            .on_revoke
    };
    assert_eq!(resolve(""), crate::auth::OnRevoke::Kill);
    assert_eq!(resolve("on_revoke = \"kill\""), crate::auth::OnRevoke::Kill);
    assert_eq!(
        resolve("on_revoke = \"finish\""),
        crate::auth::OnRevoke::Finish
    );
    let error = FileConfig::parse("on_revoke = \"wait\"").unwrap_err();
    assert!(
        error.contains("on_revoke") || error.contains("kill"),
        "{error}"
    );
    assert!(
        FileConfig::parse("on_revoke = \"Kill\"").is_err(),
        "lower case only"
    );
}

#[test]
fn trusted_proxies_come_from_flags_else_the_file_and_default_to_none() {
    let nets = |config: &Config| {
        ["10.1.2.3", "192.0.2.1", "2001:db8::1"]
            .map(|ip| config.trusted_proxies.contains(ip.parse().unwrap()))
    };
    let none = Config::resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert!(none.trusted_proxies.is_empty());
    let text = r#"trusted_proxies = ["10.0.0.0/8", "2001:db8::/32"]"#;
    let from_file = Config::resolve(&args(), &env(), file(text)).unwrap();
    assert_eq!(nets(&from_file), [true, false, true]);
    let flags = ServeArgs {
        trusted_proxies: vec!["192.0.2.1".parse().unwrap()],
        ..args()
    };
    let from_flags = Config::resolve(&flags, &env(), file(text)).unwrap();
    assert_eq!(nets(&from_flags), [false, true, false]);
}

#[test]
fn a_trusted_proxy_that_is_not_a_network_is_an_error_naming_the_key() {
    let error = FileConfig::parse(r#"trusted_proxies = ["10.0.0.0/33"]"#).unwrap_err();
    assert!(error.contains("trusted_proxies"), "{error}");
    assert!(error.contains("CIDR"), "{error}");
    // Near miss: a plain address is a network of one.
    assert!(FileConfig::parse(r#"trusted_proxies = ["10.0.0.1"]"#).is_ok());
}

#[test]
fn the_audit_key_file_is_read_from_the_audit_table() {
    let config = Config::resolve(
        &args(),
        &env(),
        file("[audit]\npath = \"/var/log/a.jsonl\"\nkey_file = \"/etc/hostmcp/audit.key\"\n"),
    )
    .unwrap();
    let audit = config.audit.unwrap();
    assert_eq!(audit.path, PathBuf::from("/var/log/a.jsonl"));
    assert_eq!(
        audit.key_file,
        Some(PathBuf::from("/etc/hostmcp/audit.key"))
    );
    // Near miss: without it the chain is unkeyed; a misspelt key is an error, not ignored.
    let config = Config::resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert_eq!(config.audit.unwrap().key_file, None);
    assert!(FileConfig::parse("[audit]\nkeyfile = \"/k\"\n").is_err());
}

#[test]
fn tool_calls_are_limited_to_600_a_minute_unless_configured() {
    let config = Config::resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert_eq!(config.abuse.tool_calls_per_minute, Some(600));
    let configured = file("[limits]\ntool_calls_per_minute = 100000\n");
    let config = Config::resolve(&args(), &env(), configured).unwrap();
    assert_eq!(config.abuse.tool_calls_per_minute, Some(100_000));
}

#[test]
fn file_roots_are_read_and_a_relative_or_unknown_key_is_refused() {
    let text =
        "[[files.roots]]\npath = \"/srv\"\n\n[[files.roots]]\npath = \"/srv/app\"\nwrite = true\n";
    let config = Config::resolve(&args(), &env(), file(text)).unwrap();
    let roots = config.files.roots();
    assert_eq!(roots.len(), 2);
    assert!(!roots[0].write && roots[1].write);
    let none = Config::resolve(&args(), &env(), FileConfig::default()).unwrap();
    assert!(none.files.is_empty());
    let relative = Config::resolve(&args(), &env(), file("[[files.roots]]\npath = \"srv\"\n"));
    let error = relative.unwrap_err();
    assert!(matches!(error, ConfigError::BadFileRoots(_)), "{error}");
    assert!(error.hint().contains("absolute"), "{}", error.hint());
    let typo = FileConfig::parse("[[files.roots]]\npath = \"/srv\"\nwritable = true\n");
    assert!(typo.unwrap_err().contains("writable"));
}

#[test]
fn metrics_are_off_by_default_and_on_with_the_flag_or_a_table() {
    let resolve =
        |args: &ServeArgs, text: &str| Config::resolve(args, &env(), file(text)).unwrap().metrics;
    let on = ServeArgs {
        metrics: true,
        ..args()
    };
    assert_eq!(resolve(&args(), ""), None);
    assert_eq!(resolve(&on, ""), Some(MetricsSettings::default()));
    assert_eq!(
        resolve(&args(), "[metrics]"),
        Some(MetricsSettings::default())
    );
    assert_eq!(
        resolve(
            &args(),
            "[metrics]\ntoken_file = \"/etc/hostmcp/metrics.token\""
        ),
        Some(MetricsSettings {
            token_file: Some(PathBuf::from("/etc/hostmcp/metrics.token")),
        })
    );
    // A table that says no; the flag still says yes, keeping the table's token file.
    let off = "[metrics]\nenabled = false\ntoken_file = \"/t\"";
    assert_eq!(resolve(&args(), off), None);
    assert_eq!(
        resolve(&on, off),
        Some(MetricsSettings {
            token_file: Some(PathBuf::from("/t")),
        })
    );
    assert!(FileConfig::parse("[metrics]\ntoken = \"secret\"").is_err());
}

#[test]
fn an_acme_table_serves_https_off_loopback_and_is_refused_beside_certificate_files() {
    let open = ServeArgs {
        listen: vec!["0.0.0.0:443".parse().unwrap()],
        ..args()
    };
    let text = r#"
[tls.acme]
domains = ["mcp.example.com"]
contact = ["ops@example.com"]
"#;
    let config = Config::resolve(&open, &env(), file(text)).unwrap();
    let acme = config.acme.unwrap();
    assert_eq!(acme.domains, ["mcp.example.com"]);
    assert_eq!(acme.cache_dir, PathBuf::from("/state/hostmcp/acme"));
    assert!(config.tls.is_none());
    // Near miss: the same table beside certificate files.
    let with_files = ServeArgs {
        tls_cert: Some("/c.pem".into()),
        tls_key: Some("/k.pem".into()),
        ..open
    };
    let error = Config::resolve(&with_files, &env(), file(text)).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Acme(acme::AcmeConfigError::FilesAndAcme)
        ),
        "{error}"
    );
    assert!(error.hint().contains("[tls.acme]"));
}
