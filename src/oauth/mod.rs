//! The embedded OAuth 2.1 authorization server (opt-in: `--public-url` and `--oauth`), so
//! that apps which connect only by OAuth (claude.ai and Claude Desktop connectors,
//! ChatGPT, Copilot Studio) can use this server, while header clients keep their
//! `Authorization: Bearer` tokens untouched. It owns its routes (a `Router` that
//! `commands::serve` mounts beside the MCP routes, behind the host guard and outside the
//! bearer authentication) and its state; the authentication layer asks it only through
//! `crate::auth::access_token` (the [`verify::Verifier`]).
//!
//! The flow, and the rule each step enforces:
//! - Discovery: RFC 9728 protected-resource metadata at
//!   `/.well-known/oauth-protected-resource` and its `/mcp` path-suffixed form (the 401 of
//!   `/mcp` names it in `WWW-Authenticate: Bearer resource_metadata=…`), RFC 8414
//!   authorization-server metadata at `/.well-known/oauth-authorization-server`; every URL
//!   derives from the public URL ([`settings`]).
//! - Registration ([`register`]): RFC 7591, public clients only (`none`), redirect URIs on
//!   the allowlist ([`redirect`]); clients are capped and expire unused. Or a Client ID
//!   Metadata Document ([`cimd`]): an https `client_id` fetched (SSRF-guarded, capped,
//!   cached) at authorization and kept as a client record under its URL.
//! - Authorization ([`consent`]): `code` only, PKCE `S256` only ([`pkce`]), `resource`
//!   (RFC 8707) must be this server's MCP URL, `redirect_uri` exactly a registered one.
//!   Errors found before the redirect URI is trusted are shown on the page, never
//!   redirected. The owner approves by entering a configured hostmcp token; the grant gets
//!   its name and role (a requested `read` scope narrows it, nothing widens it). Wrong
//!   tokens are rate-limited per client address and audited. The redirect carries `code`,
//!   `state` and `iss` (RFC 9207); a denial carries `error=access_denied`.
//! - Tokens ([`token`]): the code once (a second use revokes the grant), with its PKCE
//!   verifier and the same redirect URI; access tokens are ES256 JWTs ([`keys`]) for about
//!   an hour; refresh tokens are opaque, rotate on use, and a rotated one coming back
//!   revokes the grant (the family). RFC 7009 revocation at `/oauth/revoke`.
//! - Every step writes an `oauth` audit record ([`crate::audit::OAuthStep`]).
//! - State ([`store`]): a redb file; secrets only as SHA-256.

pub mod cimd;
pub mod consent;
pub mod keys;
pub mod metadata;
pub mod page;
pub mod pkce;
pub mod redirect;
pub mod register;
pub mod revoke;
pub mod settings;
pub mod store;
pub mod token;
pub mod verify;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use parking_lot::Mutex;

use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, AuditText, OAuthStep},
    auth::{OnRevoke, authenticator::Authenticator, client_address::TrustedProxies},
    ratelimit::RateLimiter,
};

pub use settings::OAuthSettings;
use store::{Store, StoreError};

/// The scope every grant carries unless a client asks for `hostmcp:read` only; also what a
/// request without `scope` gets (ChatGPT drops it on reconnect).
pub const DEFAULT_SCOPE: &str = "hostmcp";
/// The narrower scope: the grant's role is at most `read`.
pub const READ_SCOPE: &str = "hostmcp:read";

/// How long an authorization code lives.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a consent page stays answerable.
pub const CONSENT_TTL: Duration = Duration::from_secs(600);
/// Consent pages waiting for an answer, at most (the oldest are dropped past it).
const MAX_PENDING: usize = 1024;
/// Wrong tokens entered on the consent page per client address and minute.
pub const CONSENT_FAILURES_PER_MINUTE: u32 = 5;

/// Why the authorization server could not start.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("OAuth needs configured tokens: the owner approves a client with one")]
    NoTokens,
    #[error(transparent)]
    Cimd(#[from] cimd::CimdSetupError),
}

/// The authorization server: settings, store, key, and what requests share.
#[derive(Debug)]
pub struct OAuthServer {
    pub settings: OAuthSettings,
    pub store: Arc<Store>,
    pub key: Arc<keys::SigningKey>,
    pub verifier: Arc<verify::Verifier>,
    /// Client ID metadata documents, fetched and cached.
    cimd: cimd::Fetcher,
    authenticator: Arc<Authenticator>,
    audit: AuditLog,
    trusted_proxies: TrustedProxies,
    /// Consent pages shown and not yet answered, by their form nonce.
    pending: Mutex<HashMap<String, consent::Pending>>,
    /// Wrong consent tokens per client address.
    consent_failures: RateLimiter<IpAddr>,
    /// Revocations by `hostmcp oauth` found when the server started, to be put on record
    /// by [`Self::maintain`].
    found_at_start: Mutex<Vec<store::RevocationNote>>,
}

