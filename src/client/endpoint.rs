//! Where the remote server is and how to reach it: its URL, the bearer token (from
//! `HOSTMCP_TOKEN` or a token file; a token is never a command-line argument, where every
//! user of the host could read it), and the HTTP client with the TLS trust to use.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use reqwest::{Method, RequestBuilder, Url, header};

use super::ClientError;
use crate::auth::Secret;

/// How long a TCP connect (and TLS handshake) to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `connect`, `call` and `tools` are told about the server.
#[derive(Debug)]
pub struct EndpointSettings {
    pub url: String,
    pub token: Option<Secret>,
    /// Trust only the CA certificates in this PEM file (like curl's `--cacert`) instead of
    /// the host's trust store.
    pub ca_file: Option<PathBuf>,
}

/// The server's URL, the token and the HTTP client, shared by every request to it.
#[derive(Debug)]
pub struct Endpoint {
    url: Url,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl Endpoint {
    pub fn new(settings: EndpointSettings) -> Result<Arc<Self>, ClientError> {
        let url = parse_url(&settings.url)?;
        let tls = crate::outbound_tls::client_config(settings.ca_file.as_deref())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http1_only()
            .no_proxy()
            // A redirect would carry the token to wherever the server points: not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ClientError::Tls(error.to_string()))?;
        Ok(Arc::new(Self {
            url,
            token: settings.token,
            http,
        }))
    }

    /// The URL the user gave (`/mcp` or `/sse` of the server).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Plain HTTP to a host other than loopback: the token crosses the network in clear.
    pub fn sends_token_in_clear(&self) -> bool {
        self.token.is_some()
            && self.url.scheme() == "http"
            && !crate::auth::jwt::settings::is_loopback_host(&self.url)
    }

    /// A request to `url` with the bearer token.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => {
                request.header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            }
            None => request,
        }
    }
}

/// The server URL, if it is http(s).
fn parse_url(text: &str) -> Result<Url, ClientError> {
    let url = Url::parse(text).map_err(|error| ClientError::Url {
        url: text.to_owned(),
        reason: error.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(ClientError::Scheme {
            url: text.to_owned(),
        }),
    }
}

/// The token: `--token-file` if given (first line, surrounding whitespace trimmed), else
/// `HOSTMCP_TOKEN` if set and not empty, else none.
pub fn resolve_token(
    token_file: Option<&Path>,
    env_token: Option<String>,
) -> Result<Option<Secret>, ClientError> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path).map_err(|error| ClientError::TokenFile {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(ClientError::EmptyTokenFile {
                path: path.to_owned(),
            });
        }
        return Ok(Some(Secret::new(token)));
    }
    Ok(env_token
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_file_wins_over_the_environment_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  from-file \nsecond line\n").unwrap();
        let token = resolve_token(Some(&file), Some("from-env".into())).unwrap();
        assert_eq!(token.unwrap().expose(), "from-file");
        // Near miss: without the file, the environment's token is used.
        let token = resolve_token(None, Some(" from-env\n".into())).unwrap();
        assert_eq!(token.unwrap().expose(), "from-env");
        assert!(resolve_token(None, Some("  ".into())).unwrap().is_none());
        assert!(resolve_token(None, None).unwrap().is_none());
    }

    #[test]
    fn an_empty_or_missing_token_file_is_an_error_not_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(matches!(
            resolve_token(Some(&empty), Some("env".into())),
            Err(ClientError::EmptyTokenFile { .. })
        ));
        assert!(matches!(
            resolve_token(Some(&dir.path().join("missing")), None),
            Err(ClientError::TokenFile { .. })
        ));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_servers() {
        assert!(parse_url("http://127.0.0.1:8000/mcp").is_ok());
        assert!(parse_url("https://host.example/sse").is_ok());
        assert!(matches!(
            parse_url("ftp://host/mcp"),
            Err(ClientError::Scheme { .. })
        ));
        assert!(matches!(
            parse_url("127.0.0.1:8000"),
            Err(ClientError::Scheme { .. }) | Err(ClientError::Url { .. })
        ));
    }

    #[test]
    fn the_token_is_in_clear_only_over_plain_http_to_another_host() {
        let endpoint = |url: &str, token: bool| {
            Endpoint::new(EndpointSettings {
                url: url.to_owned(),
                token: token.then(|| Secret::new("t")),
                ca_file: None,
            })
            .unwrap()
        };
        assert!(endpoint("http://10.1.2.3:8000/mcp", true).sends_token_in_clear());
        // Near misses: loopback, TLS, no token.
        assert!(!endpoint("http://127.0.0.1:8000/mcp", true).sends_token_in_clear());
        assert!(!endpoint("http://localhost:8000/mcp", true).sends_token_in_clear());
        assert!(!endpoint("https://10.1.2.3:8000/mcp", true).sends_token_in_clear());
        assert!(!endpoint("http://10.1.2.3:8000/mcp", false).sends_token_in_clear());
    }
}
