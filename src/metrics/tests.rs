use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use super::*;

fn fixed(value: usize) -> Box<dyn Fn() -> usize + Send + Sync> {
    Box::new(move || value)
}

fn metrics() -> Metrics {
    Metrics::new(
        ["run_command", "job_list"],
        Sources {
            commands_running: fixed(0),
            jobs_running: fixed(0),
            audit_queue_depth: fixed(0),
        },
    )
}

/// The line of `text` that starts with `series` followed by a space (its value follows).
fn value_of(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

#[test]
fn a_new_server_shows_every_series_at_zero_with_types_and_units_in_names() {
    let text = metrics().render();
    for (name, kind) in [
        ("hostmcp_tool_calls_total", "counter"),
        ("hostmcp_tool_call_duration_seconds", "histogram"),
        ("hostmcp_sessions_open", "gauge"),
        ("hostmcp_auth_failures_total", "counter"),
        ("hostmcp_auth_lockouts_total", "counter"),
        ("hostmcp_audit_sync_duration_seconds", "histogram"),
        ("hostmcp_build_info", "gauge"),
        ("hostmcp_commands_running", "gauge"),
        ("hostmcp_jobs_running", "gauge"),
        ("hostmcp_audit_queue_depth", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind} in\n{text}"
        );
    }
    assert_eq!(
        value_of(
            &text,
            r#"hostmcp_tool_calls_total{tool="run_command",outcome="rate_limited"}"#
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        value_of(&text, r#"hostmcp_sessions_open{transport="sse"}"#).as_deref(),
        Some("0")
    );
    assert_eq!(
        value_of(&text, r#"hostmcp_auth_failures_total{reason="expired"}"#).as_deref(),
        Some("0")
    );
    let build = format!(
        r#"hostmcp_build_info{{version="{}",git_commit="{GIT_COMMIT}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value_of(&text, &build).as_deref(), Some("1"), "{text}");
}

#[test]
fn tool_calls_count_by_tool_and_outcome_and_only_dispatched_ones_are_timed() {
    let metrics = metrics();
    metrics.tool_call(
        "run_command",
        ToolOutcome::Ok,
        Some(Duration::from_millis(3)),
    );
    metrics.tool_call("run_command", ToolOutcome::Ok, Some(Duration::from_secs(2)));
    metrics.tool_call("run_command", ToolOutcome::RateLimited, None);
    metrics.tool_call("job_list", ToolOutcome::Denied, None);
    // Not a tool of this server: no new series (a caller cannot make labels).
    metrics.tool_call("no_such_tool", ToolOutcome::Invalid, None);
    let text = metrics.render();
    let calls = |tool: &str, outcome: &str| {
        value_of(
            &text,
            &format!(r#"hostmcp_tool_calls_total{{tool="{tool}",outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(calls("run_command", "ok").as_deref(), Some("2"));
    assert_eq!(calls("run_command", "rate_limited").as_deref(), Some("1"));
    assert_eq!(calls("run_command", "error").as_deref(), Some("0"));
    assert_eq!(calls("job_list", "denied").as_deref(), Some("1"));
    assert_eq!(calls("no_such_tool", "invalid"), None);
    assert!(!text.contains("no_such_tool"), "{text}");

    let histogram = |suffix: &str| {
        value_of(
            &text,
            &format!(r#"hostmcp_tool_call_duration_seconds{suffix}{{tool="run_command"}}"#),
        )
    };
    assert_eq!(histogram("_count").as_deref(), Some("2"));
    assert_eq!(histogram("_sum").as_deref(), Some("2.003"));
    assert_eq!(
        value_of(
            &text,
            r#"hostmcp_tool_call_duration_seconds_bucket{tool="run_command",le="0.005"}"#
        )
        .as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        value_of(
            &text,
            r#"hostmcp_tool_call_duration_seconds_count{tool="job_list"}"#
        )
        .as_deref(),
        Some("0")
    );
}

#[test]
fn sampled_gauges_are_read_at_each_scrape() {
    let running = Arc::new(AtomicUsize::new(2));
    let source = running.clone();
    let metrics = Metrics::new(
        ["run_command"],
        Sources {
            commands_running: Box::new(move || source.load(Ordering::Relaxed)),
            jobs_running: fixed(1),
            audit_queue_depth: fixed(7),
        },
    );
    let text = metrics.render();
    assert_eq!(
        value_of(&text, "hostmcp_commands_running").as_deref(),
        Some("2")
    );
    assert_eq!(
        value_of(&text, "hostmcp_jobs_running").as_deref(),
        Some("1")
    );
    assert_eq!(
        value_of(&text, "hostmcp_audit_queue_depth").as_deref(),
        Some("7")
    );
    running.store(0, Ordering::Relaxed);
    assert_eq!(
        value_of(&metrics.render(), "hostmcp_commands_running").as_deref(),
        Some("0")
    );
}

#[test]
fn sessions_authentication_refusals_and_syncs_are_counted() {
    let metrics = metrics();
    metrics.session(SessionTransport::Mcp, true);
    metrics.session(SessionTransport::Mcp, true);
    metrics.session(SessionTransport::Sse, true);
    metrics.session(SessionTransport::Mcp, false);
    metrics.auth_failed(AuthFailure::Invalid);
    metrics.auth_failed(AuthFailure::MetricsToken);
    metrics.auth_locked_out();
    metrics.policy_refused("deny[0]");
    metrics.policy_refused("deny[0]");
    metrics.policy_refused("default");
    metrics.audit_synced(Duration::from_micros(300));
    let text = metrics.render();
    for (series, value) in [
        (r#"hostmcp_sessions_open{transport="mcp"}"#, "1"),
        (r#"hostmcp_sessions_open{transport="sse"}"#, "1"),
        (r#"hostmcp_auth_failures_total{reason="invalid"}"#, "1"),
        (
            r#"hostmcp_auth_failures_total{reason="metrics_token"}"#,
            "1",
        ),
        (r#"hostmcp_auth_failures_total{reason="missing"}"#, "0"),
        ("hostmcp_auth_lockouts_total", "1"),
        (r#"hostmcp_policy_refusals_total{rule="deny[0]"}"#, "2"),
        (r#"hostmcp_policy_refusals_total{rule="default"}"#, "1"),
        ("hostmcp_audit_sync_duration_seconds_count", "1"),
        (
            r#"hostmcp_audit_sync_duration_seconds_bucket{le="0.0005"}"#,
            "1",
        ),
        (
            r#"hostmcp_audit_sync_duration_seconds_bucket{le="0.00025"}"#,
            "0",
        ),
    ] {
        assert_eq!(
            value_of(&text, series).as_deref(),
            Some(value),
            "{series} in\n{text}"
        );
    }
}

#[test]
fn without_installed_metrics_counting_is_a_no_op_and_a_session_guard_counts_nothing() {
    // Nothing installs metrics in unit tests: these must neither panic nor count.
    tool_call("run_command", ToolOutcome::Ok, None);
    auth_failed(AuthFailure::Missing);
    policy_refused("default");
    assert_eq!(time_audit_sync(|| 5), 5);
    let session = OpenSession::new(SessionTransport::Mcp);
    assert!(session.counted.is_none());
}
