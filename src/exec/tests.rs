//! Tests of the exec engine: environment, program, working dir, status, stdin, output.

use std::{io, sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::test_support::{limits, run_ok, run_with, scratch_dir, sh};
use super::*;

fn argv(args: &[&str]) -> CommandSpec {
    let argv = args.iter().map(|a| a.to_string()).collect();
    CommandSpec::for_test(argv, Duration::from_secs(30))
}

async fn run_env(spec: CommandSpec, base_env: &BaseEnv) -> Result<ExecOutcome, ExecError> {
    run(
        spec,
        &ExecLimits::default(),
        base_env,
        CancellationToken::new(),
        None,
    )
    .await
}

/// The lines of `env` output, sorted, without the reaper's marker (checked on its own).
fn sorted_lines(text: &str) -> Vec<String> {
    let marker = format!("{}=", reaper::COMMAND_ID_VAR);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with(&marker))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

// --- environment ---

#[tokio::test]
async fn each_command_carries_its_own_reaper_marker() {
    let first = run_env(argv(&["/usr/bin/env"]), &BaseEnv::default())
        .await
        .unwrap();
    let second = run_env(argv(&["/usr/bin/env"]), &BaseEnv::default())
        .await
        .unwrap();
    let marker = |text: String| {
        text.lines()
            .find(|line| line.starts_with(reaper::COMMAND_ID_VAR))
            .map(str::to_owned)
            .expect("marker present")
    };
    assert_ne!(
        marker(first.stdout.to_text()),
        marker(second.stdout.to_text())
    );
}

#[tokio::test]
async fn child_env_is_exactly_base_env_then_spec_env() {
    let base = BaseEnv::default().with("A", "base").with("KEEP", "k");
    let mut spec = argv(&["/usr/bin/env"]);
    spec.env = vec![("B".into(), "2".into()), ("A".into(), "spec".into())];
    let out = run_env(spec, &base).await.expect("env runs");
    // Nothing of the test process's own environment (CARGO_*, HOME, ...) shows up.
    assert_eq!(
        sorted_lines(&out.stdout.to_text()),
        ["A=spec", "B=2", "KEEP=k"]
    );
}

#[tokio::test]
async fn server_secret_is_not_inherited_but_allowlisted_vars_are() {
    let server_env = |name: &str| match name {
        "HOSTMCP_TOKEN" => Some("s3cret-token".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("s3cret-key".to_owned()),
        "HOME" => Some("/home/op".to_owned()),
        "PATH" => Some("/usr/bin:/bin".to_owned()),
        _ => None,
    };
    let out = run_env(argv(&["/usr/bin/env"]), &BaseEnv::from_lookup(server_env))
        .await
        .expect("env runs");
    let text = out.stdout.to_text();
    assert!(!text.contains("s3cret"), "secret leaked: {text}");
    assert_eq!(
        sorted_lines(&text),
        ["HOME=/home/op", "PATH=/usr/bin:/bin", "TERM=dumb"]
    );
}

#[test]
fn base_env_from_server_env_holds_only_allowlisted_vars() {
    let env = BaseEnv::from_server_env();
    for (key, _) in env.vars() {
        assert!(
            INHERITED_VARS.contains(&key.as_str()),
            "unexpected variable {key}"
        );
    }
    assert!(env.get("PATH").is_some_and(|p| !p.is_empty()));
}

#[test]
fn base_env_defaults_path_and_term_only_when_missing() {
    let empty = BaseEnv::from_lookup(|_| None);
    assert_eq!(empty.get("PATH"), Some(DEFAULT_PATH));
    assert_eq!(empty.get("TERM"), Some("dumb"));
    assert_eq!(empty.vars().len(), 2);

    let set = BaseEnv::from_lookup(|name| match name {
        "PATH" => Some("/opt/bin".to_owned()),
        "TERM" => Some("xterm".to_owned()),
        _ => None,
    });
    assert_eq!(set.get("PATH"), Some("/opt/bin"));
    assert_eq!(set.get("TERM"), Some("xterm"));

    let empty_path = BaseEnv::from_lookup(|name| (name == "PATH").then(String::new));
    assert_eq!(empty_path.get("PATH"), Some(DEFAULT_PATH));
}

#[test]
fn base_env_with_replaces_an_earlier_value() {
    let env = BaseEnv::default()
        .with("A", "1")
        .with("B", "2")
        .with("A", "3");
    assert_eq!(
        env.vars(),
        [("A".into(), "3".into()), ("B".into(), "2".into())]
    );
}

// --- what to run, and where ---

#[tokio::test]
async fn argv_program_is_found_through_path_without_a_shell() {
    let out = run_ok(argv(&["echo", "$HOME", "a b"])).await;
    assert_eq!(out.stdout.to_text(), "$HOME a b\n");
    assert!(out.is_success());
}

#[tokio::test]
async fn missing_argv_program_is_a_spawn_error_naming_it() {
    let err = run_env(
        argv(&["hostmcp-no-such-program"]),
        &BaseEnv::from_server_env(),
    )
    .await
    .expect_err("cannot start");
    assert!(
        matches!(&err, ExecError::Spawn { program, source }
            if program == "hostmcp-no-such-program" && source.kind() == io::ErrorKind::NotFound),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("`hostmcp-no-such-program`"), "{message}");
    assert!(message.contains("PATH"), "{message}");
}

#[tokio::test]
async fn empty_argv_is_rejected() {
    let err = run_env(argv(&[]), &BaseEnv::from_server_env())
        .await
        .expect_err("empty");
    assert!(matches!(err, ExecError::EmptyArgv), "{err:?}");
}

#[tokio::test]
async fn command_runs_in_its_working_dir() {
    let dir = scratch_dir("cwd");
    let mut spec = sh("pwd");
    spec.working_dir = Some(dir.clone());
    let out = run_ok(spec).await;
    assert_eq!(
        out.stdout.to_text().trim_end(),
        dir.to_str().expect("utf-8 temp dir")
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn missing_working_dir_is_reported_before_spawning() {
    let dir = scratch_dir("gone");
    let marker = dir.join("ran");
    let missing = dir.join("missing");
    let mut spec = sh(&format!("touch {}", marker.display()));
    spec.working_dir = Some(missing.clone());
    let err = run_env(spec, &BaseEnv::from_server_env())
        .await
        .expect_err("no dir");
    assert!(
        matches!(&err, ExecError::WorkingDirNotFound(p) if *p == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!marker.exists(), "the command ran anyway");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn file_as_working_dir_is_not_a_directory() {
    let dir = scratch_dir("file");
    let file = dir.join("plain");
    std::fs::write(&file, b"x").expect("write file");
    let mut spec = sh("true");
    spec.working_dir = Some(file.clone());
    let err = run_env(spec, &BaseEnv::from_server_env())
        .await
        .expect_err("a file");
    assert!(
        matches!(&err, ExecError::WorkingDirNotADirectory(p) if *p == file),
        "{err:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn unusable_working_dir_path_is_reported_with_the_os_reason() {
    let dir = scratch_dir("under-file");
    let file = dir.join("plain");
    std::fs::write(&file, b"x").expect("write file");
    let mut spec = sh("true");
    spec.working_dir = Some(file.join("sub"));
    let err = run_env(spec, &BaseEnv::from_server_env())
        .await
        .expect_err("bad path");
    assert!(
        matches!(&err, ExecError::WorkingDirInaccessible { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("plain/sub cannot be used"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

// --- exit status ---

#[tokio::test]
async fn exit_code_is_reported() {
    let out = run_ok(sh("exit 3")).await;
    assert_eq!((out.exit_code, out.signal), (Some(3), None));
    assert!(!out.is_success());
    assert_eq!(out.describe_status(), "exited with code 3");
}

#[tokio::test]
async fn death_by_signal_is_reported() {
    let out = run_ok(sh("kill -9 $$")).await;
    assert_eq!((out.exit_code, out.signal), (None, Some(9)));
    assert!(!out.timed_out && !out.cancelled);
    assert_eq!(out.describe_status(), "killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn duration_is_measured() {
    let out = run_ok(sh("sleep 0.3")).await;
    assert!(
        out.duration >= Duration::from_millis(300),
        "{:?}",
        out.duration
    );
    assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
}

#[tokio::test]
async fn already_cancelled_call_starts_nothing() {
    let dir = scratch_dir("precancel");
    let marker = dir.join("ran");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let spec = sh(&format!("touch {}", marker.display()));
    let out = run(
        spec,
        &ExecLimits::default(),
        &BaseEnv::from_server_env(),
        cancel,
        None,
    )
    .await
    .expect("not an error");
    assert!(out.cancelled && out.exit_code.is_none());
    assert_eq!(out.describe_status(), "cancelled after 0.0s");
    assert!(!marker.exists(), "the command ran");
    std::fs::remove_dir_all(dir).ok();
}

// --- stdin ---

#[tokio::test]
async fn stdin_bytes_are_written_then_closed() {
    let mut spec = sh("cat; echo end");
    spec.stdin = Some(b"hello\n".to_vec());
    let out = run_ok(spec).await;
    assert_eq!(out.stdout.to_text(), "hello\nend\n");
}

#[tokio::test]
async fn stdin_is_dev_null_when_not_given_and_a_pipe_when_given() {
    let out = run_ok(sh("readlink /proc/self/fd/0")).await;
    assert_eq!(out.stdout.to_text(), "/dev/null\n");

    let mut spec = sh("readlink /proc/self/fd/0");
    spec.stdin = Some(Vec::new());
    let out = run_ok(spec).await;
    assert!(
        out.stdout.to_text().starts_with("pipe:"),
        "{}",
        out.stdout.to_text()
    );
}

#[tokio::test]
async fn large_stdin_is_delivered_whole() {
    let mut spec = sh("wc -c");
    spec.stdin = Some(vec![b'x'; 1_000_000]);
    let out = run_ok(spec).await;
    assert_eq!(out.stdout.to_text().trim(), "1000000");
}

#[tokio::test]
async fn unread_stdin_does_not_hang_the_call() {
    let mut spec = sh("echo ignored");
    spec.stdin = Some(vec![0; 8 * 1024 * 1024]);
    let out = run_ok(spec).await;
    assert_eq!(out.exit_code, Some(0));
    assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
}

// --- output ---

#[tokio::test]
async fn invalid_utf8_output_is_counted_exactly_and_decoded_lossily() {
    let out = run_ok(sh(r"printf '\377\376'")).await;
    assert_eq!(out.stdout.total_bytes(), 2);
    assert_eq!(out.stdout.head(), b"\xff\xfe");
    assert_eq!(out.stdout.to_text(), "\u{FFFD}\u{FFFD}");
}

#[tokio::test]
async fn huge_output_is_bounded_and_counted() {
    let spec = sh("head -c 200000000 /dev/zero; echo done >&2");
    let out = run_with(spec, &limits(64 * 1024, DEFAULT_KILL_GRACE)).await;
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.stdout.total_bytes(), 200_000_000);
    assert!(out.stdout.is_truncated());
    assert_eq!(
        (out.stdout.head().len(), out.stdout.tail().len()),
        (32 * 1024, 32 * 1024)
    );
    assert!(
        out.stdout
            .head()
            .iter()
            .chain(out.stdout.tail())
            .all(|&b| b == 0)
    );
    assert_eq!(out.stderr.to_text(), "done\n");
    assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
}

#[tokio::test]
async fn stdout_and_stderr_are_drained_concurrently() {
    // Each stream overflows a pipe buffer while the other is still being written: a
    // reader that drained one stream at a time would deadlock until the timeout.
    let spec =
        sh("head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero; head -c 1000 /dev/zero >&2");
    let out = run_ok(spec).await;
    assert!(!out.timed_out);
    assert_eq!(out.stdout.total_bytes(), 1_000_000);
    assert_eq!(out.stderr.total_bytes(), 1_001_000);
}

#[tokio::test]
async fn observer_receives_chunks_of_each_stream() {
    let (tx, mut rx) = mpsc::channel(64);
    let spec = sh("printf out; printf err >&2");
    let out = run(
        spec,
        &ExecLimits::default(),
        &BaseEnv::from_server_env(),
        CancellationToken::new(),
        Some(Arc::new(tx)),
    )
    .await
    .expect("runs");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Ok(event) = rx.try_recv() {
        match event {
            OutputEvent::Stdout(bytes) => stdout.extend(bytes),
            OutputEvent::Stderr(bytes) => stderr.extend(bytes),
        }
    }
    assert_eq!(
        (stdout.as_slice(), stderr.as_slice()),
        (&b"out"[..], &b"err"[..])
    );
    assert_eq!(out.stdout.to_text(), "out");
}

#[tokio::test]
async fn full_observer_loses_chunks_but_never_stalls_the_command() {
    let (tx, mut rx) = mpsc::channel(1);
    let spec = sh("head -c 10000000 /dev/zero");
    let out = run(
        spec,
        &ExecLimits::default(),
        &BaseEnv::from_server_env(),
        CancellationToken::new(),
        Some(Arc::new(tx)),
    )
    .await
    .expect("runs");
    assert_eq!(out.stdout.total_bytes(), 10_000_000);
    assert!(matches!(rx.try_recv(), Ok(OutputEvent::Stdout(_))));
    assert!(rx.try_recv().is_err(), "more chunks than the channel holds");
}

// --- messages ---

#[test]
fn status_description_names_timeout_and_signal() {
    let outcome = ExecOutcome {
        exit_code: None,
        signal: Some(15),
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        timed_out: true,
        cancelled: false,
        duration: Duration::from_millis(5040),
        usage: None,
    };
    assert_eq!(
        outcome.describe_status(),
        "timed out; killed by signal 15 (SIGTERM) after 5.0s"
    );
    assert!(!outcome.is_success());
}
