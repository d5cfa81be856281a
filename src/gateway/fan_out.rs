//! `fleet_run`: one command on every host a selector matches, at most `concurrency` at a
//! time, each host's call bounded by its own timeout, and one result listing every host's
//! outcome. This file owns the outcome of one host ([`HostRun`], from the host's answer)
//! and the shape of the whole result ([`shape`]): the summary first, then each host with
//! its output cut to an equal share of the result budget (head and tail, with the marker
//! saying exactly what was left out), so a thousand hosts never make one result too big.

use std::collections::BTreeMap;

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

use super::bus::CallError;
use crate::{fleet::protocol as wire, tools::result_budget};

/// How a host's part of a fan-out ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit code 0.
    Ok,
    /// Another exit code, a signal, or an error on the way.
    Failed,
    TimedOut,
    /// Not online, or nobody answered on its subject.
    Offline,
    /// The host refused: its policy, or it does not trust this gateway or principal.
    Denied,
    Cancelled,
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

/// The structured result of `fleet_run`.
#[derive(Debug, Serialize)]
pub struct FleetRunOutput {
    /// Hosts per outcome.
    pub summary: BTreeMap<&'static str, usize>,
    pub hosts: Vec<HostRun>,
}

/// Counts per outcome, as "ok 3, failed 1".
pub fn summary_line(summary: &BTreeMap<&'static str, usize>) -> String {
    summary
        .iter()
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Room per host for its own fields and the text lines around its output.
const PER_HOST_OVERHEAD: usize = 320;

/// The result of a fan-out: hosts by name, each host's output cut so that text and
/// structured content together stay within `budget` bytes.
pub fn shape(mut runs: Vec<HostRun>, budget: usize) -> CallToolResult {
    runs.sort_by(|a, b| a.host.cmp(&b.host));
    let mut summary = BTreeMap::new();
    for run in &runs {
        *summary.entry(run.outcome.as_str()).or_insert(0) += 1;
    }
    // Each output appears twice (text and structured content).
    let share = (budget / runs.len().max(1)).saturating_sub(PER_HOST_OVERHEAD) / 4;
    for run in &mut runs {
        for output in [&mut run.stdout, &mut run.stderr] {
            if output.len() > share {
                *output = result_budget::head_and_tail(output, share).0;
            }
        }
        if let Some(error) = run.error.as_mut()
            && error.len() > share.max(200)
        {
            *error = result_budget::head_and_tail(error, share.max(200)).0;
        }
    }
    let mut text = format!("{} hosts: {}\n", runs.len(), summary_line(&summary));
    for run in &runs {
        text.push_str(&format!("\n== {} : {}", run.host, run.outcome.as_str()));
        if let Some(code) = run.exit_code {
            text.push_str(&format!(" (exit {code})"));
        }
        text.push('\n');
        if let Some(error) = &run.error {
            text.push_str(error);
            text.push('\n');
        }
        if !run.stdout.is_empty() {
            text.push_str(&run.stdout);
            if !run.stdout.ends_with('\n') {
                text.push('\n');
            }
        }
        if !run.stderr.is_empty() {
            text.push_str("stderr: ");
            text.push_str(&run.stderr);
            if !run.stderr.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    let output = FleetRunOutput {
        summary,
        hosts: runs,
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&output).ok();
    // Hosts that failed are still an answer: the per-host outcomes say what happened.
    result_budget::fit(result, budget)
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

    #[test]
    fn the_result_sums_up_and_lists_every_host_by_name() {
        let runs = vec![
            HostRun::from_outcome("web2", ran(1, "no"), 1),
            HostRun::from_outcome("web1", ran(0, "yes"), 1),
            HostRun::from_error("db1", &CallError::Offline("gone".to_owned()), 0),
        ];
        let result = shape(runs, 100_000);
        let structured = result.structured_content.unwrap();
        assert_eq!(
            structured["summary"],
            json!({"ok": 1, "failed": 1, "offline": 1})
        );
        let hosts: Vec<&str> = structured["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|host| host["host"].as_str().unwrap())
            .collect();
        assert_eq!(hosts, ["db1", "web1", "web2"]);
        let ContentBlock::Text(text) = &result.content[0] else {
            panic!()
        };
        assert!(
            text.text
                .starts_with("3 hosts: failed 1, offline 1, ok 1\n"),
            "{}",
            text.text
        );
        assert!(
            text.text.contains("== web2 : failed (exit 1)\nno\n"),
            "{}",
            text.text
        );
    }

    #[test]
    fn many_hosts_with_big_outputs_fit_the_budget_with_a_marker_per_host() {
        let big = "x".repeat(50_000);
        let runs: Vec<HostRun> = (0..200)
            .map(|i| HostRun::from_outcome(&format!("h{i:03}"), ran(0, &big), 1))
            .collect();
        let budget = 200_000;
        let result = shape(runs, budget);
        assert!(result_budget::serialized_len(&result) <= budget);
        assert_ne!(result.is_error, Some(true));
        let structured = result.structured_content.unwrap();
        let hosts = structured["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 200);
        let stdout = hosts[7]["stdout"].as_str().unwrap();
        assert!(stdout.len() < big.len());
        assert!(stdout.contains("omitted"), "{stdout}");
    }

    #[test]
    fn small_outputs_are_kept_whole() {
        let runs = vec![HostRun::from_outcome("web1", ran(0, "12:00 up 3 days"), 1)];
        let result = shape(runs, 100_000);
        let structured = result.structured_content.unwrap();
        assert_eq!(structured["hosts"][0]["stdout"], "12:00 up 3 days");
    }
}
