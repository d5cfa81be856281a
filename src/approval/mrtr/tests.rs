//! The sealed `requestState` opens only unaltered, for the token and the call it was made
//! for, before it expires; the two rounds decide one broker entry, once, and the first
//! decision wins. Each refusal has its near miss (the same state, opened rightly, works).

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::{
    approval::ApprovalSettings,
    audit::{AuditLog, AuditOptions},
    command::CommandLine,
};

fn sealer() -> StateSealer {
    StateSealer::random().expect("a key")
}

fn sealed(deadline: SystemTime) -> Sealed {
    Sealed {
        approval_id: "ap-0123456789abcdef".to_owned(),
        principal: "alice".to_owned(),
        call: call_digest("run_command", Some(&args(&["touch", "/tmp/x"]))),
        deadline_ms: unix_ms(deadline),
        issued_ms: unix_ms(SystemTime::now()),
    }
}

fn args(argv: &[&str]) -> rmcp::model::JsonObject {
    json!({ "argv": argv }).as_object().unwrap().clone()
}

fn in_five_minutes() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

#[test]
fn a_sealed_state_opens_for_its_token_and_call() {
    let sealer = sealer();
    let made = sealed(in_five_minutes());
    let state = sealer.seal(&made).unwrap();
    assert_eq!(sealer.open(&state, "alice", &made.call), Ok(made));
}

#[test]
fn an_altered_state_is_refused_and_the_unaltered_one_opens() {
    let sealer = sealer();
    let made = sealed(in_five_minutes());
    let state = sealer.seal(&made).unwrap();
    // Flip one character of the signed body, then of the tag.
    for at in [10, state.len() - 2] {
        let mut bytes = state.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            sealer.open(&altered, "alice", &made.call),
            Err(StateRefused::Unreadable),
            "{altered}"
        );
    }
    assert!(sealer.open("", "alice", &made.call).is_err());
    assert!(sealer.open("not a state", "alice", &made.call).is_err());
    assert!(sealer.open(&state, "alice", &made.call).is_ok());
}

#[test]
fn a_state_sealed_by_another_key_is_refused() {
    let made = sealed(in_five_minutes());
    let foreign = sealer().seal(&made).unwrap();
    let ours = sealer();
    assert_eq!(
        ours.open(&foreign, "alice", &made.call),
        Err(StateRefused::Unreadable)
    );
    let own = ours.seal(&made).unwrap();
    assert!(ours.open(&own, "alice", &made.call).is_ok());
}

#[test]
fn a_state_of_another_token_is_refused() {
    let sealer = sealer();
    let made = sealed(in_five_minutes());
    let state = sealer.seal(&made).unwrap();
    assert_eq!(
        sealer.open(&state, "bob", &made.call),
        Err(StateRefused::OtherToken {
            id: made.approval_id.clone()
        })
    );
    assert!(sealer.open(&state, "alice", &made.call).is_ok());
}

#[test]
fn a_state_replayed_for_other_arguments_or_another_tool_is_refused() {
    let sealer = sealer();
    let made = sealed(in_five_minutes());
    let state = sealer.seal(&made).unwrap();
    let id = made.approval_id;
    for other in [
        call_digest("run_command", Some(&args(&["touch", "/tmp/y"]))),
        call_digest("job_start", Some(&args(&["touch", "/tmp/x"]))),
        call_digest("run_command", None),
    ] {
        assert_eq!(
            sealer.open(&state, "alice", &other),
            Err(StateRefused::OtherCall { id: id.clone() })
        );
    }
    let same = call_digest("run_command", Some(&args(&["touch", "/tmp/x"])));
    assert!(sealer.open(&state, "alice", &same).is_ok());
}

#[test]
fn the_call_digest_ignores_key_order_and_sees_every_value() {
    let one = json!({"argv": ["ls"], "env": {"A": "1", "B": "2"}});
    let two = json!({"env": {"B": "2", "A": "1"}, "argv": ["ls"]});
    let digest = |value: &serde_json::Value| call_digest("run_command", value.as_object());
    assert_eq!(digest(&one), digest(&two));
    let three = json!({"env": {"B": "2", "A": "1 "}, "argv": ["ls"]});
    assert_ne!(digest(&one), digest(&three));
}

