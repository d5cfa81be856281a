//! Revocation: how long an accepted credential lives, and what ends with it.
//!
//! A credential is one `[[tokens]]` entry: its name *and* digest. Each has a [`Lease`],
//! which every principal made from it carries. A credential is revoked, once, when
//! - a reload (SIGHUP) drops its entry: `removed`;
//! - a reload keeps its name with another secret: `replaced` (the new secret is a new
//!   credential with a fresh lease; rotating a token revokes the old one);
//! - its `expires` instant passes: `expired`, found by [`super::authenticator::expire_tokens`], a task
//!   that sleeps until the next expiry (at most [`MAX_EXPIRY_SLEEP`], so a wall-clock
//!   jump is noticed) — no reload needed.
//!
//! From that instant the token gets 401 on every request. What it already runs depends
//! on `on_revoke` ([`OnRevoke`]):
//! - `kill` (the default): the lease *ends*. Whatever holds it watches
//!   [`Lease::ended`] and ends itself, auditing one `ended_by_revocation` record per
//!   thing ended: Streamable HTTP sessions and legacy SSE streams are closed (closing
//!   cancels their calls), calls in flight on any transport are cancelled (their
//!   commands' process groups get TERM, then KILL), jobs are killed.
//! - `finish`: nothing running is touched: calls in flight answer on the streams they
//!   came on, commands and jobs run to their end (their own timeouts still apply) and are
//!   audited as usual. The principal cannot start anything or read a job's output,
//!   since every request it makes is refused. Jobs belong to the token *name*: a token
//!   rotated under the same name sees the jobs the old one left running.
//!
//! A `token_revoked` record is written before anything is ended. Credentials that are
//! already expired when loaded are revoked silently: nothing can hold their lease.
//!
//! A delegated credential (an OAuth grant, `crate::oauth`) holds a [`DelegatedLease`]: a
//! child of its parent token's lease. The parent's end ends it too (revoking or expiring
//! the parent ends every grant's work); its own end ([`DelegatedLease::revoke`], when the
//! grant alone is revoked) ends only the grant's work, under the same `on_revoke`, with
//! the reason `grant_revoked`.

use std::{
    fmt,
    future::Future,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime},
};

use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::TokenEntry;
use crate::audit::{AuditContext, AuditEvent, AuditLog, RevokeReason};

/// The longest the expiry task sleeps before looking at the clock again.
pub const MAX_EXPIRY_SLEEP: Duration = Duration::from_secs(60);

/// What revoking a token does to the work it is running (`on_revoke` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRevoke {
    /// End its sessions, streams, calls, commands and jobs at once.
    #[default]
    Kill,
    /// Let running commands and jobs finish; refuse every new request.
    Finish,
}

impl OnRevoke {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Finish => "finish",
        }
    }
}

/// The lifetime of one credential, shared by every principal made from it. Cheap to clone.
#[derive(Clone)]
pub struct Lease(Arc<LeaseState>);

struct LeaseState {
    /// False for the local principals (stdio, `--no-auth`), which nothing revokes.
    revocable: bool,
    revoked: OnceLock<RevokeReason>,
    /// Cancelled when the credential is revoked under `on_revoke = "kill"` (for a child
    /// lease, also when its parent's is: a child token of the parent's).
    ended: CancellationToken,
    /// The lease this one was delegated from ([`Lease::child`]).
    parent: Option<Lease>,
}

impl Lease {
    /// The lease of a configured credential.
    pub fn new() -> Self {
        Self::with(true)
    }

    /// The lease of a principal nothing can revoke (stdio, `--no-auth`).
    pub fn forever() -> Self {
        Self::with(false)
    }

    fn with(revocable: bool) -> Self {
        Self(Arc::new(LeaseState {
            revocable,
            revoked: OnceLock::new(),
            ended: CancellationToken::new(),
            parent: None,
        }))
    }

    /// A lease delegated from this one: it ends when this one ends, and can be revoked and
    /// ended on its own without touching this one.
    pub fn child(&self) -> Self {
        Self(Arc::new(LeaseState {
            revocable: self.0.revocable,
            revoked: OnceLock::new(),
            ended: self.0.ended.child_token(),
            parent: Some(self.clone()),
        }))
    }

