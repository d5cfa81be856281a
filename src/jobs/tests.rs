//! Background jobs: paging, isolation between principals, signals, timeouts, limits,
//! revocation.

use std::time::Duration;

use super::*;
use crate::exec::slots::{CommandSlots, SlotLimits};

fn registry() -> Arc<JobRegistry> {
    JobRegistry::new(
        JobLimits::default(),
        BaseEnv::from_server_env(),
        CancellationToken::new(),
        AuditLog::disabled(),
    )
}

fn slot() -> CommandSlot {
    CommandSlots::new(SlotLimits {
        max_total: 100,
        max_per_principal: 100,
    })
    .try_acquire("t")
    .unwrap()
}

/// Start `spec` for `owner` with a fresh id, a slot of its own and no end hook.
fn start(
    registry: &Arc<JobRegistry>,
    owner: &str,
    spec: CommandSpec,
) -> Result<JobSummary, JobError> {
    registry.start(
        JobRegistry::new_id().unwrap(),
        owner,
        Lease::forever(),
        "test".into(),
        spec,
        slot(),
        no_hook(),
    )
}

fn no_hook() -> OnJobEnd {
    Box::new(|_| Box::pin(async {}))
}

fn shell(command: &str, timeout: Duration) -> CommandSpec {
    CommandSpec::shell_for_test(command, timeout)
}

