//! Who may scrape `/metrics`: a pure decision, and the scrape token it checks.
//!
//! The rules, in order:
//!
//! 1. A request that presents a `Authorization` header is judged by it alone: the scrape
//!    token ([`ScrapeToken`], `[metrics] token_file`) lets it in from anywhere; anything
//!    else (a wrong token, an MCP token, no token configured) is 401. A wrong credential is
//!    never waved through because the request also happens to come from loopback.
//! 2. Without one, a request from loopback is let in: metrics are as local as the server's
//!    log. "From loopback" means the client address after the trusted proxies
//!    (`trusted_proxies`) are walked, and a loopback peer that is not a trusted proxy but
//!    sends `Forwarded` or `X-Forwarded-For` counts as remote: it is a proxy on this host
//!    relaying someone else.
//! 3. Otherwise: 401 (with a `Bearer` challenge) when a scrape token is configured, so a
//!    scraper knows what to send; 403 when none is, as no credential would help.
//!
//! MCP tokens never open `/metrics` and the scrape token opens nothing else: a leaked
//! scrape token cannot run a command, and a scraper needs no rights on the host.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The fewest characters a scrape token may have (`openssl rand -hex 32` makes 64).
pub const MIN_TOKEN_CHARS: usize = 32;

/// The SHA-256 of the scrape token; the token itself is not kept.
#[derive(Clone)]
pub struct ScrapeToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken([redacted])")
    }
}

/// Why the scrape token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the metrics token file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the metrics token in {} is shorter than {MIN_TOKEN_CHARS} characters",
        .path.display()
    )]
    TooShort { path: PathBuf },
    #[error(
        "the metrics token in {} has characters a Bearer token cannot carry",
        .path.display()
    )]
    NotToken68 { path: PathBuf },
}

impl TokenFileError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Read { .. } => "check [metrics] token_file; the file holds the token on one line",
            Self::TooShort { .. } | Self::NotToken68 { .. } => {
                "write a random token into the file: (umask 077; openssl rand -hex 32 > FILE)"
            }
        }
    }
}

impl ScrapeToken {
    /// The token written in `path` (surrounding whitespace ignored).
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(text.trim()).map_err(|problem| problem(path.to_owned()))
    }

    /// A token from its text; the error is made once the path is known.
    fn parse(token: &str) -> Result<Self, fn(PathBuf) -> TokenFileError> {
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(|path| TokenFileError::TooShort { path });
        }
        if !token.bytes().all(is_token68_byte) {
            return Err(|path| TokenFileError::NotToken68 { path });
        }
        Ok(Self::of(token))
    }

    fn of(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `presented` is the token (compared as digests, in constant time).
    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        bool::from(self.digest.ct_eq(&digest))
    }
}

/// RFC 6750's `b64token` characters.
fn is_token68_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/=".contains(&byte)
}

/// What one scrape request brings to the decision.
#[derive(Debug, Clone, Copy)]
pub struct Scrape<'a> {
    /// The client, after the trusted proxies; `None` when the connection's peer is unknown.
    pub client: Option<IpAddr>,
    /// A loopback peer that is not a trusted proxy sent `Forwarded` / `X-Forwarded-For`.
    pub relayed: bool,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a [u8]>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allow,
    /// 401: a credential is needed (or the one sent is wrong).
    Unauthorized,
    /// 403: only loopback may scrape, and no token is configured.
    Forbidden,
}

