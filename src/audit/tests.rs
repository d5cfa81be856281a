//! Tests of the audit log: the line format, redaction, the chain across reopens and under
//! concurrency, group commit, write failures, and what `verify` reports for each kind of
//! tampering. Each tampering test has an untampered twin, and each assertion reads the file,
//! the report or the writer's count of syncs.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::*;

mod keyed;
mod rotation;

// ---- helpers ----------------------------------------------------------------------------

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "hostmcp-audit-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn context() -> AuditContext {
    AuditContext::new()
        .with_principal("alice")
        .with_client("10.0.0.5:51234")
        .with_session("s-1")
        .with_tool("run_command")
}

fn started(command_id: &str) -> AuditEvent {
    AuditEvent::CommandStarted {
        command_id: command_id.to_owned(),
        command: CommandLine::argv(["ls", "-l"]),
        rule: "allow[0]".to_owned(),
        program: "/usr/bin/ls".into(),
        working_dir: Some("/srv/app".into()),
        run_as: Some("deploy".to_owned()),
        env: AuditEnv::new([("LANG", "C.UTF-8")]),
        timeout_secs: 30,
        job_id: None,
    }
}

fn finished(command_id: &str) -> AuditEvent {
    AuditEvent::CommandFinished {
        command_id: command_id.to_owned(),
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        cancelled: false,
        duration_ms: 12,
        stdout_bytes: 300,
        stderr_bytes: 0,
    }
}

/// A log of `count` lines with command ids `c-1`, `c-2`, ...
async fn write_log(path: &Path, count: u64) {
    let log = AuditLog::open(path, AuditOptions::default()).unwrap();
    for n in 1..=count {
        log.record(context(), started(&format!("c-{n}")))
            .await
            .unwrap();
    }
}

/// The file's lines without their newlines. Panics unless the file ends with a newline.
fn read_lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "file ends mid-line"
    );
    bytes
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    fs::write(path, bytes).unwrap();
}

fn parse(line: &[u8]) -> AuditRecord {
    serde_json::from_slice(line).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn replace(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(line.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replacen(from, to, 1).into_bytes()
}

fn problem(report: &VerifyReport) -> (u64, ProblemKind) {
    let problem = report.problem.clone().expect("a problem");
    (problem.line, problem.kind)
}

// ---- the line format --------------------------------------------------------------------

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

// ---- redaction --------------------------------------------------------------------------

const SECRET: &str = "hunter2-Zq9xW7vB";

fn with_secret() -> AuditEvent {
    AuditEvent::CommandStarted {
        command_id: "c-1".to_owned(),
        command: CommandLine::argv(["deploy"]),
        rule: "allow[0]".to_owned(),
        program: "/usr/local/bin/deploy".into(),
        working_dir: None,
        run_as: None,
        env: AuditEnv::new([("API_KEY", SECRET), ("MODE", "fast")]),
        timeout_secs: 30,
        job_id: Some("j-1".to_owned()),
    }
}

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

// ---- the file and its chain -------------------------------------------------------------

#[tokio::test]
async fn the_chain_continues_across_a_reopen() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 2).await;
    {
        let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
        log.record(context(), finished("c-1")).await.unwrap();
        let refused = AuditEvent::AuthFailed {
            reason: "invalid token".into(),
        };
        log.record(AuditContext::new(), refused).await.unwrap();
    }

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 4);
    let seqs: Vec<u64> = lines.iter().map(|line| parse(line).seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(parse(&lines[0]).prev, GENESIS_PREV);
    for pair in lines.windows(2) {
        assert_eq!(parse(&pair[1]).prev, sha256_hex(&pair[0]));
    }
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.lines, 4);
    assert_eq!(
        report.last,
        Some(Anchor {
            seq: 4,
            hash: sha256_hex(&lines[3])
        })
    );
}

#[tokio::test]
async fn opening_refuses_to_continue_after_an_incomplete_last_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 2).await;
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(
        matches!(error, AuditError::IncompleteTail { .. }),
        "{error}"
    );
    assert_eq!(fs::read(&path).unwrap(), &bytes[..bytes.len() - 10]);
}

