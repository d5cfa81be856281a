//! Tests of the command pipeline: both launches alike, the rule on record, the limits.

use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    audit::{AuditLog, AuditOptions},
    auth::{Role, TokenDigest, TokenEntry, TokenSet},
    config::CommandLimits,
    exec::BaseEnv,
    policy::{PolicyConfig, resolve_policy},
    tools::{ToolSettings, ToolsState},
};

/// Operators may run `true` and nothing else; one command at a time each.
fn state(audit: AuditLog) -> std::sync::Arc<ToolsState> {
    let config: PolicyConfig = toml::from_str(
        r#"
        [[allow]]
        program = "/usr/bin/true"
        "#,
    )
    .unwrap();
    let settings = ToolSettings {
        limits: CommandLimits {
            max_concurrent_per_principal: 1,
            ..CommandLimits::default()
        },
        policy: resolve_policy(Some(config), &|_| Ok(())).unwrap(),
        // The server's own user: a server running as root needs one named.
        run_as: crate::exec::run_as::current_user_name(),
        ..ToolSettings::default()
    };
    let shutdown = CancellationToken::new();
    ToolsState::new(settings, BaseEnv::from_server_env(), audit, &shutdown)
}

fn operator() -> Principal {
    let entry = TokenEntry::new("alice", TokenDigest::of_token("secret"), Role::Operator);
    TokenSet::new(vec![entry]).authenticate("secret").unwrap()
}

fn asked(argv: &[&str]) -> ToolCommand {
    ToolCommand {
        command: CommandLine::Argv(argv.iter().map(|arg| (*arg).to_owned()).collect()),
        working_dir: None,
        env: Vec::new(),
        stdin: None,
        timeout: Duration::from_secs(5),
    }
}

/// The records of kind `event` in the log at `path`.
fn records(path: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["event"] == event)
        .collect()
}

fn open_log(dir: &tempfile::TempDir) -> (AuditLog, std::path::PathBuf) {
    let path = dir.path().join("audit.jsonl");
    (
        AuditLog::open(&path, AuditOptions::default()).unwrap(),
        path,
    )
}

#[tokio::test]
async fn both_launches_refuse_a_denied_command_alike_and_record_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (audit, path) = open_log(&dir);
    let state = state(audit);
    let mut texts = Vec::new();
    for launch in [Launch::Wait, Launch::Job] {
        let refusal = admit(
            &state,
            &operator(),
            AuditContext::new(),
            asked(&["/usr/bin/false"]),
            launch,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(refusal, Refusal::Denied(_)), "{refusal:?}");
        assert_eq!(refusal.rule(), "default");
        texts.push(refusal.to_string());
    }
    assert_eq!(texts[0], texts[1]);
    assert!(texts[0].starts_with("denied by default"), "{}", texts[0]);
    let refused = records(&path, "command_refused");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|record| record["rule"] == "default"));
    assert!(records(&path, "command_started").is_empty());
}

#[tokio::test]
async fn an_allowed_command_is_admitted_with_its_rule_and_program_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let (audit, path) = open_log(&dir);
    let state = state(audit);
    let wait = admit(
        &state,
        &operator(),
        AuditContext::new(),
        asked(&["/usr/bin/true"]),
        Launch::Wait,
        None,
    )
    .await
    .unwrap();
    assert_eq!(wait.job_id, None);
    drop(wait);
    let job = admit(
        &state,
        &operator(),
        AuditContext::new(),
        asked(&["/usr/bin/true"]),
        Launch::Job,
        None,
    )
    .await
    .unwrap();
    let job_id = job.job_id.expect("a job launch has a job id");
    let started = records(&path, "command_started");
    assert_eq!(started.len(), 2, "{started:?}");
    let program = std::fs::canonicalize("/usr/bin/true").unwrap();
    for record in &started {
        assert_eq!(record["rule"], "allow[0]");
        assert_eq!(record["program"], program.to_string_lossy().as_ref());
    }
    assert_eq!(started[0]["job_id"], Value::Null);
    assert_eq!(started[1]["job_id"], job_id.as_str());
    assert!(records(&path, "command_refused").is_empty());
}

#[tokio::test]
async fn a_second_command_past_the_limit_is_refused_before_its_start_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (audit, path) = open_log(&dir);
    let state = state(audit);
    let command = || asked(&["/usr/bin/true"]);
    let first = admit(
        &state,
        &operator(),
        AuditContext::new(),
        command(),
        Launch::Job,
        None,
    )
    .await
    .unwrap();
    let busy = admit(
        &state,
        &operator(),
        AuditContext::new(),
        command(),
        Launch::Wait,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(busy, Refusal::Busy(_)), "{busy:?}");
    assert_eq!(busy.rule(), "limits");
    assert!(busy.to_string().contains("your maximum of 1"), "{busy}");
    assert_eq!(records(&path, "command_started").len(), 1);
    // Near miss: once the first gives its slot back, the same command is admitted.
    drop(first);
    admit(
        &state,
        &operator(),
        AuditContext::new(),
        command(),
        Launch::Wait,
        None,
    )
    .await
    .unwrap();
    assert_eq!(records(&path, "command_started").len(), 2);
}

#[test]
fn exactly_one_of_command_and_argv_is_a_request() {
    let timeouts = (Duration::from_secs(30), Duration::from_secs(60));
    let parse = |json: Value| request(json.as_object().cloned(), "run_command", timeouts);
    let argv = parse(serde_json::json!({"argv": ["ls", "-l"], "timeout_secs": 600})).unwrap();
    assert_eq!(
        argv.command,
        CommandLine::Argv(vec!["ls".to_owned(), "-l".to_owned()])
    );
    assert_eq!(argv.timeout, Duration::from_secs(60), "capped at the max");
    let shell = parse(serde_json::json!({"command": "ls | wc"})).unwrap();
    assert_eq!(shell.command, CommandLine::Shell("ls | wc".to_owned()));
    assert_eq!(shell.timeout, Duration::from_secs(30));
    let both = parse(serde_json::json!({"command": "ls", "argv": ["ls"]})).unwrap_err();
    assert!(both.message.contains("not both"), "{both:?}");
    let neither = parse(serde_json::json!({})).unwrap_err();
    assert!(neither.message.contains("give `command`"), "{neither:?}");
}