async fn wait_done(registry: &JobRegistry, owner: &str, id: &str) -> JobRead {
    for _ in 0..200 {
        let read = registry
            .read(owner, id, (0, 0), 1 << 20, Duration::ZERO)
            .await
            .unwrap();
        if read.state != JobState::Running {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn a_job_runs_in_the_background_and_its_output_pages_without_gaps() {
    let registry = registry();
    let job = start(
        &registry,
        "alice",
        shell("seq 1 2000", Duration::from_secs(10)),
    )
    .unwrap();
    let done = wait_done(&registry, "alice", &job.job_id).await;
    assert_eq!(done.state, JobState::Exited { exit_code: 0 });
    let mut cursor = 0;
    let mut collected = String::new();
    loop {
        let page = registry
            .read("alice", &job.job_id, (cursor, 0), 1000, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(page.stdout_skipped, 0);
        if page.stdout.is_empty() {
            break;
        }
        collected.push_str(&page.stdout);
        cursor = page.stdout_cursor;
    }
    let expected: String = (1..=2000).map(|n| format!("{n}\n")).collect();
    assert_eq!(collected, expected);
}

#[tokio::test]
async fn another_principal_cannot_see_or_touch_a_job() {
    let registry = registry();
    let job = start(
        &registry,
        "alice",
        shell("sleep 30", Duration::from_secs(60)),
    )
    .unwrap();
    let not_found = JobError::NotFound(job.job_id.clone());
    assert_eq!(
        registry
            .read("bob", &job.job_id, (0, 0), 10, Duration::ZERO)
            .await
            .unwrap_err(),
        not_found
    );
    assert_eq!(registry.kill("bob", &job.job_id).unwrap_err(), not_found);
    assert_eq!(
        registry
            .signal("bob", &job.job_id, Signal::SIGKILL)
            .unwrap_err(),
        not_found
    );
    assert!(registry.list("bob").is_empty());
    assert_eq!(registry.list("alice").len(), 1);
    registry.kill("alice", &job.job_id).unwrap();
    assert_eq!(
        wait_done(&registry, "alice", &job.job_id).await.state,
        JobState::Cancelled
    );
}

#[tokio::test]
async fn a_signal_reaches_the_whole_group() {
    let registry = registry();
    let job = start(
        &registry,
        "alice",
        shell(
            "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.05; done",
            Duration::from_secs(30),
        ),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    registry
        .signal("alice", &job.job_id, parse_signal("usr1").unwrap())
        .unwrap();
    let done = wait_done(&registry, "alice", &job.job_id).await;
    assert_eq!(done.state, JobState::Exited { exit_code: 7 });
    assert_eq!(done.stdout, "got-usr1\n");
    assert_eq!(
        registry
            .signal("alice", &job.job_id, Signal::SIGTERM)
            .unwrap_err(),
        JobError::NotRunning(job.job_id.clone())
    );
}

#[tokio::test]
async fn a_job_ends_at_its_timeout() {
    let registry = registry();
    let job = start(
        &registry,
        "alice",
        shell("sleep 30", Duration::from_millis(300)),
    )
    .unwrap();
    assert_eq!(
        wait_done(&registry, "alice", &job.job_id).await.state,
        JobState::TimedOut
    );
}

#[tokio::test]
async fn shutdown_kills_every_job() {
    let shutdown = CancellationToken::new();
    let registry = JobRegistry::new(
        JobLimits::default(),
        BaseEnv::from_server_env(),
        shutdown.clone(),
        AuditLog::disabled(),
    );
    let job = start(&registry, "a", shell("sleep 30", Duration::from_secs(60))).unwrap();
    shutdown.cancel();
    assert_eq!(
        wait_done(&registry, "a", &job.job_id).await.state,
        JobState::Cancelled
    );
    assert_eq!(registry.running(), 0);
}

#[tokio::test]
async fn the_per_principal_job_limit_holds() {
    let limits = JobLimits {
        max_per_principal: 2,
        ..JobLimits::default()
    };
    let registry = JobRegistry::new(
        limits,
        BaseEnv::from_server_env(),
        CancellationToken::new(),
        AuditLog::disabled(),
    );
    for _ in 0..2 {
        start(&registry, "a", shell("sleep 5", Duration::from_secs(10))).unwrap();
    }
    assert_eq!(
        start(&registry, "a", shell("true", Duration::from_secs(10))).unwrap_err(),
        JobError::TooMany(2)
    );
    assert!(start(&registry, "b", shell("true", Duration::from_secs(10))).is_ok());
}

#[tokio::test]
async fn a_waiting_read_returns_when_output_arrives() {
    let registry = registry();
    let job = start(
        &registry,
        "a",
        shell("sleep 0.3; echo late; sleep 5", Duration::from_secs(10)),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let read = registry
        .read("a", &job.job_id, (0, 0), 100, Duration::from_secs(4))
        .await
        .unwrap();
    assert_eq!(read.stdout, "late\n");
    assert!(started.elapsed() < Duration::from_secs(3));
    registry.kill("a", &job.job_id).unwrap();
}

#[tokio::test]
async fn a_revoked_tokens_job_is_killed_on_record_and_another_tokens_job_runs_on() {
    use crate::auth::{
        OnRevoke, Role, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator,
        revocation::Revoker,
    };
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&audit_path, crate::audit::AuditOptions::default()).unwrap();
    let entry = |name: &str| TokenEntry::new(name, TokenDigest::of_token(name), Role::Operator);
    let auth = Authenticator::tokens(TokenSet::new(vec![entry("gone"), entry("kept")]));
    let login = |secret: &str| {
        let header = axum::http::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap();
        auth.authenticate(Some(&header)).unwrap()
    };
    let (gone, kept) = (login("gone"), login("kept"));
    let registry = JobRegistry::new(
        JobLimits::default(),
        BaseEnv::from_server_env(),
        CancellationToken::new(),
        audit.clone(),
    );
    let run = |principal: &crate::auth::Principal| {
        registry
            .start(
                JobRegistry::new_id().unwrap(),
                principal.name(),
                principal.lease().clone(),
                "sleep".into(),
                shell("sleep 300", Duration::from_secs(600)),
                slot(),
                no_hook(),
            )
            .unwrap()
            .job_id
    };
    let (gone_job, kept_job) = (run(&gone), run(&kept));
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![entry("kept")]))
        .unwrap();
    Revoker::new(OnRevoke::Kill, audit.clone())
        .enforce(revoked)
        .await;
    let read = wait_done(&registry, "gone", &gone_job).await;
    assert_eq!(read.state, JobState::Cancelled);
    let kept_read = registry
        .read("kept", &kept_job, (0, 0), 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(kept_read.state, JobState::Running, "the near miss runs on");
    let lines = std::fs::read_to_string(&audit_path).unwrap();
    let killed: Vec<serde_json::Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|record: &serde_json::Value| record["event"] == "ended_by_revocation")
        .collect();
    assert_eq!(killed.len(), 1, "{lines}");
    assert_eq!(
        (
            &killed[0]["ended"],
            &killed[0]["id"],
            &killed[0]["principal"]
        ),
        (
            &serde_json::json!("job"),
            &serde_json::json!(gone_job),
            &serde_json::json!("gone")
        )
    );
    registry.kill("kept", &kept_job).unwrap();
}

#[tokio::test]
async fn under_finish_a_revoked_tokens_job_runs_to_its_end() {
    use crate::auth::{
        OnRevoke, Role, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator,
        revocation::Revoker,
    };
    let auth = Authenticator::tokens(TokenSet::new(vec![TokenEntry::new(
        "t",
        TokenDigest::of_token("t"),
        Role::Operator,
    )]));
    let header = axum::http::HeaderValue::from_static("Bearer t");
    let principal = auth.authenticate(Some(&header)).unwrap();
    let registry = registry();
    let job = registry
        .start(
            JobRegistry::new_id().unwrap(),
            "t",
            principal.lease().clone(),
            "sleep".into(),
            shell("sleep 0.5; echo finished", Duration::from_secs(30)),
            slot(),
            no_hook(),
        )
        .unwrap();
    let revoked = auth.replace_tokens(TokenSet::new(Vec::new())).unwrap();
    Revoker::new(OnRevoke::Finish, AuditLog::disabled())
        .enforce(revoked)
        .await;
    let read = wait_done(&registry, "t", &job.job_id).await;
    assert_eq!(read.state, JobState::Exited { exit_code: 0 });
    assert_eq!(read.stdout, "finished\n");
}

#[test]
fn signal_names_parse_in_every_spelling_but_only_from_the_list() {
    assert_eq!(parse_signal("TERM"), Some(Signal::SIGTERM));
    assert_eq!(parse_signal("sigkill"), Some(Signal::SIGKILL));
    assert_eq!(parse_signal("SEGV"), None);
}
