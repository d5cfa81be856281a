//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP
//! 2025-11-25 authorization): a `client_id` that is an https URL with a path names a JSON
//! document the client publishes there. This module owns fetching and checking it:
//!
//! - The URL ([`parse_client_url`]): https, a host, a path that is not `/`, no dot segments,
//!   no user info, no fragment.
//! - The target ([`refused_range`]): the host is resolved once, and every address must be
//!   public: loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast, unspecified,
//!   documentation/benchmark/reserved ranges and the cloud metadata addresses are refused
//!   unless `[oauth] cimd_allow_private_networks = true` (the metadata addresses even
//!   then). The connection then goes to the
//!   checked addresses only (reqwest `resolve_to_addrs`), so a second DNS answer cannot
//!   swap them (rebinding); redirects are not followed, proxies not used.
//! - The fetch: [`MAX_DOCUMENT_BYTES`] at most, [`FETCH_TIMEOUT`] in all, 200 only.
//! - The document ([`check_document`]): its `client_id` equals the URL byte for byte, no
//!   `client_secret`, `token_endpoint_auth_method` `none` (or absent), and the same rules
//!   as a registration (`super::register::check`: redirect URIs on the allowlist, code and
//!   refresh grants only).
//! - A cache of checked documents, for the response's `Cache-Control: max-age` clamped to
//!   [`MIN_CACHE`]..[`MAX_CACHE`] ([`DEFAULT_CACHE`] without one, the minimum under `no-store`
//!   or `no-cache`); refusals are not cached.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use reqwest::Url;
use serde::Deserialize;

use super::register::{RegistrationRequest, check as check_registration};

/// The largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The whole fetch (resolve, connect, TLS, body) at most.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a document is kept without `Cache-Control: max-age`.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// The shortest and longest a document is kept, whatever its `max-age`.
pub const MIN_CACHE: Duration = Duration::from_secs(30);
pub const MAX_CACHE: Duration = Duration::from_secs(86_400);
/// The range name of the cloud metadata addresses, refused even when private networks
/// are allowed.
pub const CLOUD_METADATA: &str = "cloud metadata";
/// Documents kept at most (the cache is emptied of expired ones, then of all, past it).
const MAX_CACHED: usize = 256;
/// Fetches running at once, whoever asked: anyone who reaches `/oauth/authorize` can make
/// the server fetch a URL, so the outgoing requests it can be made to run are bounded.
const MAX_CONCURRENT_FETCHES: usize = 8;

/// Why a client ID metadata document was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CimdError {
    #[error("client_id is not a usable metadata URL: {0}")]
    BadUrl(&'static str),
    #[error("cannot resolve the client_id host: {0}")]
    Resolve(String),
    #[error("the client_id host resolves to {address} ({range}), which is refused")]
    RefusedAddress {
        address: IpAddr,
        range: &'static str,
    },
    #[error("fetching the metadata document failed: {0}")]
    Fetch(String),
    #[error("fetching the metadata document timed out")]
    Timeout,
    #[error("the metadata document answered HTTP {0}, not 200")]
    Status(u16),
    #[error("the metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the metadata document is not a JSON client metadata object: {0}")]
    NotJson(String),
    #[error("the metadata document's client_id {0:?} is not its URL")]
    ClientIdMismatch(String),
    #[error("the metadata document has a client_secret: only public clients are accepted")]
    HasSecret,
    #[error("{0}: {1}")]
    Metadata(&'static str, String),
    #[error("too many client metadata documents are being fetched at once; try again shortly")]
    Busy,
}

/// Why the fetcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CimdSetupError {
    #[error("client metadata TLS: {0}")]
    Tls(#[from] crate::outbound_tls::OutboundTlsError),
}

/// The parts of a document this server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

/// The fields read from a document; the rest are ignored.
#[derive(Debug, Deserialize)]
struct Document {
    client_id: Option<String>,
    client_secret: Option<serde_json::Value>,
    #[serde(flatten)]
    registration: RegistrationRequest,
}

/// Whether a `client_id` is meant as a metadata URL (registered ids are never URLs).
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// Check a `client_id` URL (draft §3): https, a host, a path other than `/`, no dot
/// segments, no user info, no fragment.
pub fn parse_client_url(raw: &str) -> Result<Url, CimdError> {
    let rest = raw
        .strip_prefix("https://")
        .ok_or(CimdError::BadUrl("not https"))?;
    if raw.contains('#') {
        return Err(CimdError::BadUrl("it has a fragment"));
    }
    let (authority, path) = rest
        .find(['/', '?'])
        .map_or((rest, ""), |at| rest.split_at(at));
    if authority.contains('@') {
        return Err(CimdError::BadUrl("it has user info"));
    }
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == "/" {
        return Err(CimdError::BadUrl("it has no path"));
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(CimdError::BadUrl("it has a dot segment"));
    }
    let url = Url::parse(raw).map_err(|_| CimdError::BadUrl("not a URL"))?;
    if url.host().is_none() {
        return Err(CimdError::BadUrl("it has no host"));
    }
    Ok(url)
}

/// The named range `address` falls in when it is not a public unicast address, `None` when
/// it is. IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4 address.
pub fn refused_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 well-known prefix 64:ff9b::/96.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return refused_v4(Ipv4Addr::new(a, b, c, d));
            }
            refused_v6(v6)
        }
    }
}

