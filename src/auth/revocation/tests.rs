//! Revocation: which credentials a reload revokes (each with the near miss it keeps),
//! kill against finish, expiry without a reload, and the records written.

use std::time::{Duration, SystemTime};

use super::*;
use crate::{
    audit::AuditOptions,
    auth::{Role, TokenDigest, TokenSet, authenticator::Authenticator},
};

fn entry(name: &str, secret: &str) -> TokenEntry {
    TokenEntry::new(name, TokenDigest::of_token(secret), Role::Operator)
}

fn authenticator(entries: Vec<TokenEntry>) -> Arc<Authenticator> {
    Arc::new(Authenticator::tokens(TokenSet::new(entries)))
}

fn login(auth: &Authenticator, secret: &str) -> crate::auth::Principal {
    let header = axum::http::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap();
    auth.authenticate(Some(&header)).unwrap()
}

/// An audit log in a temporary file, and a way to read its records back.
struct Records {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    log: AuditLog,
}

impl Records {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
        Self {
            _dir: dir,
            path,
            log,
        }
    }

    /// `(event, principal, reason)` of every record.
    fn read(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
                (text("event"), text("principal"), text("reason"))
            })
            .collect()
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn a_reload_revokes_removed_and_replaced_credentials_and_keeps_the_rest() {
    let auth = authenticator(vec![
        entry("kept", "kept-secret"),
        entry("gone", "gone-secret"),
        entry("rotated", "old-secret"),
    ]);
    let kept = login(&auth, "kept-secret");
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![
            entry("kept", "kept-secret"),
            entry("rotated", "new-secret"),
        ]))
        .unwrap();
    let mut named: Vec<_> = revoked
        .iter()
        .map(|revocation| (revocation.name.as_str(), revocation.reason))
        .collect();
    named.sort_by_key(|(name, _)| *name);
    assert_eq!(
        named,
        [
            ("gone", RevokeReason::Removed),
            ("rotated", RevokeReason::Replaced)
        ]
    );
    // The near miss: the unchanged credential keeps the very lease its principals hold.
    assert_eq!(login(&auth, "kept-secret").lease(), kept.lease());
    let rotated = login(&auth, "new-secret");
    assert_eq!(rotated.name(), "rotated");
    assert!(
        rotated.lease().revoked().is_none(),
        "a new secret is a new lease"
    );
}

#[test]
fn a_role_change_under_the_same_secret_is_not_a_revocation() {
    let auth = authenticator(vec![entry("alice", "alice-secret")]);
    let before = login(&auth, "alice-secret");
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![TokenEntry::new(
            "alice",
            TokenDigest::of_token("alice-secret"),
            Role::Read,
        )]))
        .unwrap();
    assert!(revoked.is_empty());
    let after = login(&auth, "alice-secret");
    assert_eq!(
        after.role(),
        Role::Read,
        "the next request gets the new role"
    );
    assert_eq!(after.lease(), before.lease());
}

#[tokio::test]
async fn kill_ends_the_revoked_lease_only_and_records_it_first() {
    let records = Records::new();
    let auth = authenticator(vec![entry("alice", "a-secret"), entry("bob", "b-secret")]);
    let (alice, bob) = (login(&auth, "a-secret"), login(&auth, "b-secret"));
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![entry("alice", "a-secret")]))
        .unwrap();
    Revoker::new(OnRevoke::Kill, records.log.clone())
        .enforce(revoked)
        .await;
    assert!(bob.lease().is_ended());
    assert_eq!(bob.lease().revoked(), Some(RevokeReason::Removed));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), bob.lease().ended())
            .await
            .unwrap(),
        RevokeReason::Removed
    );
    assert!(!alice.lease().is_ended() && alice.lease().revoked().is_none());
    assert_eq!(
        records.read(),
        [(
            "token_revoked".to_owned(),
            "bob".to_owned(),
            "removed".to_owned()
        )]
    );
}

