//! The `[fleet]` table and the `--fleet*` flags of `hostmcp serve`, resolved into one
//! checked [`FleetSettings`]: where to connect, as whom, under which name and labels, and
//! whom to trust ([`super::trust::FleetTrust`]). Errors name the key and say what to write.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

use super::{
    protocol::{HostName, HostNameError, PublicKey},
    trust::FleetTrust,
};
use crate::{auth::Role, cli::FleetArgs};

/// The `[fleet]` table as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFleet {
    /// NATS server URLs, comma separated (nats:// or tls://); the fleet is on when set.
    pub url: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub nkey_file: Option<PathBuf>,
    pub creds_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// false: serve the fleet only, no HTTP listener.
    pub http: Option<bool>,
    /// Gateways' ed25519 public keys (nkey `A…` or base64) whose requests are considered.
    #[serde(default)]
    pub trusted_gateways: Vec<String>,
    /// The local role of a fleet principal `[fleet.principals]` does not name; absent: none.
    pub default_role: Option<String>,
    /// `[fleet.principals]`: gateway principal -> local role.
    #[serde(default)]
    pub principals: BTreeMap<String, String>,
}

/// How the host authenticates to NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials (a server without authorization; tests and closed networks).
    None,
    /// An nkey seed file.
    Nkey(PathBuf),
    /// A NATS user credentials file (JWT and seed).
    Creds(PathBuf),
}

/// The checked fleet settings of a host.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub servers: Vec<String>,
    pub name: HostName,
    pub labels: BTreeMap<String, String>,
    pub auth: NatsAuth,
    pub ca_file: Option<PathBuf>,
    /// Whether the HTTP listener serves too.
    pub http: bool,
    pub trust: FleetTrust,
}

/// A `[fleet]` table or `--fleet*` flag that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetConfigError {
    #[error("[fleet] url / --fleet: {0:?} is not a nats:// or tls:// URL")]
    BadUrl(String),
    #[error("[fleet] name / --fleet-name: {0}")]
    BadName(HostNameError),
    #[error("the hostname {hostname:?} is no fleet name: {error}")]
    BadHostname {
        hostname: String,
        error: HostNameError,
    },
    #[error("[fleet] labels / --fleet-label: {0}")]
    BadLabel(String),
    #[error("[fleet]: nkey_file and creds_file are alternatives; give one")]
    TwoCredentials,
    #[error("[fleet] trusted_gateways: {0}")]
    BadGateway(String),
    #[error("[fleet] trusts no gateway: every fleet request would be refused")]
    NoGateway,
    #[error("[fleet] {key}: unknown role {role:?}")]
    BadRole { key: String, role: String },
    #[error("--no-http / [fleet] http = false needs the fleet (--fleet URL or [fleet] url)")]
    NoHttpWithoutFleet,
    #[error("[fleet] {key}: cannot read {path}: {message}")]
    BadFile {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl FleetConfigError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "e.g. --fleet nats://hub.example:4222 or url = \"tls://hub:4222\"",
            Self::BadName(_) | Self::BadHostname { .. } => {
                "set --fleet-name or [fleet] name to 1-63 letters, digits, '-' or '_'"
            }
            Self::BadLabel(_) => "labels are key=value, e.g. --fleet-label env=prod",
            Self::TwoCredentials => "keep nkey_file (--fleet-nkey) or creds_file (--fleet-creds)",
            Self::BadGateway(_) | Self::NoGateway => {
                "`hostmcp gateway key` prints the gateway's public key; list it in [fleet] trusted_gateways"
            }
            Self::BadRole { .. } => "a role is one of: read, operator, admin",
            Self::NoHttpWithoutFleet => "add --fleet nats://HOST:PORT, or drop --no-http",
            Self::BadFile { .. } => "check the path and that this user may read it",
        }
    }
}

