//! Checking this server's own access tokens on every request: the JWT's signature,
//! issuer, audience and expiry, then that its grant is live *in memory* (grants revoked
//! here take effect at once; those revoked by `hostmcp oauth` within
//! [`GRANT_RELOAD_INTERVAL`]). A verified token is remembered by its SHA-256 until it
//! expires, so a client's next calls skip the signature check (an ECDSA verify costs
//! more than the rest of authentication). What the token stands for becomes a principal
//! in `crate::auth::access_token`, from the parent token's current entry.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use super::{
    keys::{AccessClaims, SigningKey},
    store::{GrantRecord, Store, StoreError, now_secs},
};
use crate::auth::{
    Role, TokenDigest,
    access_token::{AccessTokenVerifier, Delegation},
};

/// How often the live grants are re-read from the store (revocations by the CLI).
pub const GRANT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Verified tokens remembered at most; the memory is cleared when full.
const CACHE_CAPACITY: usize = 4096;

/// A grant as a request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveGrant {
    principal: String,
    parent: TokenDigest,
    role: Role,
}

/// The access-token verifier the authentication layer asks.
#[derive(Debug)]
pub struct Verifier {
    key: Arc<SigningKey>,
    issuer: String,
    audience: String,
    /// The RFC 9728 metadata URL a 401 names.
    metadata_url: String,
    live: RwLock<HashMap<String, LiveGrant>>,
    verified: Mutex<HashMap<[u8; 32], AccessClaims>>,
}

impl Verifier {
    pub fn new(
        key: Arc<SigningKey>,
        issuer: String,
        audience: String,
        metadata_url: String,
    ) -> Self {
        Self {
            key,
            issuer,
            audience,
            metadata_url,
            live: RwLock::default(),
            verified: Mutex::default(),
        }
    }

    /// Replace the live grants with the store's unrevoked ones.
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let live = store
            .grants()?
            .into_iter()
            .filter_map(|grant| Some((grant.grant_id.clone(), live_grant(&grant)?)))
            .collect();
        *self.live.write() = live;
        Ok(())
    }

    /// A grant made or found live now.
    pub fn admit(&self, grant: &GrantRecord) {
        if let Some(live) = live_grant(grant) {
            self.live.write().insert(grant.grant_id.clone(), live);
        }
    }

    /// A grant revoked now: its tokens fail from the next request.
    pub fn forget(&self, grant_id: &str) {
        self.live.write().remove(grant_id);
    }

    fn claims(&self, token: &str) -> Option<AccessClaims> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_secs();
        if let Some(claims) = self.verified.lock().get(&digest)
            && claims.exp > now
        {
            return Some(claims.clone());
        }
        let claims = self.key.verify(token, &self.issuer, &self.audience)?;
        let mut verified = self.verified.lock();
        if verified.len() >= CACHE_CAPACITY {
            verified.retain(|_, claims| claims.exp > now);
            if verified.len() >= CACHE_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(digest, claims.clone());
        Some(claims)
    }
}

fn live_grant(grant: &GrantRecord) -> Option<LiveGrant> {
    if grant.revoked.is_some() {
        return None;
    }
    Some(LiveGrant {
        principal: grant.principal.clone(),
        parent: TokenDigest::from_hex(&grant.parent_sha256)?,
        role: grant.role.parse().ok()?,
    })
}

impl AccessTokenVerifier for Verifier {
    fn resource_metadata(&self) -> Option<&str> {
        Some(&self.metadata_url)
    }

    fn verify(&self, token: &str) -> Option<Delegation> {
        // Not a JWT: not ours (and not worth a parse).
        if token.bytes().filter(|&byte| byte == b'.').count() != 2 {
            return None;
        }
        let claims = self.claims(token)?;
        if claims.exp <= now_secs() {
            return None;
        }
        let live = self.live.read();
        let grant = live.get(&claims.gid)?;
        if grant.principal != claims.sub {
            return None;
        }
        let role = claims.role.parse::<Role>().ok()?.min(grant.role);
        Some(Delegation {
            principal: grant.principal.clone(),
            parent: grant.parent,
            role,
        })
    }
}
