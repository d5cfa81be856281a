//! The TOML config file: its schema, parsed strictly so a typo is an error, not a silence.

use std::{net::SocketAddr, path::Path};

use serde::Deserialize;

use super::ConfigError;

/// The file as written. Every field is optional; `Config::resolve` fills the gaps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<Vec<SocketAddr>>,
    pub no_auth: Option<bool>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub tokens: Vec<FileToken>,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub jobs: FileJobs,
    /// The `[terminals]` table (see `crate::terminals`).
    #[serde(default)]
    pub terminals: crate::terminals::FileTerminals,
    /// The `[approval]` table (see `crate::approval`).
    #[serde(default)]
    pub approval: crate::approval::FileApproval,
    #[serde(default)]
    pub audit: FileAudit,
    #[serde(default)]
    pub tls: FileTls,
    /// Plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    pub allow_plaintext: Option<bool>,
    /// The Unix user commands run as when a token names none (when hostmcp runs as root).
    pub run_as: Option<String>,
    /// The `[policy]` table: what operators may run (see `crate::policy`).
    pub policy: Option<crate::policy::PolicyConfig>,
    /// What revoking or expiring a token does to what it runs: "kill" (default) or "finish".
    pub on_revoke: Option<crate::auth::OnRevoke>,
    /// Reverse proxies (CIDR networks or addresses) whose forwarding headers name the client.
    pub trusted_proxies: Option<Vec<crate::auth::client_address::ProxyNet>>,
    /// The `[connections]` table (see `super::connections`).
    #[serde(default)]
    pub connections: super::connections::FileConnections,
    /// The `[files]` table: the roots the file tools may reach (see `crate::files`).
    #[serde(default)]
    pub files: crate::files::FilesConfig,
    /// The `[systemd]` and `[logs]` tables (see `super::services`).
    #[serde(default)]
    pub systemd: super::services::FileSystemd,
    #[serde(default)]
    pub logs: super::services::FileLogs,
    /// The `[log]` table.
    #[serde(default)]
    pub log: FileLog,
    /// The `[metrics]` table: present, it serves `/metrics` (unless `enabled = false`).
    pub metrics: Option<FileMetrics>,
    /// The address clients reach the server at (`--public-url`): OAuth's URLs derive from it.
    pub public_url: Option<String>,
    /// The `[oauth]` table: the embedded authorization server (see `crate::oauth`).
    pub oauth: Option<crate::oauth::settings::FileOAuth>,
    /// The `[auth]` table: the API-key header and outside identity providers.
    #[serde(default)]
    pub auth: FileAuth,
    /// The `[confinement]` table.
    #[serde(default)]
    pub confinement: FileConfinement,
    /// The `[fleet]` table: join a fleet over NATS (see `crate::fleet::settings`).
    pub fleet: Option<crate::fleet::settings::FileFleet>,
}

/// The `[auth]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    /// A header that may carry a token instead of `Authorization: Bearer` (e.g. "X-API-Key");
    /// off when absent.
    pub api_key_header: Option<String>,
    /// `[[auth.issuers]]`: outside identity providers whose JWT access tokens are accepted.
    #[serde(default)]
    pub issuers: Vec<crate::auth::jwt::IssuerFile>,
}

/// The `[log]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    /// "text" (the default) or "json"; `--log-format` wins.
    pub format: Option<crate::cli::LogFormat>,
}

/// The `[metrics]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetrics {
    /// false: no `/metrics`, though the table is there.
    pub enabled: Option<bool>,
    /// A file holding a scrape token: with it, `/metrics` is served off loopback too.
    pub token_file: Option<std::path::PathBuf>,
}

/// The `[tls]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    /// `[tls.acme]`: certificates from an ACME CA instead of files (see `super::acme`).
    pub acme: Option<super::acme::FileAcme>,
}

/// The `[audit]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAudit {
    /// false: no audit file (records go to the log only).
    pub enabled: Option<bool>,
    pub path: Option<std::path::PathBuf>,
    /// false: write the values of environment variables given to commands.
    pub redact_env_values: Option<bool>,
    /// The audit key file (`hostmcp audit keygen`): seal each line and keep an anchor file.
    pub key_file: Option<std::path::PathBuf>,
}

/// One `[[tokens]]` entry: a name and the SHA-256 of the token, never the token itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileToken {
    pub name: String,
    pub sha256: String,
    pub role: Option<String>,
    /// When the token stops working, e.g. `2027-01-31T00:00:00Z` (a TOML date-time).
    pub expires: Option<toml::value::Datetime>,
    /// The Unix user this token's commands run as (when hostmcp runs as root).
    pub run_as: Option<String>,
    /// Resource limits of this token's commands (a policy rule's stricter ones win).
    pub limits: Option<crate::exec::ResourceLimits>,
    /// Roots this token's commands may read beneath (Landlock; a rule's roots apply too).
    pub fs_read: Option<Vec<std::path::PathBuf>>,
    /// Roots this token's commands may read and write beneath.
    pub fs_write: Option<Vec<std::path::PathBuf>>,
    /// `"none"`, `"any"` or `{ connect = ["*:443"] }`: this token's commands' network.
    pub network: Option<crate::reach::NetworkWritten>,
}

/// The `[confinement]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfinement {
    /// true: where the host cannot enforce a configured fs root or network rule (no
    /// Landlock, an old ABI), run commands without it (with a warning) instead of refusing
    /// to start.
    pub degrade: Option<bool>,
    /// cgroup v2: the delegated cgroup (a directory under /sys/fs/cgroup) commands' cgroups
    /// are made in, instead of the server's own.
    pub cgroup_parent: Option<std::path::PathBuf>,
}

/// The `[limits]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub default_timeout_secs: Option<u64>,
    pub max_timeout_secs: Option<u64>,
    pub max_output_bytes: Option<usize>,
    pub max_concurrent_commands: Option<usize>,
    pub max_concurrent_per_principal: Option<usize>,
    pub auth_failures_per_minute: Option<u32>,
    pub tool_calls_per_minute: Option<u32>,
    /// Bytes of one whole serialized tool result.
    pub result_budget_bytes: Option<usize>,
}

/// The `[jobs]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileJobs {
    pub default_timeout_secs: Option<u64>,
    pub max_timeout_secs: Option<u64>,
    pub max_per_principal: Option<usize>,
    pub retained_bytes: Option<usize>,
    pub keep_finished_secs: Option<u64>,
}

impl FileConfig {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::ParseFile {
            path: path.to_owned(),
            message,
        })
    }

    /// Parse TOML text; the error message names the offending key and line.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }
}
