//! What the operator asked of the authorization server (`--public-url`, `--oauth`, the
//! `[oauth]` table), validated into [`OAuthSettings`]: the public URL every metadata URL
//! derives from (https unless its host is loopback), where the store lives, and the limits.
//! Pure: no I/O but the paths it names.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// The `[oauth]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOAuth {
    /// false: the table is there but OAuth is off.
    pub enabled: Option<bool>,
    /// The redb file. Default: `oauth.redb` in the server's state directory.
    pub store: Option<PathBuf>,
    /// Redirect URIs accepted besides the built-in ones (exact, or a prefix ending in `/`).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Registered clients kept at most (the oldest unused ones go first).
    pub max_clients: Option<usize>,
    /// Days a registered client that never got a grant is kept.
    pub unused_client_days: Option<u64>,
    /// Access-token lifetime in seconds.
    pub access_token_secs: Option<u64>,
    /// Refresh-token lifetime in days.
    pub refresh_token_days: Option<u64>,
    /// Fetch client ID metadata documents from private, loopback or link-local addresses
    /// too (tests, an intranet client). Default false.
    pub cimd_allow_private_networks: Option<bool>,
    /// CA certificates (PEM) trusted for client ID metadata documents instead of the host's
    /// trust store.
    pub cimd_ca_file: Option<PathBuf>,
}

/// The validated settings of the embedded authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// `scheme://host[:port]`, no trailing slash: the issuer and the base of every URL.
    pub public_url: String,
    pub store: PathBuf,
    pub extra_redirect_uris: Vec<String>,
    pub max_clients: usize,
    pub unused_client_ttl: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Client ID metadata documents may come from non-public addresses.
    pub cimd_allow_private_networks: bool,
    pub cimd_ca_file: Option<PathBuf>,
}

impl OAuthSettings {
    /// The issuer identifier (RFC 8414): the public URL with its root path, `https://host/`.
    /// With the slash because clients that parse it as a URL (the Python SDK, through
    /// pydantic) render it so, then compare the `iss` of the redirect (RFC 9207) with it as a
    /// string; clients that compare the raw strings find the same value everywhere.
    pub fn issuer(&self) -> String {
        format!("{}/", self.public_url)
    }

    /// The protected resource, as clients name it in `resource` and `aud`.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.public_url)
    }

    /// An endpoint of this server: `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The public URL's `host[:port]`, which the host guard must accept.
    pub fn public_host(&self) -> &str {
        host_of(&self.public_url)
    }

    /// Whether `resource` (RFC 8707) names this server's MCP endpoint (`/mcp` or `/mcp/`).
    pub fn is_own_resource(&self, resource: &str) -> bool {
        let own = self.resource();
        resource == own || resource.strip_suffix('/') == Some(own.as_str())
    }
}

/// The `host[:port]` of a normalized public URL.
pub fn host_of(public_url: &str) -> &str {
    public_url
        .split_once("://")
        .map_or(public_url, |(_, authority)| authority)
}

/// Registered clients kept unless configured.
pub const DEFAULT_MAX_CLIENTS: usize = 1000;
/// Days an unused registered client is kept unless configured.
pub const DEFAULT_UNUSED_CLIENT_DAYS: u64 = 7;
/// Access-token lifetime unless configured: an hour.
pub const DEFAULT_ACCESS_TOKEN_SECS: u64 = 3600;
/// Refresh-token lifetime unless configured.
pub const DEFAULT_REFRESH_TOKEN_DAYS: u64 = 30;

/// Why the OAuth settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OAuthConfigError {
    #[error("--oauth needs --public-url (the https:// address clients reach this server at)")]
    NoPublicUrl,
    #[error("public URL {0:?} is not an absolute http(s) URL with a host")]
    BadPublicUrl(String),
    #[error(
        "public URL {0:?} uses plain http off loopback: OAuth tokens would cross the network in clear"
    )]
    PlainHttpPublicUrl(String),
    #[error("public URL {0:?} has a path, query or fragment; give only scheme://host[:port]")]
    PublicUrlWithPath(String),
    #[error("[oauth] redirect_uris entry {0:?} is not an https URL (or http on loopback)")]
    BadRedirectUri(String),
    #[error("[oauth] {0} must be at least 1")]
    Zero(&'static str),
}

