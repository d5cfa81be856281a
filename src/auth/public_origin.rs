//! The origin (`scheme://host[:port]`) a client used to reach the server, for the URLs the
//! server hands out when no public URL is configured (the protected-resource metadata of
//! outside issuers, and the `resource_metadata` of a 401). Owns [`ListenerScheme`] (what
//! the listener knows: plain or TLS) and [`TrustedProxies::origin`].
//!
//! The rules, beside those of [`super::client_address`]:
//!
//! 1. From a peer that is not in `trusted_proxies`, the origin is the listener's scheme and
//!    the request's `Host` (which the host guard has already accepted). `Forwarded`,
//!    `X-Forwarded-Proto` and `X-Forwarded-Host` are ignored: anybody can write them.
//! 2. From a trusted peer, the nearest proxy's word counts: the last element of `Forwarded`
//!    (RFC 7239 `proto=`, `host=`), else the last value of `X-Forwarded-Proto` /
//!    `X-Forwarded-Host`. When both header families name a value and they differ, one came
//!    from the caller through a proxy that does not write it: neither is believed.
//! 3. A scheme other than `http`/`https`, or a host that is not a plain authority (name or
//!    address, optional port; no path, user or space), is ignored.
//!
//! A proxy in `trusted_proxies` must therefore set (not pass through) the headers it uses.
//! A configured public URL always wins: these rules only fill its absence.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName, header};

use super::client_address::TrustedProxies;

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Whether the listener a request came through speaks TLS (a request extension the accept
/// loop sets; absent, as in `oneshot` tests, it is plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenerScheme {
    #[default]
    Http,
    Https,
}

impl ListenerScheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

impl TrustedProxies {
    /// The origin of a request from `peer` (none in `oneshot` tests: untrusted) through a
    /// listener of `scheme`; `None` without a usable `Host`.
    pub fn origin(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        scheme: ListenerScheme,
    ) -> Option<String> {
        let direct_host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| is_authority(host));
        let trusted = peer.is_some_and(|peer| self.contains(peer.ip()));
        let (proto, host) = if trusted {
            forwarded_origin(headers)
        } else {
            (None, None)
        };
        let scheme = proto.unwrap_or(scheme.as_str());
        let host = host.or(direct_host)?;
        Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
    }
}

/// The scheme and host the nearest trusted proxy reports (rule 2 and 3).
fn forwarded_origin(headers: &HeaderMap) -> (Option<&'static str>, Option<&str>) {
    let (rfc_proto, rfc_host) = last_forwarded_element(headers);
    let x_proto = last_value(headers, &X_FORWARDED_PROTO);
    let x_host = last_value(headers, &X_FORWARDED_HOST);
    let proto = agree(rfc_proto, x_proto).and_then(|proto| {
        if proto.eq_ignore_ascii_case("https") {
            Some("https")
        } else if proto.eq_ignore_ascii_case("http") {
            Some("http")
        } else {
            None
        }
    });
    let host = agree(rfc_host, x_host).filter(|host| is_authority(host));
    (proto, host)
}

/// The value both header families name (or the one that names one); none when they differ.
fn agree<'h>(one: Option<&'h str>, other: Option<&'h str>) -> Option<&'h str> {
    match (one, other) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => None,
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

/// `proto` and `host` of the last element of all `Forwarded` lines.
fn last_forwarded_element(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    let Some(element) = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .rfind(|element| !element.is_empty())
    else {
        return (None, None);
    };
    let mut proto = None;
    let mut host = None;
    for pair in element.split(';') {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .unwrap_or(value);
        if name.trim().eq_ignore_ascii_case("proto") {
            proto = Some(value);
        } else if name.trim().eq_ignore_ascii_case("host") {
            host = Some(value);
        }
    }
    (proto, host)
}

/// The last comma-separated value of all lines of `name`.
fn last_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .rfind(|value| !value.is_empty())
}

