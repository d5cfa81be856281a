//! Prometheus metrics: what `/metrics` shows and the handles the rest of the server counts
//! with. Owns the series (their names, help, labels and buckets), the process-wide handle
//! the instrumented code counts through, the rendering in the Prometheus text format
//! (0.0.4, `prometheus-client`'s encoder) and who may scrape ([`access`]).
//!
//! Off by default: `hostmcp serve --metrics` or a `[metrics]` table [`install`]s one
//! [`Metrics`] at start. Until then every counting function here is one atomic load that
//! finds nothing and returns, so the conformance server, `hostmcp stdio` and the tests pay
//! nothing. Installed, a tool call costs an immutable map lookup (no lock) and atomic
//! increments on handles made at start, plus one uncontended `parking_lot` mutex in the
//! latency histogram; no `Family` lookup (a read lock and a hash of a label set) happens on
//! the call path, only on the rare paths (refusals, failed authentications).
//!
//! Why a process-wide handle rather than one passed down: the counted places (the tool
//! dispatch, the auth layer, the audit writer thread, the session tables) are built in many
//! places (tests, the conformance server, benches) that have no metrics; a handle installed
//! once keeps each count a one-line call and lets this room import nothing from the others,
//! so no arrow runs back up to it. Gauges of things the server already counts (commands and
//! jobs running, the audit queue) are sampled at scrape time through closures `serve` gives
//! ([`Sources`]): free on the call path, and never drifting from the truth.
//!
//! What is never here: tokens, principals' names, command lines, arguments, paths. Labels
//! are tool names, outcomes, policy rule ids (`deny[0]`, `default`, `resolve`, ...),
//! failure reasons and transports: all bounded by the configuration, none chosen by a caller.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `hostmcp_tool_calls_total` | counter | `tool`, `outcome` ([`ToolOutcome`]) |
//! | `hostmcp_tool_call_duration_seconds` | histogram | `tool` |
//! | `hostmcp_commands_running` | gauge | |
//! | `hostmcp_jobs_running` | gauge | |
//! | `hostmcp_sessions_open` | gauge | `transport` ([`SessionTransport`]) |
//! | `hostmcp_auth_failures_total` | counter | `reason` |
//! | `hostmcp_auth_lockouts_total` | counter | |
//! | `hostmcp_policy_refusals_total` | counter | `rule` |
//! | `hostmcp_audit_queue_depth` | gauge | |
//! | `hostmcp_audit_sync_duration_seconds` | histogram | |
//! | `hostmcp_build_info` | gauge (1) | `version`, `git_commit` |

pub mod access;
mod sampled;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::prometheus_text,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

pub use access::{Access, ScrapeToken, TokenFileError};
use sampled::SampledGauges;

/// The `Content-Type` of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// How a tool call ended, as the dispatch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolOutcome {
    /// The tool answered with a result that is not an error.
    Ok,
    /// The tool answered with an error result (`isError`): a command that could not start
    /// or was refused by the policy (also counted by rule in `hostmcp_policy_refusals_total`),
    /// an unknown job, ...
    Error,
    /// The request could not be processed (malformed arguments): a JSON-RPC error.
    Invalid,
    /// The caller's role is below the tool's.
    Denied,
    /// Over the caller's `tool_calls_per_minute`.
    RateLimited,
}

impl ToolOutcome {
    const ALL: [Self; 5] = [
        Self::Ok,
        Self::Error,
        Self::Invalid,
        Self::Denied,
        Self::RateLimited,
    ];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Invalid => "invalid",
            Self::Denied => "denied",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Which transport holds an open session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTransport {
    /// A Streamable HTTP session (`Mcp-Session-Id`) at `/mcp`.
    Mcp,
    /// A legacy HTTP+SSE session at `/sse`.
    Sse,
}

impl SessionTransport {
    const ALL: [Self; 2] = [Self::Mcp, Self::Sse];

    /// The `transport` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::Sse => "sse",
        }
    }
}

/// Why an authentication failed: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`.
    Malformed,
    /// No such token.
    Invalid,
    /// The token's `expires` has passed.
    Expired,
    /// A scrape of `/metrics` with a wrong token, or none off loopback.
    MetricsToken,
}

impl AuthFailure {
    const ALL: [Self; 5] = [
        Self::Missing,
        Self::Malformed,
        Self::Invalid,
        Self::Expired,
        Self::MetricsToken,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::MetricsToken => "metrics_token",
        }
    }
}

