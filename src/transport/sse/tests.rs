//! `/sse` sessions: the table (open, lookup by id, owner, removal, the cap, calls) and a
//! session's life through its stream (closing removes it and ends its calls; revoking
//! its owner's token ends it), each with its near miss.

use std::{sync::Arc, time::Duration};

use axum::{body::Body, http::Request, response::Response};
use futures::StreamExt;
use rmcp::{ServerHandler, model::ClientRequest, model::RequestId};
use tokio_util::sync::CancellationToken;

use super::{
    SseState,
    table::{Route, SseSession, SseSessions},
    wire::Outbound,
};
use crate::{
    audit::AuditLog,
    auth::Principal,
    transport::{
        direct_call::{self, PeerUse},
        test_support::{Tokens, records},
    },
};

#[derive(Clone)]
struct Quiet;
impl ServerHandler for Quiet {}
impl PeerUse for Quiet {
    fn needs_live_peer(&self, _: &ClientRequest) -> bool {
        false
    }
}

fn outbound() -> Outbound {
    futures::channel::mpsc::channel(1).0
}

fn session(owner: &str) -> SseSession {
    SseSession::new(owner, outbound(), CancellationToken::new())
}

fn no_live(
    _: &Outbound,
    _: &CancellationToken,
    _: &rmcp::service::Peer<rmcp::RoleServer>,
) -> super::table::LiveService {
    unreachable!("no request here talks through its peer")
}

#[test]
fn a_session_is_found_by_its_id_and_names_its_owner() {
    let sessions = SseSessions::default();
    sessions.open("s1", session("alice"), 3).unwrap();
    assert_eq!(sessions.owner_of("s1").as_deref(), Some("alice"));
    assert_eq!(sessions.owner_of("s2"), None, "no such session");
    assert_eq!(sessions.len(), 1);
    assert!(sessions.remove("s1"));
    assert_eq!(sessions.owner_of("s1"), None);
    assert!(!sessions.remove("s1"), "already removed");
    assert!(sessions.is_empty());
}

#[test]
fn the_cap_counts_one_owners_open_sessions() {
    let sessions = SseSessions::default();
    sessions.open("a1", session("alice"), 2).unwrap();
    sessions.open("a2", session("alice"), 2).unwrap();
    let refused = sessions.open("a3", session("alice"), 2).unwrap_err();
    assert_eq!(refused.limit, 2);
    assert_eq!(
        sessions.owner_of("a3"),
        None,
        "a refused session is not added"
    );
    // Near misses: bob has his own count; alice closing one may open another.
    sessions.open("b1", session("bob"), 2).unwrap();
    sessions.remove("a1");
    sessions.open("a3", session("alice"), 2).unwrap();
}

#[tokio::test]
async fn calls_wait_for_the_handshake_and_one_can_be_cancelled() {
    let sessions = SseSessions::default();
    sessions.open("s1", session("alice"), 3).unwrap();
    let (first, second) = (RequestId::Number(1), RequestId::Number(2));
    assert!(matches!(
        sessions.start_call("s1", &first, false, no_live),
        Ok(Route::NotReady(_))
    ));
    sessions.ready("s1", direct_call::detached_peer(Quiet, None));
    let token = |route| match route {
        Ok(Route::Direct(_, cancel, _)) => cancel,
        _ => panic!("a ready session runs calls directly"),
    };
    let (one, two) = (
        token(sessions.start_call("s1", &first, false, no_live)),
        token(sessions.start_call("s1", &second, false, no_live)),
    );
    let (in_flight, live) = sessions.cancel_call("s1", Some(&first)).unwrap();
    assert!(in_flight && live.is_none());
    assert!(
        one.is_cancelled() && !two.is_cancelled(),
        "only the call named"
    );
    sessions.end_call("s1", &second);
    let (in_flight, _) = sessions.cancel_call("s1", Some(&second)).unwrap();
    assert!(
        !in_flight && !two.is_cancelled(),
        "an ended call is forgotten"
    );
    assert!(sessions.cancel_call("s2", Some(&first)).is_err());
}

fn state(audit: AuditLog) -> Arc<SseState<Quiet>> {
    SseState::new(Quiet, CancellationToken::new(), audit, 3)
}

async fn open(state: &Arc<SseState<Quiet>>, principal: Principal) -> (Response, String) {
    let mut request = Request::get("/sse").body(Body::empty()).unwrap();
    request.extensions_mut().insert(principal);
    let response = super::stream::open_session(axum::extract::State(state.clone()), request).await;
    let mut body = response.into_body().into_data_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8(first.to_vec()).unwrap();
    let id = first.split("sessionId=").nth(1).unwrap().trim().to_owned();
    (Response::new(Body::from_stream(body)), id)
}

#[tokio::test]
async fn closing_the_stream_removes_the_session_and_ends_its_calls() {
    let tokens = Tokens::new(&["alice"]);
    let state = state(AuditLog::disabled());
    let (stream, id) = open(&state, tokens.login("alice")).await;
    let (kept, kept_id) = open(&state, tokens.login("alice")).await;
    assert_eq!(state.sessions.owner_of(&id).as_deref(), Some("alice"));
    state
        .sessions
        .ready(&id, direct_call::detached_peer(Quiet, None));
    let Ok(Route::Direct(_, call, _)) =
        state
            .sessions
            .start_call(&id, &RequestId::Number(1), false, no_live)
    else {
        panic!("a ready session runs calls directly");
    };
    drop(stream);
    assert_eq!(state.session_count(), 1);
    assert_eq!(state.sessions.owner_of(&id), None);
    assert!(call.is_cancelled(), "its call ends with it");
    // Near miss: the other stream's session stays.
    assert!(state.sessions.owner_of(&kept_id).is_some());
    drop(kept);
    assert_eq!(state.session_count(), 0);
}

#[tokio::test]
async fn revoking_the_owners_token_ends_the_stream_on_record_and_spares_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, crate::audit::AuditOptions::default()).unwrap();
    let tokens = Tokens::new(&["alice", "bob"]);
    let state = state(audit.clone());
    let (alice, _alice_id) = open(&state, tokens.login("alice")).await;
    let (bob, bob_id) = open(&state, tokens.login("bob")).await;
    tokens.keep_only(&["alice"], &audit).await;
    let mut bob = bob.into_body().into_data_stream();
    let end = tokio::time::timeout(Duration::from_secs(10), bob.next()).await;
    assert!(matches!(end, Ok(None)), "bob's stream ended");
    drop(bob);
    let ended = records(&path, "ended_by_revocation", 1).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (&ended[0]["ended"], &ended[0]["id"], &ended[0]["principal"]),
        (&"stream".into(), &bob_id.as_str().into(), &"bob".into())
    );
    assert_eq!(state.sessions.owner_of(&bob_id), None);
    // Near miss: alice's session is open, and still hers.
    assert_eq!(state.session_count(), 1);
    drop(alice);
}
