//! Tests of process groups, supervision and the group kill.

use std::time::Duration;

use nix::sys::signal::kill;
use nix::unistd::getpgrp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::test_support::{
    eventually, exists, is_running, limits, pids, run_ok, run_with, sh,
};
use super::super::{BaseEnv, ExecLimits, OutputEvent, PIPE_DRAIN_LIMIT, run};

const GONE_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test]
async fn command_leads_its_own_process_group() {
    // Field 5 of /proc/PID/stat is the process group id.
    let out = run_ok(sh("echo $$ $(cut -d' ' -f5 /proc/$$/stat)")).await;
    let [pid, pgid] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    assert_eq!(pgid, pid, "the shell leads its group");
    assert_ne!(pgid, getpgrp().as_raw(), "not the server's group");
}

#[tokio::test]
async fn finished_command_is_reaped() {
    let out = run_ok(sh("echo $$")).await;
    let [pid] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    assert!(!exists(pid), "process {pid} left as a zombie");
}

#[tokio::test]
async fn timeout_terminates_the_whole_group() {
    let mut spec = sh("sleep 100 & echo $!; sleep 100");
    spec.timeout = Duration::from_millis(300);
    let out = run_with(spec, &limits(1024, Duration::from_secs(5))).await;
    assert!(out.timed_out && !out.cancelled);
    assert_eq!(
        (out.exit_code, out.signal),
        (None, Some(15)),
        "TERM was enough"
    );
    assert!(
        out.duration >= Duration::from_millis(300),
        "{:?}",
        out.duration
    );
    assert!(
        out.duration < Duration::from_secs(5),
        "waited the whole grace: {:?}",
        out.duration
    );
    let [grandchild] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    assert!(
        eventually(GONE_WITHIN, || !is_running(grandchild)).await,
        "{grandchild} survived"
    );
}

#[tokio::test]
async fn command_ignoring_term_is_killed_after_the_grace() {
    // An ignored signal stays ignored across fork and exec, so both sleeps ignore TERM.
    let mut spec = sh("trap '' TERM; sleep 100 & echo $!; sleep 100");
    spec.timeout = Duration::from_millis(200);
    let out = run_with(spec, &limits(1024, Duration::from_millis(500))).await;
    assert!(out.timed_out);
    assert_eq!((out.exit_code, out.signal), (None, Some(9)));
    assert!(
        out.duration >= Duration::from_millis(700),
        "grace skipped: {:?}",
        out.duration
    );
    assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
    let [grandchild] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    assert!(
        eventually(GONE_WITHIN, || !is_running(grandchild)).await,
        "{grandchild} survived"
    );
}

#[tokio::test]
async fn cancel_terminates_the_whole_group() {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let spec = sh("sleep 100 & echo $!; sleep 100");
    let out = run(
        spec,
        &ExecLimits::default(),
        &BaseEnv::from_server_env(),
        cancel,
        None,
    )
    .await
    .expect("runs");
    assert!(out.cancelled && !out.timed_out);
    assert_eq!((out.exit_code, out.signal), (None, Some(15)));
    assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
    let [grandchild] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    assert!(
        eventually(GONE_WITHIN, || !is_running(grandchild)).await,
        "{grandchild} survived"
    );
}

#[tokio::test]
async fn background_job_dies_with_its_leader_and_does_not_hold_the_call() {
    let out = run_ok(sh("sleep 1000 & echo $!; echo started")).await;
    assert_eq!(out.exit_code, Some(0));
    assert!(out.stdout.to_text().ends_with("started\n"), "{out:?}");
    // Faster than the pipe drain limit: the job was killed, not waited out.
    assert!(out.duration < PIPE_DRAIN_LIMIT, "{:?}", out.duration);
    let [sleeper] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    assert!(
        eventually(GONE_WITHIN, || !is_running(sleeper)).await,
        "{sleeper} survived"
    );
}

#[tokio::test]
async fn daemon_outside_the_group_holding_the_pipe_cannot_hang_the_call() {
    // Wait until the daemon leads its own session (field 6 of stat) before exiting, so
    // the group kill cannot reach it and only the drain limit ends the call.
    let script = "setsid sleep 30 & d=$!; \
        until [ \"$(cut -d' ' -f6 /proc/$d/stat)\" = \"$d\" ]; do sleep 0.01; done; echo $d";
    let out = run_ok(sh(script)).await;
    let [daemon] = pids(&out.stdout.to_text())[..] else {
        panic!("{out:?}")
    };
    let daemon_was_running = is_running(daemon);
    kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
    assert!(
        daemon_was_running,
        "the daemon should be out of reach of the group kill"
    );
    assert_eq!(out.exit_code, Some(0));
    assert!(out.duration >= PIPE_DRAIN_LIMIT, "{:?}", out.duration);
    assert!(
        out.duration < PIPE_DRAIN_LIMIT + Duration::from_secs(2),
        "{:?}",
        out.duration
    );
}

#[tokio::test]
async fn dropping_the_call_kills_the_group() {
    let (tx, mut rx) = mpsc::channel(16);
    let spec = sh("sleep 100 & echo $$ $!; sleep 100");
    let (limits, base_env) = (ExecLimits::default(), BaseEnv::from_server_env());
    let call = run(
        spec,
        &limits,
        &base_env,
        CancellationToken::new(),
        Some(std::sync::Arc::new(tx)),
    );
    // Give up on the call as soon as it has printed its pids (the caller went away).
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::pin!(call);
        tokio::select! {
            _ = &mut call => panic!("the command finished on its own"),
            event = rx.recv() => event,
        }
    })
    .await
    .expect("pids printed");
    let Some(OutputEvent::Stdout(line)) = first else {
        panic!("{first:?}")
    };
    let [leader, grandchild] = pids(&String::from_utf8_lossy(&line))[..] else {
        panic!("{line:?}")
    };
    assert!(
        eventually(GONE_WITHIN, || !exists(leader)).await,
        "leader {leader} not reaped"
    );
    assert!(
        eventually(GONE_WITHIN, || !is_running(grandchild)).await,
        "{grandchild} survived"
    );
}
