//! The `[[auth.issuers]]` entries: as written ([`IssuerFile`], parsed strictly) and checked
//! ([`IssuerSettings`]). URLs are `https`, or `http` on a loopback host only (a test identity
//! provider, a sidecar); algorithms are asymmetric ones only; every role named is a role.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use jsonwebtoken::Algorithm;
use reqwest::Url;
use serde::Deserialize;

use crate::auth::{Role, is_valid_token_name};

/// One `[[auth.issuers]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    /// A short label: principals are named `<name>:<principal claim>`.
    pub name: String,
    /// The issuer identifier, exactly as in the tokens' `iss`.
    pub issuer: String,
    /// Accepted `aud` values (one must be in the token's); default: this server's MCP URL,
    /// `<public_url>/mcp`, when a public URL is configured.
    pub audience: Option<Vec<String>>,
    /// Accepted `alg` values; default RS256 and ES256.
    pub algorithms: Option<Vec<String>>,
    /// Where the keys are; discovered from the issuer's metadata when absent.
    pub jwks_uri: Option<String>,
    /// The claim naming the principal; default `sub`. A dotted path reaches into objects.
    pub principal_claim: Option<String>,
    /// The claim holding roles, groups or scopes (a string, space-separated, or a list).
    pub role_claim: Option<String>,
    /// Claim value -> role (`read`, `operator`, `admin`).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// The role of a token none of whose values maps; absent: such tokens are refused.
    pub default_role: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`; default 60 s.
    pub leeway_secs: Option<u64>,
    /// CA certificates (PEM) for an issuer whose TLS certificate the host does not trust.
    pub ca_file: Option<PathBuf>,
    /// How long fetched keys are used before they are fetched again; default 600 s.
    pub jwks_refresh_secs: Option<u64>,
    /// The least time between two fetches (an unknown `kid` fetches at most this often);
    /// default 30 s.
    pub jwks_min_refresh_secs: Option<u64>,
    /// Timeout of one metadata or JWKS fetch; default 5 s.
    pub fetch_timeout_secs: Option<u64>,
}

/// One outside issuer, checked.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub jwks_uri: Option<Url>,
    pub principal_claim: String,
    pub role_claim: Option<String>,
    pub roles: BTreeMap<String, Role>,
    pub default_role: Option<Role>,
    pub leeway: Duration,
    pub ca_file: Option<PathBuf>,
    pub jwks_refresh: Duration,
    pub jwks_min_refresh: Duration,
    pub fetch_timeout: Duration,
}

/// Algorithms accepted when none are configured.
pub const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// An `[[auth.issuers]]` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerSettingsError {
    #[error("auth.issuers[{index}]: name {name:?} is not valid")]
    BadName { index: usize, name: String },
    #[error("auth.issuers: name {name:?} is used twice")]
    DuplicateName { name: String },
    #[error("auth.issuers[{index}]: {field} {url:?}: {reason}")]
    BadUrl {
        index: usize,
        field: &'static str,
        url: String,
        reason: &'static str,
    },
    #[error("auth.issuers[{index}]: audience is empty")]
    NoAudience { index: usize },
    #[error("auth.issuers[{index}]: no audience, and no public URL to default it to")]
    NoDefaultAudience { index: usize },
    #[error("auth.issuers[{index}]: algorithm {algorithm:?} is not accepted")]
    BadAlgorithm { index: usize, algorithm: String },
    #[error("auth.issuers[{index}]: {field} is empty")]
    EmptyClaim { index: usize, field: &'static str },
    #[error("auth.issuers[{index}]: unknown role {role:?}")]
    UnknownRole { index: usize, role: String },
    #[error(
        "auth.issuers[{index}]: no role can ever be given (no role_claim with roles, no default_role)"
    )]
    NoRoleSource { index: usize },
    #[error("auth.issuers[{index}]: {field} must be at least 1")]
    ZeroDuration { index: usize, field: &'static str },
}

impl IssuerSettingsError {
    /// What the user should do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::BadName { .. } | Self::DuplicateName { .. } => {
                "give each issuer its own name of 1-64 letters, digits, '-', '_' or '.'"
            }
            Self::BadUrl { .. } => {
                "use an https:// URL (http:// only for a loopback host), without query or fragment"
            }
            Self::NoAudience { .. } | Self::NoDefaultAudience { .. } => {
                "set audience = [\"https://<this server>/mcp\"], the value your identity provider puts in aud, or --public-url https://<this server> to default to it"
            }
            Self::BadAlgorithm { .. } => {
                "algorithms are RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA; never none or HS*"
            }
            Self::EmptyClaim { .. } => "name a claim, e.g. principal_claim = \"sub\"",
            Self::UnknownRole { .. } => "role is one of: read, operator, admin",
            Self::NoRoleSource { .. } => {
                "set role_claim and a [auth.issuers.roles] table, or default_role"
            }
            Self::ZeroDuration { .. } => "durations are whole seconds, at least 1",
        }
    }
}

/// Check every entry of `[[auth.issuers]]`; an entry without `audience` is refused.
pub fn resolve_issuers(files: &[IssuerFile]) -> Result<Vec<IssuerSettings>, IssuerSettingsError> {
    resolve_issuers_for(files, None)
}

/// Check every entry of `[[auth.issuers]]`; an entry without `audience` accepts
/// `default_audience` (this server's MCP URL, from its public URL), or is refused without.
pub fn resolve_issuers_for(
    files: &[IssuerFile],
    default_audience: Option<&str>,
) -> Result<Vec<IssuerSettings>, IssuerSettingsError> {
    let mut resolved: Vec<IssuerSettings> = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let settings = resolve_one(index, file, default_audience)?;
        if resolved.iter().any(|other| other.name == settings.name) {
            return Err(IssuerSettingsError::DuplicateName {
                name: settings.name,
            });
        }
        resolved.push(settings);
    }
    Ok(resolved)
}

fn resolve_one(
    index: usize,
    file: &IssuerFile,
    default_audience: Option<&str>,
) -> Result<IssuerSettings, IssuerSettingsError> {
    if !is_valid_token_name(&file.name) {
        return Err(IssuerSettingsError::BadName {
            index,
            name: file.name.clone(),
        });
    }
    check_url(index, "issuer", &file.issuer)?;
    let jwks_uri = file
        .jwks_uri
        .as_deref()
        .map(|uri| check_url(index, "jwks_uri", uri))
        .transpose()?;
    let audience = match (&file.audience, default_audience) {
        (Some(audience), _) => audience.clone(),
        (None, Some(default)) => vec![default.to_owned()],
        (None, None) => return Err(IssuerSettingsError::NoDefaultAudience { index }),
    };
    if audience.is_empty() || audience.iter().any(String::is_empty) {
        return Err(IssuerSettingsError::NoAudience { index });
    }
    let algorithms = match &file.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(names) if names.is_empty() => {
            return Err(IssuerSettingsError::BadAlgorithm {
                index,
                algorithm: String::new(),
            });
        }
        Some(names) => names
            .iter()
            .map(|name| {
                asymmetric_algorithm(name).ok_or_else(|| IssuerSettingsError::BadAlgorithm {
                    index,
                    algorithm: name.clone(),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let principal_claim = file.principal_claim.clone().unwrap_or_else(|| "sub".into());
    if principal_claim.is_empty() {
        return Err(IssuerSettingsError::EmptyClaim {
            index,
            field: "principal_claim",
        });
    }
    if file.role_claim.as_deref() == Some("") {
        return Err(IssuerSettingsError::EmptyClaim {
            index,
            field: "role_claim",
        });
    }
    let role = |name: &String| {
        name.parse::<Role>()
            .map_err(|_| IssuerSettingsError::UnknownRole {
                index,
                role: name.clone(),
            })
    };
    let roles = file
        .roles
        .iter()
        .map(|(value, name)| Ok((value.clone(), role(name)?)))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let default_role = file.default_role.as_ref().map(role).transpose()?;
    let maps = file.role_claim.is_some() && !roles.is_empty();
    if !maps && default_role.is_none() {
        return Err(IssuerSettingsError::NoRoleSource { index });
    }
    let seconds = |value: Option<u64>, default: u64, field: &'static str| match value {
        Some(0) => Err(IssuerSettingsError::ZeroDuration { index, field }),
        value => Ok(Duration::from_secs(value.unwrap_or(default))),
    };
    Ok(IssuerSettings {
        name: file.name.clone(),
        issuer: file.issuer.clone(),
        audience,
        algorithms,
        jwks_uri,
        principal_claim,
        role_claim: file.role_claim.clone(),
        roles,
        default_role,
        leeway: Duration::from_secs(file.leeway_secs.unwrap_or(60)),
        ca_file: file.ca_file.clone(),
        jwks_refresh: seconds(file.jwks_refresh_secs, 600, "jwks_refresh_secs")?,
        jwks_min_refresh: seconds(file.jwks_min_refresh_secs, 30, "jwks_min_refresh_secs")?,
        fetch_timeout: seconds(file.fetch_timeout_secs, 5, "fetch_timeout_secs")?,
    })
}

/// An algorithm that verifies with a public key; `None` for `none`, HS*, or no algorithm.
pub fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    let algorithm: Algorithm = name.parse().ok()?;
    match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
        other => Some(other),
    }
}

/// `https`, or `http` to a loopback host; no query, fragment or user info.
pub fn check_url(
    index: usize,
    field: &'static str,
    text: &str,
) -> Result<Url, IssuerSettingsError> {
    let bad = |reason| IssuerSettingsError::BadUrl {
        index,
        field,
        url: text.to_owned(),
        reason,
    };
    let url = Url::parse(text).map_err(|_| bad("not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("has a query, fragment or user"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(bad("plain http is allowed for loopback hosts only")),
        _ => Err(bad("not an https URL")),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}