impl OAuthServer {
    /// Open the store and the key (made on first start) beside it, load the live grants,
    /// and make the server accept its access tokens. Revoking a grant does to its work what
    /// revoking a token does (`on_revoke`).
    pub fn start(
        settings: OAuthSettings,
        authenticator: Arc<Authenticator>,
        audit: AuditLog,
        trusted_proxies: TrustedProxies,
        on_revoke: OnRevoke,
    ) -> Result<Arc<Self>, OAuthError> {
        if matches!(*authenticator, Authenticator::Disabled) {
            return Err(OAuthError::NoTokens);
        }
        let store = Arc::new(Store::open(&settings.store)?);
        let key_path = settings.store.with_extension("signing-key.der");
        let key = Arc::new(keys::SigningKey::load_or_create(&key_path)?);
        let verifier = Arc::new(verify::Verifier::new(
            key.clone(),
            settings.issuer(),
            settings.resource(),
            settings.url(metadata::RESOURCE_METADATA_PATH),
            on_revoke,
        ));
        let found_at_start = Mutex::new(verifier.reload(&store)?);
        let cimd = cimd::Fetcher::new(
            settings.cimd_ca_file.as_deref(),
            settings.cimd_allow_private_networks,
        )?;
        authenticator.accept_delegated(verifier.clone());
        Ok(Arc::new(Self {
            cimd,
            settings,
            store,
            key,
            verifier,
            authenticator,
            audit,
            trusted_proxies,
            pending: Mutex::default(),
            consent_failures: RateLimiter::new(
                CONSENT_FAILURES_PER_MINUTE,
                Duration::from_secs(60),
            ),
            found_at_start,
        }))
    }

    /// The routes: metadata, JWKS, registration, consent, token, revocation.
    pub fn routes(self: &Arc<Self>) -> Router {
        self.routes_beside(&[])
    }

    /// [`Self::routes`], the protected-resource metadata also naming the `outside` issuers.
    pub fn routes_beside(self: &Arc<Self>, outside: &[&str]) -> Router {
        let settings = &self.settings;
        let issuer = settings.issuer();
        let document =
            metadata::protected_resource_document(&settings.public_url, Some(&issuer), outside);
        Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(metadata::authorization_server),
            )
            // RFC 8414 §3.1 read literally for the issuer `https://host/`.
            .route(
                "/.well-known/oauth-authorization-server/",
                get(metadata::authorization_server),
            )
            .route("/oauth/jwks", get(metadata::jwks))
            .route("/oauth/register", post(register::register))
            .route("/oauth/authorize", get(consent::show).post(consent::answer))
            .route("/oauth/token", post(token::token))
            .route("/oauth/revoke", post(revoke::revoke))
            .with_state(self.clone())
            .merge(metadata::resource_routes(document))
    }

    /// Re-read the live grants every [`verify::GRANT_RELOAD_INTERVAL`] (revocations by
    /// `hostmcp oauth`, put on record here) and sweep expired codes and refresh tokens; run
    /// it as a task.
    pub async fn maintain(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let found = std::mem::take(&mut *self.found_at_start.lock());
        self.record_revocations(found).await;
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(verify::GRANT_RELOAD_INTERVAL) => {}
            }
            let server = self.clone();
            ticks += 1;
            let result = tokio::task::spawn_blocking(move || {
                let found = server.verifier.reload(&server.store)?;
                if ticks.is_multiple_of(300) {
                    server.store.sweep(store::now_secs())?;
                }
                Ok::<_, StoreError>(found)
            })
            .await;
            match result {
                Ok(Ok(found)) => self.record_revocations(found).await,
                Ok(Err(error)) => tracing::warn!(%error, "cannot re-read the OAuth grants"),
                Err(_) => {}
            }
        }
    }

    /// Put on record the revocations `hostmcp oauth` made: `grant_revoked` or
    /// `client_revoked`, with who ran it (`by`).
    async fn record_revocations(&self, notes: Vec<store::RevocationNote>) {
        for note in notes {
            let (step, grant_id) = match note.kind {
                store::RevokedKind::Grant => (OAuthStep::GrantRevoked, Some(note.id.clone())),
                store::RevokedKind::Client => (OAuthStep::ClientRevoked, None),
            };
            let mut context = AuditContext::new();
            if let Some(principal) = &note.principal {
                context = context.with_principal(principal);
            }
            let event = AuditEvent::OAuth {
                step,
                client_id: AuditText::from(note.client_id.as_str()),
                grant_id,
                refused: None,
                by: Some(note.by),
            };
            self.audit.record_or_log(context, event).await;
        }
    }

    /// Record one OAuth step.
    async fn audit(
        &self,
        context: AuditContext,
        step: OAuthStep,
        client_id: &str,
        grant_id: Option<&str>,
        refused: Option<String>,
    ) {
        let event = AuditEvent::OAuth {
            step,
            client_id: AuditText::from(client_id),
            grant_id: grant_id.map(str::to_owned),
            refused,
            by: None,
        };
        self.audit.record_or_log(context, event).await;
    }

    /// The audit context of a request: its client address.
    fn context(&self, peer: Peer, headers: &HeaderMap) -> AuditContext {
        match peer.0 {
            Some(peer) => {
                AuditContext::new().with_client(self.trusted_proxies.resolve(peer, headers))
            }
            None => AuditContext::new(),
        }
    }

    /// The address a request's failures are budgeted under.
    fn budget_key(&self, peer: Peer, headers: &HeaderMap) -> Option<IpAddr> {
        peer.0
            .map(|peer| self.trusted_proxies.resolve(peer, headers).budget_key())
    }

    /// Drop consent pages past their time, and the oldest past [`MAX_PENDING`].
    fn prune_pending(pending: &mut HashMap<String, consent::Pending>, now: Instant) {
        pending.retain(|_, page| page.expires > now);
        while pending.len() >= MAX_PENDING {
            let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, page)| page.expires)
                .map(|(nonce, _)| nonce.clone())
            else {
                break;
            };
            pending.remove(&oldest);
        }
    }
}

/// The TCP peer of a request, when served on a socket (`oneshot` tests have none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer),
        ))
    }
}

/// A random identifier or secret: 32 bytes, base64url.
pub fn random_token() -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An OAuth error answer (RFC 6749 §5.2): JSON, `no-store`.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            Json(serde_json::json!({ "error": error, "error_description": description })),
        )
            .into_response(),
    )
}

/// Mark a response not to be cached (token and registration answers, pages).
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests;
