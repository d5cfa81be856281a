//! What an audit line says: the typed events ([`AuditEvent`]), the envelope every line
//! shares ([`AuditRecord`]), the line hash that chains records, and the timestamp format.
//! Environment values, and their redaction, are [`super::env`]'s.
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
//! line of one kind has the same keys; the exceptions are `trace_id` (after `tool`), written
//! only on the lines of a call that carried a W3C `traceparent`, and `grant` (after it),
//! written only on the lines of a principal that called with an OAuth access token:
//! `"grant":{"grant_id":"…","client_id":"…","client_name":"Claude"}`. Text a caller chose is an [`AuditText`], bounded
//! when the record is made ([`AuditRecord::new`], see [`super::bounded`]).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bounded::{AuditText, TextBudget};
use super::env::AuditEnv;

/// `prev` of the first line of a file: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    /// The W3C trace id of the call, when the request carried a valid `traceparent`.
    pub trace_id: Option<String>,
    /// The OAuth grant the principal acts through, when it called with an access token.
    pub grant: Option<Arc<AuditGrant>>,
}

/// The OAuth grant a principal acts through, as its records name it: the grant, and the
/// client the owner approved (its id and the name it registered). The principal is the
/// parent token's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditGrant {
    pub grant_id: String,
    pub client_id: String,
    pub client_name: String,
}

impl AuditGrant {
    /// Longest client id or name kept (a metadata-document URL, a registered name).
    pub const MAX_TEXT: usize = 256;

