//! The ownership gate: a revoked owner's session closes on record, another's stays.

use super::*;
use crate::transport::test_support::{Tokens, records};

#[tokio::test]
async fn a_revoked_owners_session_closes_on_record_and_anothers_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, crate::audit::AuditOptions::default()).unwrap();
    let tokens = Tokens::new(&["alice", "bob"]);
    let table = Arc::new(SessionTable::default());
    let owners = SessionOwners::new(table.clone(), audit.clone(), 3);
    for (id, name) in [("a1", "alice"), ("b1", "bob")] {
        table.open_ready_for_test(id);
        owners
            .bind(id.to_owned(), &tokens.login(name), None)
            .await
            .unwrap();
    }
    tokens.keep_only(&["alice"], &audit).await;
    let ended = records(&path, "ended_by_revocation", 1).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (&ended[0]["ended"], &ended[0]["id"]),
        (&"session".into(), &"b1".into())
    );
    let closed = records(&path, "session_closed", 1).await;
    assert_eq!(
        (&closed[0]["session"], &closed[0]["principal"]),
        (&"b1".into(), &"bob".into())
    );
    assert!(!table.is_open("b1"));
    // Near miss: the kept token's session is open and still its owner's.
    assert_eq!(table.owner_of("a1").as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_session_past_its_owners_cap_is_closed_and_answered_429() {
    let tokens = Tokens::new(&["alice", "bob"]);
    let table = Arc::new(SessionTable::default());
    let owners = SessionOwners::new(table.clone(), AuditLog::disabled(), 1);
    let alice = tokens.login("alice");
    for id in ["a1", "a2", "b1"] {
        table.open_ready_for_test(id);
    }
    owners.bind("a1".into(), &alice, None).await.unwrap();
    let refused = owners.bind("a2".into(), &alice, None).await.unwrap_err();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!table.is_open("a2"), "the refused session is closed");
    // Near miss: bob's first session is bound.
    owners
        .bind("b1".into(), &tokens.login("bob"), None)
        .await
        .unwrap();
    assert_eq!(table.owner_of("b1").as_deref(), Some("bob"));
}