/// Decide `scrape` under the configured `token` (see the rules above).
pub fn decide(scrape: Scrape<'_>, token: Option<&ScrapeToken>) -> Access {
    if let Some(header) = scrape.authorization {
        let presented = bearer(header);
        return match (token, presented) {
            (Some(token), Some(presented)) if token.matches(presented) => Access::Allow,
            _ => Access::Unauthorized,
        };
    }
    let local = scrape.client.is_some_and(|ip| ip.is_loopback()) && !scrape.relayed;
    match (local, token) {
        (true, _) => Access::Allow,
        (false, Some(_)) => Access::Unauthorized,
        (false, None) => Access::Forbidden,
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive), if the header is one.
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

    fn token() -> ScrapeToken {
        ScrapeToken::parse(TOKEN).unwrap()
    }

    fn scrape(client: &str, relayed: bool, authorization: Option<&str>) -> Scrape<'static> {
        let authorization = authorization.map(|text| text.to_owned().leak().as_bytes());
        Scrape {
            client: Some(client.parse().unwrap()),
            relayed,
            authorization,
        }
    }

    /// Each refused scrape next to its near miss that is let in.
    #[test]
    fn each_refusal_has_a_near_miss_that_is_allowed() {
        let token = token();
        let good = format!("Bearer {TOKEN}");
        let pairs: [(Scrape<'_>, Option<&ScrapeToken>, Access, Scrape<'_>); 6] = [
            // Remote without a token configured; the same from loopback.
            (
                scrape("192.0.2.7", false, None),
                None,
                Access::Forbidden,
                scrape("127.0.0.1", false, None),
            ),
            // Remote with a token configured but none sent; the same sending it.
            (
                scrape("192.0.2.7", false, None),
                Some(&token),
                Access::Unauthorized,
                scrape("192.0.2.7", false, Some(&good)),
            ),
            // Remote with a wrong token; the right one.
            (
                scrape("2001:db8::1", false, Some(&format!("Bearer {TOKEN}x"))),
                Some(&token),
                Access::Unauthorized,
                scrape("2001:db8::1", false, Some(&good)),
            ),
            // A loopback proxy relaying someone (no token configured); not relaying.
            (
                scrape("127.0.0.1", true, None),
                None,
                Access::Forbidden,
                scrape("::1", false, None),
            ),
            // Loopback with a wrong token is judged by the token; loopback without one.
            (
                scrape("127.0.0.1", false, Some("Bearer wrong")),
                Some(&token),
                Access::Unauthorized,
                scrape("127.0.0.1", false, None),
            ),
            // Not the Bearer scheme; the scheme in another case.
            (
                scrape("192.0.2.7", false, Some(&format!("Basic {TOKEN}"))),
                Some(&token),
                Access::Unauthorized,
                scrape("192.0.2.7", false, Some(&format!("bEaReR {TOKEN}"))),
            ),
        ];
        for (refused, configured, expected, near_miss) in pairs {
            assert_eq!(decide(refused, configured), expected, "{refused:?}");
            assert_eq!(
                decide(near_miss, configured),
                Access::Allow,
                "{near_miss:?}"
            );
        }
    }

    #[test]
    fn an_unknown_peer_is_not_loopback() {
        let unknown = Scrape {
            client: None,
            relayed: false,
            authorization: None,
        };
        assert_eq!(decide(unknown, None), Access::Forbidden);
        assert_eq!(decide(unknown, Some(&token())), Access::Unauthorized);
    }

    #[test]
    fn a_token_sent_with_no_token_configured_is_refused_even_from_loopback() {
        let sent = format!("Bearer {TOKEN}");
        assert_eq!(
            decide(scrape("127.0.0.1", false, Some(&sent)), None),
            Access::Unauthorized
        );
    }

    #[test]
    fn the_token_file_is_trimmed_and_must_hold_a_long_bearer_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.token");
        std::fs::write(&path, format!("  {TOKEN}\n")).unwrap();
        let loaded = ScrapeToken::load(&path).unwrap();
        assert!(loaded.matches(TOKEN.as_bytes()));
        assert!(!loaded.matches(format!("{TOKEN}\n").as_bytes()));
        assert_eq!(format!("{loaded:?}"), "ScrapeToken([redacted])");

        std::fs::write(&path, &TOKEN[..MIN_TOKEN_CHARS - 1]).unwrap();
        assert!(matches!(
            ScrapeToken::load(&path),
            Err(TokenFileError::TooShort { .. })
        ));
        std::fs::write(&path, &TOKEN[..MIN_TOKEN_CHARS]).unwrap();
        assert!(ScrapeToken::load(&path).is_ok());
        std::fs::write(&path, format!("{TOKEN} {TOKEN}")).unwrap();
        assert!(matches!(
            ScrapeToken::load(&path),
            Err(TokenFileError::NotToken68 { .. })
        ));
        assert!(matches!(
            ScrapeToken::load(&dir.path().join("absent")),
            Err(TokenFileError::Read { .. })
        ));
    }
}
