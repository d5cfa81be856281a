//! What an audit line says: the typed events ([`AuditEvent`]), the envelope every line
//! shares ([`AuditRecord`]), redaction of environment values ([`AuditEnv`]), the line hash
//! that chains records, and the timestamp format.
//!
//! One line is the envelope with the event's fields flattened into it, tagged by `"event"`:
//!
//! ```text
//! {"seq":1,"time":"2026-05-01T12:00:00.123Z","principal":"alice","client":"10.0.0.5:51234",
//!  "session":"3f1c…","tool":"run_command","event":"command_started","command_id":"c-1",
//!  "argv":["ls","-l"],"rule":"allow[0]","program":"/usr/bin/ls","working_dir":"/srv/app",
//!  "run_as":"deploy","env":[{"name":"API_KEY","value":"[redacted]"}],"timeout_secs":30,
//!  "job_id":null,"prev":"0000…0000"}
//! ```
//!
//! (one line in the file; wrapped here). Absent values are `null`, never omitted, so every
//! line of one kind has the same keys. Text a caller chose is an [`AuditText`], bounded
//! when the record is made ([`AuditRecord::new`], see [`super::bounded`]).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::bounded::{self, AuditText, TextBudget};

/// `prev` of the first line of a file: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an environment value is written as unless the log discloses values.
pub const REDACTED: &str = "[redacted]";

/// Who did something, from where, in which session, through which tool. Every field is
/// optional: an authentication failure has no principal, a stdio session no client address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// The principal's name (the token name), once authenticated.
    pub principal: Option<String>,
    /// The client's address, e.g. `10.0.0.5:51234`.
    pub client: Option<String>,
    /// The MCP session id, where the transport has sessions.
    pub session: Option<String>,
    /// The tool called, where the event belongs to a tool call.
    pub tool: Option<String>,
}

impl AuditContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// The client's address; anything printable (`SocketAddr`, `IpAddr`, a string).
    pub fn with_client(mut self, client: impl fmt::Display) -> Self {
        self.client = Some(client.to_string());
        self
    }

    pub fn with_session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn with_tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1 for the first line of a file, then one more per line.
    pub seq: u64,
    /// When the line was written: RFC 3339, UTC, milliseconds (see [`format_timestamp`]).
    pub time: String,
    pub principal: Option<String>,
    pub client: Option<String>,
    pub session: Option<String>,
    pub tool: Option<String>,
    /// Written as `"event": "<kind>"` plus the kind's own fields, at the top level.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// [`line_hash`] of the previous line, or [`GENESIS_PREV`] on a file's first line.
    pub prev: String,
}

impl AuditRecord {
    /// The line for `event`, its caller-supplied text bounded (see [`super::bounded`]).
    pub fn new(
        seq: u64,
        time: String,
        context: AuditContext,
        event: AuditEvent,
        prev: String,
    ) -> Self {
        let AuditContext {
            principal,
            client,
            session,
            tool,
        } = context;
        let mut event = event;
        event.bound();
        Self {
            seq,
            time,
            principal,
            client,
            session,
            tool,
            event,
            prev,
        }
    }
}

