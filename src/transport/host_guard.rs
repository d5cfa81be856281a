//! DNS-rebinding and cross-origin protection: the `Host` header must name this server,
//! and an `Origin` header, when present, must be one the operator allowed. A request with
//! more than one `Host` header is refused (400): which one a proxy or a handler reads is
//! anyone's guess. Applied to every MCP endpoint before authentication.

use std::{collections::HashSet, net::SocketAddr, sync::Arc};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::log_excerpt::log_excerpt;

/// The names a server answers to and the browser origins it accepts.
#[derive(Debug, Clone)]
pub struct HostGuard {
    hosts: HashSet<String>,
    origins: HashSet<String>,
}

/// Why a request was refused by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardRejection {
    /// Several `Host` headers (their count).
    DuplicateHost(usize),
    ForeignHost(String),
    ForeignOrigin(String),
}

impl GuardRejection {
    /// What the server's log says of the refusal: the offending header cut to
    /// [`LOG_EXCERPT_BYTES`](crate::log_excerpt::LOG_EXCERPT_BYTES).
    pub fn log_text(&self) -> String {
        match self {
            Self::DuplicateHost(count) => format!("{count} Host headers"),
            Self::ForeignHost(host) => format!("foreign Host {:?}", log_excerpt(host)),
            Self::ForeignOrigin(origin) => format!("foreign Origin {:?}", log_excerpt(origin)),
        }
    }
}

impl HostGuard {
    /// Accept the host's own names (loopback names, hostname, interface and listen
    /// addresses) plus `extra_hosts`; accept exactly `origins` as browser origins.
    pub fn new(listen: &[SocketAddr], extra_hosts: &[String], origins: &[String]) -> Self {
        let mut hosts: HashSet<String> = own_host_names(listen);
        hosts.extend(extra_hosts.iter().map(|host| normalize_host(host)));
        Self {
            hosts,
            origins: origins
                .iter()
                .map(|origin| normalize_origin(origin))
                .collect(),
        }
    }

    /// Check the `Host` and `Origin` headers of a request.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), GuardRejection> {
        let hosts = headers.get_all(header::HOST).iter().count();
        if hosts > 1 {
            return Err(GuardRejection::DuplicateHost(hosts));
        }
        if let Some(host) = headers.get(header::HOST) {
            let host = String::from_utf8_lossy(host.as_bytes());
            if !self.hosts.contains(&normalize_host(&host)) {
                return Err(GuardRejection::ForeignHost(host.into_owned()));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = normalize_origin(&String::from_utf8_lossy(origin.as_bytes()));
            let same_origin = headers
                .get(header::HOST)
                .map(|host| String::from_utf8_lossy(host.as_bytes()).to_ascii_lowercase())
                .is_some_and(|host| {
                    origin
                        .strip_prefix("http://")
                        .or_else(|| origin.strip_prefix("https://"))
                        == Some(host.as_str())
                });
            if !same_origin && !self.origins.contains(&origin) {
                return Err(GuardRejection::ForeignOrigin(origin));
            }
        }
        Ok(())
    }
}

/// Middleware: 403 for a foreign Host or Origin, with the flag that would allow it; 400
/// for several Host headers.
pub async fn enforce_host_guard(
    State(guard): State<Arc<HostGuard>>,
    request: Request,
    next: Next,
) -> Response {
    match guard.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(rejection) => {
            // Before authentication: anyone can send these headers, so the log keeps
            // an excerpt of each (a 400 KB Host would otherwise be 400 KB of log).
            tracing::warn!(
                rejection = %rejection.log_text(),
                path = %log_excerpt(request.uri().path()),
                "request refused by host guard"
            );
            refusal(&rejection)
        }
    }
}

fn refusal(rejection: &GuardRejection) -> Response {
    let (status, error, message) = match rejection {
        GuardRejection::DuplicateHost(count) => (
            StatusCode::BAD_REQUEST,
            "duplicate_host",
            format!("the request has {count} Host headers; send exactly one"),
        ),
        GuardRejection::ForeignHost(host) => (
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!(
                "Host {host:?} is not a name of this server; if it is, start hostmcp with --allowed-host {}",
                host_without_port(host)
            ),
        ),
        GuardRejection::ForeignOrigin(origin) => (
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!(
                "Origin {origin:?} is not allowed; to allow this browser origin, start hostmcp with --allowed-origin {origin}"
            ),
        ),
    };
    let body = serde_json::json!({ "error": error, "message": message });
    (status, Json(body)).into_response()
}

