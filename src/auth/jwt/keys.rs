//! One issuer's signing keys: its JWKS, fetched on first use (from `jwks_uri`, or from the
//! `jwks_uri` of its metadata: `/.well-known/openid-configuration`, else RFC 8414's
//! `/.well-known/oauth-authorization-server`, whose `issuer` must be the configured one),
//! kept, and fetched again when older than `jwks_refresh_secs` or when a token names a `kid`
//! it lacks (key rotation). Fetches are one at a time and at most one per
//! `jwks_min_refresh_secs`, so a flood of tokens with random `kid`s costs the identity
//! provider one request per interval; each fetch has a timeout, a size cap
//! ([`MAX_DOCUMENT_BYTES`]) and follows no redirect. A failed fetch keeps the keys it had.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{JwkSet, PublicKeyUse},
};
use reqwest::Url;
use tokio::time::Instant;

use super::{IssuerSettings, Refusal};

/// Largest metadata or JWKS document read.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Connect timeout of a fetch (inside its whole timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the keys could not be fetched (logged; the caller sees [`Refusal::KeysUnavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("GET {url}: {reason}")]
    Get { url: String, reason: String },
    #[error("GET {url}: status {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("GET {url}: timed out")]
    Timeout { url: String },
    #[error("{url}: not a {what}: {reason}")]
    Document {
        url: String,
        what: &'static str,
        reason: String,
    },
    #[error("{url}: metadata names issuer {found:?}, not the configured one")]
    IssuerMismatch { url: String, found: String },
    #[error("{url}: jwks_uri {jwks_uri:?} is not https (or http on loopback)")]
    BadJwksUri { url: String, jwks_uri: String },
    #[error("no metadata at {tried}")]
    NoMetadata { tried: String },
}

/// The keys of one issuer, and how to get them again.
#[derive(Debug)]
pub struct KeyCache {
    settings: Arc<IssuerSettings>,
    http: reqwest::Client,
    current: parking_lot::RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<FetchState>,
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    /// Found in the issuer's metadata, once.
    discovered: Option<Url>,
}

#[derive(Debug)]
struct KeySet {
    keys: Vec<CachedKey>,
    fetched_at: Instant,
}

struct CachedKey {
    kid: Option<String>,
    /// The JWK's own `alg`, when it names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// The key for `kid` usable with `alg`; without a `kid`, the one key usable with `alg`.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let usable = |key: &&CachedKey| {
            key.key.family() == alg.family() && key.alg.is_none_or(|own| own == alg)
        };
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(usable)
                .find(|key| key.kid.as_deref() == Some(kid))
                .map(|key| key.key.clone()),
            None => {
                let mut candidates = self.keys.iter().filter(usable);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only.key.clone()),
                    _ => None,
                }
            }
        }
    }
}

impl KeyCache {
    pub fn new(settings: Arc<IssuerSettings>) -> Result<Self, FetchError> {
        let tls = crate::outbound_tls::client_config(settings.ca_file.as_deref())
            .map_err(|error| FetchError::Client(error.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT.min(settings.fetch_timeout))
            .timeout(settings.fetch_timeout)
            .http1_only()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| FetchError::Client(error.to_string()))?;
        Ok(Self {
            settings,
            http,
            current: parking_lot::RwLock::new(None),
            fetching: tokio::sync::Mutex::new(FetchState::default()),
        })
    }

