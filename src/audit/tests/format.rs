//! The line format: the envelope with the event flattened into it, every event kind round
//! trip, and timestamps (RFC 3339 UTC with milliseconds, at the calendar's edges).

use super::*;

#[tokio::test]
async fn a_line_is_the_envelope_with_the_event_flattened_into_it() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 1).await;

    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.iter().filter(|&&byte| byte == b'\n').count(), 1);
    let line = &bytes[..bytes.len() - 1];
    let text = std::str::from_utf8(line).unwrap();
    assert!(text.starts_with(r#"{"seq":1,"time":""#), "{text}");
    assert!(
        text.ends_with(&format!(r#","prev":"{GENESIS_PREV}"}}"#)),
        "{text}"
    );

    let value: serde_json::Value = serde_json::from_slice(line).unwrap();
    let object = value.as_object().unwrap();
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "seq",
        "time",
        "principal",
        "client",
        "session",
        "tool",
        "event",
        "command_id",
        "argv",
        "rule",
        "program",
        "working_dir",
        "run_as",
        "env",
        "timeout_secs",
        "job_id",
        "prev",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(value["event"], "command_started");
    assert_eq!(value["principal"], "alice");
    assert_eq!(value["client"], "10.0.0.5:51234");
    assert_eq!(value["argv"], serde_json::json!(["ls", "-l"]));
    assert_eq!(value["working_dir"], "/srv/app");
    assert_eq!(
        value["env"],
        serde_json::json!([{"name": "LANG", "value": "[redacted]"}])
    );
    assert_eq!(value["job_id"], serde_json::Value::Null);
    let time = value["time"].as_str().unwrap();
    assert_eq!(time.len(), "2026-05-01T12:00:00.123Z".len(), "{time}");
    assert_eq!((&time[10..11], &time[19..20], &time[23..]), ("T", ".", "Z"));
}

#[test]
fn a_shell_command_is_written_as_command_not_argv() {
    let mut event = AuditEvent::CommandRefused {
        command: CommandLine::shell("ls; rm -rf /"),
        working_dir: None,
        reason: "shell mode is not permitted".into(),
        rule: Some("shell".to_owned()),
    };
    event.settle_env(false);
    let record = AuditRecord::new(
        1,
        "t".to_owned(),
        AuditContext::new(),
        event,
        "p".to_owned(),
    );
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["command"], "ls; rm -rf /");
    assert!(value.get("argv").is_none());
    assert_eq!(value["event"], "command_refused");
}

#[test]
fn every_event_kind_round_trips_and_no_field_clashes_with_the_envelope() {
    let events = vec![
        AuditEvent::ChainStarted,
        AuditEvent::AuthFailed {
            reason: "invalid token".into(),
        },
        AuditEvent::AuthThrottled {
            retry_after_secs: 42,
            refused_in_previous_window: 7,
        },
        AuditEvent::ToolDenied {
            tool: "run_command".to_owned(),
            rule: "role:read".to_owned(),
            reason: "read tokens cannot run commands".to_owned(),
        },
        started("c-1"),
        finished("c-1"),
        AuditEvent::CommandRefused {
            command: CommandLine::argv(["rm"]),
            working_dir: Some("/".into()),
            reason: "not allowed".into(),
            rule: None,
        },
        AuditEvent::JobAction {
            job_id: "j-1".to_owned(),
            action: "cancel".to_owned(),
        },
        AuditEvent::SessionOpened {
            transport: Transport::Sse,
        },
        AuditEvent::SessionClosed {
            transport: Transport::StreamableHttp,
        },
        AuditEvent::TokenRevoked {
            reason: RevokeReason::Replaced,
            ends_work: true,
        },
        AuditEvent::EndedByRevocation {
            ended: EndedWork::Job,
            id: "job_1".to_owned(),
            reason: RevokeReason::Expired,
        },
        AuditEvent::OrphanKilled {
            pid: 4242,
            uid: Some(65534),
            reason: OrphanReason::WrongUser,
            command_id: Some("c-1".to_owned()),
        },
        AuditEvent::OrphanKilled {
            pid: 4243,
            uid: None,
            reason: OrphanReason::NoCommandId,
            command_id: None,
        },
        AuditEvent::ConfigReloaded {
            config_file: Some("/etc/hostmcp/hostmcp.toml".to_owned()),
            tokens: Some(3),
            allow_rules: 2,
            deny_rules: 1,
            tls_reloaded: false,
        },
        AuditEvent::ConfigReloadRefused {
            config_file: None,
            reason: "policy.allow[0].program: \"git\" is not an absolute path".to_owned(),
        },
        AuditEvent::ApprovalRequested {
            approval_id: "ap-1".to_owned(),
            command: CommandLine::argv(["systemctl", "restart", "nginx"]),
            program: "/usr/bin/systemctl".into(),
            working_dir: None,
            run_as: Some("root".to_owned()),
            rule: "allow[0]".to_owned(),
            reason: Some("restarts a service".into()),
            timeout_secs: 300,
            stdin: None,
        },
        AuditEvent::ApprovalRequested {
            approval_id: "ap-2".to_owned(),
            command: CommandLine::argv(["tee", "/etc/cron.d/x"]),
            program: "/usr/bin/tee".into(),
            working_dir: None,
            run_as: Some("root".to_owned()),
            rule: "allow[1]".to_owned(),
            reason: None,
            timeout_secs: 300,
            stdin: Some(AuditStdin {
                bytes: 25,
                sha256: "0f".repeat(32),
            }),
        },
        AuditEvent::ApprovalDecided {
            approval_id: "ap-1".to_owned(),
            decision: "approved".to_owned(),
            via: "page".to_owned(),
            decider: "boss".into(),
        },
        AuditEvent::ApprovalRefused {
            approval_id: "ap-1".to_owned(),
            reason: "this token is not an approver".into(),
        },
        AuditEvent::FleetCall {
            hosts: vec!["web1".to_owned(), "db1".to_owned()],
            hosts_total: 2,
            outcome: "ok 1, offline 1".to_owned(),
            duration_ms: 12,
        },
    ];
    for mut event in events {
        event.settle_env(false);
        let kind = event.kind();
        let record = AuditRecord::new(7, "t".to_owned(), context(), event, GENESIS_PREV.to_owned());
        let line = serde_json::to_string(&record).unwrap();
        let back: AuditRecord =
            serde_json::from_str(&line).unwrap_or_else(|error| panic!("{kind}: {error} in {line}"));
        assert_eq!(back, record, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], kind);
        assert_eq!(value["tool"], "run_command", "{line}");
    }
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds() {
    let at = |millis: u64| format_timestamp(UNIX_EPOCH + Duration::from_millis(millis));
    assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(at(4_102_444_800_007), "2100-01-01T00:00:00.007Z");
    // The last millisecond of a year, and the first of the next.
    assert_eq!(at(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    assert_eq!(at(1_798_761_600_000), "2027-01-01T00:00:00.000Z");
    assert_eq!(
        format_timestamp(UNIX_EPOCH - Duration::from_millis(1_000)),
        "1969-12-31T23:59:59.000Z"
    );
    assert_eq!(
        format_timestamp(UNIX_EPOCH - Duration::from_millis(2_208_988_800_001)),
        "1899-12-31T23:59:59.999Z"
    );
    // Before 1970, milliseconds are truncated toward 1970, as they always were.
    assert_eq!(
        format_timestamp(UNIX_EPOCH - Duration::from_micros(500)),
        "1970-01-01T00:00:00.000Z"
    );
    assert_eq!(
        format_timestamp(UNIX_EPOCH - Duration::from_micros(1_500)),
        "1969-12-31T23:59:59.999Z"
    );
    // Past jiff's range (it ends a few hours before 10000-01-01 UTC): its last instant.
    assert_eq!(
        format_timestamp(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
        "9999-12-30T22:00:00.999Z"
    );
}