/// A decision or an action worth a line. The variant name, in snake case, is the line's
/// `"event"`. No variant has a field named like an envelope field (`seq`, `time`, `principal`,
/// `client`, `session`, `tool`, `prev`): the two share one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// The first record of a new keyed chain (`seq` 1): the server found neither the log nor
    /// its anchor file, and started the chain at genesis. On a host whose audit history
    /// should be older, it says the history was removed (see `docs/security.md`).
    ChainStarted,
    /// A request carried a valid credential.
    Authenticated,
    /// A request carried no credential, or a bad one. Never the credential itself.
    AuthFailed {
        /// Quotes the request's path.
        reason: AuditText,
    },
    /// A client address went over its budget of failed authentications: the first refusal
    /// (429) of its window. Later refusals in that window are counted, not written; the
    /// next window's record carries their count.
    AuthThrottled {
        retry_after_secs: u64,
        refused_in_previous_window: u64,
    },
    /// More failed authentications than the server-wide cap came in one minute: the
    /// ones past it left no `auth_failed` record; this says how many (written as the
    /// minute ends).
    AuthFailedDropped {
        dropped: u64,
    },
    /// The principal may not call this tool.
    ToolDenied {
        /// The tool that was refused; written as `denied_tool` (the envelope owns `tool`).
        #[serde(rename = "denied_tool")]
        tool: String,
        rule: String,
        reason: String,
    },
    /// A command passed policy and is about to be spawned. Record this before spawning, and
    /// do not spawn if recording fails.
    CommandStarted {
        command_id: String,
        /// As the caller gave it: `"argv": [...]` or `"command": "..."`.
        #[serde(flatten)]
        command: CommandLine,
        /// The policy rule that permitted it: `allow[i]`, `allow_shell`, `admin`, `default`.
        rule: String,
        /// The program that runs: canonical path (PATH searched, symlinks followed); the
        /// shell for a shell line.
        program: AuditText,
        /// Canonical directory it runs in; `null`: the server's own.
        working_dir: Option<AuditText>,
        /// The Unix user it runs as; `null` only if the server's own user has no name.
        run_as: Option<String>,
        /// Variable names always; values only where the log discloses them.
        env: AuditEnv,
        timeout_secs: u64,
        job_id: Option<String>,
    },
    /// A started command ended, however it ended.
    CommandFinished {
        command_id: String,
        exit_code: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
        cancelled: bool,
        duration_ms: u64,
        /// Bytes the command wrote, including any that were not kept.
        stdout_bytes: u64,
        stderr_bytes: u64,
    },
    /// A command was not run: what was asked, and which rule refused it.
    CommandRefused {
        #[serde(flatten)]
        command: CommandLine,
        /// As the caller gave it.
        working_dir: Option<AuditText>,
        reason: AuditText,
        /// The policy rule that refused it, when a rule did.
        rule: Option<String>,
    },
    /// Something was done to a background job (`status`, `output`, `cancel`, ...).
    JobAction {
        job_id: String,
        action: String,
    },
    /// A job tool named a job the caller does not own, or none: the caller was told "no
    /// job" either way; the log says which.
    JobRefused {
        /// As the caller gave it.
        job_id: AuditText,
        /// The tool's action: `output`, `signal TERM`, `signal stop`, ...
        action: String,
        reason: JobRefusal,
    },
    SessionOpened {
        transport: Transport,
    },
    SessionClosed {
        transport: Transport,
    },
    /// A token stopped being accepted while the server ran: a reload removed it or put
    /// another secret under its name, or its `expires` instant passed. `ends_work` says
    /// whether what it was running is ended (`on_revoke = "kill"`) or left to finish.
    TokenRevoked {
        reason: RevokeReason,
        ends_work: bool,
    },
    /// One thing a revoked token held was ended: a session or stream closed, a call
    /// cancelled, a job killed. `id` names it (session id, request id, job id).
    EndedByRevocation {
        ended: EndedWork,
        id: String,
        reason: RevokeReason,
    },
    /// The orphan reaper killed a process a command left behind (reparented to the
    /// server). The record's principal and `command_id` are those of the command the
    /// process named in `HOSTMCP_COMMAND_ID`, when it named a running or recently ended
    /// one; the principal is empty otherwise.
    OrphanKilled {
        pid: i32,
        /// The process's real uid, when it could be read.
        uid: Option<u32>,
        reason: OrphanReason,
        command_id: Option<String>,
    },
}

impl AuditEvent {
    /// The `"event"` value of this kind of line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ChainStarted => "chain_started",
            Self::Authenticated => "authenticated",
            Self::AuthFailed { .. } => "auth_failed",
            Self::AuthThrottled { .. } => "auth_throttled",
            Self::AuthFailedDropped { .. } => "auth_failed_dropped",
            Self::ToolDenied { .. } => "tool_denied",
            Self::CommandStarted { .. } => "command_started",
            Self::CommandFinished { .. } => "command_finished",
            Self::CommandRefused { .. } => "command_refused",
            Self::JobAction { .. } => "job_action",
            Self::JobRefused { .. } => "job_refused",
            Self::SessionOpened { .. } => "session_opened",
            Self::SessionClosed { .. } => "session_closed",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::EndedByRevocation { .. } => "ended_by_revocation",
            Self::OrphanKilled { .. } => "orphan_killed",
        }
    }

    /// Decide, once and for good, what the environment values in this event become:
    /// disclosed as given, or dropped (written as [`REDACTED`]).
    pub(super) fn settle_env(&mut self, disclose: bool) {
        if let Self::CommandStarted { env, .. } = self {
            env.settle(disclose);
        }
    }

    /// Bound the caller-supplied text of this event to what one record keeps
    /// ([`super::bounded`]).
    pub(super) fn bound(&mut self) {
        self.bound_text(&mut TextBudget::default());
    }

    /// Bound the caller-supplied text of this event to `budget`: single fields first, so
    /// they stay whole, then the lists.
    fn bound_text(&mut self, budget: &mut TextBudget) {
        match self {
            Self::AuthFailed { reason } => budget.bound(reason),
            Self::CommandStarted {
                command,
                program,
                working_dir,
                env,
                ..
            } => {
                budget.bound(program);
                if let Some(dir) = working_dir {
                    budget.bound(dir);
                }
                command.bound_text(budget);
                env.bound_text(budget);
            }
            Self::CommandRefused {
                command,
                working_dir,
                reason,
                ..
            } => {
                if let Some(dir) = working_dir {
                    budget.bound(dir);
                }
                budget.bound(reason);
                command.bound_text(budget);
            }
            Self::JobRefused { job_id, .. } => budget.bound(job_id),
            Self::ChainStarted
            | Self::Authenticated
            | Self::AuthThrottled { .. }
            | Self::AuthFailedDropped { .. }
            | Self::TokenRevoked { .. }
            | Self::EndedByRevocation { .. }
            | Self::OrphanKilled { .. }
            | Self::ToolDenied { .. }
            | Self::CommandFinished { .. }
            | Self::JobAction { .. }
            | Self::SessionOpened { .. }
            | Self::SessionClosed { .. } => {}
        }
    }
}

