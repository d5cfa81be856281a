//! Authentication: who is calling. Owns [`Principal`] (only [`TokenSet::authenticate`] and
//! the local constructors of [`danger`] make one), token digests compared in constant time,
//! the axum layer that answers 401 and attaches the principal to the request, and the
//! revocation of tokens while the server runs ([`revocation`]). A token arrives in
//! `Authorization: Bearer` or the API-key header ([`api_key`]); besides hostmcp's own tokens,
//! JWT access tokens of outside identity providers are accepted ([`jwt`]).

pub mod access_token;
pub mod api_key;
pub mod authenticator;
pub mod client_address;
pub mod danger;
pub mod failure_records;
pub mod fleet;
pub mod jwt;
pub mod layer;
pub mod revocation;
mod secret;
pub mod token;

use std::{fmt, str::FromStr, sync::Arc};

use subtle::{ConditionallySelectable, ConstantTimeEq};

pub use revocation::{Lease, OnRevoke};
pub use secret::Secret;
pub use token::{TokenDigest, TokenEntry, generate_token, is_valid_token_name};

/// What a principal may do. Ordered: each role includes the rights of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only tools; no command execution.
    Read,
    /// Commands, subject to policy.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `read`, `operator`, `admin`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "read" => Ok(Self::Read),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// An authenticated caller. Cheap to clone; travels in request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: Arc<str>,
    role: Role,
    run_as: Option<Arc<str>>,
    /// The lifetime of the credential it was made from.
    lease: Lease,
}

impl Principal {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The Unix user this principal's commands run as, when its token names one.
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }

    /// The lifetime of this principal's credential: what it runs watches it.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

/// Why a presented token was refused. Deliberately says nothing about which tokens exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed Authorization header; expected `Bearer <token>`")]
    Malformed,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    /// `Authorization: Bearer` and the API-key header carry different tokens.
    #[error("two different tokens: `Authorization` and the API-key header disagree")]
    Conflicting,
    /// A JWT of an outside identity provider was refused; says why, never the token.
    #[error("JWT refused: {0}")]
    Jwt(jwt::Refusal),
    /// A valid JWT whose claims map to no role (and its issuer has no default role).
    #[error("the token's claims map to no role on this server")]
    NoRole,
}

impl AuthError {
    /// The `reason` label of `hostmcp_auth_failures_total`.
    pub fn metric(&self) -> crate::metrics::AuthFailure {
        match self {
            Self::Missing => crate::metrics::AuthFailure::Missing,
            Self::Malformed | Self::Conflicting => crate::metrics::AuthFailure::Malformed,
            Self::Invalid | Self::Jwt(_) | Self::NoRole => crate::metrics::AuthFailure::Invalid,
            Self::Expired => crate::metrics::AuthFailure::Expired,
        }
    }
}

/// The tokens a server accepts, by digest, each with the lease of its credential.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    entries: Vec<(TokenEntry, Lease)>,
}

impl TokenSet {
    /// Fresh leases for every entry; those already expired are revoked at once.
    pub fn new(entries: Vec<TokenEntry>) -> Self {
        let entries: Vec<_> = entries
            .into_iter()
            .map(|entry| (entry, Lease::new()))
            .collect();
        revocation::revoke_expired_silently(&entries, std::time::SystemTime::now());
        Self { entries }
    }

    /// This set, taking over the leases of the credentials it keeps from `previous`;
    /// with the credentials of `previous` it no longer accepts.
    fn succeeding(
        mut self,
        previous: &TokenSet,
        now: std::time::SystemTime,
    ) -> (Self, Vec<revocation::Revocation>) {
        let dropped = revocation::carry_over(&previous.entries, &mut self.entries, now);
        (self, dropped)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Check a presented token against every entry. The time taken does not depend on
    /// which entry (if any) matched, nor on how much of a digest matched.
    pub fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        let digest = TokenDigest::of_token(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (candidate, (entry, _)) in (0u64..).zip(&self.entries) {
            let matches = entry.digest().ct_eq(&digest);
            index.conditional_assign(&candidate, matches);
            found |= matches;
        }
        if !bool::from(found) {
            return Err(AuthError::Invalid);
        }
        let (entry, lease) =
            &self.entries[usize::try_from(index).map_err(|_| AuthError::Invalid)?];
        if entry.is_expired(std::time::SystemTime::now()) {
            return Err(AuthError::Expired);
        }
        Ok(Principal {
            name: Arc::from(entry.name()),
            role: entry.role(),
            run_as: entry.run_as().cloned(),
            lease: lease.clone(),
        })
    }

    /// Parse an `Authorization` header value and authenticate its bearer token.
    pub fn authenticate_header(&self, header: Option<&[u8]>) -> Result<Principal, AuthError> {
        let token = bearer_token(header.ok_or(AuthError::Missing)?)?;
        self.authenticate(token)
    }
}

/// Extract the token from `Bearer <token>` (scheme case-insensitive, per RFC 6750).
pub fn bearer_token(header: &[u8]) -> Result<&str, AuthError> {
    let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = header.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
