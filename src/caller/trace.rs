//! The W3C trace context of one call: a `traceparent` (W3C Trace Context level 1, section
//! 3.2) received in the request's `_meta.traceparent` (MCP 2026-07-28, SEP-414) or in the
//! HTTP `traceparent` header; `_meta` wins, as it belongs to the one request. The value is
//! validated here and only here: `version-traceid-parentid-flags`, lowercase hex of 2, 32,
//! 16 and 2 digits, version `ff` refused, trace id and parent id not all zeros; a later
//! version may carry more fields after a `-`. An invalid value is ignored (a trace is
//! never a reason to refuse a call), as the W3C specification asks of a receiver.
//!
//! A valid one is carried into the call's audit records (`trace_id`) and log lines (a
//! `call` span with `trace_id` and `parent_id`).

use std::fmt;

/// A validated `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The whole header value, as received (lowercase hex).
    value: String,
}

/// Why a `traceparent` value was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    #[error("not version-traceid-parentid-flags with 2, 32, 16 and 2 lowercase hex digits")]
    Syntax,
    #[error("version ff is invalid")]
    VersionFf,
    #[error("the trace id is all zeros")]
    ZeroTraceId,
    #[error("the parent id is all zeros")]
    ZeroParentId,
}

/// The length of a version-00 value: 2 + 1 + 32 + 1 + 16 + 1 + 2.
const LEN: usize = 55;

impl TraceParent {
    /// Validate a received value.
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        let head = bytes.get(..LEN).ok_or(TraceParentError::Syntax)?;
        let hex = |range: std::ops::Range<usize>| {
            head[range]
                .iter()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
        };
        let dashes = head[2] == b'-' && head[35] == b'-' && head[52] == b'-';
        if !dashes || !hex(0..2) || !hex(3..35) || !hex(36..52) || !hex(53..55) {
            return Err(TraceParentError::Syntax);
        }
        let version = &value[0..2];
        if version == "ff" {
            return Err(TraceParentError::VersionFf);
        }
        // Version 00 is exactly 55 characters; a later one may add `-` and more fields.
        if bytes.len() > LEN && (version == "00" || bytes[LEN] != b'-') {
            return Err(TraceParentError::Syntax);
        }
        if value[3..35].bytes().all(|byte| byte == b'0') {
            return Err(TraceParentError::ZeroTraceId);
        }
        if value[36..52].bytes().all(|byte| byte == b'0') {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self {
            value: value[..LEN].to_owned(),
        })
    }

    /// A value from a request, or `None` (logged at debug level) when it is absent or invalid.
    pub fn received(value: Option<&str>, source: &'static str) -> Option<Self> {
        match Self::parse(value?) {
            Ok(trace) => Some(trace),
            Err(error) => {
                tracing::debug!(%error, source, "traceparent ignored");
                None
            }
        }
    }

    /// The `traceparent` header of an HTTP request, if valid.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<Self> {
        let mut values = headers.get_all("traceparent").iter();
        let first = values.next()?;
        if values.next().is_some() {
            tracing::debug!("traceparent ignored: the header is repeated");
            return None;
        }
        Self::received(first.to_str().ok(), "header")
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> &str {
        &self.value[3..35]
    }

    /// The 16-hex-digit id of the caller's span.
    pub fn parent_id(&self) -> &str {
        &self.value[36..52]
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_traceparent_is_kept_and_split() {
        let trace = TraceParent::parse(GOOD).unwrap();
        assert_eq!(trace.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(trace.parent_id(), "b7ad6b7169203331");
        assert_eq!(trace.to_string(), GOOD);
        // A later version may add fields; only the first four are kept.
        let later = TraceParent::parse(&format!("cc{}-what-ever", &GOOD[2..])).unwrap();
        assert_eq!(later.trace_id(), trace.trace_id());
    }

    #[test]
    fn each_malformed_traceparent_is_refused_and_its_near_miss_is_not() {
        let cases: &[(&str, TraceParentError)] = &[
            (
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                TraceParentError::ZeroTraceId,
            ),
            (
                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                TraceParentError::ZeroParentId,
            ),
            (
                "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                TraceParentError::VersionFf,
            ),
            (
                "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
                TraceParentError::Syntax,
            ),
            (
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
                TraceParentError::Syntax,
            ),
            (
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
                TraceParentError::Syntax,
            ),
            (
                "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                TraceParentError::Syntax,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceParent::parse(value), Err(*expected), "{value}");
        }
        // Near misses: one non-zero digit, version fe, and a later version's extra field.
        for value in [
            "00-00000000000000000000000000000001-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000001-01",
            "fe-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert!(TraceParent::parse(value).is_ok(), "{value}");
        }
    }

    #[test]
    fn a_repeated_header_is_ignored_and_a_single_one_is_used() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("traceparent", GOOD.parse().unwrap());
        assert_eq!(
            TraceParent::from_headers(&headers).map(|trace| trace.to_string()),
            Some(GOOD.to_owned())
        );
        headers.append("traceparent", GOOD.parse().unwrap());
        assert_eq!(TraceParent::from_headers(&headers), None);
    }
}