fn refused_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v4.octets();
    Some(match () {
        () if v4 == Ipv4Addr::new(169, 254, 169, 254) => CLOUD_METADATA,
        () if v4.is_unspecified() || a == 0 => "unspecified",
        () if v4.is_loopback() => "loopback",
        () if v4.is_private() => "private",
        () if v4.is_link_local() => "link-local",
        () if a == 100 && (64..128).contains(&b) => "CGNAT",
        () if v4.is_multicast() => "multicast",
        () if v4.is_broadcast() || a >= 240 => "reserved",
        () if v4.is_documentation() => "documentation",
        () if a == 198 && (18..20).contains(&b) => "benchmarking",
        () if a == 192 && b == 0 && c == 0 => "IETF protocol assignments",
        () => return None,
    })
}

fn refused_v6(v6: Ipv6Addr) -> Option<&'static str> {
    let first = v6.segments()[0];
    Some(match () {
        () if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => CLOUD_METADATA,
        () if v6.is_unspecified() => "unspecified",
        () if v6.is_loopback() => "loopback",
        () if first & 0xfe00 == 0xfc00 => "private",
        () if first & 0xffc0 == 0xfe80 => "link-local",
        () if v6.is_multicast() => "multicast",
        () if first == 0x2001 && v6.segments()[1] == 0xdb8 => "documentation",
        // IPv4-compatible (deprecated) ::a.b.c.d and the discard prefix 100::/64.
        () if v6.segments()[..6] == [0; 6] || v6.segments()[..4] == [0x100, 0, 0, 0] => "reserved",
        () => return None,
    })
}

/// Check a fetched document against its URL and the redirect allowlist.
pub fn check_document(
    url: &str,
    body: &[u8],
    extra_redirects: &[String],
) -> Result<ClientMetadata, CimdError> {
    let document: Document =
        serde_json::from_slice(body).map_err(|error| CimdError::NotJson(error.to_string()))?;
    let client_id = document.client_id.unwrap_or_default();
    if client_id != url {
        return Err(CimdError::ClientIdMismatch(client_id));
    }
    if document.client_secret.is_some() {
        return Err(CimdError::HasSecret);
    }
    let (client_name, redirect_uris) = check_registration(&document.registration, extra_redirects)
        .map_err(|(error, description)| CimdError::Metadata(error, description))?;
    Ok(ClientMetadata {
        client_name,
        redirect_uris,
    })
}

/// How long a response may be kept: its `max-age` within bounds, else the default.
pub fn cache_for(cache_control: Option<&str>) -> Duration {
    let lowered = cache_control.unwrap_or("").to_ascii_lowercase();
    if lowered.contains("no-store") || lowered.contains("no-cache") {
        return MIN_CACHE;
    }
    let max_age = cache_control.and_then(|value| {
        value.split(',').find_map(|directive| {
            let (name, seconds) = directive.trim().split_once('=')?;
            name.eq_ignore_ascii_case("max-age")
                .then(|| seconds.trim().parse::<u64>().ok())
                .flatten()
        })
    });
    max_age
        .map_or(DEFAULT_CACHE, Duration::from_secs)
        .clamp(MIN_CACHE, MAX_CACHE)
}

/// A fetched document, whether it came from the network or the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub metadata: ClientMetadata,
    /// false: served from the cache.
    pub fresh: bool,
}

/// Fetches and caches documents.
#[derive(Debug)]
pub struct Fetcher {
    tls: rustls::ClientConfig,
    allow_private_networks: bool,
    cache: Mutex<HashMap<String, (Instant, ClientMetadata)>>,
    /// One permit per fetch running ([`MAX_CONCURRENT_FETCHES`]); none free → [`CimdError::Busy`].
    fetches: tokio::sync::Semaphore,
}

