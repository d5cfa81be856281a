//! Fleet calls end to end on one host, without NATS: a signed request runs through the
//! local tool pipeline; each near miss is refused and has its allowed twin.

use std::time::Duration;

use super::*;
use crate::{
    auth::Role,
    exec::BaseEnv,
    fleet::protocol::{SignedKind, new_nonce, sign},
    tools::{ToolSettings, ToolsState},
};

struct Fixture {
    calls: Arc<Calls>,
    gateway: nkeys::KeyPair,
}

fn fixture(principals: &[(&str, Role)], default_role: Option<Role>) -> Fixture {
    let gateway = nkeys::KeyPair::new_account();
    let trust = FleetTrust::new(
        vec![gateway.public_key().parse().unwrap()],
        principals
            .iter()
            .map(|(name, role)| ((*name).to_owned(), *role))
            .collect(),
        default_role,
    );
    let state = ToolsState::new(
        ToolSettings {
            run_as: crate::exec::run_as::current_user_name(),
            ..ToolSettings::default()
        },
        BaseEnv::from_server_env(),
        AuditLog::disabled(),
        &CancellationToken::new(),
    );
    let calls = Calls::new(
        "web-1".parse().unwrap(),
        trust,
        HostTools::new(state),
        AuditLog::disabled(),
    );
    Fixture {
        calls: Arc::new(calls),
        gateway,
    }
}

fn call_request(gateway: &nkeys::KeyPair, tool: &str, arguments: serde_json::Value) -> CallRequest {
    let now = protocol::now_ms();
    CallRequest {
        id: new_nonce(),
        host: "web-1".parse().unwrap(),
        tool: tool.to_owned(),
        arguments: arguments.as_object().cloned(),
        principal: "alice".to_owned(),
        role: "admin".to_owned(),
        gateway: gateway.public_key(),
        issued_at_ms: now,
        expires_at_ms: now + 30_000,
        deadline_ms: None,
        nonce: new_nonce(),
        progress: false,
    }
}

fn sealed(
    key: &nkeys::KeyPair,
    request: &impl serde::Serialize,
    kind: SignedKind,
) -> (Vec<u8>, Signature) {
    let payload = serde_json::to_vec(request).unwrap();
    let signature = sign(kind, &payload, key).unwrap();
    (payload, signature)
}

async fn serve(calls: &Arc<Calls>, payload: &[u8], signature: Option<Signature>) -> Vec<Reply> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    calls
        .clone()
        .serve(bytes::Bytes::copy_from_slice(payload), signature, sender)
        .await;
    let mut replies = Vec::new();
    while let Ok(reply) = receiver.try_recv() {
        replies.push(reply);
    }
    replies
}

fn final_of(replies: &[Reply]) -> &FinalReply {
    match replies.last() {
        Some(Reply::Final(reply)) => reply,
        other => panic!("no final reply: {other:?}"),
    }
}

fn refusal_of(replies: &[Reply]) -> ErrorKind {
    match &final_of(replies).outcome {
        Outcome::Error { error, .. } => *error,
        Outcome::Ok { result } => panic!("not refused: {result}"),
    }
}

fn ok_text(replies: &[Reply]) -> String {
    match &final_of(replies).outcome {
        Outcome::Ok { result } => result.to_string(),
        Outcome::Error { error, message } => panic!("refused: {error}: {message}"),
    }
}

#[tokio::test]
async fn a_signed_call_from_a_trusted_gateway_runs_the_tool() {
    let f = fixture(&[("alice", Role::Read)], None);
    let request = call_request(&f.gateway, "host_info", serde_json::json!({}));
    let (payload, signature) = sealed(&f.gateway, &request, SignedKind::Call);
    let replies = serve(&f.calls, &payload, Some(signature)).await;
    assert_eq!(final_of(&replies).id, request.id);
    let text = ok_text(&replies);
    assert!(text.contains("kernel"), "{text}");
}

#[tokio::test]
async fn unsigned_and_untrusted_requests_never_run() {
    let f = fixture(&[("alice", Role::Read)], None);
    let request = call_request(&f.gateway, "host_info", serde_json::json!({}));
    let (payload, _) = sealed(&f.gateway, &request, SignedKind::Call);
    assert_eq!(
        refusal_of(&serve(&f.calls, &payload, None).await),
        ErrorKind::Unsigned
    );
    // Signed correctly, by a key the host does not trust.
    let stranger = nkeys::KeyPair::new_account();
    let foreign = call_request(&stranger, "host_info", serde_json::json!({}));
    let (payload, signature) = sealed(&stranger, &foreign, SignedKind::Call);
    let replies = serve(&f.calls, &payload, Some(signature)).await;
    assert_eq!(refusal_of(&replies), ErrorKind::NotTrusted);
    assert_eq!(
        final_of(&replies).id,
        foreign.id,
        "the refusal names the request"
    );
}