/// Resolve `--public-url`/`public_url`, `--oauth` and `[oauth]`: `None` when OAuth is off.
/// `state_dir` is where the store goes unless `[oauth] store` names a file.
pub fn resolve(
    public_url: Option<&str>,
    oauth_flag: bool,
    table: Option<&FileOAuth>,
    state_dir: impl FnOnce() -> Option<PathBuf>,
) -> Result<Option<OAuthSettings>, OAuthConfigError> {
    let enabled = oauth_flag || table.is_some_and(|table| table.enabled.unwrap_or(true));
    if !enabled {
        return Ok(None);
    }
    let public_url = normalize_public_url(public_url.ok_or(OAuthConfigError::NoPublicUrl)?)?;
    let empty = FileOAuth::default();
    let table = table.unwrap_or(&empty);
    for uri in &table.redirect_uris {
        if !is_acceptable_redirect_base(uri) {
            return Err(OAuthConfigError::BadRedirectUri(uri.clone()));
        }
    }
    let at_least_one = |value: u64, name| {
        if value == 0 {
            Err(OAuthConfigError::Zero(name))
        } else {
            Ok(value)
        }
    };
    let store = match &table.store {
        Some(path) => path.clone(),
        None => state_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("oauth.redb"),
    };
    Ok(Some(OAuthSettings {
        public_url,
        store,
        extra_redirect_uris: table.redirect_uris.clone(),
        max_clients: usize::try_from(at_least_one(
            table.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS) as u64,
            "max_clients",
        )?)
        .unwrap_or(DEFAULT_MAX_CLIENTS),
        unused_client_ttl: days(at_least_one(
            table
                .unused_client_days
                .unwrap_or(DEFAULT_UNUSED_CLIENT_DAYS),
            "unused_client_days",
        )?),
        access_token_ttl: Duration::from_secs(at_least_one(
            table.access_token_secs.unwrap_or(DEFAULT_ACCESS_TOKEN_SECS),
            "access_token_secs",
        )?),
        refresh_token_ttl: days(at_least_one(
            table
                .refresh_token_days
                .unwrap_or(DEFAULT_REFRESH_TOKEN_DAYS),
            "refresh_token_days",
        )?),
        cimd_allow_private_networks: table.cimd_allow_private_networks.unwrap_or(false),
        cimd_ca_file: table.cimd_ca_file.clone(),
    }))
}

fn days(days: u64) -> Duration {
    Duration::from_secs(days.saturating_mul(86_400))
}

/// `scheme://host[:port]` lowercased, no trailing slash; https unless the host is loopback.
pub fn normalize_public_url(raw: &str) -> Result<String, OAuthConfigError> {
    let bad = || OAuthConfigError::BadPublicUrl(raw.to_owned());
    let (scheme, rest) = raw.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(OAuthConfigError::PublicUrlWithPath(raw.to_owned()));
    }
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(bad());
    }
    let authority = authority.to_ascii_lowercase();
    match scheme.as_str() {
        "https" => {}
        "http" if is_loopback_authority(&authority) => {}
        "http" => return Err(OAuthConfigError::PlainHttpPublicUrl(raw.to_owned())),
        _ => return Err(bad()),
    }
    Ok(format!("{scheme}://{authority}"))
}

/// The host of `host[:port]` (IPv6 in brackets) is a loopback name or address.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(host, _)| host)
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// An operator's redirect entry: https, or http on a loopback host.
fn is_acceptable_redirect_base(uri: &str) -> bool {
    match uri.split_once("://") {
        Some(("https", rest)) => !rest.is_empty() && !rest.starts_with('/'),
        Some(("http", rest)) => is_loopback_authority(rest.split('/').next().unwrap_or("")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_public_urls_pass_and_plain_http_only_on_loopback() {
        assert_eq!(
            normalize_public_url("https://Host.Example.com/").unwrap(),
            "https://host.example.com"
        );
        assert_eq!(
            normalize_public_url("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert_eq!(
            normalize_public_url("http://[::1]:8000").unwrap(),
            "http://[::1]:8000"
        );
        assert!(matches!(
            normalize_public_url("http://host.example.com"),
            Err(OAuthConfigError::PlainHttpPublicUrl(_))
        ));
        assert!(matches!(
            normalize_public_url("http://127.0.0.1.example.com"),
            Err(OAuthConfigError::PlainHttpPublicUrl(_))
        ));
        assert!(matches!(
            normalize_public_url("https://host.example.com/mcp"),
            Err(OAuthConfigError::PublicUrlWithPath(_))
        ));
        assert!(matches!(
            normalize_public_url("ftp://host"),
            Err(OAuthConfigError::BadPublicUrl(_))
        ));
    }

    #[test]
    fn oauth_is_off_unless_asked_and_needs_a_public_url() {
        let none = || None;
        assert_eq!(resolve(None, false, None, none).unwrap(), None);
        assert!(matches!(
            resolve(None, true, None, none),
            Err(OAuthConfigError::NoPublicUrl)
        ));
        let on = resolve(
            Some("https://h.example"),
            false,
            Some(&FileOAuth::default()),
            || Some(PathBuf::from("/state")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(on.store, PathBuf::from("/state/oauth.redb"));
        assert_eq!(on.resource(), "https://h.example/mcp");
        assert!(on.is_own_resource("https://h.example/mcp/"));
        assert!(!on.is_own_resource("https://h.example/mcpx"));
        assert!(!on.is_own_resource("https://other.example/mcp"));
        let off = FileOAuth {
            enabled: Some(false),
            ..FileOAuth::default()
        };
        assert_eq!(
            resolve(Some("https://h.example"), false, Some(&off), none).unwrap(),
            None
        );
    }

    #[test]
    fn operator_redirects_must_be_https_or_loopback_http() {
        let table = |uri: &str| FileOAuth {
            redirect_uris: vec![uri.to_owned()],
            ..FileOAuth::default()
        };
        let none = || None;
        assert!(
            resolve(
                Some("https://h"),
                true,
                Some(&table("https://app.example/cb")),
                none
            )
            .is_ok()
        );
        assert!(matches!(
            resolve(
                Some("https://h"),
                true,
                Some(&table("http://app.example/cb")),
                none
            ),
            Err(OAuthConfigError::BadRedirectUri(_))
        ));
    }
}