    /// Whether this lease was delegated from `parent` (the same lease, not an equal one).
    fn is_child_of(&self, parent: &Lease) -> bool {
        self.0.parent.as_ref() == Some(parent)
    }

    /// Why the credential was revoked, once it was (or the credential it was delegated
    /// from).
    pub fn revoked(&self) -> Option<RevokeReason> {
        self.0
            .revoked
            .get()
            .copied()
            .or_else(|| self.0.parent.as_ref().and_then(Lease::revoked))
    }

    /// Whether the work of this credential has been ended.
    pub fn is_ended(&self) -> bool {
        self.0.ended.is_cancelled()
    }

    /// Resolves when the work of this credential must end: never under `finish`, never for
    /// a lease that cannot be revoked.
    pub async fn ended(&self) -> RevokeReason {
        self.0.ended.cancelled().await;
        self.revoked().unwrap_or(RevokeReason::Removed)
    }

    /// Mark the credential revoked; true the first time only.
    fn revoke(&self, reason: RevokeReason) -> bool {
        self.0.revocable && self.0.revoked.set(reason).is_ok()
    }

    /// End the work of a revoked credential (`on_revoke = "kill"`).
    fn end(&self) {
        if self.revoked().is_some() {
            self.0.ended.cancel();
        }
    }

    /// Run `on_end` if the lease ends before the returned watch is dropped: how a
    /// session or stream ends itself. Spawns nothing for a lease that cannot end.
    pub fn on_end<F, Fut>(&self, on_end: F) -> EndWatch
    where
        F: FnOnce(RevokeReason) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if !self.0.revocable {
            return EndWatch { _stop: None };
        }
        let stop = CancellationToken::new();
        let (lease, stopped) = (self.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                biased;
                () = stopped.cancelled() => {}
                reason = lease.ended() => on_end(reason).await,
            }
        });
        EndWatch {
            _stop: Some(stop.drop_guard()),
        }
    }
}

impl Default for Lease {
    fn default() -> Self {
        Self::new()
    }
}

/// Principals are equal when they hold the same lease, not merely an equal one.
impl PartialEq for Lease {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Lease {}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("revoked", &self.revoked())
            .field("ended", &self.is_ended())
            .finish()
    }
}

/// The lease of one delegated credential (an OAuth grant): a child of the lease of the
/// parent token the grant acts as, made on the grant's first request and kept while that
/// parent keeps its lease, so that every principal made from the grant holds the same
/// lease (sessions are bound to it). Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct DelegatedLease(Arc<parking_lot::Mutex<DelegatedState>>);

#[derive(Debug, Default)]
struct DelegatedState {
    current: Option<Lease>,
    revoked: bool,
}

impl DelegatedLease {
    /// The lease of this credential under `parent` (the parent token's current lease).
    pub fn under(&self, parent: &Lease) -> Lease {
        let mut state = self.0.lock();
        if let Some(lease) = state.current.as_ref().filter(|l| l.is_child_of(parent)) {
            return lease.clone();
        }
        let lease = parent.child();
        if state.revoked && lease.revoke(RevokeReason::GrantRevoked) {
            lease.end();
        }
        state.current = Some(lease.clone());
        lease
    }

    /// The credential is revoked: under `kill`, the work of every principal made from it
    /// ends (its sessions, streams, calls, commands, jobs and terminals), each ending
    /// audited `ended_by_revocation` with the reason `grant_revoked`. True the first time.
    pub fn revoke(&self, on_revoke: OnRevoke) -> bool {
        let mut state = self.0.lock();
        if std::mem::replace(&mut state.revoked, true) {
            return false;
        }
        if let Some(lease) = &state.current
            && lease.revoke(RevokeReason::GrantRevoked)
            && on_revoke == OnRevoke::Kill
        {
            lease.end();
        }
        true
    }
}