#[tokio::test]
async fn opening_refuses_to_continue_after_a_last_line_that_is_not_a_record() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 1).await;
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"not json\n").unwrap();

    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::BadTail { .. }), "{error}");
}

#[tokio::test]
async fn a_second_writer_on_the_same_file_is_refused_while_the_first_is_open() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let first = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::Locked { .. }), "{error}");
    drop(first);
    assert!(AuditLog::open(&path, AuditOptions::default()).is_ok());
}

#[test]
fn a_new_log_is_created_with_mode_0600() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let _log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[test]
fn concurrent_records_from_many_tasks_form_one_valid_chain() {
    const THREADS: usize = 8;
    const TASKS: usize = 25;
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();

    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|task| {
                            let log = log.clone();
                            // Long argv so a torn or interleaved write would show.
                            let mut event = started(&format!("c-{thread}-{task}"));
                            if let AuditEvent::CommandStarted { command, .. } = &mut event {
                                *command = CommandLine::shell("x".repeat(3000 + task));
                            }
                            tokio::spawn(async move { log.record(context(), event).await })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap().unwrap();
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let lines = read_lines(&path);
    assert_eq!(lines.len(), THREADS * TASKS);
    let records: Vec<AuditRecord> = lines.iter().map(|line| parse(line)).collect();
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=(THREADS * TASKS) as u64).collect::<Vec<_>>());
    let ids: BTreeSet<String> = records
        .iter()
        .map(|record| match &record.event {
            AuditEvent::CommandStarted { command_id, .. } => command_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: BTreeSet<String> = (0..THREADS)
        .flat_map(|thread| (0..TASKS).map(move |task| format!("c-{thread}-{task}")))
        .collect();
    assert_eq!(ids, expected);
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[tokio::test]
async fn a_record_whose_caller_stops_waiting_is_still_written_and_chained() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    {
        let mut abandoned = Box::pin(log.record(context(), started("c-abandoned")));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(abandoned.as_mut().poll(&mut cx).is_pending());
    }
    log.record(context(), started("c-next")).await.unwrap();

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    assert!(String::from_utf8_lossy(&lines[0]).contains("c-abandoned"));
    assert!(String::from_utf8_lossy(&lines[1]).contains("c-next"));
    assert!(verify(&path).unwrap().is_intact());
}

// ---- group commit -----------------------------------------------------------------------

/// Spawn one task per command id, each recording `started(id)`, and return once all of
/// the records wait in the writer's queue (the writer must be held).
async fn queue_records(
    log: &AuditLog,
    ids: impl IntoIterator<Item = String>,
) -> Vec<tokio::task::JoinHandle<Result<(), AuditError>>> {
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let log = log.clone();
            tokio::spawn(async move { log.record(context(), started(&id)).await })
        })
        .collect();
    let all_queued = async {
        while log.queued_for_test() < tasks.len() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all_queued)
        .await
        .expect("the records reach the queue");
    tasks
}

#[tokio::test]
async fn records_waiting_together_are_written_with_one_sync() {
    const RECORDS: usize = 100;
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), started("c-0")).await.unwrap();
    assert_eq!(log.data_syncs_for_test().await, 1);

    let release = log.hold_writer_for_test().await;
    let tasks = queue_records(&log, (1..=RECORDS).map(|n| format!("c-{n}"))).await;
    drop(release);
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    assert_eq!(log.data_syncs_for_test().await, 2);
    let lines = read_lines(&path);
    assert_eq!(lines.len(), RECORDS + 1);
    let records: Vec<AuditRecord> = lines.iter().map(|line| parse(line)).collect();
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=RECORDS as u64 + 1).collect::<Vec<_>>());
    let ids: BTreeSet<String> = records[1..]
        .iter()
        .map(|record| match &record.event {
            AuditEvent::CommandStarted { command_id, .. } => command_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, (1..=RECORDS).map(|n| format!("c-{n}")).collect());
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn records_awaited_one_after_another_each_get_their_own_sync() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    for n in 1..=3u64 {
        log.record(context(), started(&format!("c-{n}")))
            .await
            .unwrap();
        assert_eq!(log.data_syncs_for_test().await, n);
        assert_eq!(read_lines(&path).len() as u64, n);
    }
    assert!(verify(&path).unwrap().is_intact());
}