#[tokio::test]
async fn finish_revokes_without_ending_the_work() {
    let records = Records::new();
    let auth = authenticator(vec![entry("bob", "b-secret")]);
    let bob = login(&auth, "b-secret");
    let revoked = auth.replace_tokens(TokenSet::new(Vec::new())).unwrap();
    Revoker::new(OnRevoke::Finish, records.log.clone())
        .enforce(revoked)
        .await;
    assert_eq!(bob.lease().revoked(), Some(RevokeReason::Removed));
    assert!(!bob.lease().is_ended(), "finish leaves the work running");
    let header = axum::http::HeaderValue::from_static("Bearer b-secret");
    assert!(
        auth.authenticate(Some(&header)).is_err(),
        "but refuses the token"
    );
    assert_eq!(records.read().len(), 1);
}

#[tokio::test]
async fn a_watch_runs_when_the_lease_ends_and_not_once_dropped() {
    let auth = authenticator(vec![entry("a", "a-secret"), entry("b", "b-secret")]);
    let (a, b) = (login(&auth, "a-secret"), login(&auth, "b-secret"));
    let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = |fired: &Arc<std::sync::atomic::AtomicUsize>| {
        let fired = fired.clone();
        move |_reason| async move {
            fired.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let _kept = a.lease().on_end(count(&fired));
    let dropped = b.lease().on_end(count(&fired));
    drop(dropped);
    tokio::task::yield_now().await;
    let revoked = auth.replace_tokens(TokenSet::new(Vec::new())).unwrap();
    Revoker::new(OnRevoke::Kill, AuditLog::disabled())
        .enforce(revoked)
        .await;
    wait_until("the kept watch fired", || {
        fired.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        fired.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the dropped watch did not fire"
    );
}

#[tokio::test]
async fn a_token_expires_at_its_instant_without_a_reload() {
    let records = Records::new();
    let soon = SystemTime::now() + Duration::from_millis(400);
    let later = SystemTime::now() + Duration::from_secs(3600);
    let auth = authenticator(vec![
        entry("brief", "brief-secret").expiring_at(soon),
        entry("long", "long-secret").expiring_at(later),
    ]);
    let (brief, long) = (login(&auth, "brief-secret"), login(&auth, "long-secret"));
    let revoker = Revoker::new(OnRevoke::Kill, records.log.clone());
    let task = tokio::spawn(super::super::authenticator::expire_tokens(
        Arc::downgrade(&auth),
        revoker,
    ));
    tokio::time::timeout(Duration::from_secs(10), brief.lease().ended())
        .await
        .expect("ended at expiry");
    assert!(SystemTime::now() >= soon);
    assert_eq!(brief.lease().revoked(), Some(RevokeReason::Expired));
    assert!(
        !long.lease().is_ended(),
        "the twin expiring later is untouched"
    );
    wait_until("the expiry is on record", || !records.read().is_empty()).await;
    assert_eq!(
        records.read(),
        [(
            "token_revoked".to_owned(),
            "brief".to_owned(),
            "expired".to_owned()
        )]
    );
    task.abort();
}

#[tokio::test]
async fn a_reload_that_brings_an_expiry_closer_wakes_the_timer() {
    let auth = authenticator(vec![entry("t", "t-secret")]);
    let task = tokio::spawn(super::super::authenticator::expire_tokens(
        Arc::downgrade(&auth),
        Revoker::new(OnRevoke::Kill, AuditLog::disabled()),
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let soon = SystemTime::now() + Duration::from_millis(300);
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![
            entry("t", "t-secret").expiring_at(soon),
        ]))
        .unwrap();
    assert!(revoked.is_empty(), "same credential, new expiry");
    let t = login(&auth, "t-secret");
    tokio::time::timeout(Duration::from_secs(10), t.lease().ended())
        .await
        .expect("ended long before the timer's 60 s nap");
    task.abort();
}

#[test]
fn expired_when_loaded_is_refused_and_revoked_without_a_record() {
    let past = SystemTime::now() - Duration::from_secs(60);
    let set = TokenSet::new(vec![entry("old", "old-secret").expiring_at(past)]);
    assert_eq!(
        set.authenticate("old-secret"),
        Err(crate::auth::AuthError::Expired)
    );
    assert!(due_expiries(&set.entries, SystemTime::now()).is_empty());
    assert_eq!(next_expiry(&set.entries, SystemTime::now()), None);
}

#[test]
fn an_extended_expiry_gives_the_credential_a_fresh_lease() {
    let past = SystemTime::now() - Duration::from_secs(60);
    let future = SystemTime::now() + Duration::from_secs(3600);
    let auth = authenticator(vec![entry("t", "t-secret").expiring_at(past)]);
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![
            entry("t", "t-secret").expiring_at(future),
        ]))
        .unwrap();
    assert!(revoked.is_empty());
    let t = login(&auth, "t-secret");
    assert!(t.lease().revoked().is_none() && !t.lease().is_ended());
}

#[test]
fn local_principals_cannot_be_revoked() {
    let lease = Lease::forever();
    assert!(!lease.revoke(RevokeReason::Removed));
    lease.end();
    assert!(!lease.is_ended() && lease.revoked().is_none());
}

/// A delegation of `parent` through a grant whose lease is `grant`.
fn delegated(auth: &Authenticator, grant: &DelegatedLease) -> crate::auth::Principal {
    let delegation = crate::auth::access_token::Delegation {
        principal: "alice".to_owned(),
        parent: TokenDigest::of_token("a-secret"),
        role: Role::Operator,
        grant: Some(crate::auth::access_token::DelegatedGrant {
            lease: grant.clone(),
            identity: Arc::new(crate::audit::AuditGrant::new("g1", "c1", "Claude")),
        }),
    };
    auth.delegate(&delegation).unwrap()
}

#[test]
fn revoking_a_grant_ends_its_work_only_and_not_its_parent_s_nor_another_grant_s() {
    let auth = authenticator(vec![entry("alice", "a-secret")]);
    let parent = login(&auth, "a-secret");
    let (grant, sibling) = (DelegatedLease::default(), DelegatedLease::default());
    let under_grant = delegated(&auth, &grant);
    // Every principal of one grant holds one lease (a session stays bound to it).
    assert_eq!(under_grant, delegated(&auth, &grant));
    assert_ne!(under_grant, parent);
    let under_sibling = delegated(&auth, &sibling);
    assert_eq!(under_grant.grant().unwrap().client_name, "Claude");
    assert!(parent.grant().is_none());

    assert!(grant.revoke(OnRevoke::Kill));
    assert!(!grant.revoke(OnRevoke::Kill), "once");
    assert!(under_grant.lease().is_ended());
    assert_eq!(
        under_grant.lease().revoked(),
        Some(RevokeReason::GrantRevoked)
    );
    // Near misses: the parent token and the other grant go on.
    assert!(!parent.lease().is_ended() && parent.lease().revoked().is_none());
    assert!(!under_sibling.lease().is_ended());
}

#[test]
fn under_finish_a_revoked_grant_s_work_runs_on() {
    let auth = authenticator(vec![entry("alice", "a-secret")]);
    let grant = DelegatedLease::default();
    let under_grant = delegated(&auth, &grant);
    assert!(grant.revoke(OnRevoke::Finish));
    assert_eq!(
        under_grant.lease().revoked(),
        Some(RevokeReason::GrantRevoked)
    );
    assert!(!under_grant.lease().is_ended());
}

#[tokio::test]
async fn revoking_the_parent_token_ends_every_grant_s_work_with_the_parent_s_reason() {
    let records = Records::new();
    let auth = authenticator(vec![entry("alice", "a-secret"), entry("bob", "b-secret")]);
    let grant = DelegatedLease::default();
    let under_grant = delegated(&auth, &grant);
    let bob = login(&auth, "b-secret");
    let revoked = auth
        .replace_tokens(TokenSet::new(vec![entry("bob", "b-secret")]))
        .unwrap();
    Revoker::new(OnRevoke::Kill, records.log.clone())
        .enforce(revoked)
        .await;
    assert!(under_grant.lease().is_ended());
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), under_grant.lease().ended())
            .await
            .unwrap(),
        RevokeReason::Removed
    );
    // Near miss: another token's work goes on.
    assert!(!bob.lease().is_ended());
}