/// `name[:port]` or `[v6][:port]`: letters, digits, `.`, `-`; at most 255 bytes.
fn is_authority(text: &str) -> bool {
    if text.is_empty() || text.len() > 255 {
        return false;
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (
                    None,
                    after.strip_prefix(':').or(after.is_empty().then_some("")),
                )
            }
            None => return false,
        },
        None => match text.rsplit_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(text), Some("")),
        },
    };
    let port_ok = port.is_some_and(|port| {
        port.is_empty() || (port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
    });
    let host_ok = host.is_none_or(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::auth::client_address::ProxyNet;

    const PROXY: &str = "10.0.0.5:40000";
    const STRANGER: &str = "203.0.113.9:40000";

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8".parse::<ProxyNet>().unwrap()])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn origin(peer: &str, pairs: &[(&str, &str)]) -> Option<String> {
        proxies().origin(
            Some(peer.parse().unwrap()),
            &headers(pairs),
            ListenerScheme::Http,
        )
    }

    /// Each case: what a trusted proxy's headers give, and the near miss — the same headers
    /// from a stranger — which gives the direct origin.
    #[test]
    fn forwarded_headers_count_from_a_trusted_proxy_and_never_from_a_stranger() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "mcp.example.com"),
                ],
                "https://mcp.example.com",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    (
                        "forwarded",
                        "for=1.2.3.4;proto=https;host=\"mcp.example.com:8443\"",
                    ),
                ],
                "https://mcp.example.com:8443",
            ),
            (
                // The nearest proxy's element is the last.
                &[
                    ("host", "127.0.0.1:8000"),
                    (
                        "forwarded",
                        "proto=http;host=evil.example, proto=https;host=mcp.example.com",
                    ),
                ],
                "https://mcp.example.com",
            ),
            (
                &[("host", "127.0.0.1:8000"), ("x-forwarded-proto", "https")],
                "https://127.0.0.1:8000",
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                origin(PROXY, pairs).as_deref(),
                Some(*expected),
                "{pairs:?}"
            );
            assert_eq!(
                origin(STRANGER, pairs).as_deref(),
                Some("http://127.0.0.1:8000"),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn disagreeing_or_malformed_forwarded_values_are_not_believed() {
        // Both families, different hosts: neither.
        assert_eq!(
            origin(
                PROXY,
                &[
                    ("host", "127.0.0.1:8000"),
                    ("forwarded", "host=a.example"),
                    ("x-forwarded-host", "b.example"),
                ]
            )
            .as_deref(),
            Some("http://127.0.0.1:8000")
        );
        // Both families, the same host: believed (near miss of the above).
        assert_eq!(
            origin(
                PROXY,
                &[
                    ("host", "127.0.0.1:8000"),
                    ("forwarded", "host=a.example"),
                    ("x-forwarded-host", "A.example"),
                ]
            )
            .as_deref(),
            Some("http://a.example")
        );
        for bad_host in [
            "evil.example/path",
            "user@evil.example",
            "evil example",
            "a.example:99999x",
        ] {
            assert_eq!(
                origin(
                    PROXY,
                    &[("host", "127.0.0.1:8000"), ("x-forwarded-host", bad_host)]
                )
                .as_deref(),
                Some("http://127.0.0.1:8000"),
                "{bad_host}"
            );
        }
        assert_eq!(
            origin(
                PROXY,
                &[("host", "127.0.0.1:8000"), ("x-forwarded-proto", "gopher")]
            )
            .as_deref(),
            Some("http://127.0.0.1:8000")
        );
    }

    #[test]
    fn the_listener_scheme_and_host_are_the_origin_without_a_proxy() {
        let map = headers(&[("host", "[::1]:8443")]);
        assert_eq!(
            proxies()
                .origin(None, &map, ListenerScheme::Https)
                .as_deref(),
            Some("https://[::1]:8443")
        );
        assert_eq!(
            proxies().origin(None, &HeaderMap::new(), ListenerScheme::Https),
            None
        );
    }
}
