//! Helpers for the transport's unit tests: principals made the way the server makes
//! them (from tokens, each with a revocable lease), revoking one, and reading the
//! records an audit log has written.

use std::{path::Path, time::Duration};

use crate::{
    audit::AuditLog,
    auth::{
        OnRevoke, Principal, Role, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator,
        revocation::Revoker,
    },
};

/// Signs in the principals of a token set; the token of each is its name.
pub struct Tokens {
    authenticator: Authenticator,
}

fn entry(name: &str) -> TokenEntry {
    TokenEntry::new(name, TokenDigest::of_token(name), Role::Operator)
}

impl Tokens {
    pub fn new(names: &[&str]) -> Self {
        let entries = names.iter().map(|name| entry(name)).collect();
        Self {
            authenticator: Authenticator::tokens(TokenSet::new(entries)),
        }
    }

    pub fn login(&self, name: &str) -> Principal {
        let header = axum::http::HeaderValue::from_str(&format!("Bearer {name}")).unwrap();
        self.authenticator.authenticate(Some(&header)).unwrap()
    }

    /// Keep only `kept`, revoking the rest under `on_revoke = "kill"`, on record in `audit`.
    pub async fn keep_only(&self, kept: &[&str], audit: &AuditLog) {
        let entries = kept.iter().map(|name| entry(name)).collect();
        let revoked = self
            .authenticator
            .replace_tokens(TokenSet::new(entries))
            .unwrap();
        Revoker::new(OnRevoke::Kill, audit.clone())
            .enforce(revoked)
            .await;
    }
}

/// The records of the log at `path` whose event is `event`, once there are `count` of
/// them (waiting up to 10 s for records queued without waiting); fewer after that.
pub async fn records(path: &Path, event: &str, count: usize) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        found = text
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|record| record["event"] == event)
            .collect();
        if found.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}