/// What the scrape-time gauges read, given by `serve`: each returns the current value.
pub struct Sources {
    /// Commands running now (tool calls and jobs), server-wide.
    pub commands_running: Box<dyn Fn() -> usize + Send + Sync>,
    /// Background jobs still running.
    pub jobs_running: Box<dyn Fn() -> usize + Send + Sync>,
    /// Records waiting for the audit writer.
    pub audit_queue_depth: Box<dyn Fn() -> usize + Send + Sync>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// The handles of one tool, made at start.
#[derive(Debug)]
struct ToolSeries {
    /// One counter per [`ToolOutcome`], in the order of [`ToolOutcome::ALL`].
    calls: [Counter; ToolOutcome::ALL.len()],
    seconds: Histogram,
}

type Labels = Vec<(&'static str, String)>;

/// Upper bounds (seconds) of the tool call latency buckets: a `job_list` answers in well
/// under a millisecond, a `run_command` can wait for its 600 s maximum timeout.
const TOOL_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 120.0, 600.0,
];

/// Upper bounds (seconds) of the audit `fdatasync` buckets: tens of microseconds on tmpfs
/// or a battery-backed cache, milliseconds on an SSD, up to seconds on a struggling disk.
const SYNC_BUCKETS: [f64; 13] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

fn tool_histogram() -> Histogram {
    Histogram::new(TOOL_BUCKETS)
}

/// Every series of one server, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// By tool name; built once, only read afterwards (no lock).
    tools: HashMap<String, ToolSeries>,
    sessions: [Gauge; SessionTransport::ALL.len()],
    auth_failures: Family<Labels, Counter>,
    auth_lockouts: Counter,
    policy_refusals: Family<Labels, Counter>,
    audit_sync_seconds: Histogram,
}

impl Metrics {
    /// The series of a server serving `tool_names`, with its scrape-time `sources`.
    pub fn new<'a>(tool_names: impl IntoIterator<Item = &'a str>, sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("hostmcp");
        let tool_calls = Family::<Labels, Counter>::default();
        let tool_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(tool_histogram);
        let tools = tool_names
            .into_iter()
            .map(|name| {
                let calls = ToolOutcome::ALL.map(|outcome| {
                    tool_calls.get_or_create_owned(&vec![
                        ("tool", name.to_owned()),
                        ("outcome", outcome.label().to_owned()),
                    ])
                });
                let seconds = tool_seconds.get_or_create_owned(&vec![("tool", name.to_owned())]);
                (name.to_owned(), ToolSeries { calls, seconds })
            })
            .collect();
        registry.register("tool_calls", "Tool calls by tool and outcome", tool_calls);
        registry.register_with_unit(
            "tool_call_duration",
            "Time from a tool call's dispatch to its answer, for calls that reached the tool",
            Unit::Seconds,
            tool_seconds,
        );
        let session_family = Family::<Labels, Gauge>::default();
        let sessions = SessionTransport::ALL.map(|transport| {
            session_family.get_or_create_owned(&vec![("transport", transport.label().to_owned())])
        });
        registry.register(
            "sessions_open",
            "MCP sessions open, by transport",
            session_family,
        );
        let auth_failures = Family::<Labels, Counter>::default();
        // Each reason from zero, so `rate()` sees the first failure.
        for reason in AuthFailure::ALL {
            auth_failures.get_or_create_owned(&vec![("reason", reason.label().to_owned())]);
        }
        registry.register(
            "auth_failures",
            "Failed authentications, by reason",
            auth_failures.clone(),
        );
        let auth_lockouts = Counter::default();
        registry.register(
            "auth_lockouts",
            "Times a client address went over its failed-authentication budget and was refused (429) for the rest of the minute",
            auth_lockouts.clone(),
        );
        let policy_refusals = Family::<Labels, Counter>::default();
        registry.register(
            "policy_refusals",
            "Commands refused before they ran, by the rule that decided",
            policy_refusals.clone(),
        );
        let audit_sync_seconds = Histogram::new(SYNC_BUCKETS);
        registry.register_with_unit(
            "audit_sync_duration",
            "Time of each fdatasync of the audit log (one per batch of records)",
            Unit::Seconds,
            audit_sync_seconds.clone(),
        );
        registry.register(
            "build",
            "The running hostmcp's version and source commit",
            prometheus_client::metrics::info::Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("git_commit", GIT_COMMIT),
            ]),
        );
        registry.register_collector(Box::new(SampledGauges::new(sources)));
        Self {
            registry,
            tools,
            sessions,
            auth_failures,
            auth_lockouts,
            policy_refusals,
            audit_sync_seconds,
        }
    }

    /// Count one call of `tool` that ended as `outcome`; `elapsed` goes into the latency
    /// histogram when the call reached the tool. Unknown tools are not counted.
    pub fn tool_call(&self, tool: &str, outcome: ToolOutcome, elapsed: Option<Duration>) {
        let Some(series) = self.tools.get(tool) else {
            return;
        };
        let index = ToolOutcome::ALL
            .iter()
            .position(|known| *known == outcome)
            .unwrap_or(0);
        series.calls[index].inc();
        if let Some(elapsed) = elapsed {
            series.seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// One more (`opened`) or one fewer open session on `transport`.
    pub fn session(&self, transport: SessionTransport, opened: bool) {
        let gauge = &self.sessions[transport as usize];
        if opened {
            gauge.inc();
        } else {
            gauge.dec();
        }
    }

    pub fn auth_failed(&self, reason: AuthFailure) {
        self.auth_failures
            .get_or_create(&vec![("reason", reason.label().to_owned())])
            .inc();
    }

    pub fn auth_locked_out(&self) {
        self.auth_lockouts.inc();
    }

    pub fn policy_refused(&self, rule: &str) {
        self.policy_refusals
            .get_or_create(&vec![("rule", rule.to_owned())])
            .inc();
    }

    pub fn audit_synced(&self, elapsed: Duration) {
        self.audit_sync_seconds.observe(elapsed.as_secs_f64());
    }

    /// Every series in the Prometheus text format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String does not fail; an encoder error would be a bug in a metric.
        if let Err(error) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot render the metrics");
        }
        text
    }
}