// ---- failures ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_write_is_an_error_and_does_not_advance_the_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), started("c-1")).await.unwrap();
    let before = fs::read(&path).unwrap();

    log.replace_file_for_test(File::open(&path).unwrap()).await;
    let error = log.record(context(), started("c-lost")).await.unwrap_err();
    assert!(matches!(error, AuditError::Write { .. }), "{error}");
    assert_eq!(fs::read(&path).unwrap(), before);

    let writable = OpenOptions::new().append(true).open(&path).unwrap();
    log.replace_file_for_test(writable).await;
    log.record(context(), started("c-2")).await.unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    assert_eq!(parse(&lines[1]).seq, 2);
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn a_failed_batch_fails_every_record_in_it_and_does_not_advance_the_chain() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.record(context(), started("c-1")).await.unwrap();
    let before = fs::read(&path).unwrap();

    log.replace_file_for_test(File::open(&path).unwrap()).await;
    let release = log.hold_writer_for_test().await;
    let tasks = queue_records(&log, (1..=5).map(|n| format!("c-lost-{n}"))).await;
    drop(release);
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert!(matches!(error, AuditError::Write { .. }), "{error}");
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(log.data_syncs_for_test().await, 1);

    let writable = OpenOptions::new().append(true).open(&path).unwrap();
    log.replace_file_for_test(writable).await;
    log.record(context(), started("c-2")).await.unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 2);
    assert_eq!(parse(&lines[1]).seq, 2);
    assert_eq!(parse(&lines[1]).prev, sha256_hex(&lines[0]));
    assert!(verify(&path).unwrap().is_intact());
}

#[tokio::test]
async fn opening_fails_when_the_file_was_replaced_by_a_directory() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 1).await;
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();

    let error = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::Open { .. }), "{error}");
}

#[test]
fn opening_fails_in_a_directory_that_cannot_be_written() {
    // /proc refuses new files even to root, unlike a chmod 0500 directory.
    for path in ["/proc/hostmcp-audit-test.log", "/nonexistent-dir/audit.log"] {
        let error = AuditLog::open(path, AuditOptions::default()).unwrap_err();
        assert!(matches!(error, AuditError::Open { .. }), "{path}: {error}");
        assert!(!error.hint().is_empty());
    }
}

#[test]
fn opening_refuses_something_that_is_not_a_regular_file() {
    let error = AuditLog::open("/dev/null", AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::NotAFile { .. }), "{error}");
}

// ---- no file: tracing -------------------------------------------------------------------

type CapturedEvent = (tracing::Level, String, Vec<(String, String)>);

/// A subscriber that keeps every event's level, target and fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<CapturedEvent>>>);

struct Fields(Vec<(String, String)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let metadata = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*metadata.level(), metadata.target().to_owned(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn without_a_file_records_become_structured_tracing_events_without_secrets() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let log = AuditLog::disabled();
    assert_eq!(log.path(), None);
    log.record(context(), with_secret()).await.unwrap();

    let events = capture.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    let (level, target, fields) = &events[0];
    assert_eq!(*level, tracing::Level::INFO);
    assert_eq!(target, "hostmcp::audit");
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("event"), Some("command_started"));
    assert_eq!(field("principal"), Some("alice"));
    assert_eq!(field("command_id"), Some("c-1"));
    assert_eq!(field("job_id"), Some("j-1"));
    assert_eq!(field("env"), Some("API_KEY=[redacted] MODE=[redacted]"));
    assert_eq!(field("message"), None);
    assert!(
        fields.iter().all(|(_, value)| !value.contains(SECRET)),
        "{fields:?}"
    );
}

// ---- verify -----------------------------------------------------------------------------

