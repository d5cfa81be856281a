//! Helpers shared by the tests of the exec engine and its submodules.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{BaseEnv, CommandSpec, ExecLimits, ExecOutcome, run};

/// A shell command with a timeout that no test should reach.
pub(crate) fn sh(script: &str) -> CommandSpec {
    CommandSpec::shell_for_test(script, Duration::from_secs(30))
}

pub(crate) fn limits(max_output_bytes: usize, kill_grace: Duration) -> ExecLimits {
    ExecLimits {
        max_output_bytes,
        kill_grace,
    }
}

/// Runs `spec` with default limits, the server's base environment, no cancel, no observer.
pub(crate) async fn run_ok(spec: CommandSpec) -> ExecOutcome {
    run_with(spec, &ExecLimits::default()).await
}

pub(crate) async fn run_with(spec: CommandSpec, limits: &ExecLimits) -> ExecOutcome {
    run(
        spec,
        limits,
        &BaseEnv::from_server_env(),
        CancellationToken::new(),
        None,
    )
    .await
    .expect("command starts")
}

/// The whitespace-separated numbers on the first line of `text`.
pub(crate) fn pids(text: &str) -> Vec<i32> {
    let line = text.lines().next().unwrap_or_default();
    line.split_whitespace()
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("not a pid: {p:?} in {text:?}"))
        })
        .collect()
}

/// `/proc/<pid>` exists: the process runs or is a zombie nobody reaped yet.
pub(crate) fn exists(pid: i32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

/// The process exists and is not a zombie (a dead grandchild is reaped by init, which
/// the test does not control).
pub(crate) fn is_running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Polls `gone` until it holds or `within` passes.
pub(crate) async fn eventually(within: Duration, gone: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if gone() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gone()
}

/// A fresh, empty directory under the system temp dir.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hostmcp-exec-{}-{n}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
