//! Whom a fleet host believes and what it lets them do: the gateways whose keys it trusts
//! ([`FleetTrust::check_gateway`]), the requests it has already acted on ([`ReplayCache`]),
//! and the local role of a fleet principal ([`FleetTrust::role_for`]). Made from the
//! `[fleet]` table ([`super::settings`]); pure but for the replay cache's clock.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

use super::protocol::{CLOCK_SKEW_MS, ErrorKind, PublicKey, Refusal};
use crate::auth::Role;

/// The gateways a host trusts and the roles it gives their callers.
#[derive(Debug, Clone, Default)]
pub struct FleetTrust {
    gateways: Vec<PublicKey>,
    /// `[fleet.principals]`: gateway principal -> local role.
    principals: BTreeMap<String, Role>,
    /// The role of a principal `principals` does not name; none: such a principal gets
    /// nothing.
    default_role: Option<Role>,
}

impl FleetTrust {
    pub fn new(
        gateways: Vec<PublicKey>,
        principals: BTreeMap<String, Role>,
        default_role: Option<Role>,
    ) -> Self {
        Self {
            gateways,
            principals,
            default_role,
        }
    }

    /// How many gateways are trusted.
    pub fn gateway_count(&self) -> usize {
        self.gateways.len()
    }

    /// A request signed by `signer` may be considered.
    pub fn check_gateway(&self, signer: &PublicKey) -> Result<(), Refusal> {
        if self.gateways.contains(signer) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorKind::NotTrusted,
                "the signing gateway is not in this host's [fleet] trusted_gateways",
            ))
        }
    }

    /// The local role of `principal`, whom the gateway says has the role `claimed`: the
    /// lesser of the two; nothing for a principal nobody mapped (without a default role).
    pub fn role_for(&self, principal: &str, claimed: &str) -> Result<Role, Refusal> {
        let claimed: Role = claimed.parse().map_err(|_| {
            Refusal::new(
                ErrorKind::Malformed,
                format!("unknown role {claimed:?} in the request"),
            )
        })?;
        let mapped = self
            .principals
            .get(principal)
            .copied()
            .or(self.default_role)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorKind::Denied,
                    format!(
                        "fleet principal {principal:?} has no role on this host ([fleet.principals])"
                    ),
                )
            })?;
        Ok(mapped.min(claimed))
    }
}

/// The (gateway, nonce) pairs of the requests a host accepted, each kept until its request
/// could no longer be accepted anyway (its expiry plus the clock skew allowance); bounded.
#[derive(Debug)]
pub struct ReplayCache {
    seen: Mutex<HashMap<(PublicKey, String), u64>>,
    capacity: usize,
}

/// How many nonces a host remembers at most: 60 s of requests at over 1,600 a second.
pub const REPLAY_CAPACITY: usize = 100_000;

impl Default for ReplayCache {
    fn default() -> Self {
        Self::with_capacity(REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Record the first use of `nonce` by `gateway`, for a request valid until
    /// `expires_at_ms`; a second use, while the first could still count, is a replay. A
    /// full cache refuses (busy) rather than forget a nonce that could still be replayed.
    pub fn first_use(
        &self,
        gateway: &PublicKey,
        nonce: &str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let mut seen = self.seen.lock();
        let key = (gateway.clone(), nonce.to_owned());
        if seen.contains_key(&key) {
            return Err(Refusal::new(
                ErrorKind::Replayed,
                "this request (gateway and nonce) was received before",
            ));
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, forget_at| *forget_at >= now_ms);
        }
        if seen.len() >= self.capacity {
            return Err(Refusal::new(
                ErrorKind::Busy,
                "too many requests within the validity window; retry shortly",
            ));
        }
        seen.insert(key, expires_at_ms.saturating_add(CLOCK_SKEW_MS));
        Ok(())
    }

    /// Forget the nonces whose requests have expired by `now_ms`.
    pub fn sweep(&self, now_ms: u64) {
        self.seen.lock().retain(|_, forget_at| *forget_at >= now_ms);
    }

    pub fn len(&self) -> usize {
        self.seen.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        nkeys::KeyPair::new_account().public_key().parse().unwrap()
    }

    #[test]
    fn only_listed_gateways_are_trusted() {
        let (trusted, stranger) = (key(), key());
        let trust = FleetTrust::new(vec![trusted.clone()], BTreeMap::new(), None);
        assert!(trust.check_gateway(&trusted).is_ok());
        assert_eq!(
            trust.check_gateway(&stranger).unwrap_err().kind,
            ErrorKind::NotTrusted
        );
    }

    #[test]
    fn an_unmapped_principal_gets_nothing_without_a_default_role() {
        let principals = [("alice".to_owned(), Role::Operator)].into();
        let trust = FleetTrust::new(vec![], principals, None);
        assert_eq!(trust.role_for("alice", "admin").unwrap(), Role::Operator);
        assert_eq!(
            trust.role_for("mallory", "admin").unwrap_err().kind,
            ErrorKind::Denied
        );
        let with_default = FleetTrust::new(vec![], BTreeMap::new(), Some(Role::Read));
        assert_eq!(
            with_default.role_for("mallory", "admin").unwrap(),
            Role::Read
        );
    }

    #[test]
    fn the_role_is_never_above_what_the_gateway_vouches_for() {
        let principals = [("alice".to_owned(), Role::Admin)].into();
        let trust = FleetTrust::new(vec![], principals, None);
        assert_eq!(trust.role_for("alice", "read").unwrap(), Role::Read);
        assert_eq!(
            trust.role_for("alice", "root").unwrap_err().kind,
            ErrorKind::Malformed
        );
    }

    #[test]
    fn a_nonce_is_accepted_once_per_gateway() {
        let cache = ReplayCache::default();
        let (a, b) = (key(), key());
        assert!(cache.first_use(&a, "nonce-0123456789", 1_000, 0).is_ok());
        assert_eq!(
            cache
                .first_use(&a, "nonce-0123456789", 1_000, 10)
                .unwrap_err()
                .kind,
            ErrorKind::Replayed
        );
        // Another gateway's nonces are its own; another nonce is fine.
        assert!(cache.first_use(&b, "nonce-0123456789", 1_000, 10).is_ok());
        assert!(cache.first_use(&a, "nonce-9876543210", 1_000, 10).is_ok());
    }

    #[test]
    fn the_cache_forgets_only_what_could_no_longer_be_accepted() {
        let cache = ReplayCache::default();
        let a = key();
        cache.first_use(&a, "n-1", 1_000, 0).unwrap();
        cache.sweep(1_000 + CLOCK_SKEW_MS);
        assert_eq!(cache.len(), 1, "still inside the skew allowance");
        cache.sweep(1_000 + CLOCK_SKEW_MS + 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let cache = ReplayCache::with_capacity(2);
        let a = key();
        cache.first_use(&a, "n-1", 1_000, 0).unwrap();
        cache.first_use(&a, "n-2", 1_000, 0).unwrap();
        assert_eq!(
            cache.first_use(&a, "n-3", 1_000, 0).unwrap_err().kind,
            ErrorKind::Busy
        );
        // Once the first two have expired, room is made.
        assert!(
            cache
                .first_use(&a, "n-3", 1_000, 1_000 + CLOCK_SKEW_MS + 1)
                .is_ok()
        );
        assert_eq!(
            cache
                .first_use(&a, "n-3", 1_000, 1_000 + CLOCK_SKEW_MS + 2)
                .unwrap_err()
                .kind,
            ErrorKind::Replayed
        );
    }
}
