//! The authorization server's durable state, in one redb file (mode 0600) that survives a
//! restart and that `hostmcp oauth` opens beside a running server (redb's `MultiWriter`
//! mode): registered clients, grants (principal, role, parent token, scope, resource),
//! authorization codes and refresh tokens. Codes and refresh tokens are keyed by their
//! SHA-256 only: the store never holds a secret. Records are JSON values, so a field can
//! be added without a migration.

use std::{
    fs::OpenOptions,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

const CLIENTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("clients");
const GRANTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("grants");
const CODES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("codes");
const REFRESH: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("refresh_tokens");
/// Revocations made by `hostmcp oauth` that the server has not put on record yet.
const NOTES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("revocation_notes");

/// A revocation made outside the server (`hostmcp oauth ... revoke`), waiting in the store
/// until a server puts it on record (the audit log is the running server's; the command
/// cannot write it). Kept until then, even across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationNote {
    /// `grant` or `client`.
    pub kind: RevokedKind,
    /// The grant id or the client id.
    pub id: String,
    /// The client of the grant (the client itself for `client`).
    pub client_id: String,
    /// The principal the grant acted as (`None` for a client).
    pub principal: Option<String>,
    /// Who revoked it: the Unix user that ran the command.
    pub by: String,
    /// When, in seconds since the epoch.
    pub at: u64,
}

/// What a [`RevocationNote`] revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedKind {
    Grant,
    Client,
}

/// A registered client (RFC 7591; public, `token_endpoint_auth_method` none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// When a grant was last made for it; `None`: never used.
    pub last_used_at: Option<u64>,
    /// Revoked by the operator: no new authorization, its grants revoked.
    #[serde(default)]
    pub revoked: bool,
}

/// What an owner approved: a client acting as a principal, with a role no higher than the
/// parent token's, for this server's resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub grant_id: String,
    pub client_id: String,
    /// The parent token's name: the principal the grant acts as.
    pub principal: String,
    /// SHA-256 (hex) of the parent token, as in `[[tokens]] sha256`: the grant dies with it.
    pub parent_sha256: String,
    pub role: String,
    pub scope: String,
    pub resource: String,
    pub created_at: u64,
    /// Why it was revoked, once it was (`revoked`, `refresh_reuse`, `code_reuse`, ...).
    pub revoked: Option<String>,
}

/// An authorization code waiting for its token request (single use, short-lived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: u64,
    /// Redeemed already: a second redemption revokes the grant (RFC 6749 §4.1.2).
    pub used: bool,
}