/// The fleet settings of `args` over `file`: `None` when neither turns the fleet on.
pub fn resolve(
    args: &FleetArgs,
    file: Option<&FileFleet>,
) -> Result<Option<FleetSettings>, FleetConfigError> {
    let empty = FileFleet::default();
    let file = file.unwrap_or(&empty);
    // The trust is checked whenever a [fleet] table is written, on or not (`hostmcp check`).
    let trust = resolve_trust(file)?;
    let servers = if args.fleet.is_empty() {
        file.url
            .as_deref()
            .map(|urls| urls.split(',').map(|url| url.trim().to_owned()).collect())
            .unwrap_or_default()
    } else {
        args.fleet.clone()
    };
    let http = !args.no_http && file.http.unwrap_or(true);
    if servers.is_empty() {
        return if http {
            Ok(None)
        } else {
            Err(FleetConfigError::NoHttpWithoutFleet)
        };
    }
    for server in &servers {
        let scheme_ok = ["nats://", "tls://"]
            .iter()
            .any(|scheme| server.starts_with(scheme) && server.len() > scheme.len());
        if !scheme_ok {
            return Err(FleetConfigError::BadUrl(server.clone()));
        }
    }
    let name = match args.name.as_deref().or(file.name.as_deref()) {
        Some(name) => name.parse().map_err(FleetConfigError::BadName)?,
        None => {
            let hostname = nix::unistd::gethostname()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            HostName::from_hostname(&hostname)
                .map_err(|error| FleetConfigError::BadHostname { hostname, error })?
        }
    };
    let mut labels = file.labels.clone();
    for label in &args.labels {
        let (key, value) = label
            .split_once('=')
            .ok_or_else(|| FleetConfigError::BadLabel(format!("{label:?} has no '='")))?;
        labels.insert(key.to_owned(), value.to_owned());
    }
    for (key, value) in &labels {
        check_label(key, value)?;
    }
    let nkey = args.nkey.clone().or_else(|| file.nkey_file.clone());
    let creds = args.creds.clone().or_else(|| file.creds_file.clone());
    let auth = match (nkey, creds) {
        (Some(_), Some(_)) => return Err(FleetConfigError::TwoCredentials),
        (Some(path), None) => NatsAuth::Nkey(path),
        (None, Some(path)) => NatsAuth::Creds(path),
        (None, None) => NatsAuth::None,
    };
    if trust.gateway_count() == 0 {
        return Err(FleetConfigError::NoGateway);
    }
    Ok(Some(FleetSettings {
        servers,
        name,
        labels,
        auth,
        ca_file: args.ca.clone().or_else(|| file.ca_file.clone()),
        http,
        trust,
    }))
}

fn resolve_trust(file: &FileFleet) -> Result<FleetTrust, FleetConfigError> {
    let gateways = file
        .trusted_gateways
        .iter()
        .map(|key| {
            key.parse::<PublicKey>()
                .map_err(|error| FleetConfigError::BadGateway(error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let role = |key: String, role: &str| {
        role.parse::<Role>().map_err(|_| FleetConfigError::BadRole {
            key,
            role: role.to_owned(),
        })
    };
    let principals = file
        .principals
        .iter()
        .map(|(principal, name)| {
            Ok((
                principal.clone(),
                role(format!("principals.{principal:?}"), name)?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, FleetConfigError>>()?;
    let default_role = file
        .default_role
        .as_deref()
        .map(|name| role("default_role".to_owned(), name))
        .transpose()?;
    Ok(FleetTrust::new(gateways, principals, default_role))
}

/// At most 32 labels; keys of `[A-Za-z0-9_.-]` (1-63), values of printable ASCII (0-255).
fn check_label(key: &str, value: &str) -> Result<(), FleetConfigError> {
    let key_ok = !key.is_empty()
        && key.len() <= 63
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !key_ok {
        return Err(FleetConfigError::BadLabel(format!(
            "key {key:?} is not 1-63 letters, digits, '_', '.' or '-'"
        )));
    }
    if value.len() > 255 || !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(FleetConfigError::BadLabel(format!(
            "the value of {key:?} is not up to 255 printable ASCII characters"
        )));
    }
    Ok(())
}

impl FleetSettings {
    /// Read the credential and CA files now, so a missing or unreadable one is reported
    /// before the agent starts (and by `hostmcp check`).
    pub fn check_files(&self) -> Result<(), FleetConfigError> {
        let read = |key: &'static str, path: &PathBuf| {
            std::fs::read(path)
                .map(drop)
                .map_err(|error| FleetConfigError::BadFile {
                    key,
                    path: path.clone(),
                    message: error.to_string(),
                })
        };
        match &self.auth {
            NatsAuth::None => {}
            NatsAuth::Nkey(path) => {
                let seed =
                    std::fs::read_to_string(path).map_err(|error| FleetConfigError::BadFile {
                        key: "nkey_file",
                        path: path.clone(),
                        message: error.to_string(),
                    })?;
                nkeys::KeyPair::from_seed(seed.trim()).map_err(|_| FleetConfigError::BadFile {
                    key: "nkey_file",
                    path: path.clone(),
                    message: "not an nkey seed (S…)".to_owned(),
                })?;
            }
            NatsAuth::Creds(path) => read("creds_file", path)?,
        }
        if let Some(path) = &self.ca_file {
            read("ca_file", path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
