use super::*;

#[test]
fn list_filters_become_patterns_and_words_are_checked() {
    let input = |pattern: Option<&str>, unit_type: Option<&str>| ServiceStatusInput {
        pattern: pattern.map(str::to_owned),
        unit_type: unit_type.map(str::to_owned),
        ..ServiceStatusInput::default()
    };
    assert_eq!(
        list_patterns(&input(None, None)).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        list_patterns(&input(None, Some("socket"))).unwrap(),
        ["*.socket"]
    );
    assert_eq!(
        list_patterns(&input(Some("ssh*"), Some("service"))).unwrap(),
        ["ssh*"]
    );
    assert_eq!(list_patterns(&input(Some("cron"), None)).unwrap(), ["cron"]);
    assert!(list_patterns(&input(Some("a b"), None)).is_err());
    assert!(list_patterns(&input(None, Some("Service;"))).is_err());
    assert!(word("failed", "state").is_ok());
    assert!(word("not-found", "state").is_ok());
    assert!(word("", "state").is_err());
}

#[tokio::test]
async fn no_systemd_is_a_plain_answer() {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!("SKIP: this host runs systemd");
        return;
    }
    let refusal = answer(
        &SystemdSettings::default(),
        &LogSettings::default(),
        ServiceStatusInput::default(),
        Owner::default(),
    )
    .await
    .unwrap_err();
    assert!(
        refusal.starts_with("systemd is not running on this host: PID 1 is"),
        "{refusal}"
    );
    // A bad argument is said before systemd is asked.
    let bad = answer(
        &SystemdSettings::default(),
        &LogSettings::default(),
        ServiceStatusInput {
            unit: Some("ssh*".into()),
            ..ServiceStatusInput::default()
        },
        Owner::default(),
    )
    .await
    .unwrap_err();
    assert!(bad.contains("give pattern"), "{bad}");
}

#[test]
fn a_unit_reads_in_one_glance() {
    let status = UnitStatus {
        name: "demo.service".into(),
        description: "Demo".into(),
        load_state: "loaded".into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        unit_file_state: Some("enabled".into()),
        main_pid: Some(42),
        memory_bytes: Some(256 * 1024),
        restarts: Some(2),
        result: Some("success".into()),
        ..UnitStatus::default()
    };
    let text = render_unit(&status, Some(&[]), None);
    assert_eq!(
        text,
        "demo.service — Demo\n  loaded (enabled); active (running)\n  main PID 42, memory 256.0 KiB, \
         2 restarts, last result success\n  no journal lines for this unit"
    );
    let missing = UnitStatus {
        name: "nope.service".into(),
        load_state: "not-found".into(),
        ..UnitStatus::default()
    };
    assert!(render_unit(&missing, None, None).contains("not found"));
}