#[tokio::test]
async fn a_replayed_request_is_refused_after_its_first_run() {
    let f = fixture(&[("alice", Role::Read)], None);
    let request = call_request(&f.gateway, "host_info", serde_json::json!({}));
    let (payload, signature) = sealed(&f.gateway, &request, SignedKind::Call);
    ok_text(&serve(&f.calls, &payload, Some(signature.clone())).await);
    assert_eq!(
        refusal_of(&serve(&f.calls, &payload, Some(signature)).await),
        ErrorKind::Replayed
    );
}

#[tokio::test]
async fn an_unmapped_principal_is_denied_and_a_mapped_one_is_capped_at_its_role() {
    let f = fixture(&[("alice", Role::Read)], None);
    let mut request = call_request(&f.gateway, "host_info", serde_json::json!({}));
    request.principal = "mallory".to_owned();
    let (payload, signature) = sealed(&f.gateway, &request, SignedKind::Call);
    assert_eq!(
        refusal_of(&serve(&f.calls, &payload, Some(signature)).await),
        ErrorKind::Denied
    );
    // alice is mapped to read: run_command (operator) is refused by the local role gate.
    let request = call_request(
        &f.gateway,
        "run_command",
        serde_json::json!({"command": "true"}),
    );
    let (payload, signature) = sealed(&f.gateway, &request, SignedKind::Call);
    let text = ok_text(&serve(&f.calls, &payload, Some(signature)).await);
    assert!(
        text.contains("denied") && text.contains("operator"),
        "{text}"
    );
}

#[tokio::test]
async fn an_operator_runs_a_command_and_a_cancel_ends_it() {
    let f = fixture(&[("alice", Role::Operator)], None);
    let request = call_request(
        &f.gateway,
        "run_command",
        serde_json::json!({"command": "echo fleet-ok"}),
    );
    let (payload, signature) = sealed(&f.gateway, &request, SignedKind::Call);
    let text = ok_text(&serve(&f.calls, &payload, Some(signature)).await);
    assert!(text.contains("fleet-ok"), "{text}");

    let long = call_request(
        &f.gateway,
        "run_command",
        serde_json::json!({"command": "sleep 30", "timeout_secs": 60}),
    );
    let (payload, signature) = sealed(&f.gateway, &long, SignedKind::Call);
    let calls = f.calls.clone();
    let running = tokio::spawn(async move { serve(&calls, &payload, Some(signature)).await });
    for _ in 0..200 {
        if f.calls.running() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let now = protocol::now_ms();
    let cancel = CancelRequest {
        id: long.id.clone(),
        host: "web-1".parse().unwrap(),
        gateway: f.gateway.public_key(),
        issued_at_ms: now,
        expires_at_ms: now + 30_000,
        nonce: new_nonce(),
    };
    // A cancel signed by a key the host does not trust ends nothing.
    let stranger = nkeys::KeyPair::new_account();
    let forged = CancelRequest {
        gateway: stranger.public_key(),
        ..cancel.clone()
    };
    let (payload, signature) = sealed(&stranger, &forged, SignedKind::Cancel);
    let answer = f.calls.cancel(&payload, Some(signature)).await;
    assert!(matches!(
        answer.outcome,
        Outcome::Error {
            error: ErrorKind::NotTrusted,
            ..
        }
    ));
    assert_eq!(f.calls.running(), 1);
    let (payload, signature) = sealed(&f.gateway, &cancel, SignedKind::Cancel);
    let answer = f.calls.cancel(&payload, Some(signature)).await;
    assert_eq!(
        answer.outcome,
        Outcome::Ok {
            result: serde_json::json!({"cancelled": true})
        }
    );
    let replies = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the cancelled call ends")
        .unwrap();
    assert_eq!(refusal_of(&replies), ErrorKind::Cancelled);
    assert_eq!(f.calls.running(), 0);
}

#[tokio::test]
async fn a_call_past_its_deadline_is_ended() {
    let f = fixture(&[("alice", Role::Operator)], None);
    let mut request = call_request(
        &f.gateway,
        "run_command",
        serde_json::json!({"command": "sleep 30", "timeout_secs": 60}),
    );
    request.deadline_ms = Some(protocol::now_ms() + 300);
    let (payload, signature) = sealed(&f.gateway, &request, SignedKind::Call);
    let replies = tokio::time::timeout(
        Duration::from_secs(20),
        serve(&f.calls, &payload, Some(signature)),
    )
    .await
    .expect("the deadline ends the call");
    assert_eq!(refusal_of(&replies), ErrorKind::Timeout);
}