#[test]
fn an_empty_file_verifies_as_intact() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    File::create(&path).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(
        report,
        VerifyReport {
            lines: 0,
            problem_file: None,
            continues_after: None,
            problem: None,
            last: None,
            genesis_time: None,
            last_time: None,
            anchored: Vec::new(),
        }
    );
}

#[test]
fn a_missing_file_is_an_error_not_a_report() {
    let error = verify("/nonexistent-dir/audit.log").unwrap_err();
    assert!(matches!(error, AuditError::Read { .. }), "{error}");
}

#[tokio::test]
async fn an_edited_line_is_reported_at_its_own_line_number() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    assert!(verify(&path).unwrap().is_intact());

    let mut lines = read_lines(&path);
    lines[2] = replace(&lines[2], r#""command_id":"c-3""#, r#""command_id":"c-9""#);
    write_lines(&path, &lines);
    assert_eq!(problem(&verify(&path).unwrap()), (3, ProblemKind::Edited));
}

#[tokio::test]
async fn an_edited_first_line_is_reported_at_line_1() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let mut lines = read_lines(&path);
    lines[0] = replace(&lines[0], r#""principal":"alice""#, r#""principal":"bob""#);
    write_lines(&path, &lines);
    assert_eq!(problem(&verify(&path).unwrap()), (1, ProblemKind::Edited));
}

#[tokio::test]
async fn an_edited_seq_is_reported_at_its_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    lines[2] = replace(&lines[2], r#""seq":3,"#, r#""seq":7,"#);
    write_lines(&path, &lines);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            3,
            ProblemKind::WrongSeq {
                expected: 3,
                found: 7
            }
        )
    );
}

#[tokio::test]
async fn a_deleted_middle_line_is_reported_as_missing_where_it_was() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    lines.remove(2);
    write_lines(&path, &lines);
    let report = verify(&path).unwrap();
    assert_eq!(
        problem(&report),
        (
            3,
            ProblemKind::Missing {
                expected: 3,
                found: 4
            }
        )
    );
    assert_eq!(report.lines, 4);
    assert_eq!(report.last, None);
}

#[tokio::test]
async fn a_stretch_cut_from_the_middle_is_reported() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 6).await;
    let lines = read_lines(&path);

    // Whole lines 2 to 4 gone.
    let mut whole = lines.clone();
    whole.drain(1..4);
    write_lines(&path, &whole);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            2,
            ProblemKind::Missing {
                expected: 2,
                found: 5
            }
        )
    );

    // From inside line 2 to inside line 4. Lines 2 and 4 have the same layout, so a cut at
    // the same offset in both leaves a well-formed line that belongs to no chain; any other
    // cut leaves a malformed one.
    let bytes: Vec<u8> = lines
        .iter()
        .flat_map(|line| [line.as_slice(), b"\n"].concat())
        .collect();
    let line_2_start = lines[0].len() + 1;
    let line_4_start = line_2_start + lines[1].len() + 1 + lines[2].len() + 1;
    let offset = lines[1].len() / 2;
    for skew in [0, 7] {
        let cut_from = line_2_start + offset;
        let cut_to = line_4_start + offset + skew;
        fs::write(&path, [&bytes[..cut_from], &bytes[cut_to..]].concat()).unwrap();
        let (line, kind) = problem(&verify(&path).unwrap());
        assert_eq!(line, 2, "skew {skew}: {kind:?}");
        if skew == 0 {
            assert_eq!(kind, ProblemKind::Edited);
        } else {
            assert!(matches!(kind, ProblemKind::Malformed { .. }), "{kind:?}");
        }
    }
}

#[tokio::test]
async fn an_edited_prev_is_blamed_on_its_own_line() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    let prev = parse(&lines[2]).prev;
    lines[2] = replace(&lines[2], &prev, &sha256_hex(b"forged"));
    write_lines(&path, &lines);
    assert_eq!(problem(&verify(&path).unwrap()), (3, ProblemKind::Edited));
}

