//! Checking this server's own access tokens on every request: the JWT's signature,
//! issuer, audience and expiry, then that its grant is live *in memory* (grants revoked
//! here take effect at once; those revoked by `hostmcp oauth` within
//! [`GRANT_RELOAD_INTERVAL`]). A verified token is remembered by its SHA-256 until it
//! expires, so a client's next calls skip the signature check (an ECDSA verify costs
//! more than the rest of authentication). What the token stands for becomes a principal
//! in `crate::auth::access_token`, from the parent token's current entry.
//!
//! Each live grant keeps a [`DelegatedLease`] (a child of its parent token's lease) for as
//! long as it stays live, so the principals made from its tokens hold one lease: when the
//! grant leaves the live set (revoked here by [`Verifier::forget`], or found revoked in
//! the store by [`Verifier::reload`]), that lease is revoked and, under
//! `on_revoke = "kill"`, the grant's sessions, streams, calls, jobs and terminals end, as
//! they do when a token is revoked. A grant revoked by `hostmcp oauth` is put on record
//! by the reload that finds it ([`Verifier::reload`] returns them).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};

use super::{
    keys::{AccessClaims, SigningKey},
    store::{GrantRecord, RevocationNote, Store, StoreError, now_secs},
};
use crate::{
    audit::AuditGrant,
    auth::{
        DelegatedLease, OnRevoke, Role, TokenDigest,
        access_token::{AccessTokenVerifier, DelegatedGrant, Delegation},
    },
};

/// How often the live grants are re-read from the store (revocations by the CLI).
pub const GRANT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Verified tokens remembered at most; the memory is cleared when full.
const CACHE_CAPACITY: usize = 4096;

/// A grant as a request needs it.
#[derive(Debug, Clone)]
struct LiveGrant {
    principal: String,
    parent: TokenDigest,
    role: Role,
    /// Its lease and identity, the same for every request while the grant is live.
    grant: DelegatedGrant,
    /// When it became live here.
    admitted_at: Instant,
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
    /// What revoking a grant does to its work (the server's `on_revoke`).
    on_revoke: OnRevoke,
}

impl Verifier {
    pub fn new(
        key: Arc<SigningKey>,
        issuer: String,
        audience: String,
        metadata_url: String,
        on_revoke: OnRevoke,
    ) -> Self {
        Self {
            key,
            issuer,
            audience,
            metadata_url,
            live: RwLock::default(),
            verified: Mutex::default(),
            on_revoke,
        }
    }

    /// Make the live grants the store's unrevoked ones: grants no longer live there are
    /// forgotten (their work ends, see [`Self::forget`]), the others keep their lease. Says
    /// which revocations made outside the server are not on record yet (and takes them
    /// off the store's list, so that one server records each once).
    pub fn reload(&self, store: &Store) -> Result<Vec<RevocationNote>, StoreError> {
        // A grant admitted after this instant may be missing from what is read below: it is
        // not gone.
        let read_at = Instant::now();
        let names: HashMap<String, String> = store
            .clients()?
            .into_iter()
            .map(|client| (client.client_id, client.client_name))
            .collect();
        let mut fresh = HashMap::new();
        let mut revoked = HashSet::new();
        for grant in store.grants()? {
            let name = names.get(&grant.client_id).map_or("", String::as_str);
            match live_grant(&grant, name) {
                Some(live) => {
                    fresh.insert(grant.grant_id, live);
                }
                None => {
                    revoked.insert(grant.grant_id);
                }
            }
        }
        let found = store.take_revocation_notes()?;
        let gone: Vec<LiveGrant> = {
            let mut live = self.live.write();
            let gone_ids: Vec<String> = (live.iter())
                .filter(|(id, grant)| {
                    revoked.contains(*id)
                        || (!fresh.contains_key(*id) && grant.admitted_at < read_at)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let gone = (gone_ids.iter()).filter_map(|id| live.remove(id)).collect();
            for (id, grant) in fresh {
                live.entry(id).or_insert(grant);
            }
            gone
        };
        for grant in gone {
            grant.grant.lease.revoke(self.on_revoke);
        }
        Ok(found)
    }

    /// A grant made or found live now; `client_name` is its client's registered name.
    pub fn admit(&self, grant: &GrantRecord, client_name: &str) {
        if let Some(live) = live_grant(grant, client_name) {
            self.live
                .write()
                .entry(grant.grant_id.clone())
                .or_insert(live);
        }
    }

    /// A grant revoked now: its tokens fail from the next request, and its work ends
    /// under `on_revoke = "kill"`.
    pub fn forget(&self, grant_id: &str) {
        let gone = self.live.write().remove(grant_id);
        if let Some(grant) = gone {
            grant.grant.lease.revoke(self.on_revoke);
        }
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

fn live_grant(grant: &GrantRecord, client_name: &str) -> Option<LiveGrant> {
    if grant.revoked.is_some() {
        return None;
    }
    Some(LiveGrant {
        principal: grant.principal.clone(),
        parent: TokenDigest::from_hex(&grant.parent_sha256)?,
        role: grant.role.parse().ok()?,
        admitted_at: Instant::now(),
        grant: DelegatedGrant {
            lease: DelegatedLease::default(),
            identity: Arc::new(AuditGrant::new(
                &grant.grant_id,
                &grant.client_id,
                client_name,
            )),
        },
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
            grant: Some(grant.grant.clone()),
        })
    }
}
