//! Why a client command could not reach or understand the remote server.

use std::path::PathBuf;

/// A failure on the way to the remote server, or in what it answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url} is not an http:// or https:// URL")]
    Scheme { url: String },
    #[error("invalid URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read the token file {path}: {reason}")]
    TokenFile { path: PathBuf, reason: String },
    #[error("the token file {path} is empty")]
    EmptyTokenFile { path: PathBuf },
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the server refused the token (HTTP {status})")]
    Unauthorized { status: u16 },
    #[error("the server answered HTTP {status} to {what}{}", detail_suffix(.body))]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("the server no longer knows the session (HTTP 404): it was restarted or expired it")]
    SessionGone,
    #[error("the connection to the server was lost: {0}")]
    Lost(String),
    #[error("the server sent something that is not JSON-RPC: {0}")]
    Protocol(String),
    #[error("the server answered {method} with error {code}: {message}")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    #[error("interrupted; the call was cancelled on the server")]
    Interrupted,
    #[error("no answer from the server within {seconds} s while {what}")]
    Timeout { seconds: u64, what: &'static str },
}

fn detail_suffix(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::log_excerpt::log_excerpt(body))
    }
}

impl ClientError {
    /// What to do next, when there is something to say.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::Scheme { .. } | Self::Url { .. } => {
                "give the server's URL, e.g. http://127.0.0.1:8000/mcp (or /sse)"
            }
            Self::TokenFile { .. } | Self::EmptyTokenFile { .. } => {
                "--token-file names a file holding the token (one line, readable only by you)"
            }
            Self::CaFile { .. } => "--ca-file names a PEM file with the CA certificate(s) to trust",
            Self::Unreachable { .. } => {
                "is the server running and listening on that address? (hostmcp serve --listen ADDR)"
            }
            Self::Unauthorized { .. } => {
                "set HOSTMCP_TOKEN (or --token-file) to a token the server accepts (hostmcp token create)"
            }
            _ => return None,
        })
    }

    /// The status a POST failed with calls for the legacy HTTP+SSE transport (the spec's
    /// backwards-compatibility rule: a 4xx; authentication failures excepted, which the other
    /// transport would only repeat).
    pub fn calls_for_legacy_sse(&self) -> bool {
        matches!(self, Self::Status { status, .. } if (400..500).contains(status))
    }

    /// From a reqwest failure: unreachable (connect, TLS) or lost (mid-body).
    pub(crate) fn from_http(url: &reqwest::Url, error: &reqwest::Error) -> Self {
        let reason = chain(error);
        if error.is_connect() || error.is_timeout() || error.is_builder() {
            Self::Unreachable {
                url: url.to_string(),
                reason,
            }
        } else {
            Self::Lost(reason)
        }
    }
}

/// An error and its sources on one line (reqwest's own text alone says only "error sending
/// request").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl From<crate::outbound_tls::OutboundTlsError> for ClientError {
    fn from(error: crate::outbound_tls::OutboundTlsError) -> Self {
        use crate::outbound_tls::OutboundTlsError;
        match error {
            OutboundTlsError::CaFile { path, reason } => Self::CaFile { path, reason },
            OutboundTlsError::Tls(reason) => Self::Tls(reason),
        }
    }
}
