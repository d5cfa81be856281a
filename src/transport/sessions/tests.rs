//! The `/mcp` session table: the handshake's close, calls, closing, expiry, parked
//! answers, relayed ids, and owners (binding, the cap, the record of a closing).

use std::{convert::Infallible, sync::Arc, time::Duration, time::Instant};

use rmcp::{
    RoleServer, ServerHandler,
    model::{RequestId, ServerJsonRpcMessage},
    service::Peer,
    transport::streamable_http_server::session::SessionId,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    BindError, IDLE_TIMEOUT, SessionError, SessionOwner, SessionTable,
    replay::{call_event_id, parse_call_event_id},
    table::Session,
};
use crate::audit::AuditLog;
use crate::auth::Principal;
use crate::transport::{direct_call, handshake};

#[derive(Clone)]
struct Quiet;
impl ServerHandler for Quiet {}

fn table_with(id: &str) -> (SessionTable, SessionId) {
    let table = SessionTable::default();
    let id: SessionId = id.into();
    let (link, _transport) = handshake::handshake(Box::new(|_| {}));
    table.lock().insert(id.clone(), Session::new(link));
    (table, id)
}

fn peer() -> Peer<RoleServer> {
    direct_call::detached_peer(Quiet, None)
}

#[tokio::test]
async fn the_close_that_follows_the_handshake_is_skipped_once() {
    let (table, id) = table_with("s1");
    table.ready(&id, peer());
    table.close(&id);
    assert!(
        table.is_open("s1"),
        "the handshake service's own close is not the client's"
    );
    table.close(&id);
    assert!(!table.is_open("s1"));
}

#[tokio::test]
async fn a_failed_handshake_closes_the_session() {
    let (table, id) = table_with("s1");
    table.close(&id);
    assert!(!table.is_open("s1"));
}

#[tokio::test]
async fn calls_need_a_ready_session_and_unique_ids() {
    let (table, id) = table_with("s1");
    let request = RequestId::Number(1);
    assert!(matches!(
        table.start_call(&id, &request, CancellationToken::new()),
        Err(SessionError::NotInitialized)
    ));
    table.ready(&id, peer());
    let (_, first_stream) = table
        .start_call(&id, &request, CancellationToken::new())
        .unwrap();
    assert!(matches!(
        table.start_call(&id, &request, CancellationToken::new()),
        Err(SessionError::DuplicateRequest(_))
    ));
    table.end_call(&id, &request);
    let (_, second_stream) = table
        .start_call(&id, &request, CancellationToken::new())
        .unwrap();
    assert_ne!(first_stream, second_stream);
    assert!(matches!(
        table.start_call(&"nope".into(), &request, CancellationToken::new()),
        Err(SessionError::NotFound)
    ));
}

#[tokio::test]
async fn closing_a_session_cancels_its_calls() {
    let (table, id) = table_with("s1");
    table.ready(&id, peer());
    table.close(&id); // the handshake's
    let cancel = CancellationToken::new();
    table
        .start_call(&id, &RequestId::Number(1), cancel.clone())
        .unwrap();
    table.close(&id);
    assert!(cancel.is_cancelled());
}

#[tokio::test]
async fn closing_now_ends_the_stream_and_calls_even_right_after_the_handshake() {
    let (table, id) = table_with("s1");
    table.ready(&id, peer()); // the handshake's close is still pending
    let cancel = CancellationToken::new();
    table
        .start_call(&id, &RequestId::Number(1), cancel.clone())
        .unwrap();
    let (sender, mut receiver) = mpsc::channel::<Infallible>(1);
    table.lock().get_mut("s1").unwrap().standalone = Some(sender);
    assert!(table.close_now("s1"));
    assert!(!table.is_open("s1") && cancel.is_cancelled());
    assert!(
        receiver.recv().await.is_none(),
        "the standalone stream ended"
    );
    assert!(!table.close_now("s1"), "already closed");
}

