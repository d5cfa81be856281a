use super::*;

fn gateway_key() -> String {
    nkeys::KeyPair::new_account().public_key()
}

fn file(text: &str) -> FileFleet {
    toml::from_str(text).unwrap()
}

fn fleet_args(url: &str) -> FleetArgs {
    FleetArgs {
        fleet: vec![url.to_owned()],
        name: Some("web-1".to_owned()),
        ..FleetArgs::default()
    }
}

#[test]
fn no_url_no_fleet() {
    assert!(resolve(&FleetArgs::default(), None).unwrap().is_none());
    let table = file(&format!("trusted_gateways = [\"{}\"]", gateway_key()));
    assert!(
        resolve(&FleetArgs::default(), Some(&table))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_full_table_resolves_and_flags_win() {
    let key = gateway_key();
    let table = file(&format!(
        r#"
url = "nats://a:4222, nats://b:4222"
name = "db-1"
labels = {{ env = "prod", role = "db" }}
http = false
trusted_gateways = ["{key}"]
default_role = "read"
[principals]
alice = "operator"
"#
    ));
    let settings = resolve(&FleetArgs::default(), Some(&table))
        .unwrap()
        .unwrap();
    assert_eq!(settings.servers, ["nats://a:4222", "nats://b:4222"]);
    assert_eq!(settings.name.as_str(), "db-1");
    assert_eq!(settings.labels["role"], "db");
    assert!(!settings.http);
    assert_eq!(settings.auth, NatsAuth::None);
    assert_eq!(
        settings.trust.role_for("alice", "admin").unwrap(),
        Role::Operator
    );
    assert_eq!(settings.trust.role_for("bob", "admin").unwrap(), Role::Read);
    let args = FleetArgs {
        labels: vec!["env=dev".to_owned()],
        ..fleet_args("tls://hub:4222")
    };
    let settings = resolve(&args, Some(&table)).unwrap().unwrap();
    assert_eq!(settings.servers, ["tls://hub:4222"]);
    assert_eq!(settings.name.as_str(), "web-1");
    assert_eq!(settings.labels["env"], "dev");
}

#[test]
fn mistakes_are_named() {
    let key = gateway_key();
    let trusted = file(&format!("trusted_gateways = [\"{key}\"]"));
    let err = |args: FleetArgs, table: &FileFleet| resolve(&args, Some(table)).unwrap_err();
    assert!(matches!(
        err(fleet_args("http://hub:4222"), &trusted),
        FleetConfigError::BadUrl(_)
    ));
    assert!(matches!(
        err(
            FleetArgs {
                name: Some("a.b".to_owned()),
                ..fleet_args("nats://hub:4222")
            },
            &trusted
        ),
        FleetConfigError::BadName(_)
    ));
    assert!(matches!(
        err(
            FleetArgs {
                labels: vec!["noequals".to_owned()],
                ..fleet_args("nats://hub:4222")
            },
            &trusted
        ),
        FleetConfigError::BadLabel(_)
    ));
    assert!(matches!(
        err(fleet_args("nats://hub:4222"), &FileFleet::default()),
        FleetConfigError::NoGateway
    ));
    assert!(matches!(
        err(
            fleet_args("nats://hub:4222"),
            &file("trusted_gateways = [\"Anope\"]")
        ),
        FleetConfigError::BadGateway(_)
    ));
    assert!(matches!(
        err(
            fleet_args("nats://hub:4222"),
            &file(&format!(
                "trusted_gateways = [\"{key}\"]\n[principals]\nalice = \"root\""
            ))
        ),
        FleetConfigError::BadRole { .. }
    ));
    assert!(matches!(
        err(
            FleetArgs {
                no_http: true,
                ..FleetArgs::default()
            },
            &trusted
        ),
        FleetConfigError::NoHttpWithoutFleet
    ));
    assert!(matches!(
        err(
            fleet_args("nats://hub:4222"),
            &file(&format!(
                "trusted_gateways = [\"{key}\"]\nnkey_file = \"/a\"\ncreds_file = \"/b\""
            ))
        ),
        FleetConfigError::TwoCredentials
    ));
    assert!(toml::from_str::<FileFleet>("unknown = 1").is_err());
}

#[test]
fn credential_files_are_read_before_starting() {
    let key = gateway_key();
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("host.nk");
    std::fs::write(&seed, "not a seed").unwrap();
    let args = FleetArgs {
        nkey: Some(seed.clone()),
        ..fleet_args("nats://hub:4222")
    };
    let table = file(&format!("trusted_gateways = [\"{key}\"]"));
    let settings = resolve(&args, Some(&table)).unwrap().unwrap();
    assert!(matches!(
        settings.check_files(),
        Err(FleetConfigError::BadFile { .. })
    ));
    std::fs::write(&seed, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
    assert!(settings.check_files().is_ok());
}