#[test]
fn an_expired_state_is_refused_and_one_within_its_grace_opens() {
    let sealer = sealer();
    let past = sealed(SystemTime::now() - GRACE - Duration::from_secs(1));
    let state = sealer.seal(&past).unwrap();
    assert_eq!(
        sealer.open(&state, "alice", &past.call),
        Err(StateRefused::Expired)
    );
    let just = sealed(SystemTime::now() - GRACE + Duration::from_secs(30));
    let state = sealer.seal(&just).unwrap();
    assert!(sealer.open(&state, "alice", &just.call).is_ok());
}

// The two rounds against a real broker and audit log.

struct Setup {
    approvals: Arc<Approvals>,
    audit: AuditLog,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

fn setup(timeout: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let approvals = Approvals::new();
    approvals.configure(ApprovalSettings {
        timeout,
        ..ApprovalSettings::default()
    });
    Setup {
        approvals,
        audit,
        _dir: dir,
        path,
    }
}

impl Setup {
    async fn events(&self) -> Vec<serde_json::Value> {
        // Records are written by the log's writer task: wait until it has caught up.
        for _ in 0..200 {
            if self.audit.queue_depth() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    async fn call(&self, round: &Round) -> Result<Decided, NotApproved> {
        self.call_as("alice", round).await
    }

    async fn call_as(&self, principal: &str, round: &Round) -> Result<Decided, NotApproved> {
        obtain(
            &self.approvals,
            &self.audit,
            &AuditContext::new(),
            draft(principal),
            round,
        )
        .await
    }
}

fn draft(principal: &str) -> Draft {
    Draft {
        principal: principal.to_owned(),
        command: CommandLine::Argv(vec!["touch".into(), "/tmp/x".into()]),
        program: "/usr/bin/touch".to_owned(),
        working_dir: None,
        run_as: None,
        rule: "allow[0]".to_owned(),
        reason: None,
        tool: Some("run_command".to_owned()),
        stdin: None,
    }
}

fn first(argv: &[&str]) -> Round {
    Round {
        call: call_digest("run_command", Some(&args(argv))),
        request_state: None,
        input_responses: None,
        reply: Arc::default(),
    }
}

/// The retry of `asked` (which answered `input_required`) with `answer` to the form.
fn retry_of(asked: &Round, answer: Option<serde_json::Value>) -> Round {
    let reply = asked.reply().expect("input_required");
    Round {
        call: asked.call.clone(),
        request_state: reply.request_state,
        input_responses: answer.map(|answer| [(INPUT_KEY.to_owned(), answer)].into()),
        reply: Arc::default(),
    }
}

fn approve() -> Option<serde_json::Value> {
    Some(json!({"action": "accept", "content": {"approve": true}}))
}

fn asked_id(result: Result<Decided, NotApproved>) -> String {
    match result {
        Err(NotApproved::InputRequired { id }) => id,
        other => panic!("expected input_required, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_round_asks_with_the_form_and_the_approving_retry_runs_once() {
    let setup = setup(Duration::from_secs(300));
    let round = first(&["touch", "/tmp/x"]);
    let id = asked_id(setup.call(&round).await);
    let reply = round.reply().unwrap();
    let requests = reply.input_requests.as_ref().unwrap();
    let form = serde_json::to_value(&requests[INPUT_KEY]).unwrap();
    assert_eq!(form["method"], "elicitation/create");
    assert!(
        form["params"]["message"]
            .as_str()
            .unwrap()
            .contains("program: /usr/bin/touch")
    );
    assert_eq!(
        form["params"]["requestedSchema"]["properties"]["approve"]["type"],
        "boolean"
    );
    assert_eq!(
        setup.approvals.broker.list().len(),
        1,
        "pending in the broker"
    );

    let retry = retry_of(&round, approve());
    let decided = setup.call(&retry).await.expect("approved");
    assert_eq!(decided.decider.via, Via::Elicitation);
    assert_eq!(decided.decider.who, "client-elicitation:alice");
    let events = setup.events().await;
    let decided: Vec<_> = events
        .iter()
        .filter(|event| event["event"] == "approval_decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["approval_id"], id.as_str());
    assert_eq!(decided[0]["via"], "elicitation");
    // Replayed: the decision was used.
    let again = setup.call(&retry_of(&round, approve())).await;
    assert!(
        matches!(again, Err(NotApproved::State(StateRefused::Spent { .. }))),
        "{again:?}"
    );
    assert_eq!(setup.approvals.rounds.parked(), 0);
}

#[tokio::test]
async fn a_declining_or_false_answer_denies() {
    for answer in [
        json!({"action": "decline"}),
        json!({"action": "cancel"}),
        json!({"action": "accept", "content": {"approve": false}}),
        json!({"action": "accept", "content": {"approve": "true"}}),
    ] {
        let setup = setup(Duration::from_secs(300));
        let round = first(&["touch", "/tmp/x"]);
        asked_id(setup.call(&round).await);
        let result = setup.call(&retry_of(&round, Some(answer.clone()))).await;
        assert!(
            matches!(&result, Err(NotApproved::Denied { decider, .. }) if decider == "client-elicitation:alice"),
            "{answer}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_retry_without_answers_is_asked_again_for_the_same_approval() {
    let setup = setup(Duration::from_secs(300));
    let round = first(&["touch", "/tmp/x"]);
    let id = asked_id(setup.call(&round).await);
    let again = retry_of(&round, None);
    assert_eq!(asked_id(setup.call(&again).await), id);
    assert_eq!(setup.approvals.broker.list().len(), 1, "no second approval");
    assert!(setup.call(&retry_of(&again, approve())).await.is_ok());
}

#[tokio::test]
async fn another_path_deciding_between_the_rounds_wins() {
    let setup = setup(Duration::from_secs(300));
    for (verdict, answer) in [
        (Verdict::Approved, None),
        (Verdict::Approved, Some(json!({"action": "decline"}))),
        (Verdict::Denied, approve()),
    ] {
        let round = first(&["touch", "/tmp/x"]);
        let id = asked_id(setup.call(&round).await);
        let page = Decided {
            verdict,
            decider: Decider {
                via: Via::Page,
                who: "boss".to_owned(),
            },
        };
        setup.approvals.broker.decide(&id, page).unwrap();
        let result = setup.call(&retry_of(&round, answer)).await;
        match verdict {
            Verdict::Approved => assert_eq!(result.unwrap().decider.via, Via::Page),
            _ => assert!(
                matches!(&result, Err(NotApproved::Denied { decider, .. }) if decider == "boss"),
                "{result:?}"
            ),
        }
    }
}

#[tokio::test]
async fn a_timed_out_approval_answers_as_timed_out() {
    let setup = setup(Duration::from_millis(200));
    let round = first(&["touch", "/tmp/x"]);
    asked_id(setup.call(&round).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let result = setup.call(&retry_of(&round, approve())).await;
    assert!(
        matches!(result, Err(NotApproved::TimedOut { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_retry_by_another_token_or_for_other_arguments_is_refused_on_record() {
    let setup = setup(Duration::from_secs(300));
    let round = first(&["touch", "/tmp/x"]);
    let id = asked_id(setup.call(&round).await);
    let result = setup.call_as("bob", &retry_of(&round, approve())).await;
    assert!(
        matches!(
            result,
            Err(NotApproved::State(StateRefused::OtherToken { .. }))
        ),
        "{result:?}"
    );
    let mut other = retry_of(&round, approve());
    other.call = first(&["touch", "/tmp/y"]).call;
    let result = setup.call(&other).await;
    assert!(
        matches!(
            result,
            Err(NotApproved::State(StateRefused::OtherCall { .. }))
        ),
        "{result:?}"
    );
    let refused = setup
        .events()
        .await
        .into_iter()
        .filter(|event| event["event"] == "approval_refused" && event["approval_id"] == id.as_str())
        .count();
    assert_eq!(refused, 2);
    // Neither decided it: the right retry still approves.
    assert_eq!(setup.approvals.broker.list().len(), 1);
    assert!(setup.call(&retry_of(&round, approve())).await.is_ok());
}
