//! Which credentials the server accepts right now: the [`Authenticator`] (a token set
//! replaceable while the server runs, or none on a loopback `--no-auth` server), and the
//! task that revokes each token at its `expires` instant ([`expire_tokens`]). The
//! middleware that asks it is [`super::layer`]; what a revocation does is
//! [`super::revocation`]. Besides the token set, a request may be authenticated by the
//! API-key header ([`super::api_key`]) or a JWT of a configured outside issuer
//! ([`super::jwt`]): [`Authenticator::with_outside`].

use std::{
    sync::{Arc, Weak},
    time::SystemTime,
};

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderValue};
use tokio::sync::Notify;

use super::{
    AuthError, Principal, TokenSet,
    revocation::{MAX_EXPIRY_SLEEP, Revocation, Revoker},
};

/// How the server authenticates: by token, or not at all (loopback `--no-auth`).
#[derive(Debug)]
pub enum Authenticator {
    Tokens(ReloadableTokens),
    Disabled,
}

/// The accepted tokens, replaceable while the server runs (SIGHUP).
#[derive(Debug)]
pub struct ReloadableTokens {
    /// Read by every request without a lock; replaced whole.
    current: ArcSwap<TokenSet>,
    /// Held by [`Authenticator::replace_tokens`], so that two reloads cannot both build on
    /// the same previous set (and one lose the leases the other carried over).
    replacing: parking_lot::Mutex<()>,
    /// Woken when the set is replaced, so the expiry task looks again.
    changed: Arc<Notify>,
    /// Delegated tokens (OAuth access tokens), checked when no configured token matches.
    access_tokens: std::sync::OnceLock<super::access_token::SharedVerifier>,
    /// The API-key header and outside issuers (fixed for the server's life).
    outside: OutsideCredentials,
}

/// What authenticates a request besides `Authorization: Bearer` with a configured token.
#[derive(Debug, Default)]
pub struct OutsideCredentials {
    /// The header that may carry a token instead of `Authorization` (off when `None`).
    pub api_key_header: Option<super::api_key::ApiKeyHeader>,
    /// Outside identity providers whose JWT access tokens are accepted.
    pub issuers: Option<Arc<super::jwt::Issuers>>,
    /// The RFC 9728 metadata URL a 401 names when the server publishes one for its outside
    /// issuers (a public URL is configured), and no embedded authorization server names it.
    pub resource_metadata: Option<String>,
    /// Outside issuers but no public URL: the metadata's path, which a 401 names at the
    /// origin the request came to ([`super::public_origin`]).
    pub resource_metadata_path: Option<&'static str>,
}

impl ReloadableTokens {
    fn current(&self) -> Arc<TokenSet> {
        self.current.load_full()
    }
}

impl Authenticator {
    pub fn tokens(set: TokenSet) -> Self {
        Self::Tokens(ReloadableTokens {
            current: ArcSwap::from_pointee(set),
            replacing: parking_lot::Mutex::new(()),
            changed: Arc::default(),
            access_tokens: std::sync::OnceLock::new(),
            outside: OutsideCredentials::default(),
        })
    }

    /// Also accept the tokens `verifier` vouches for, as their parent tokens (once; false
    /// when already set or authentication is disabled).
    pub fn accept_delegated(&self, verifier: super::access_token::SharedVerifier) -> bool {
        match self {
            Self::Tokens(tokens) => tokens.access_tokens.set(verifier).is_ok(),
            Self::Disabled => false,
        }
    }

    /// This authenticator, also accepting `outside` credentials (no effect on a disabled one).
    pub fn with_outside(mut self, outside: OutsideCredentials) -> Self {
        if let Self::Tokens(tokens) = &mut self {
            tokens.outside = outside;
        }
        self
    }

    /// Authenticate one request from its headers: the token of `Authorization: Bearer` or
    /// of the API-key header, checked against the token set; when it is not one of those,
    /// as an access token of the embedded authorization server (as its parent token), then,
    /// when it looks like a JWT, against the outside issuers.
    pub async fn authenticate_request(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let Self::Tokens(tokens) = self else {
            return Ok(super::danger::unauthenticated_local());
        };
        let outside = &tokens.outside;
        let token = super::api_key::presented_token(headers, outside.api_key_header.as_ref())?;
        let set = tokens.current.load();
        match set.authenticate(token) {
            Err(AuthError::Invalid) => {}
            other => return other,
        }
        if let Some(delegation) = tokens.access_tokens.get().and_then(|v| v.verify(token)) {
            return set.delegate(&delegation);
        }
        match &outside.issuers {
            Some(issuers) if super::jwt::looks_like_jwt(token) => issuers.authenticate(token).await,
            _ => Err(AuthError::Invalid),
        }
    }

