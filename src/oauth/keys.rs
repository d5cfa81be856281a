//! The authorization server's signing key and its access tokens: ES256 JWTs (RFC 9068
//! shape) signed with a P-256 key kept beside the store (PKCS#8, mode 0600, made on first
//! start), published as a JWK set at `jwks_uri` so that another server can check them.
//! A token carries `iss`, `sub` (the principal), `aud` (this server's MCP URL), `exp`,
//! `iat`, `jti`, `scope`, `role`, `client_id` and `gid` (the grant).

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub scope: String,
    pub role: String,
    pub client_id: String,
    /// The grant this token was issued under.
    pub gid: String,
}

/// A failure of the signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the OAuth signing key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the OAuth signing key {0} is not a P-256 PKCS#8 key; move it away to make a new one")]
    Invalid(PathBuf),
    #[error("cannot sign an access token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The key pair, and the public half as a JWK.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load the key at `path`, or make one there (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let document = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| KeyError::Invalid(path.to_owned()))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                file.write_all(document.as_ref()).map_err(io)?;
                file.sync_all().map_err(io)?;
                document.as_ref().to_vec()
            }
            Err(error) => return Err(io(error)),
        };
        Self::from_pkcs8(&pkcs8).ok_or_else(|| KeyError::Invalid(path.to_owned()))
    }

    /// The key of a PKCS#8 document; `None` if it is not a P-256 key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Option<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .ok()?;
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(point)[..12]);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "use": "sig", "alg": "ES256", "kid": kid,
        });
        Some(Self {
            encoding: EncodingKey::from_ec_der(pkcs8),
            decoding: DecodingKey::from_ec_components(&x, &y).ok()?,
            kid,
            jwk,
        })
    }

    /// The JWK set published at `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    /// Sign `claims` into a compact JWT.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Check a token's signature, algorithm, issuer, audience and expiry (no leeway: this
    /// server made it). `None` for anything else.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, exp: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://h".to_owned(),
            sub: "alice".to_owned(),
            aud: aud.to_owned(),
            exp,
            iat: 1,
            jti: "j".to_owned(),
            scope: "hostmcp".to_owned(),
            role: "read".to_owned(),
            client_id: "c".to_owned(),
            gid: "g".to_owned(),
        }
    }

    #[test]
    fn a_token_verifies_for_its_audience_only_and_not_once_expired() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(&dir.path().join("k")).unwrap();
        let later = super::super::store::now_secs() + 600;
        let token = key.sign(&claims("https://h/mcp", later)).unwrap();
        assert_eq!(
            key.verify(&token, "https://h", "https://h/mcp"),
            Some(claims("https://h/mcp", later))
        );
        assert_eq!(key.verify(&token, "https://h", "https://other/mcp"), None);
        assert_eq!(key.verify(&token, "https://other", "https://h/mcp"), None);
        let expired = key.sign(&claims("https://h/mcp", 2)).unwrap();
        assert_eq!(key.verify(&expired, "https://h", "https://h/mcp"), None);
    }

    #[test]
    fn the_key_is_kept_and_another_key_s_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = SigningKey::load_or_create(&path).unwrap();
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(first.jwks(), again.jwks());
        let other = SigningKey::load_or_create(&dir.path().join("other")).unwrap();
        let later = super::super::store::now_secs() + 600;
        let forged = other.sign(&claims("https://h/mcp", later)).unwrap();
        assert_eq!(first.verify(&forged, "https://h", "https://h/mcp"), None);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
