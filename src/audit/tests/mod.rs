//! Tests of the audit log: the line format, redaction, the chain across reopens and under
//! concurrency, group commit, write failures, and what `verify` reports for each kind of
//! tampering. Each tampering test has an untampered twin, and each assertion reads the file,
//! the report or the writer's count of syncs.
//!
//! One file per topic; this one holds only the helpers they share.

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

mod bounded;
mod chain;
mod failures;
mod format;
mod group_commit;
mod keyed;
mod no_file;
mod redaction;
mod rotation;
mod verify;

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
        limits: None,
        confinement: None,
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
        limit_hit: None,
        peak_memory_bytes: None,
        cpu_time_ms: None,
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

/// An environment value that must never reach a line unless redaction is off.
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
        limits: None,
        confinement: None,
    }
}

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