/// Why a job tool's call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobRefusal {
    /// The job exists and belongs to another principal.
    AnotherPrincipalsJob,
    /// No job has this id (never had, or forgotten since it ended).
    NoSuchJob,
}

/// What a command runs, as the log writes it: the one command shape
/// ([`crate::command::CommandLine`]) with its text bounded.
pub type CommandLine = crate::command::CommandLine<AuditText>;

impl CommandLine {
    /// The command a caller asked for, as the log writes it.
    pub fn of(command: &crate::command::CommandLine) -> Self {
        command.map(|text| AuditText::from(text.as_str()))
    }

    fn bound_text(&mut self, budget: &mut TextBudget) {
        match self {
            Self::Argv(argv) => budget.bound_list(argv),
            Self::Shell(script) => budget.bound(script),
        }
    }
}

impl AuditText {
    /// A path as the log writes it: bytes that are not UTF-8 become U+FFFD rather than
    /// making the record (and so the command) fail.
    pub fn path(path: &std::path::Path) -> Self {
        Self::Whole(path.to_string_lossy().into_owned())
    }
}

/// Why the orphan reaper killed a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanReason {
    /// It carried no command id (it cleared or changed its environment).
    NoCommandId,
    /// Its command id names no command this server started (forged).
    UnknownCommandId,
    /// Its command id names a running command that runs as another uid.
    WrongUser,
    /// Its command has ended (finished, timed out, cancelled or ended by revocation).
    CommandEnded,
}

impl OrphanReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCommandId => "no_command_id",
            Self::UnknownCommandId => "unknown_command_id",
            Self::WrongUser => "wrong_user",
            Self::CommandEnded => "command_ended",
        }
    }
}

/// Why a token stopped being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// A reload dropped its `[[tokens]]` entry.
    Removed,
    /// A reload put a different secret under its name.
    Replaced,
    /// Its `expires` instant passed.
    Expired,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Removed => "removed",
            Self::Replaced => "replaced",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedWork {
    /// A Streamable HTTP session (its standalone stream and its calls with it).
    Session,
    /// A legacy SSE stream (its session and calls with it).
    Stream,
    /// A tool call in flight (its command killed).
    Call,
    /// A background job (its process group killed).
    Job,
}

impl EndedWork {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Stream => "stream",
            Self::Call => "call",
            Self::Job => "job",
        }
    }
}

/// The transport a session came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Stdio,
    /// Legacy HTTP+SSE (2024-11-05).
    Sse,
    /// Streamable HTTP with `Mcp-Session-Id` (2025-03-26 to 2025-11-25).
    StreamableHttp,
}

impl Transport {
    /// The name written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Sse => "sse",
            Self::StreamableHttp => "streamable_http",
        }
    }
}

/// Environment variables given to a command, as the audit log keeps them: names always,
/// values only if the log was opened to disclose them. Written as
/// `[{"name": "...", "value": "..."}]`, in the order given (later entries win in exec). A
/// list too long for the record ends with one [`AuditText::Omitted`] entry standing for the
/// rest, whose hash covers their names only: a value the log redacts is never hashed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuditEnv(Vec<EnvEntry>);

/// A variable, or the entry standing for the variables a record did not keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum EnvEntry {
    Var(EnvVar),
    Omitted(AuditText),
}

