//! Bounded caller text: huge arguments are kept as head, length and hash, small ones whole,
//! and a record stays under its budget.

use super::*;

fn huge_refusal(argument: String) -> AuditEvent {
    AuditEvent::CommandRefused {
        command: CommandLine::argv(["/bin/echo".to_owned(), argument.clone()]),
        working_dir: Some(argument.clone().into()),
        reason: format!("denied: argument {argument:?} is not allowed").into(),
        rule: Some("default".to_owned()),
    }
}

#[test]
fn a_record_with_a_4_mb_argument_is_bounded_and_names_its_length_and_hash() {
    let argument = "A".repeat(4 * 1024 * 1024);
    let record = AuditRecord::new(
        1,
        "t".into(),
        context(),
        huge_refusal(argument.clone()),
        "p".into(),
    );
    let line = serde_json::to_vec(&record).unwrap();
    assert!(line.len() < 16 * 1024, "{} bytes", line.len());
    let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(value["argv"][0], "/bin/echo");
    let cut = &value["argv"][1];
    assert_eq!(cut["bytes"], 4 * 1024 * 1024);
    assert_eq!(
        cut["sha256"],
        hex::encode(sha2::Sha256::digest(argument.as_bytes()))
    );
    assert_eq!(
        cut["head"].as_str().unwrap().len(),
        crate::audit::MAX_TEXT_BYTES
    );
    assert_eq!(value["working_dir"]["bytes"], 4 * 1024 * 1024);
    // It reads back as the record it is.
    assert_eq!(parse(&line), record);
}

#[test]
fn a_record_with_a_small_argument_keeps_it_whole() {
    let record = AuditRecord::new(
        1,
        "t".into(),
        context(),
        huge_refusal("abc".into()),
        "p".into(),
    );
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value["argv"], serde_json::json!(["/bin/echo", "abc"]));
    assert_eq!(value["working_dir"], "abc");
    assert_eq!(value["reason"], r#"denied: argument "abc" is not allowed"#);
}

#[test]
fn a_record_with_many_arguments_and_variables_stays_under_64_kib_of_text() {
    let argv: Vec<String> = (0..2000).map(|i| format!("{i}-").repeat(1000)).collect();
    let env: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("V{i}_").repeat(500), format!("{SECRET}-{i}")))
        .collect();
    let event = AuditEvent::CommandStarted {
        command_id: "c-1".to_owned(),
        command: CommandLine::argv(argv),
        rule: "default".to_owned(),
        program: "/usr/bin/true".into(),
        working_dir: None,
        run_as: None,
        env: AuditEnv::new(env),
        timeout_secs: 30,
        job_id: None,
        limits: None,
        confinement: None,
    };
    let mut event = event;
    event.settle_env(true);
    let record = AuditRecord::new(1, "t".into(), context(), event, "p".into());
    let line = serde_json::to_vec(&record).unwrap();
    assert!(
        line.len() <= crate::audit::MAX_RECORD_TEXT_BYTES + 2048,
        "{} bytes",
        line.len()
    );
    let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let argv = value["argv"].as_array().unwrap();
    assert!(argv.last().unwrap()["omitted"].as_u64().unwrap() > 0);
    let env = value["env"].as_array().unwrap();
    let rest = env.last().unwrap();
    assert_eq!(
        rest["omitted"].as_u64().unwrap() as usize,
        2000 - (env.len() - 1),
        "{rest}"
    );
    assert_eq!(parse(&line), record);
}

#[test]
fn the_hash_of_omitted_variables_covers_names_never_redacted_values() {
    let env: Vec<(String, String)> = (0..40)
        .map(|i| (format!("N{i:02}").repeat(1000), SECRET.to_owned()))
        .collect();
    let mut event = with_secret();
    if let AuditEvent::CommandStarted { env: audit_env, .. } = &mut event {
        *audit_env = AuditEnv::new(env.clone());
    }
    event.settle_env(false);
    let record = AuditRecord::new(1, "t".into(), context(), event, "p".into());
    let value = serde_json::to_value(&record).unwrap();
    let entries = value["env"].as_array().unwrap();
    let kept = entries.len() - 1;
    let mut names = sha2::Sha256::new();
    for (name, _) in &env[kept..] {
        names.update(name.as_bytes());
        names.update([0]);
    }
    assert_eq!(entries[kept]["sha256"], hex::encode(names.finalize()));
    assert!(!value.to_string().contains(SECRET));
}