#[tokio::test]
async fn only_idle_sessions_expire() {
    let table = SessionTable::default();
    for id in ["idle", "calling", "listening"] {
        let (link, _transport) = handshake::handshake(Box::new(|_| {}));
        table.lock().insert(id.into(), Session::new(link));
        table.ready(&id.into(), peer());
    }
    table
        .start_call(
            &"calling".into(),
            &RequestId::Number(1),
            CancellationToken::new(),
        )
        .unwrap();
    let (sender, _receiver) = mpsc::channel(1);
    table.lock().get_mut("listening").unwrap().standalone = Some(sender);
    let later = Instant::now() + IDLE_TIMEOUT + Duration::from_secs(1);
    assert_eq!(table.expire_idle(later), 1);
    assert!(!table.is_open("idle"));
    assert!(table.is_open("calling") && table.is_open("listening"));
    // A standalone stream the client dropped does not keep its session.
    table.lock().get_mut("listening").unwrap().standalone = {
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        Some(sender)
    };
    assert_eq!(table.expire_idle(later), 1);
    assert!(!table.is_open("listening"));
}

#[tokio::test]
async fn an_abandoned_call_is_parked_until_its_client_comes_back() {
    let (table, id) = table_with("s1");
    table.park(
        &id,
        4,
        Box::pin(async {
            ServerJsonRpcMessage::response(
                rmcp::model::ServerResult::EmptyResult(().into()),
                RequestId::Number(9),
            )
        }),
    );
    assert!(table.unpark(&id, 3).await.is_none());
    let mut answer = table.unpark(&id, 4).await.expect("parked");
    let answer = answer.wait_for(Option::is_some).await.unwrap().clone();
    assert!(
        matches!(answer, Some(ServerJsonRpcMessage::Response(r)) if r.id == RequestId::Number(9))
    );
    assert!(
        table.unpark(&id, 4).await.is_none(),
        "an answer is handed out once"
    );
}

#[tokio::test]
async fn a_reconnect_that_comes_before_the_park_waits_for_it() {
    let (table, id) = table_with("s1");
    table.ready(&id, peer());
    let request = RequestId::Number(9);
    let (_, stream) = table
        .start_call(&id, &request, CancellationToken::new())
        .unwrap();
    let table = Arc::new(table);
    let later = (table.clone(), id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (table, id) = later;
        table.park(
            &id,
            stream,
            Box::pin(async move {
                ServerJsonRpcMessage::response(
                    rmcp::model::ServerResult::EmptyResult(().into()),
                    RequestId::Number(9),
                )
            }),
        );
    });
    assert!(
        table.unpark(&id, stream).await.is_some(),
        "waited for the park"
    );
    // A call that ended without being parked (its answer went out) has nothing to wait for.
    table.end_call(&id, &request);
    assert!(table.unpark(&id, stream).await.is_none());
}

#[tokio::test]
async fn relayed_requests_get_ids_unique_in_the_session() {
    let (table, id) = table_with("s1");
    let (call, _inbox) = mpsc::unbounded_channel();
    let first = table
        .relay(&id, RequestId::Number(0), call.clone())
        .unwrap();
    let second = table.relay(&id, RequestId::Number(0), call).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        table.lock()[&id].relayed[&second].original_id,
        RequestId::Number(0)
    );
}

#[test]
fn call_event_ids_round_trip() {
    assert_eq!(parse_call_event_id(&call_event_id(42)), Some(42));
    assert_eq!(parse_call_event_id("0"), None);
    assert_eq!(parse_call_event_id("c"), None);
    assert_eq!(parse_call_event_id("x1"), None);
}

fn open_ready(table: &SessionTable, id: &str) {
    let (link, _transport) = handshake::handshake(Box::new(|_| {}));
    table.insert(id.into(), Session::new(link));
    table.ready(&id.into(), peer());
    table.close(&id.into()); // the handshake's
}

impl SessionTable {
    /// A session `id` past its handshake, for tests of the code around the table.
    pub(crate) fn open_ready_for_test(&self, id: &str) {
        open_ready(self, id);
    }
}

