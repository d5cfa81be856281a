//! Delegated access: a bearer token that is not a configured token but stands for one,
//! such as an access token of the embedded OAuth authorization server (`crate::oauth`).
//! Its verifier says which configured token delegated it and with which role; the
//! principal is then made here, from that token's *current* entry: the name and lease of
//! the parent, the lower of the two roles. A parent removed, replaced or expired makes
//! every token it delegated fail at once, and revoking the parent ends their work too.
//! A delegation through an OAuth grant carries the grant's [`DelegatedLease`] (a child of
//! the parent's lease: revoking the grant alone ends only its work) and its identity,
//! which the principal carries into audit records.

use std::{fmt, sync::Arc};

use subtle::ConstantTimeEq;

use super::{AuthError, DelegatedLease, Principal, Role, TokenDigest, TokenSet};
use crate::audit::AuditGrant;

/// What a verified delegated token stands for.
#[derive(Debug, Clone)]
pub struct Delegation {
    /// The name of the configured token that delegated it.
    pub principal: String,
    /// That token's digest: a token rotated under the same name does not inherit.
    pub parent: TokenDigest,
    /// The most the delegated token may do (it never exceeds the parent's role).
    pub role: Role,
    /// The grant it was issued under, when there is one: its lease and its identity.
    pub grant: Option<DelegatedGrant>,
}

/// The grant a delegation acts through.
#[derive(Debug, Clone)]
pub struct DelegatedGrant {
    pub lease: DelegatedLease,
    pub identity: Arc<AuditGrant>,
}

/// Checks bearer tokens that are not configured tokens.
pub trait AccessTokenVerifier: Send + Sync + fmt::Debug {
    /// The delegation `token` carries, or `None` when it is not a live token of this
    /// verifier (bad signature, expired, for another audience, its grant revoked).
    fn verify(&self, token: &str) -> Option<Delegation>;

    /// The RFC 9728 metadata URL a 401 points clients at (`resource_metadata`).
    fn resource_metadata(&self) -> Option<&str>;
}

/// A shared verifier.
pub type SharedVerifier = Arc<dyn AccessTokenVerifier>;

impl TokenSet {
    /// The principal of a delegation: its parent's entry must still be accepted.
    pub fn delegate(&self, delegation: &Delegation) -> Result<Principal, AuthError> {
        let (entry, lease) = self
            .entries
            .iter()
            .find(|(entry, _)| {
                entry.name() == delegation.principal
                    && bool::from(entry.digest().ct_eq(&delegation.parent))
            })
            .ok_or(AuthError::Invalid)?;
        if entry.is_expired(std::time::SystemTime::now()) {
            return Err(AuthError::Expired);
        }
        let (lease, grant) = match &delegation.grant {
            Some(grant) => (grant.lease.under(lease), Some(grant.identity.clone())),
            None => (lease.clone(), None),
        };
        Ok(Principal {
            name: Arc::from(entry.name()),
            role: entry.role().min(delegation.role),
            run_as: entry.run_as().cloned(),
            lease,
            grant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenEntry;

    fn set() -> TokenSet {
        TokenSet::new(vec![
            TokenEntry::new("ops", TokenDigest::of_token("ops-secret"), Role::Operator),
            TokenEntry::new("reader", TokenDigest::of_token("read-secret"), Role::Read),
        ])
    }

    #[test]
    fn a_delegation_gets_its_parent_s_name_and_never_more_than_its_role() {
        let asked_admin = Delegation {
            principal: "reader".to_owned(),
            parent: TokenDigest::of_token("read-secret"),
            role: Role::Admin,
            grant: None,
        };
        let principal = set().delegate(&asked_admin).unwrap();
        assert_eq!(principal.name(), "reader");
        assert_eq!(principal.role(), Role::Read);
        let narrowed = Delegation {
            principal: "ops".to_owned(),
            parent: TokenDigest::of_token("ops-secret"),
            role: Role::Read,
            grant: None,
        };
        assert_eq!(set().delegate(&narrowed).unwrap().role(), Role::Read);
    }

    #[test]
    fn a_delegation_whose_parent_is_gone_or_rotated_is_refused() {
        let rotated = Delegation {
            principal: "ops".to_owned(),
            parent: TokenDigest::of_token("old-ops-secret"),
            role: Role::Operator,
            grant: None,
        };
        assert_eq!(set().delegate(&rotated), Err(AuthError::Invalid));
        let gone = Delegation {
            principal: "removed".to_owned(),
            parent: TokenDigest::of_token("ops-secret"),
            role: Role::Operator,
            grant: None,
        };
        assert_eq!(set().delegate(&gone), Err(AuthError::Invalid));
        let expired = TokenSet::new(vec![
            TokenEntry::new("ops", TokenDigest::of_token("ops-secret"), Role::Operator)
                .expiring_at(std::time::UNIX_EPOCH),
        ]);
        let live = Delegation {
            principal: "ops".to_owned(),
            parent: TokenDigest::of_token("ops-secret"),
            role: Role::Operator,
            grant: None,
        };
        assert_eq!(expired.delegate(&live), Err(AuthError::Expired));
    }
}