    /// The key that verifies a token of `alg` naming `kid`, fetching the JWKS when it is
    /// stale or lacks `kid` (within the fetch budget).
    pub async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Refusal> {
        if let Some(key) = self.cached(kid, alg, true) {
            return Ok(key);
        }
        let mut state = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid, alg, true) {
            return Ok(key);
        }
        let now = Instant::now();
        let budget_spent = state
            .last_attempt
            .is_some_and(|last| now.duration_since(last) < self.settings.jwks_min_refresh);
        if budget_spent {
            return self.cached(kid, alg, false).ok_or(Refusal::UnknownKey);
        }
        state.last_attempt = Some(now);
        match self.fetch(&mut state).await {
            Ok(keys) => {
                tracing::info!(
                    issuer = %self.settings.name,
                    keys = keys.keys.len(),
                    "fetched the issuer's signing keys"
                );
                *self.current.write() = Some(Arc::new(keys));
            }
            Err(error) => {
                tracing::warn!(issuer = %self.settings.name, %error, "cannot fetch the issuer's signing keys; keeping the ones held");
                return self
                    .cached(kid, alg, false)
                    .ok_or(if self.current.read().is_none() {
                        Refusal::KeysUnavailable
                    } else {
                        Refusal::UnknownKey
                    });
            }
        }
        self.cached(kid, alg, false).ok_or(Refusal::UnknownKey)
    }

    /// Fetch the JWK set now, outside the budget (`hostmcp check --fetch-jwks`): the
    /// number of keys in it this server could use.
    pub async fn fetch_now(&self) -> Result<usize, FetchError> {
        let mut state = self.fetching.lock().await;
        self.fetch(&mut state).await.map(|keys| keys.keys.len())
    }

    /// The held key for `kid`; with `fresh_only`, only from keys younger than the refresh age.
    fn cached(&self, kid: Option<&str>, alg: Algorithm, fresh_only: bool) -> Option<DecodingKey> {
        let current = self.current.read().clone()?;
        if fresh_only && current.fetched_at.elapsed() >= self.settings.jwks_refresh {
            return None;
        }
        current.find(kid, alg)
    }

    async fn fetch(&self, state: &mut FetchState) -> Result<KeySet, FetchError> {
        let jwks_uri = match (&self.settings.jwks_uri, &state.discovered) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let uri = self.discover().await?;
                state.discovered = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = self.get_json(&jwks_uri, "JWK set").await?;
        let keys = set
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                // A key naming an algorithm that signs nothing here (RSA-OAEP) is skipped.
                let alg = match jwk.common.key_algorithm {
                    Some(alg) => Some(alg.to_string().parse::<Algorithm>().ok()?),
                    None => None,
                };
                Some(CachedKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key: DecodingKey::from_jwk(jwk).ok()?,
                })
            })
            .collect();
        Ok(KeySet {
            keys,
            fetched_at: Instant::now(),
        })
    }

    /// The `jwks_uri` of the issuer's metadata (OpenID first, then RFC 8414).
    async fn discover(&self) -> Result<Url, FetchError> {
        let issuer = &self.settings.issuer;
        let mut tried = Vec::new();
        for url in metadata_urls(issuer) {
            let metadata: Metadata = match self.get_json(&url, "metadata document").await {
                Ok(metadata) => metadata,
                Err(FetchError::Status { .. }) => {
                    tried.push(url.to_string());
                    continue;
                }
                Err(error) => return Err(error),
            };
            if metadata.issuer != *issuer {
                return Err(FetchError::IssuerMismatch {
                    url: url.to_string(),
                    found: metadata.issuer,
                });
            }
            return super::settings::check_url(0, "jwks_uri", &metadata.jwks_uri).map_err(|_| {
                FetchError::BadJwksUri {
                    url: url.to_string(),
                    jwks_uri: metadata.jwks_uri.clone(),
                }
            });
        }
        Err(FetchError::NoMetadata {
            tried: tried.join(", "),
        })
    }

    /// GET `url` as JSON of type `T`: 200 only, at most [`MAX_DOCUMENT_BYTES`].
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &'static str,
    ) -> Result<T, FetchError> {
        let text = url.to_string();
        let failed = |error: reqwest::Error| {
            if error.is_timeout() {
                FetchError::Timeout { url: text.clone() }
            } else {
                FetchError::Get {
                    url: text.clone(),
                    reason: error.to_string(),
                }
            }
        };
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: text,
                status: response.status().as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(FetchError::TooLarge { url: text });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge { url: text });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|error| FetchError::Document {
            url: text,
            what,
            reason: error.to_string(),
        })
    }
}

/// The parts of an authorization server's metadata used here.
#[derive(serde::Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// Where an issuer's metadata may be: `<issuer>/.well-known/openid-configuration` (OpenID
/// Connect Discovery), then `<origin>/.well-known/oauth-authorization-server<path>` (RFC 8414).
fn metadata_urls(issuer: &str) -> Vec<Url> {
    let Ok(base) = Url::parse(issuer) else {
        return Vec::new();
    };
    let path = base.path().trim_end_matches('/').to_owned();
    let mut oidc = base.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    let mut rfc8414 = base;
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    vec![oidc, rfc8414]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_looked_for_where_openid_and_rfc_8414_put_it() {
        let urls = |issuer| -> Vec<String> {
            metadata_urls(issuer)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            urls("https://idp.example/realms/ops"),
            [
                "https://idp.example/realms/ops/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/ops"
            ]
        );
        assert_eq!(
            urls("https://idp.example"),
            [
                "https://idp.example/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server"
            ]
        );
    }
}