/// `Name:port`, `[v6]:port`, `v6` -> lowercase name without port or brackets.
fn normalize_host(host: &str) -> String {
    host_without_port(host.trim())
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split_once(']')
            .map_or(host, |(inside, _)| &host[..inside.len() + 2]);
    }
    match host.rsplit_once(':') {
        // A single colon separates a port; several colons mean a bare IPv6 address.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn own_host_names(listen: &[SocketAddr]) -> HashSet<String> {
    let mut names: HashSet<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    names.extend(
        listen
            .iter()
            .filter(|addr| !addr.ip().is_unspecified())
            .map(|addr| addr.ip().to_string()),
    );
    if let Ok(hostname) = nix::unistd::gethostname() {
        names.insert(normalize_host(&hostname.to_string_lossy()));
    }
    if let Ok(interfaces) = nix::ifaddrs::getifaddrs() {
        for interface in interfaces {
            let Some(address) = interface.address else {
                continue;
            };
            if let Some(v4) = address.as_sockaddr_in() {
                names.insert(v4.ip().to_string());
            } else if let Some(v6) = address.as_sockaddr_in6() {
                names.insert(v6.ip().to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn guard() -> HostGuard {
        HostGuard::new(
            &["127.0.0.1:8000".parse().unwrap()],
            &["mcp.example.com".into()],
            &["http://localhost:6274".into()],
        )
    }

    #[test]
    fn loopback_names_with_and_without_port_are_accepted() {
        for host in [
            "localhost",
            "localhost:8000",
            "127.0.0.1:8000",
            "[::1]:8000",
            "LOCALHOST",
        ] {
            assert_eq!(
                guard().check(&headers(&[(header::HOST, host)])),
                Ok(()),
                "{host}"
            );
        }
    }

    #[test]
    fn a_rebinding_name_is_refused() {
        let rejection = guard().check(&headers(&[(header::HOST, "evil.example:8000")]));
        assert_eq!(
            rejection,
            Err(GuardRejection::ForeignHost("evil.example:8000".into()))
        );
    }

    #[test]
    fn an_allowed_extra_host_is_accepted_but_not_its_suffix_twin() {
        assert_eq!(
            guard().check(&headers(&[(header::HOST, "mcp.example.com:443")])),
            Ok(())
        );
        assert!(
            guard()
                .check(&headers(&[(header::HOST, "mcp.example.com.evil.io")]))
                .is_err()
        );
    }

    #[test]
    fn an_allowed_origin_passes_and_its_near_miss_does_not() {
        let ok = headers(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "http://localhost:6274"),
        ]);
        assert_eq!(guard().check(&ok), Ok(()));
        let other_port = headers(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "http://localhost:6275"),
        ]);
        assert!(matches!(
            guard().check(&other_port),
            Err(GuardRejection::ForeignOrigin(_))
        ));
    }

    #[test]
    fn the_servers_own_origin_passes_and_a_sibling_port_does_not() {
        let own = headers(&[
            (header::HOST, "127.0.0.1:8000"),
            (header::ORIGIN, "http://127.0.0.1:8000"),
        ]);
        assert_eq!(guard().check(&own), Ok(()));
        let sibling = headers(&[
            (header::HOST, "127.0.0.1:8000"),
            (header::ORIGIN, "http://127.0.0.1:3000"),
        ]);
        assert!(matches!(
            guard().check(&sibling),
            Err(GuardRejection::ForeignOrigin(_))
        ));
        let rebinding = headers(&[
            (header::HOST, "evil.example:8000"),
            (header::ORIGIN, "http://evil.example:8000"),
        ]);
        assert!(matches!(
            guard().check(&rebinding),
            Err(GuardRejection::ForeignHost(_))
        ));
    }

    #[test]
    fn the_forbidden_answer_names_the_flag() {
        let response = refusal(&GuardRejection::ForeignHost("box.lan:8000".into()));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn two_host_headers_are_refused_even_when_both_are_ours_and_one_passes() {
        let mut two = headers(&[(header::HOST, "127.0.0.1:8000")]);
        two.append(header::HOST, HeaderValue::from_static("evil.example"));
        assert_eq!(guard().check(&two), Err(GuardRejection::DuplicateHost(2)));
        let mut same_twice = headers(&[(header::HOST, "localhost")]);
        same_twice.append(header::HOST, HeaderValue::from_static("localhost"));
        assert_eq!(
            guard().check(&same_twice),
            Err(GuardRejection::DuplicateHost(2))
        );
        assert_eq!(
            guard().check(&headers(&[(header::HOST, "127.0.0.1:8000")])),
            Ok(())
        );
        assert_eq!(
            refusal(&GuardRejection::DuplicateHost(2)).status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn host_without_port_handles_every_form() {
        assert_eq!(host_without_port("a.b:80"), "a.b");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("::1"), "::1");
        assert_eq!(host_without_port("a.b"), "a.b");
    }

    #[test]
    fn a_huge_foreign_host_is_logged_as_an_excerpt_and_a_short_one_whole() {
        let huge = format!("{}.example", "a".repeat(400_000));
        let rejection = guard()
            .check(&headers(&[(header::HOST, &huge)]))
            .unwrap_err();
        let text = rejection.log_text();
        assert!(text.len() < 700, "{} bytes of log", text.len());
        assert!(text.contains("[... 400008 bytes in all]"), "{text}");
        let origin = format!("http://{}", "b".repeat(200_000));
        let rejection = guard()
            .check(&headers(&[
                (header::HOST, "localhost"),
                (header::ORIGIN, &origin),
            ]))
            .unwrap_err();
        assert!(rejection.log_text().len() < 700);
        // Near miss: a short foreign name is logged whole.
        let rejection = guard()
            .check(&headers(&[(header::HOST, "evil.example:8080")]))
            .unwrap_err();
        assert_eq!(rejection.log_text(), r#"foreign Host "evil.example:8080""#);
    }
}
