//! Which redirect URIs a client may register, and whether an authorization request's
//! `redirect_uri` is one it registered. Pure functions.
//!
//! A registered URI must be on the allowlist: the published callbacks of claude.ai and
//! claude.com, ChatGPT's connector callback, anything under Copilot Studio's
//! `https://global.consent.azure-apim.net/redirect/`, `http` on a loopback host at any
//! port (desktop and CLI clients, RFC 8252), and the operator's `[oauth] redirect_uris`
//! (an exact URI, or a prefix when it ends in `/`). A request's `redirect_uri` must then
//! equal one of the client's registered URIs byte for byte.

use super::settings::is_loopback_authority;

/// Exact callbacks of the hosted chat apps.
pub const BUILT_IN_EXACT: &[&str] = &[
    "https://claude.ai/api/mcp/auth_callback",
    "https://claude.com/api/mcp/auth_callback",
    "https://chatgpt.com/connector_platform_oauth_redirect",
];

/// Callback prefixes of the hosted apps (Copilot Studio: one path per connector).
pub const BUILT_IN_PREFIXES: &[&str] = &["https://global.consent.azure-apim.net/redirect/"];

/// Whether a client may register `uri`, given the operator's extra entries.
pub fn is_allowed(uri: &str, extra: &[String]) -> bool {
    if uri.contains(['#', ' ', '\\']) || uri.chars().any(char::is_control) {
        return false;
    }
    if BUILT_IN_EXACT.contains(&uri) {
        return true;
    }
    let under = |prefix: &str| {
        uri.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(".."))
    };
    if BUILT_IN_PREFIXES.iter().any(|prefix| under(prefix)) {
        return true;
    }
    if is_loopback_http(uri) {
        return true;
    }
    extra.iter().any(|entry| {
        if entry.ends_with('/') {
            under(entry)
        } else {
            entry == uri
        }
    })
}

/// `http://` on a loopback host (any port), with a path or none.
fn is_loopback_http(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    !authority.contains('@') && is_loopback_authority(authority)
}

/// The request's `redirect_uri` is exactly one of the registered ones.
pub fn matches_registered(requested: &str, registered: &[String]) -> bool {
    registered.iter().any(|uri| uri == requested)
}

/// The host a consent page shows for a redirect URI (`scheme://host[:port]`).
pub fn shown_host(uri: &str) -> &str {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri;
    };
    let end = rest
        .find(['/', '?'])
        .map_or(uri.len(), |at| scheme.len() + 3 + at);
    &uri[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_callbacks_pass_and_their_one_character_twins_do_not() {
        for (allowed, near_miss) in [
            (
                "https://claude.ai/api/mcp/auth_callback",
                "https://claude.ai/api/mcp/auth_callbacks",
            ),
            (
                "https://claude.com/api/mcp/auth_callback",
                "http://claude.com/api/mcp/auth_callback",
            ),
            (
                "https://chatgpt.com/connector_platform_oauth_redirect",
                "https://chatgpt.co/connector_platform_oauth_redirect",
            ),
            (
                "https://global.consent.azure-apim.net/redirect/myconn",
                "https://global.consent.azure-apim.net/redirect/",
            ),
            (
                "https://global.consent.azure-apim.net/redirect/a",
                "https://global.consent.azure-apim.net.evil.example/redirect/a",
            ),
            (
                "http://127.0.0.1:33418/callback",
                "http://127.0.0.2.evil.example/callback",
            ),
            (
                "http://localhost:5173/cb",
                "http://localhost@evil.example/cb",
            ),
            (
                "http://[::1]:9/cb",
                "https://claude.ai/api/mcp/auth_callback#x",
            ),
        ] {
            assert!(is_allowed(allowed, &[]), "{allowed}");
            assert!(!is_allowed(near_miss, &[]), "{near_miss}");
        }
    }

    #[test]
    fn operator_entries_are_exact_or_prefixes_ending_in_a_slash() {
        let extra = vec![
            "https://app.example/cb".to_owned(),
            "https://tools.example/oauth/".to_owned(),
        ];
        assert!(is_allowed("https://app.example/cb", &extra));
        assert!(!is_allowed("https://app.example/cb2", &extra));
        assert!(is_allowed("https://tools.example/oauth/x", &extra));
        assert!(!is_allowed("https://tools.example/oauthx", &extra));
        assert!(!is_allowed("https://tools.example/oauth/../admin", &extra));
        assert!(!is_allowed("https://app.example/cb", &[]));
    }

    #[test]
    fn a_request_must_name_a_registered_uri_exactly() {
        let registered = vec!["http://127.0.0.1:4000/cb".to_owned()];
        assert!(matches_registered("http://127.0.0.1:4000/cb", &registered));
        assert!(!matches_registered(
            "http://127.0.0.1:4000/cb/",
            &registered
        ));
        assert!(!matches_registered("http://127.0.0.1:4001/cb", &registered));
    }

    #[test]
    fn the_page_shows_the_redirect_origin() {
        assert_eq!(
            shown_host("https://claude.ai/api/mcp/auth_callback"),
            "https://claude.ai"
        );
        assert_eq!(shown_host("http://127.0.0.1:4000"), "http://127.0.0.1:4000");
    }
}