/// One refresh token of a grant's family. Rotated ones are kept (marked) until they
/// expire, so that their reuse is recognized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub grant_id: String,
    pub expires_at: u64,
    pub rotated: bool,
}

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the OAuth store {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("OAuth store: {0}")]
    Db(#[from] redb::Error),
    #[error("OAuth store record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The open store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

/// Seconds since the epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The key a secret is stored under: its SHA-256, in hex.
pub fn secret_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn db_error(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(error.into())
}

impl Store {
    /// Open (creating, mode 0600, in a 0700 directory) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let create = |source| StoreError::Create {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(create)?;
        }
        // Create the file with its mode first: redb would create it with the umask's.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(create)?;
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .set_cache_size(4 * 1024 * 1024)
            .create(path)
            .map_err(db_error)?;
        let txn = db.begin_write().map_err(db_error)?;
        for table in [CLIENTS, GRANTS, CODES, REFRESH, NOTES] {
            txn.open_table(table).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(Self { db })
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value)?;
        let txn = self.db.begin_write().map_err(db_error)?;
        txn.open_table(table)
            .map_err(db_error)?
            .insert(key, bytes.as_slice())
            .map_err(db_error)?;
        txn.commit().map_err(db_error)
    }

    fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(table).map_err(db_error)?;
        match table.get(key).map_err(db_error)? {
            Some(value) => Ok(Some(serde_json::from_slice(value.value())?)),
            None => Ok(None),
        }
    }

    fn all<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(table).map_err(db_error)?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(db_error)? {
            let (_, value) = entry.map_err(db_error)?;
            records.push(serde_json::from_slice(value.value())?);
        }
        Ok(records)
    }

    /// Change one record in a write transaction: `change` gets the current value (if any)
    /// and returns the new one (`None`: leave it) and a result.
    fn update<T, R>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
        change: impl FnOnce(Option<T>) -> (Option<T>, R),
    ) -> Result<R, StoreError>
    where
        T: Serialize + DeserializeOwned,
    {
        let txn = self.db.begin_write().map_err(db_error)?;
        let result = {
            let mut table = txn.open_table(table).map_err(db_error)?;
            let current = match table.get(key).map_err(db_error)? {
                Some(value) => Some(serde_json::from_slice(value.value())?),
                None => None,
            };
            let (next, result) = change(current);
            if let Some(next) = next {
                let bytes = serde_json::to_vec(&next)?;
                table.insert(key, bytes.as_slice()).map_err(db_error)?;
            }
            result
        };
        txn.commit().map_err(db_error)?;
        Ok(result)
    }

    pub fn put_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.put(CLIENTS, &client.client_id, client)
    }

    pub fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.get(CLIENTS, client_id)
    }

    pub fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.all(CLIENTS)
    }

    /// Drop clients never used within `unused_ttl` of their registration, then the oldest
    /// unused ones until fewer than `max` remain. Returns how many were dropped.
    pub fn prune_clients(
        &self,
        max: usize,
        unused_ttl: u64,
        now: u64,
    ) -> Result<usize, StoreError> {
        let mut clients: Vec<ClientRecord> = self.clients()?;
        let mut doomed: Vec<String> = clients
            .iter()
            .filter(|client| {
                client.last_used_at.is_none() && client.created_at.saturating_add(unused_ttl) <= now
            })
            .map(|client| client.client_id.clone())
            .collect();
        clients.retain(|client| !doomed.contains(&client.client_id));
        if clients.len() >= max {
            clients.sort_by_key(|client| client.last_used_at.unwrap_or(client.created_at));
            let excess = clients.len() + 1 - max;
            doomed.extend(
                clients
                    .iter()
                    .filter(|client| client.last_used_at.is_none())
                    .take(excess)
                    .map(|client| client.client_id.clone()),
            );
        }
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut table = txn.open_table(CLIENTS).map_err(db_error)?;
            for id in &doomed {
                table.remove(id.as_str()).map_err(db_error)?;
            }
        }
        txn.commit().map_err(db_error)?;
        Ok(doomed.len())
    }

    /// Mark a client used now.
    pub fn touch_client(&self, client_id: &str, now: u64) -> Result<(), StoreError> {
        self.update(CLIENTS, client_id, |client: Option<ClientRecord>| {
            (
                client.map(|client| ClientRecord {
                    last_used_at: Some(now),
                    ..client
                }),
                (),
            )
        })
    }

    /// Revoke a client and every grant it holds. False: no such client.
    pub fn revoke_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let found = self.update(
            CLIENTS,
            client_id,
            |client: Option<ClientRecord>| match client {
                Some(client) => (
                    Some(ClientRecord {
                        revoked: true,
                        ..client
                    }),
                    true,
                ),
                None => (None, false),
            },
        )?;
        if found {
            for grant in self.grants()? {
                if grant.client_id == client_id {
                    self.revoke_grant(&grant.grant_id, "client_revoked")?;
                }
            }
        }
        Ok(found)
    }

    /// Put a revocation made outside the server on the list the server audits.
    pub fn note_revocation(&self, note: &RevocationNote) -> Result<(), StoreError> {
        let key = format!(
            "{}:{}:{}",
            match note.kind {
                RevokedKind::Grant => "grant",
                RevokedKind::Client => "client",
            },
            note.id,
            note.at
        );
        self.put(NOTES, &key, note)
    }

    /// Take every noted revocation off the list (a read first: the list is usually empty,
    /// and this runs every couple of seconds).
    pub fn take_revocation_notes(&self) -> Result<Vec<RevocationNote>, StoreError> {
        if self.all::<RevocationNote>(NOTES)?.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut notes = Vec::new();
        {
            let mut table = txn.open_table(NOTES).map_err(db_error)?;
            for entry in table.iter().map_err(db_error)? {
                let (_, value) = entry.map_err(db_error)?;
                notes.push(serde_json::from_slice(value.value())?);
            }
            table.retain(|_, _| false).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        notes.sort_by_key(|note: &RevocationNote| note.at);
        Ok(notes)
    }

    pub fn put_grant(&self, grant: &GrantRecord) -> Result<(), StoreError> {
        self.put(GRANTS, &grant.grant_id, grant)
    }

    pub fn grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        self.get(GRANTS, grant_id)
    }

    pub fn grants(&self) -> Result<Vec<GrantRecord>, StoreError> {
        self.all(GRANTS)
    }

    /// Revoke a grant (once; the first reason stays). `Some(true)`: revoked now,
    /// `Some(false)`: it already was, `None`: no such grant.
    pub fn revoke_grant(&self, grant_id: &str, reason: &str) -> Result<Option<bool>, StoreError> {
        self.update(GRANTS, grant_id, |grant: Option<GrantRecord>| match grant {
            Some(grant) if grant.revoked.is_none() => (
                Some(GrantRecord {
                    revoked: Some(reason.to_owned()),
                    ..grant
                }),
                Some(true),
            ),
            Some(_) => (None, Some(false)),
            None => (None, None),
        })
    }

    /// Keep a new code under its hash.
    pub fn put_code(&self, code: &str, record: &CodeRecord) -> Result<(), StoreError> {
        self.put(CODES, &secret_key(code), record)
    }

    /// Redeem a code: its record as it was (`used` tells a reuse), marking it used.
    pub fn redeem_code(&self, code: &str) -> Result<Option<CodeRecord>, StoreError> {
        self.update(CODES, &secret_key(code), |record: Option<CodeRecord>| {
            let marked = record.clone().map(|record| CodeRecord {
                used: true,
                ..record
            });
            (marked, record)
        })
    }

    /// Keep a new refresh token under its hash.
    pub fn put_refresh(&self, token: &str, record: &RefreshRecord) -> Result<(), StoreError> {
        self.put(REFRESH, &secret_key(token), record)
    }

    /// Rotate a refresh token: its record as it was (`rotated` tells a reuse), marking it
    /// rotated.
    pub fn rotate_refresh(&self, token: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.update(
            REFRESH,
            &secret_key(token),
            |record: Option<RefreshRecord>| {
                let marked = record.clone().map(|record| RefreshRecord {
                    rotated: true,
                    ..record
                });
                (marked, record)
            },
        )
    }

    /// The record of a refresh token, without changing it.
    pub fn refresh(&self, token: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.get(REFRESH, &secret_key(token))
    }

    /// Forget expired codes and refresh tokens. Returns how many went.
    pub fn sweep(&self, now: u64) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut removed = 0;
        {
            let mut codes = txn.open_table(CODES).map_err(db_error)?;
            codes
                .retain(|_, value| {
                    let keep = serde_json::from_slice::<CodeRecord>(value)
                        .is_ok_and(|record| record.expires_at.saturating_add(600) > now);
                    removed += usize::from(!keep);
                    keep
                })
                .map_err(db_error)?;
            let mut refresh = txn.open_table(REFRESH).map_err(db_error)?;
            refresh
                .retain(|_, value| {
                    let keep = serde_json::from_slice::<RefreshRecord>(value)
                        .is_ok_and(|record| record.expires_at > now);
                    removed += usize::from(!keep);
                    keep
                })
                .map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn grant(id: &str) -> GrantRecord {
        GrantRecord {
            grant_id: id.to_owned(),
            client_id: "c1".to_owned(),
            principal: "alice".to_owned(),
            parent_sha256: "00".repeat(32),
            role: "read".to_owned(),
            scope: "hostmcp".to_owned(),
            resource: "https://h/mcp".to_owned(),
            created_at: 1,
            revoked: None,
        }
    }

    #[test]
    fn the_file_is_private_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/oauth.redb");
        {
            let store = Store::open(&path).unwrap();
            store.put_grant(&grant("g1")).unwrap();
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.grant("g1").unwrap(), Some(grant("g1")));
        assert_eq!(store.grant("g2").unwrap(), None);
    }

    #[test]
    fn a_second_handle_sees_revocations_made_by_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauth.redb");
        let server = Store::open(&path).unwrap();
        server.put_grant(&grant("g1")).unwrap();
        let cli = Store::open(&path).unwrap();
        assert_eq!(cli.revoke_grant("g1", "revoked").unwrap(), Some(true));
        assert_eq!(cli.revoke_grant("g1", "again").unwrap(), Some(false));
        assert_eq!(cli.revoke_grant("nope", "revoked").unwrap(), None);
        assert_eq!(
            server.grant("g1").unwrap().unwrap().revoked.as_deref(),
            Some("revoked")
        );
    }

    #[test]
    fn a_code_redeems_once_and_its_second_redemption_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("o.redb")).unwrap();
        let record = CodeRecord {
            grant_id: "g".to_owned(),
            client_id: "c".to_owned(),
            redirect_uri: "http://127.0.0.1/cb".to_owned(),
            code_challenge: "x".to_owned(),
            expires_at: 10,
            used: false,
        };
        store.put_code("the-code", &record).unwrap();
        assert_eq!(store.redeem_code("the-code").unwrap(), Some(record));
        assert!(store.redeem_code("the-code").unwrap().unwrap().used);
        assert_eq!(store.redeem_code("the-codf").unwrap(), None);
        assert_eq!(store.sweep(10_000).unwrap(), 1);
        assert_eq!(store.redeem_code("the-code").unwrap(), None);
    }

    #[test]
    fn unused_clients_expire_and_the_cap_drops_the_oldest_unused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("o.redb")).unwrap();
        let client = |id: &str, created_at, used| ClientRecord {
            client_id: id.to_owned(),
            client_name: id.to_owned(),
            redirect_uris: vec![],
            created_at,
            last_used_at: used,
            revoked: false,
        };
        store.put_client(&client("old", 0, None)).unwrap();
        store.put_client(&client("used", 0, Some(5))).unwrap();
        store.put_client(&client("new1", 90, None)).unwrap();
        store.put_client(&client("new2", 95, None)).unwrap();
        // TTL 50 at 100: "old" expires; cap 3 then drops the oldest unused, "new1".
        assert_eq!(store.prune_clients(3, 50, 100).unwrap(), 2);
        let mut left: Vec<_> = store
            .clients()
            .unwrap()
            .into_iter()
            .map(|client| client.client_id)
            .collect();
        left.sort();
        assert_eq!(left, ["new2", "used"]);
    }
}
