//! `fleet_run`: one command on every host a selector matches, at most `concurrency` at a
//! time, each host's call bounded by its own timeout. This file owns the outcome of one
//! host ([`HostRun`], from the host's answer or the call's error) and the counts per
//! outcome; [`super::fleet_result`] shapes all of them into one result within the budget.

use std::collections::BTreeMap;

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

use super::bus::CallError;
use crate::fleet::protocol as wire;

/// How a host's part of a fan-out ended, in the order a result lists them: what needs
/// attention first, `ok` last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Another exit code, a signal, or an error on the way.
    Failed,
    TimedOut,
    /// The host refused: its policy, or it does not trust this gateway or principal.
    Denied,
    /// Not online, or nobody answered on its subject.
    Offline,
    Cancelled,
    /// Exit code 0.
    Ok,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Offline => "offline",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One host's part of the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRun {
    pub host: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    /// Why it did not run or failed, when it did not simply exit non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl HostRun {
    /// The part of a host whose call failed before it gave a result.
    pub fn from_error(host: &str, error: &CallError, duration_ms: u64) -> Self {
        let outcome = match error {
            CallError::Offline(_) | CallError::Unknown(_) => Outcome::Offline,
            CallError::Timeout { .. } => Outcome::TimedOut,
            CallError::Cancelled => Outcome::Cancelled,
            CallError::Bus(_) | CallError::Reply { .. } => Outcome::Failed,
        };
        Self::failed(host, outcome, error.to_string(), duration_ms)
    }

    fn failed(host: &str, outcome: Outcome, error: String, duration_ms: u64) -> Self {
        Self {
            host: host.to_owned(),
            outcome,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            error: Some(error),
            duration_ms,
        }
    }

    /// The part of a host that answered: a protocol refusal, or `run_command`'s result.
    pub fn from_outcome(host: &str, outcome: wire::Outcome, duration_ms: u64) -> Self {
        let result = match outcome {
            wire::Outcome::Error { error, message } => {
                let outcome = match error {
                    wire::ErrorKind::Denied | wire::ErrorKind::NotTrusted => Outcome::Denied,
                    wire::ErrorKind::Timeout | wire::ErrorKind::Expired => Outcome::TimedOut,
                    wire::ErrorKind::Cancelled => Outcome::Cancelled,
                    _ => Outcome::Failed,
                };
                return Self::failed(host, outcome, format!("{error}: {message}"), duration_ms);
            }
            wire::Outcome::Ok { result } => result,
        };
        let result: CallToolResult = match serde_json::from_value(result) {
            Ok(result) => result,
            Err(error) => {
                return Self::failed(
                    host,
                    Outcome::Failed,
                    format!("the host's result is not a tool result: {error}"),
                    duration_ms,
                );
            }
        };
        let text = first_text(&result);
        let structured = result.structured_content.unwrap_or(Value::Null);
        if result.is_error == Some(true) && structured.get("exit_code").is_none() {
            let outcome = if text.starts_with("denied") {
                Outcome::Denied
            } else {
                Outcome::Failed
            };
            return Self::failed(host, outcome, text, duration_ms);
        }
        let field = |key: &str| {
            structured
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let exit_code = structured.get("exit_code").and_then(Value::as_i64);
        let timed_out = structured.get("timed_out").and_then(Value::as_bool) == Some(true);
        let outcome = if timed_out {
            Outcome::TimedOut
        } else if exit_code == Some(0) {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        Self {
            host: host.to_owned(),
            outcome,
            exit_code,
            stdout: field("stdout"),
            stderr: field("stderr"),
            error: None,
            duration_ms: structured
                .get("duration_ms")
                .and_then(Value::as_u64)
                .unwrap_or(duration_ms),
        }
    }
}

fn first_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .find_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Counts per outcome, failures first, as "failed 1, ok 3".
pub fn summary_line(summary: &BTreeMap<Outcome, usize>) -> String {
    summary
        .iter()
        .map(|(outcome, count)| format!("{} {count}", outcome.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Hosts per outcome.
pub fn count(runs: &[HostRun]) -> BTreeMap<Outcome, usize> {
    let mut summary = BTreeMap::new();
    for run in runs {
        *summary.entry(run.outcome).or_insert(0) += 1;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ran(exit_code: i64, stdout: &str) -> wire::Outcome {
        let result = json!({
            "content": [{"type": "text", "text": format!("exit {exit_code}")}],
            "structuredContent": {
                "exit_code": exit_code, "stdout": stdout, "stderr": "",
                "timed_out": false, "duration_ms": 5
            },
            "isError": exit_code != 0
        });
        wire::Outcome::Ok { result }
    }

    #[test]
    fn exit_codes_timeouts_and_refusals_become_outcomes() {
        assert_eq!(
            HostRun::from_outcome("a", ran(0, "up"), 1).outcome,
            Outcome::Ok
        );
        let failed = HostRun::from_outcome("a", ran(2, ""), 1);
        assert_eq!(
            (failed.outcome, failed.exit_code),
            (Outcome::Failed, Some(2))
        );
        let denied = wire::Outcome::Ok {
            result: json!({
                "content": [{"type": "text", "text": "denied by default (default = \"deny\"): rm"}],
                "isError": true
            }),
        };
        assert_eq!(
            HostRun::from_outcome("a", denied, 1).outcome,
            Outcome::Denied
        );
        let refused = wire::Outcome::Error {
            error: wire::ErrorKind::NotTrusted,
            message: "unknown gateway".to_owned(),
        };
        assert_eq!(
            HostRun::from_outcome("a", refused, 1).outcome,
            Outcome::Denied
        );
        let busy = wire::Outcome::Error {
            error: wire::ErrorKind::Busy,
            message: "busy".to_owned(),
        };
        assert_eq!(HostRun::from_outcome("a", busy, 1).outcome, Outcome::Failed);
        let offline = CallError::Offline("host \"b\" is offline".to_owned());
        assert_eq!(
            HostRun::from_error("b", &offline, 0).outcome,
            Outcome::Offline
        );
        let late = CallError::Timeout {
            host: "c".to_owned(),
            secs: 3,
        };
        assert_eq!(
            HostRun::from_error("c", &late, 0).outcome,
            Outcome::TimedOut
        );
    }
}