    /// Check an `Authorization: Bearer` header against the configured tokens only: what
    /// the consent page asks for ("an existing hostmcp token"), and what tests use. Requests
    /// go through [`Self::authenticate_request`], which also takes the API-key header,
    /// delegated access tokens and outside issuers' JWTs.
    pub fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Principal, AuthError> {
        match self {
            Self::Disabled => Ok(super::danger::unauthenticated_local()),
            Self::Tokens(tokens) => tokens
                .current
                .load()
                .authenticate_header(authorization.map(HeaderValue::as_bytes)),
        }
    }

    /// The principal a delegation would get now (its parent token still accepted).
    pub fn delegate(
        &self,
        delegation: &super::access_token::Delegation,
    ) -> Result<Principal, AuthError> {
        match self {
            Self::Tokens(tokens) => tokens.current.load().delegate(delegation),
            Self::Disabled => Err(AuthError::Invalid),
        }
    }

    /// The protected-resource metadata URL a 401 names, when delegated tokens or outside
    /// issuers' tokens are accepted and the metadata is published.
    pub fn resource_metadata(&self) -> Option<&str> {
        match self {
            Self::Tokens(tokens) => (tokens.access_tokens.get())
                .and_then(|verifier| verifier.resource_metadata())
                .or(tokens.outside.resource_metadata.as_deref()),
            Self::Disabled => None,
        }
    }

    /// The metadata's path when it is published at each request's own origin (no public
    /// URL, outside issuers).
    pub fn resource_metadata_path(&self) -> Option<&'static str> {
        match self {
            Self::Tokens(tokens) => tokens.outside.resource_metadata_path,
            Self::Disabled => None,
        }
    }

    /// Replace the accepted tokens; the next request is checked against the new set.
    /// Credentials the new set keeps (same name and digest) keep their leases; the ones
    /// it drops are returned, to be revoked ([`super::revocation::Revoker::enforce`]).
    /// `None` when authentication is disabled (nothing to replace).
    pub fn replace_tokens(&self, set: TokenSet) -> Option<Vec<Revocation>> {
        let Self::Tokens(tokens) = self else {
            return None;
        };
        let replacing = tokens.replacing.lock();
        let (set, dropped) = set.succeeding(&tokens.current.load(), SystemTime::now());
        tokens.current.store(Arc::new(set));
        drop(replacing);
        tokens.changed.notify_one();
        Some(dropped)
    }

    /// The tokens whose expiry has passed at `now` and are not yet revoked, the next
    /// expiry after `now`, and what wakes when the set changes (`None` without tokens).
    pub fn expiries(
        &self,
        now: SystemTime,
    ) -> (Vec<Revocation>, Option<SystemTime>, Option<Arc<Notify>>) {
        let Self::Tokens(tokens) = self else {
            return (Vec::new(), None, None);
        };
        let set = tokens.current();
        (
            super::revocation::due_expiries(&set.entries, now),
            super::revocation::next_expiry(&set.entries, now),
            Some(tokens.changed.clone()),
        )
    }
}

/// Revoke each token of `authenticator` at its expiry instant through `revoker`, until
/// the authenticator is dropped. Run it as a task.
pub async fn expire_tokens(authenticator: Weak<Authenticator>, revoker: Revoker) {
    loop {
        let Some(auth) = authenticator.upgrade() else {
            return;
        };
        let now = SystemTime::now();
        let (due, next, changed) = auth.expiries(now);
        drop(auth);
        revoker.enforce(due).await;
        let Some(changed) = changed else { return };
        let sleep = next
            .map_or(MAX_EXPIRY_SLEEP, |at| {
                at.duration_since(now).unwrap_or_default()
            })
            .min(MAX_EXPIRY_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = changed.notified() => {}
        }
    }
}