    /// The grant's identity, its client-chosen text cut at [`Self::MAX_TEXT`] bytes.
    pub fn new(grant_id: &str, client_id: &str, client_name: &str) -> Self {
        let cut = |text: &str| {
            let mut end = text.len().min(Self::MAX_TEXT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_owned()
        };
        Self {
            grant_id: cut(grant_id),
            client_id: cut(client_id),
            client_name: cut(client_name),
        }
    }
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

    /// The OAuth grant the principal acts through (none for a configured token).
    pub fn with_grant(mut self, grant: Option<Arc<AuditGrant>>) -> Self {
        self.grant = grant;
        self
    }

    pub fn with_tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
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
    /// The W3C trace id of a traced call (`traceparent` in `_meta` or the HTTP header).
    /// The one envelope key that is left out when absent: lines of untraced calls, and logs
    /// written before it existed, are byte for byte what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The OAuth grant of a principal that called with an access token; left out
    /// otherwise, like `trace_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<AuditGrant>,
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
            trace_id,
            grant,
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
            trace_id,
            grant: grant.map(Arc::unwrap_or_clone),
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
        /// Its resource limits (`memory 512.0 MiB, cpu_seconds 30`); absent: none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<String>,
        /// What confines its filesystem and network, and whether the kernel enforces it
        /// all; absent: neither its token nor its rule confines either.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confinement: Option<AuditConfinement>,
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
        /// The resource limit that stopped it (`cpu_seconds`, `memory`, ...); absent: none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit_hit: Option<String>,
        /// Peak resident memory of the command, in bytes; absent: not known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_memory_bytes: Option<u64>,
        /// User + system CPU time of the command, in milliseconds; absent: not known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu_time_ms: Option<u64>,
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
    /// Input typed into an interactive terminal (`terminal_send`): the text and the named
    /// keys, or with `redacted` only the byte count.
    TerminalInput {
        terminal_id: String,
        /// The `command_id` of the terminal's program (its `command_started`).
        command_id: String,
        text: Option<AuditText>,
        keys: Vec<String>,
        bytes: u64,
        redacted: bool,
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
    /// A file tool's call (`file_read`, `file_list`, `file_search`, `file_write`): the path
    /// as asked, the path the kernel resolved (null when nothing was opened), and the rule
    /// that refused it (null when it was done). A write is recorded before its rename and
    /// not made if the record cannot be written.
    FileAccess {
        operation: FileOperation,
        requested: AuditText,
        resolved: Option<AuditText>,
        refused: Option<String>,
        /// SHA-256 of the content a write puts in place.
        sha256: Option<String>,
    },
    /// A SIGHUP reload was applied: the calls after it are judged by the new tokens,
    /// policy and limits (calls in flight keep what they started with).
    ConfigReloaded {
        /// The file read, or `null` for the embedded defaults.
        config_file: Option<String>,
        /// Tokens accepted after the reload (`null`: no token reload, e.g. a generated token).
        tokens: Option<u64>,
        /// The `[policy]` table's rules after the reload: `allow` and `deny` entries.
        allow_rules: u64,
        deny_rules: u64,
        tls_reloaded: bool,
    },
    /// A SIGHUP reload was refused: nothing changed, the server serves what it served.
    ConfigReloadRefused {
        config_file: Option<String>,
        /// The first problem found (a parse error, a bad token, a bad policy rule, ...).
        reason: String,
    },
    /// A step of the embedded OAuth authorization server (`crate::oauth`). Never a secret:
    /// no code, token or verifier, only identifiers.
    #[serde(rename = "oauth")]
    OAuth {
        step: OAuthStep,
        client_id: AuditText,
        grant_id: Option<String>,
        /// Why the step was refused, when it was (an OAuth error code and its reason).
        refused: Option<String>,
        /// Who revoked, for a revocation made with `hostmcp oauth` (the Unix user that ran
        /// it); left out on other steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A command an allow rule with `approve = true` permitted now waits for a person
    /// (`crate::approval`): exactly what would run, and until when. Never a secret of the
    /// request (its one-time URL is not recorded).
    ApprovalRequested {
        approval_id: String,
        #[serde(flatten)]
        command: CommandLine,
        program: AuditText,
        working_dir: Option<AuditText>,
        run_as: Option<String>,
        /// The allow rule that asks for approval.
        rule: String,
        reason: Option<AuditText>,
        timeout_secs: u64,
        /// What the command is given on stdin: its size and digest, never its content;
        /// absent: no stdin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdin: Option<AuditStdin>,
    },
    /// The decision on an `approval_requested`: `approved`, `denied` or `timed_out`, the
    /// path it came through (`elicitation`, `page`, `webhook`, `cli`, `timeout`,
    /// `cancelled`) and who decided (a token name, a Unix user, `client-elicitation:<token>`).
    ApprovalDecided {
        approval_id: String,
        decision: String,
        via: String,
        decider: AuditText,
    },
    /// A token typed on an approval page was refused as approver: not a token, the
    /// requesting token itself, or not an approver. The request stays pending.
    ApprovalRefused {
        approval_id: String,
        reason: AuditText,
    },
    /// A fleet gateway (`hostmcp gateway`) forwarded a call to hosts: to which (the first
    /// 64 named, `hosts_total` counts all) and how it ended (`ok`, `error`, `offline`, `denied`, ...; a fan-out's counts per
    /// outcome). The hosts decide and audit the call themselves.
    FleetCall {
        hosts: Vec<String>,
        hosts_total: u64,
        outcome: String,
        duration_ms: u64,
    },
}

/// What an `oauth` record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthStep {
    ClientRegistered,
    ConsentShown,
    ConsentApproved,
    ConsentDenied,
    /// The token entered on the consent page was refused.
    ConsentTokenRefused,
    TokenIssued,
    TokenRefused,
    TokenRefreshed,
    /// A rotated refresh token (or a redeemed code) came back: its grant is revoked.
    ReuseDetected,
    TokenRevoked,
    GrantRevoked,
    ClientRevoked,
    /// A client ID metadata document was fetched and accepted (`crate::oauth::cimd`).
    CimdFetched,
    /// A client ID metadata document was refused (address, fetch, or content).
    CimdRefused,
}

/// The confinement of one command in its `command_started` record: each confining layer
/// as [`Reach::describe`](crate::reach::Reach::describe) writes it (a command gets only
/// what every layer allows) and how this host enforces them. Roots come from the
/// operator's configuration, never from the caller, so they are not bounded like caller
/// text. Serialized `{"token":…,"rule":…,"enforced":…}`, a layer that confines nothing
/// left out:
///
/// ```text
/// "confinement":{"rule":"fs_read [/usr, /etc]; fs_write []; network none",
///  "enforced":"landlock ABI 7; network none by a network namespace"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditConfinement {
    /// The token's reach (`[[tokens]]` `fs_read`/`fs_write`/`network`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The allow rule's reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `landlock ABI N` (with how `network = "none"` is made, where a layer says it), or
    /// `degraded: …` naming what the host cannot enforce (`[confinement] degrade = true`).
    pub enforced: String,
}

/// The stdin an approver was shown, as `approval_requested` records it: its size and its
/// SHA-256 (lowercase hex), never the bytes (they may hold secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStdin {
    pub bytes: usize,
    pub sha256: String,
}