/// Stops watching a lease when dropped (see [`Lease::on_end`]).
#[derive(Debug)]
pub struct EndWatch {
    _stop: Option<DropGuard>,
}

/// One credential to revoke: the token set no longer accepts it.
#[derive(Debug)]
pub struct Revocation {
    pub name: String,
    pub reason: RevokeReason,
    lease: Lease,
}

/// Give `next` the leases of the credentials it keeps from `previous` (same name and
/// digest), and say which credentials of `previous` it drops. A kept credential that was
/// revoked (expired) gets a fresh lease if `next` no longer says it is expired.
pub(super) fn carry_over(
    previous: &[(TokenEntry, Lease)],
    next: &mut [(TokenEntry, Lease)],
    now: SystemTime,
) -> Vec<Revocation> {
    let mut dropped = Vec::new();
    for (old, old_lease) in previous {
        let kept = next.iter_mut().find(|(new, _)| {
            new.name() == old.name() && bool::from(new.digest().ct_eq(old.digest()))
        });
        match kept {
            Some((new, lease)) if old_lease.revoked().is_none() || new.is_expired(now) => {
                *lease = old_lease.clone();
            }
            Some(_) => {}
            None if old_lease.revoked().is_none() => {
                let renamed = next.iter().any(|(new, _)| new.name() == old.name());
                dropped.push(Revocation {
                    name: old.name().to_owned(),
                    reason: if renamed {
                        RevokeReason::Replaced
                    } else {
                        RevokeReason::Removed
                    },
                    lease: old_lease.clone(),
                });
            }
            None => {}
        }
    }
    dropped
}

/// Mark the leases of entries already expired at `now`, without a record.
pub(super) fn revoke_expired_silently(entries: &[(TokenEntry, Lease)], now: SystemTime) {
    for (entry, lease) in entries {
        if entry.is_expired(now) && lease.revoke(RevokeReason::Expired) {
            lease.end();
        }
    }
}

/// Entries whose expiry has passed but whose lease is not yet revoked.
pub(super) fn due_expiries(entries: &[(TokenEntry, Lease)], now: SystemTime) -> Vec<Revocation> {
    entries
        .iter()
        .filter(|(entry, lease)| entry.is_expired(now) && lease.revoked().is_none())
        .map(|(entry, lease)| Revocation {
            name: entry.name().to_owned(),
            reason: RevokeReason::Expired,
            lease: lease.clone(),
        })
        .collect()
}

/// The earliest expiry after `now` among entries not yet revoked.
pub(super) fn next_expiry(entries: &[(TokenEntry, Lease)], now: SystemTime) -> Option<SystemTime> {
    entries
        .iter()
        .filter(|(entry, lease)| lease.revoked().is_none() && !entry.is_expired(now))
        .filter_map(|(entry, _)| entry.expires_at())
        .min()
}

/// Applies revocations: audits each, then revokes its lease under the configured mode.
#[derive(Debug, Clone)]
pub struct Revoker {
    on_revoke: OnRevoke,
    audit: AuditLog,
}

impl Revoker {
    pub fn new(on_revoke: OnRevoke, audit: AuditLog) -> Self {
        Self { on_revoke, audit }
    }

    pub fn on_revoke(&self) -> OnRevoke {
        self.on_revoke
    }

    /// Record and carry out `revocations` (the token set no longer accepts them).
    pub async fn enforce(&self, revocations: Vec<Revocation>) {
        for revocation in revocations {
            if !revocation.lease.revoke(revocation.reason) {
                continue;
            }
            tracing::warn!(
                principal = %revocation.name,
                reason = %revocation.reason,
                on_revoke = self.on_revoke.as_str(),
                "token revoked"
            );
            let event = AuditEvent::TokenRevoked {
                reason: revocation.reason,
                ends_work: self.on_revoke == OnRevoke::Kill,
            };
            let context = AuditContext::new().with_principal(&revocation.name);
            self.audit.record_or_log(context, event).await;
            if self.on_revoke == OnRevoke::Kill {
                revocation.lease.end();
            }
        }
    }
}

#[cfg(test)]
mod tests;
