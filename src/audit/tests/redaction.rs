//! Redaction: an environment value never reaches the file unless redaction is turned off,
//! and an unsettled one neither prints nor serializes.

use super::*;

#[tokio::test]
async fn an_env_value_never_appears_in_the_written_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), with_secret()).await.unwrap();

    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(&SECRET[..8]), "{text}");
    assert!(!text.contains("fast"), "{text}");
    assert!(
        text.contains(r#"{"name":"API_KEY","value":"[redacted]"}"#),
        "{text}"
    );
    let record = parse(text.trim_end().as_bytes());
    let AuditEvent::CommandStarted { env, .. } = record.event else {
        panic!("{text}");
    };
    let names: Vec<String> = env.iter().map(|var| var.name().to_string()).collect();
    assert_eq!(names, ["API_KEY", "MODE"]);
    assert!(env.iter().all(|var| var.disclosed_value().is_none()));
}

#[tokio::test]
async fn env_values_are_written_when_redaction_is_turned_off() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let options = AuditOptions {
        redact_env_values: false,
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, options).unwrap();
    log.record(context(), with_secret()).await.unwrap();

    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!(r#"{{"name":"API_KEY","value":"{SECRET}"}}"#)),
        "{text}"
    );
    assert!(!text.contains(REDACTED), "{text}");
}

#[test]
fn an_unsettled_env_value_does_not_print_or_serialize() {
    let event = with_secret();
    assert!(!format!("{event:?}").contains(SECRET));
    assert!(!serde_json::to_string(&event).unwrap().contains(SECRET));
    let AuditEvent::CommandStarted { env, .. } = &event else {
        unreachable!()
    };
    assert_eq!(env.to_string(), "API_KEY=[redacted] MODE=[redacted]");
}