#[tokio::test]
async fn reordered_lines_are_reported_as_out_of_order() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let mut lines = read_lines(&path);
    lines.swap(2, 3);
    write_lines(&path, &lines);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            3,
            ProblemKind::OutOfOrder {
                expected: 3,
                found: 4
            }
        )
    );
}

#[tokio::test]
async fn a_duplicated_line_is_reported_as_out_of_order() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 4).await;
    let mut lines = read_lines(&path);
    lines.insert(2, lines[1].clone());
    write_lines(&path, &lines);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (
            3,
            ProblemKind::OutOfOrder {
                expected: 3,
                found: 2
            }
        )
    );
}

#[tokio::test]
async fn removed_first_lines_are_reported_as_a_bad_start() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 4).await;
    let lines = read_lines(&path);
    write_lines(&path, &lines[2..]);
    assert_eq!(
        problem(&verify(&path).unwrap()),
        (1, ProblemKind::BadStart { seq: 3 })
    );
}

#[tokio::test]
async fn a_tail_cut_inside_a_line_is_reported_as_incomplete() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(problem(&report), (3, ProblemKind::Incomplete));
    assert_eq!(report.lines, 3);
}

#[tokio::test]
async fn a_tail_cut_at_a_line_end_needs_the_anchor_to_be_seen() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 5).await;
    let anchor = verify(&path).unwrap().last.unwrap();
    assert_eq!(anchor.seq, 5);
    assert!(
        verify_with_anchor(&path, Some(&anchor))
            .unwrap()
            .is_intact()
    );

    let lines = read_lines(&path);
    write_lines(&path, &lines[..3]);
    // The chain alone cannot tell: the shorter file is a valid chain.
    assert!(verify(&path).unwrap().is_intact());
    assert_eq!(
        problem(&verify_with_anchor(&path, Some(&anchor)).unwrap()),
        (
            4,
            ProblemKind::TailTruncated {
                anchor_seq: 5,
                last_seq: Some(3)
            }
        )
    );
}

#[tokio::test]
async fn an_edited_last_line_needs_the_anchor_to_be_seen() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let anchor: Anchor = verify(&path)
        .unwrap()
        .last
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    assert!(
        verify_with_anchor(&path, Some(&anchor))
            .unwrap()
            .is_intact()
    );

    let mut lines = read_lines(&path);
    lines[2] = replace(&lines[2], r#""command_id":"c-3""#, r#""command_id":"c-9""#);
    write_lines(&path, &lines);
    assert!(verify(&path).unwrap().is_intact());
    assert_eq!(
        problem(&verify_with_anchor(&path, Some(&anchor)).unwrap()),
        (3, ProblemKind::AnchorMismatch { seq: 3 })
    );
}

#[test]
fn anchors_parse_only_as_seq_colon_hash() {
    let hash = "ab".repeat(32);
    let anchor: Anchor = format!("12:{}", hash.to_uppercase()).parse().unwrap();
    assert_eq!(
        anchor,
        Anchor {
            seq: 12,
            hash: hash.clone()
        }
    );
    assert_eq!(anchor.to_string(), format!("12:{hash}"));
    for bad in [
        hash.clone(),
        format!("x:{hash}"),
        format!("12:{}", &hash[1..]),
        format!("12:{}zz", &hash[2..]),
        format!("-1:{hash}"),
    ] {
        assert_eq!(bad.parse::<Anchor>(), Err(BadAnchor), "{bad}");
    }
}

#[tokio::test]
async fn reports_read_as_sentences() {
    let dir = TempDir::new();
    let path = dir.join("audit.log");
    write_log(&path, 3).await;
    let intact = verify(&path).unwrap().to_string();
    assert!(
        intact.starts_with("intact: 3 records; anchor 3:"),
        "{intact}"
    );
    let mut lines = read_lines(&path);
    lines.remove(1);
    write_lines(&path, &lines);
    let broken = verify(&path).unwrap().to_string();
    assert_eq!(
        broken,
        "broken: 1 record(s) missing before line 2 (seq 2 to 2): lines were deleted or a \
         stretch of the file was cut out"
    );
}

// ---- bounded caller text ----------------------------------------------------------------

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