impl AuditEvent {
    /// The `"event"` value of this kind of line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ChainStarted => "chain_started",
            Self::AuthFailed { .. } => "auth_failed",
            Self::AuthThrottled { .. } => "auth_throttled",
            Self::AuthFailedDropped { .. } => "auth_failed_dropped",
            Self::ToolDenied { .. } => "tool_denied",
            Self::CommandStarted { .. } => "command_started",
            Self::CommandFinished { .. } => "command_finished",
            Self::CommandRefused { .. } => "command_refused",
            Self::JobAction { .. } => "job_action",
            Self::JobRefused { .. } => "job_refused",
            Self::TerminalInput { .. } => "terminal_input",
            Self::SessionOpened { .. } => "session_opened",
            Self::SessionClosed { .. } => "session_closed",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::EndedByRevocation { .. } => "ended_by_revocation",
            Self::OrphanKilled { .. } => "orphan_killed",
            Self::FileAccess { .. } => "file_access",
            Self::ConfigReloaded { .. } => "config_reloaded",
            Self::ConfigReloadRefused { .. } => "config_reload_refused",
            Self::OAuth { .. } => "oauth",
            Self::ApprovalRequested { .. } => "approval_requested",
            Self::ApprovalDecided { .. } => "approval_decided",
            Self::ApprovalRefused { .. } => "approval_refused",
            Self::FleetCall { .. } => "fleet_call",
        }
    }

    /// Decide, once and for good, what the environment values in this event become:
    /// disclosed as given, or dropped (written as [`super::REDACTED`]).
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
            Self::TerminalInput {
                text: Some(text), ..
            } => budget.bound(text),
            Self::OAuth { client_id, .. } => budget.bound(client_id),
            Self::ApprovalRequested {
                command,
                program,
                working_dir,
                reason,
                ..
            } => {
                budget.bound(program);
                if let Some(dir) = working_dir {
                    budget.bound(dir);
                }
                if let Some(reason) = reason {
                    budget.bound(reason);
                }
                command.bound_text(budget);
            }
            Self::ApprovalDecided { decider, .. } => budget.bound(decider),
            Self::ApprovalRefused { reason, .. } => budget.bound(reason),
            Self::FileAccess {
                requested,
                resolved,
                ..
            } => {
                budget.bound(requested);
                if let Some(resolved) = resolved {
                    budget.bound(resolved);
                }
            }
            Self::ChainStarted
            | Self::FleetCall { .. }
            | Self::AuthThrottled { .. }
            | Self::AuthFailedDropped { .. }
            | Self::TokenRevoked { .. }
            | Self::EndedByRevocation { .. }
            | Self::OrphanKilled { .. }
            | Self::ToolDenied { .. }
            | Self::CommandFinished { .. }
            | Self::JobAction { .. }
            | Self::TerminalInput { text: None, .. }
            | Self::SessionOpened { .. }
            | Self::SessionClosed { .. }
            | Self::ConfigReloaded { .. }
            | Self::ConfigReloadRefused { .. } => {}
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

/// What a file tool did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOperation {
    Read,
    List,
    Search,
    Write,
}

impl FileOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::List => "list",
            Self::Search => "search",
            Self::Write => "write",
        }
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
    /// An OAuth grant alone was revoked (`/oauth/revoke`, `hostmcp oauth`, a reused
    /// refresh token or code); its parent token stays.
    GrantRevoked,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Removed => "removed",
            Self::Replaced => "replaced",
            Self::Expired => "expired",
            Self::GrantRevoked => "grant_revoked",
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
    /// An interactive terminal (its session killed).
    Terminal,
}

impl EndedWork {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Stream => "stream",
            Self::Call => "call",
            Self::Job => "job",
            Self::Terminal => "terminal",
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

/// SHA-256 of one line's bytes, without its newline, in lowercase hex: the next line's `prev`.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-05-01T12:00:00.123Z`. Whole milliseconds,
/// truncated toward 1970 (so a time 0.5 ms before 1970 is written as `1970-01-01T00:00:00.000Z`);
/// a time outside jiff's range (about years -9999 to 9999) is written as the nearest end of it.
pub fn format_timestamp(time: SystemTime) -> String {
    let millis: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        Err(before) => -(before.duration().as_millis() as i128),
    };
    let millis = i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX });
    let timestamp = jiff::Timestamp::from_millisecond(millis).unwrap_or(if millis < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    // Printing to a `String` cannot fail.
    jiff::fmt::temporal::DateTimePrinter::new()
        .precision(Some(3))
        .timestamp_to_string(&timestamp)
}