impl AuditEnv {
    /// Variables as a request gave them. Their values are withheld: they print and serialize
    /// as [`REDACTED`] until the sink settles them (disclosing them only if configured).
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            vars.into_iter()
                .map(|(name, value)| {
                    EnvEntry::Var(EnvVar {
                        name: AuditText::Whole(name.into()),
                        value: EnvValue::Withheld(value.into()),
                    })
                })
                .collect(),
        )
    }

    /// The variables kept (not those an [`AuditText::Omitted`] entry stands for).
    pub fn iter(&self) -> impl Iterator<Item = &EnvVar> {
        self.0.iter().filter_map(|entry| match entry {
            EnvEntry::Var(var) => Some(var),
            EnvEntry::Omitted(_) => None,
        })
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn settle(&mut self, disclose: bool) {
        for var in self.0.iter_mut().filter_map(|entry| match entry {
            EnvEntry::Var(var) => Some(var),
            EnvEntry::Omitted(_) => None,
        }) {
            if let EnvValue::Withheld(value) = &mut var.value {
                var.value = if disclose {
                    EnvValue::Disclosed(AuditText::Whole(std::mem::take(value)))
                } else {
                    EnvValue::Redacted
                };
            }
        }
    }

    /// Bound names and disclosed values to `budget`; the variables past it become one entry.
    fn bound_text(&mut self, budget: &mut TextBudget) {
        let kept = budget.bound_each(&mut self.0, |budget, entry| match entry {
            EnvEntry::Var(var) => {
                budget.bound(&mut var.name);
                if let EnvValue::Disclosed(value) = &mut var.value {
                    budget.bound(value);
                }
            }
            EnvEntry::Omitted(summary) => budget.bound(summary),
        });
        if kept < self.0.len() {
            let rest = self.0.split_off(kept);
            let names = rest.iter().map(|entry| match entry {
                EnvEntry::Var(var) => &var.name,
                EnvEntry::Omitted(summary) => summary,
            });
            self.0.push(EnvEntry::Omitted(bounded::omitted(names)));
        }
    }
}

/// `NAME=value NAME=[redacted] ...`, for logs.
impl fmt::Display for AuditEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            match entry {
                EnvEntry::Var(var) => write!(f, "{}={}", var.name, var.value.as_logged())?,
                EnvEntry::Omitted(summary) => write!(f, "{summary}")?,
            }
        }
        Ok(())
    }
}

/// One variable: its name and what the log may say of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    name: AuditText,
    value: EnvValue,
}

impl EnvVar {
    pub fn name(&self) -> &AuditText {
        &self.name
    }

    /// The value, only if the log discloses it; `None` while withheld or once redacted.
    pub fn disclosed_value(&self) -> Option<&AuditText> {
        match &self.value {
            EnvValue::Disclosed(value) => Some(value),
            EnvValue::Withheld(_) | EnvValue::Redacted => None,
        }
    }
}

/// A value in one of three states. Only `Disclosed` ever prints or serializes the value.
#[derive(Clone, PartialEq, Eq)]
enum EnvValue {
    /// As the request gave it, not yet settled by the sink.
    Withheld(String),
    /// Dropped; the log says [`REDACTED`].
    Redacted,
    /// Cleared for the log by configuration.
    Disclosed(AuditText),
}

impl EnvValue {
    fn as_logged(&self) -> &dyn fmt::Display {
        match self {
            Self::Withheld(_) | Self::Redacted => &REDACTED,
            Self::Disclosed(value) => value,
        }
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Withheld(_) | Self::Redacted => f.write_str(REDACTED),
            Self::Disclosed(value) => fmt::Debug::fmt(value, f),
        }
    }
}

impl Serialize for EnvValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Withheld(_) | Self::Redacted => serializer.serialize_str(REDACTED),
            Self::Disclosed(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for EnvValue {
    /// Reading a log back: [`REDACTED`] is a redacted value, anything else a disclosed one.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = AuditText::deserialize(deserializer)?;
        Ok(if value == REDACTED {
            Self::Redacted
        } else {
            Self::Disclosed(value)
        })
    }
}

/// SHA-256 of one line's bytes, without its newline, in lowercase hex: the next line's `prev`.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-05-01T12:00:00.123Z`.
pub fn format_timestamp(time: SystemTime) -> String {
    let millis: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        Err(before) => -(before.duration().as_millis() as i128),
    };
    let seconds = millis.div_euclid(1000) as i64;
    let millis = millis.rem_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day). Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