/// The source commit, when the build was given one (`HOSTMCP_GIT_COMMIT=$(git rev-parse
/// HEAD) cargo build`; the package build does); else `unknown`.
const GIT_COMMIT: &str = match option_env!("HOSTMCP_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

static INSTALLED: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Make `metrics` the server's, once; the counting functions below count into it from now
/// on. `Err` gives it back if metrics were installed already.
pub fn install(metrics: Arc<Metrics>) -> Result<(), Arc<Metrics>> {
    INSTALLED.set(metrics)
}

/// The installed metrics, if any.
fn installed() -> Option<&'static Metrics> {
    INSTALLED.get().map(Arc::as_ref)
}

/// Count a tool call (see [`Metrics::tool_call`]).
pub fn tool_call(tool: &str, outcome: ToolOutcome, elapsed: Option<Duration>) {
    if let Some(metrics) = installed() {
        metrics.tool_call(tool, outcome, elapsed);
    }
}

/// Count a failed authentication.
pub fn auth_failed(reason: AuthFailure) {
    if let Some(metrics) = installed() {
        metrics.auth_failed(reason);
    }
}

/// Count a client address going over its failed-authentication budget.
pub fn auth_locked_out() {
    if let Some(metrics) = installed() {
        metrics.auth_locked_out();
    }
}

/// Count a command refused by `rule`.
pub fn policy_refused(rule: &str) {
    if let Some(metrics) = installed() {
        metrics.policy_refused(rule);
    }
}

/// Run `sync` (the audit writer's `fdatasync`) and time it.
pub fn time_audit_sync<T>(sync: impl FnOnce() -> T) -> T {
    let Some(metrics) = installed() else {
        return sync();
    };
    let started = Instant::now();
    let result = sync();
    metrics.audit_synced(started.elapsed());
    result
}

/// An open session, counted in `hostmcp_sessions_open` from its making until it is dropped.
/// Kept inside the session's table entry, so every way out of a table (close, expiry,
/// revocation, refusal at the owner's cap) counts it closed.
#[derive(Debug)]
pub struct OpenSession {
    /// `None` when no metrics were installed at its making: then its drop counts nothing
    /// either.
    counted: Option<(&'static Metrics, SessionTransport)>,
}

impl OpenSession {
    pub fn new(transport: SessionTransport) -> Self {
        let counted = installed().map(|metrics| {
            metrics.session(transport, true);
            (metrics, transport)
        });
        Self { counted }
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        if let Some((metrics, transport)) = self.counted {
            metrics.session(transport, false);
        }
    }
}