impl Fetcher {
    pub fn new(
        ca_file: Option<&Path>,
        allow_private_networks: bool,
    ) -> Result<Self, CimdSetupError> {
        Ok(Self {
            tls: crate::outbound_tls::client_config(ca_file)?,
            allow_private_networks,
            cache: Mutex::default(),
            fetches: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    /// The checked metadata of `client_id`, from the cache or fetched.
    pub async fn client(
        &self,
        client_id: &str,
        extra_redirects: &[String],
    ) -> Result<Fetched, CimdError> {
        let now = Instant::now();
        if let Some((expires, metadata)) = self.cache.lock().get(client_id)
            && *expires > now
        {
            return Ok(Fetched {
                metadata: metadata.clone(),
                fresh: false,
            });
        }
        let url = parse_client_url(client_id)?;
        let _permit = self.fetches.try_acquire().map_err(|_| CimdError::Busy)?;
        let (body, keep) = tokio::time::timeout(FETCH_TIMEOUT, self.fetch(&url))
            .await
            .map_err(|_| CimdError::Timeout)??;
        let metadata = check_document(client_id, &body, extra_redirects)?;
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (expires, _)| *expires > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), (now + keep, metadata.clone()));
        Ok(Fetched {
            metadata,
            fresh: true,
        })
    }

    /// Resolve, guard, connect to the checked addresses only, and read a capped body.
    async fn fetch(&self, url: &Url) -> Result<(Vec<u8>, Duration), CimdError> {
        let host = url
            .host_str()
            .ok_or(CimdError::BadUrl("it has no host"))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare_host.parse::<IpAddr>() {
            Ok(address) => vec![SocketAddr::new(address, port)],
            Err(_) => tokio::net::lookup_host((bare_host, port))
                .await
                .map_err(|error| CimdError::Resolve(error.to_string()))?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(CimdError::Resolve("no address".to_owned()));
        }
        if let Some((address, range)) = addresses.iter().find_map(|socket| {
            refused_range(socket.ip())
                .filter(|&range| !self.allow_private_networks || range == CLOUD_METADATA)
                .map(|range| (socket.ip(), range))
        }) {
            return Err(CimdError::RefusedAddress { address, range });
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .timeout(FETCH_TIMEOUT)
            .http1_only()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(bare_host, &addresses)
            .build()
            .map_err(|error| CimdError::Fetch(error.to_string()))?;
        let failed = |error: reqwest::Error| {
            if error.is_timeout() {
                CimdError::Timeout
            } else {
                CimdError::Fetch(error.to_string())
            }
        };
        let mut response = http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(CimdError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(CimdError::TooLarge);
        }
        let keep = cache_for(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(CimdError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refused_range_has_a_public_twin() {
        for (refused, range, public) in [
            ("127.0.0.1", "loopback", "128.0.0.1"),
            ("10.1.2.3", "private", "11.1.2.3"),
            ("172.16.0.1", "private", "172.32.0.1"),
            ("192.168.1.1", "private", "192.169.1.1"),
            ("169.254.169.254", CLOUD_METADATA, "169.253.169.254"),
            ("169.254.1.1", "link-local", "169.255.1.1"),
            ("100.64.0.1", "CGNAT", "100.128.0.1"),
            ("224.0.0.1", "multicast", "223.255.255.254"),
            ("0.0.0.0", "unspecified", "1.0.0.1"),
            ("255.255.255.255", "reserved", "203.0.114.1"),
            ("::1", "loopback", "2606:4700::1"),
            ("fd00:ec2::254", CLOUD_METADATA, "2600:1f00::254"),
            ("fd12::1", "private", "2001:4860::1"),
            ("fe80::1", "link-local", "2a00:1450::1"),
            ("ff02::1", "multicast", "2400:cb00::1"),
            ("::", "unspecified", "2620:fe::fe"),
            ("::ffff:127.0.0.1", "loopback", "::ffff:8.8.8.8"),
            ("64:ff9b::a9fe:a9fe", CLOUD_METADATA, "64:ff9b::808:808"),
        ] {
            let refused_ip: IpAddr = refused.parse().unwrap();
            assert_eq!(refused_range(refused_ip), Some(range), "{refused}");
            let public_ip: IpAddr = public.parse().unwrap();
            assert_eq!(refused_range(public_ip), None, "{public}");
        }
    }

    #[test]
    fn client_urls_need_https_and_a_clean_path() {
        assert!(parse_client_url("https://app.example/oauth/client.json").is_ok());
        assert!(parse_client_url("https://app.example:8443/c?v=1").is_ok());
        for (bad, why) in [
            ("http://app.example/client.json", "not https"),
            ("https://app.example", "it has no path"),
            ("https://app.example/", "it has no path"),
            (
                "https://app.example/a/../client.json",
                "it has a dot segment",
            ),
            ("https://app.example/./client.json", "it has a dot segment"),
            ("https://user@app.example/client.json", "it has user info"),
            ("https://app.example/client.json#x", "it has a fragment"),
        ] {
            assert_eq!(parse_client_url(bad), Err(CimdError::BadUrl(why)), "{bad}");
        }
    }

    const URL: &str = "https://app.example/oauth/client.json";

    fn document(client_id: &str, extra: serde_json::Value) -> Vec<u8> {
        let mut document = serde_json::json!({
            "client_id": client_id,
            "client_name": "App",
            "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
        });
        for (name, value) in extra.as_object().unwrap() {
            document[name] = value.clone();
        }
        serde_json::to_vec(&document).unwrap()
    }

    #[test]
    fn a_document_must_name_its_own_url_and_allowed_redirects() {
        let good = check_document(URL, &document(URL, serde_json::json!({})), &[]).unwrap();
        assert_eq!(good.client_name, "App");
        assert_eq!(
            good.redirect_uris,
            ["https://chatgpt.com/connector_platform_oauth_redirect"]
        );
        assert!(matches!(
            check_document(
                URL,
                &document(&format!("{URL}/"), serde_json::json!({})),
                &[]
            ),
            Err(CimdError::ClientIdMismatch(_))
        ));
        let elsewhere = serde_json::json!({"redirect_uris": ["https://evil.example/cb"]});
        assert!(matches!(
            check_document(URL, &document(URL, elsewhere.clone()), &[]),
            Err(CimdError::Metadata("invalid_redirect_uri", _))
        ));
        assert!(
            check_document(
                URL,
                &document(URL, elsewhere),
                &["https://evil.example/cb".to_owned()]
            )
            .is_ok()
        );
        assert_eq!(
            check_document(
                URL,
                &document(URL, serde_json::json!({"client_secret": "s"})),
                &[]
            ),
            Err(CimdError::HasSecret)
        );
        assert!(matches!(
            check_document(
                URL,
                &document(
                    URL,
                    serde_json::json!({"token_endpoint_auth_method": "private_key_jwt"})
                ),
                &[]
            ),
            Err(CimdError::Metadata("invalid_client_metadata", _))
        ));
        assert!(
            check_document(
                URL,
                &document(
                    URL,
                    serde_json::json!({"token_endpoint_auth_method": "none"})
                ),
                &[]
            )
            .is_ok()
        );
        assert!(matches!(
            check_document(URL, b"[]", &[]),
            Err(CimdError::NotJson(_))
        ));
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        assert_eq!(cache_for(None), DEFAULT_CACHE);
        assert_eq!(
            cache_for(Some("public, max-age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(cache_for(Some("max-age=0")), MIN_CACHE);
        assert_eq!(cache_for(Some("max-age=99999999")), MAX_CACHE);
        assert_eq!(cache_for(Some("no-store")), MIN_CACHE);
        assert_eq!(cache_for(Some("public")), DEFAULT_CACHE);
    }

    #[tokio::test]
    async fn a_loopback_url_is_refused_before_any_connection_unless_allowed() {
        let fetcher = Fetcher::new(None, false).unwrap();
        let refused = fetcher.client("https://127.0.0.1:9/client.json", &[]).await;
        assert!(matches!(
            refused,
            Err(CimdError::RefusedAddress {
                range: "loopback",
                ..
            })
        ));
        // Allowed: the guard passes and the fetch itself fails (nothing listens on port 9).
        let allowed = Fetcher::new(None, true).unwrap();
        let fetched = allowed.client("https://127.0.0.1:9/client.json", &[]).await;
        assert!(
            matches!(fetched, Err(CimdError::Fetch(_) | CimdError::Timeout)),
            "{fetched:?}"
        );
        // The cloud metadata address stays refused even then.
        let metadata = allowed
            .client("https://169.254.169.254/latest/client.json", &[])
            .await;
        assert!(matches!(
            metadata,
            Err(CimdError::RefusedAddress {
                range: CLOUD_METADATA,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_fetch_over_the_concurrency_cap_is_refused_before_any_connection() {
        let fetcher = Fetcher::new(None, false).unwrap();
        let held = fetcher
            .fetches
            .try_acquire_many(MAX_CONCURRENT_FETCHES as u32)
            .unwrap();
        assert_eq!(
            fetcher
                .client("https://clients.example/app", &[])
                .await
                .unwrap_err(),
            CimdError::Busy
        );
        // A URL refused on its face is still refused for what it is, permits or not.
        assert!(matches!(
            fetcher.client("http://clients.example/app", &[]).await,
            Err(CimdError::BadUrl(_))
        ));
        drop(held);
        // Permits free again: the fetch goes on (and is refused here by the address guard or
        // the resolver, never as busy).
        assert_ne!(
            fetcher
                .client("https://127.0.0.1/app", &[])
                .await
                .unwrap_err(),
            CimdError::Busy
        );
    }
}