fn owner(principal: &Principal, audit: &AuditLog) -> SessionOwner {
    SessionOwner::new(principal, None, audit.clone())
}

#[tokio::test]
async fn one_lookup_says_whether_a_session_is_open_and_whose_it_is() {
    let tokens = crate::transport::test_support::Tokens::new(&["alice", "bob"]);
    let (alice, audit) = (tokens.login("alice"), AuditLog::disabled());
    let table = SessionTable::default();
    open_ready(&table, "s1");
    assert_eq!(table.owner_of("s1"), None, "not bound yet: nobody's");
    table.bind("s1", owner(&alice, &audit), 3).unwrap();
    assert_eq!(table.owner_of("s1").as_deref(), Some("alice"));
    assert_eq!(table.owner_of("s2"), None, "no such session");
    assert!(table.close_now("s1"));
    assert_eq!(table.owner_of("s1"), None, "closed: no owner left behind");
}

#[tokio::test]
async fn the_cap_counts_the_owners_open_sessions_only() {
    let tokens = crate::transport::test_support::Tokens::new(&["alice", "bob"]);
    let (alice, bob, audit) = (
        tokens.login("alice"),
        tokens.login("bob"),
        AuditLog::disabled(),
    );
    let table = SessionTable::default();
    for id in ["a1", "a2", "a3", "b1", "a4"] {
        open_ready(&table, id);
    }
    table.bind("a1", owner(&alice, &audit), 2).unwrap();
    table.bind("a2", owner(&alice, &audit), 2).unwrap();
    assert!(matches!(
        table.bind("a3", owner(&alice, &audit), 2),
        Err(BindError::TooMany { limit: 2 })
    ));
    assert_eq!(table.owner_of("a3"), None);
    // Near misses: bob has his own count; alice closing one may bind another.
    table.bind("b1", owner(&bob, &audit), 2).unwrap();
    table.close(&"a1".into());
    table.bind("a4", owner(&alice, &audit), 2).unwrap();
    assert_eq!(table.owner_of("a4").as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_session_gone_before_it_is_bound_hands_its_owner_back() {
    let tokens = crate::transport::test_support::Tokens::new(&["alice"]);
    let table = SessionTable::default();
    let refused = table.bind(
        "gone",
        owner(&tokens.login("alice"), &AuditLog::disabled()),
        3,
    );
    assert!(matches!(refused, Err(BindError::Gone(owner)) if owner.name() == "alice"));
}

#[tokio::test]
async fn an_owned_session_puts_its_closing_on_record_however_it_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, crate::audit::AuditOptions::default()).unwrap();
    let tokens = crate::transport::test_support::Tokens::new(&["alice"]);
    let alice = tokens.login("alice");
    let table = SessionTable::default();
    for id in ["deleted", "idle", "now", "unowned", "revoked"] {
        open_ready(&table, id);
        if id != "unowned" {
            table.bind(id, owner(&alice, &audit), 10).unwrap();
        }
    }
    table.close(&"deleted".into());
    table.close_now("now");
    table.close_now("unowned");
    let revoked = table.close_owned_now("revoked").expect("owned");
    let later = Instant::now() + IDLE_TIMEOUT + Duration::from_secs(1);
    assert_eq!(table.expire_idle(later), 1);
    assert!(table.is_empty());
    let closed = crate::transport::test_support::records(&path, "session_closed", 3).await;
    let mut ids: Vec<_> = closed.iter().map(|r| r["session"].clone()).collect();
    ids.sort_by_key(|id| id.to_string());
    assert_eq!(
        ids,
        ["deleted", "idle", "now"],
        "nothing for the unowned one"
    );
    assert!(
        closed
            .iter()
            .all(|r| r["principal"] == "alice" && r["transport"] == "streamable_http")
    );
    // Near miss: the owner handed back records when told, after what its caller records.
    revoked.record_closed("revoked");
    let closed = crate::transport::test_support::records(&path, "session_closed", 4).await;
    assert_eq!(closed.len(), 4);
    assert_eq!(closed[3]["session"], "revoked");
}
