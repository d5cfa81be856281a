//! Resource-server mode: JWT access tokens of outside identity providers (Keycloak, Entra
//! ID, Okta, Auth0, any OpenID provider), configured as `[[auth.issuers]]`.
//!
//! A bearer token that is not one of hostmcp's own tokens and has the shape of a JWT is
//! checked against the issuer its (unverified) `iss` names; an issuer not configured refuses
//! it. Then, all of these or 401:
//! - the header's `alg` is one of the issuer's `algorithms` (RS256 and ES256 unless
//!   configured; `none` and the HMAC algorithms can never be configured, so a token signed
//!   with an issuer's public key as an HMAC secret is refused before any key is looked at);
//! - its `kid` names a key of the issuer's JWKS ([`keys`]) of the algorithm's family (and of
//!   that very algorithm when the JWK names one), and the signature verifies with it;
//! - `iss` is the issuer exactly, `aud` includes one of the `audience`, `exp` is present and
//!   not past, `nbf` (when present) is not in the future, each within `leeway_secs`.
//!
//! The claims then make the principal ([`claims`]): its name is `<issuer name>:<value of the
//! principal claim>` (`sub` unless configured): a `:` no `[[tokens]]` name can hold, so an
//! outside identity never shares jobs, sessions or limits with a configured token or another
//! issuer's user. Its role comes from the role claim through the issuer's mapping table
//! (several values: the highest role they map to); no value mapped and no `default_role`
//! configured: 403, never a role by default. Nothing revokes an outside token before its
//! `exp` but the identity provider's keys: keep their lifetime short.
//!
//! Which check refused a token is its [`Refusal`], in the `auth_failed` record; the token
//! itself is never logged.

mod claims;
pub mod keys;
pub mod settings;

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};

pub use keys::KeyCache;
pub use settings::{
    IssuerFile, IssuerSettings, IssuerSettingsError, resolve_issuers, resolve_issuers_for,
};

use super::{AuthError, Lease, Principal};

/// Why an outside JWT was refused: the check that failed, for the audit record and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("issuer not configured")]
    UnknownIssuer,
    #[error("algorithm not accepted for this issuer")]
    Algorithm,
    #[error("no key of the issuer's JWKS matches its kid")]
    UnknownKey,
    #[error("the issuer's keys could not be fetched")]
    KeysUnavailable,
    #[error("bad signature")]
    Signature,
    #[error("audience not accepted")]
    Audience,
    #[error("issuer claim does not match")]
    Issuer,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("a required claim (exp, iss, aud) is missing or not of its type")]
    Claims,
    #[error("no usable principal claim")]
    Principal,
}

/// Does `token` have the shape of a compact JWS (three dot-separated parts)? hostmcp's own
/// tokens have no dot.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The configured outside issuers.
#[derive(Debug)]
pub struct Issuers {
    issuers: Vec<Issuer>,
}

/// One outside issuer: its settings and its key cache.
#[derive(Debug)]
struct Issuer {
    settings: Arc<IssuerSettings>,
    keys: KeyCache,
    /// One per accepted algorithm: jsonwebtoken refuses a validation listing algorithms of
    /// another family than the key's.
    validations: Vec<(Algorithm, Validation)>,
}

/// The claims every issuer's token must carry (on top of the principal claim).
const REQUIRED_CLAIMS: [&str; 3] = ["exp", "iss", "aud"];

impl Issuers {
    /// The issuers of `settings`, with empty key caches (keys are fetched on first use).
    pub fn new(settings: Vec<IssuerSettings>) -> Result<Self, keys::FetchError> {
        let issuers = settings
            .into_iter()
            .map(|settings| {
                let settings = Arc::new(settings);
                let validations = settings
                    .algorithms
                    .iter()
                    .map(|&algorithm| (algorithm, validation(&settings, algorithm)))
                    .collect();
                Ok(Issuer {
                    keys: KeyCache::new(settings.clone())?,
                    settings,
                    validations,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { issuers })
    }

    /// The issuer URLs, in configuration order (for protected-resource metadata).
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.issuers
            .iter()
            .map(|issuer| issuer.settings.issuer.as_str())
    }

    /// Verify `token` and make its principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let unverified: UnverifiedIssuer = jsonwebtoken::dangerous::insecure_decode(token)
            .map_err(|_| AuthError::Jwt(Refusal::Malformed))?
            .claims;
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| Some(issuer.settings.issuer.as_str()) == unverified.iss.as_deref())
            .ok_or(AuthError::Jwt(Refusal::UnknownIssuer))?;
        issuer.authenticate(token).await
    }
}

/// What `decode` checks of a token of `algorithm` from the issuer of `settings`.
fn validation(settings: &IssuerSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&settings.audience);
    validation.set_required_spec_claims(&REQUIRED_CLAIMS);
    validation.validate_nbf = true;
    validation.leeway = settings.leeway.as_secs();
    validation
}

/// The `iss` of a token not yet verified: only to choose which issuer verifies it.
#[derive(serde::Deserialize)]
struct UnverifiedIssuer {
    iss: Option<String>,
}

impl Issuer {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::Jwt(Refusal::Malformed))?;
        let (_, validation) = self
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == header.alg)
            .ok_or(AuthError::Jwt(Refusal::Algorithm))?;
        let key = self
            .keys
            .key_for(header.kid.as_deref(), header.alg)
            .await
            .map_err(AuthError::Jwt)?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, validation)
            .map_err(|error| refusal_of(error.kind()))?;
        let identity = claims::identity(&self.settings, &data.claims)?;
        Ok(Principal {
            name: Arc::from(identity.name),
            role: identity.role,
            run_as: None,
            // Each request is verified anew; nothing server-side revokes an outside token.
            lease: Lease::forever(),
            grant: None,
        })
    }
}

/// The refusal of a failed `decode`.
fn refusal_of(kind: &jsonwebtoken::errors::ErrorKind) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    AuthError::Jwt(match kind {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => Refusal::Signature,
        ErrorKind::InvalidAudience => Refusal::Audience,
        ErrorKind::InvalidIssuer => Refusal::Issuer,
        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => Refusal::Claims,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => Refusal::Algorithm,
        _ => Refusal::Malformed,
    })
}

#[cfg(test)]
mod tests;
