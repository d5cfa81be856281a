//! `process_signal` (operator, destructive): send a signal to a process. The signal is
//! expressed to the policy as the command it is — the argv `kill -SIG PID` — and goes
//! through the [command pipeline](super::command_pipeline) like `run_command`: the
//! policy judges it (so `[[policy.allow]] program = "/usr/bin/kill", args = ["-TERM",
//! "*"]` grants exactly that), `command_started` and `command_finished` record it, and
//! `kill(1)` runs as the principal's Unix user, so a signal reaches only what that user
//! may signal. Before the policy, pid 1 and the server's own process are refused unless
//! the call says `allow_protected: true` (recorded as a `tool_denied` with rule
//! `protected_pid`), and a pid that does not exist is an error without a command.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ToolsState,
    authorize::ToolCommand,
    command_pipeline::{self, Admitted, Launch},
};
use crate::{
    audit::AuditEvent,
    caller::Caller,
    command::CommandLine,
    exec::{self, ExecLimits},
    host::processes,
};

pub const NAME: &str = "process_signal";
/// How long `kill(1)` may take.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to watch for the process to end after the signal.
const WATCH: Duration = Duration::from_millis(500);

/// The signals a caller may name.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignalName {
    /// Ask to terminate (the default).
    #[default]
    Term,
    /// Kill at once; the process cannot clean up.
    Kill,
    /// Hang up: many daemons reload their configuration.
    Hup,
    /// Interrupt, as Ctrl-C.
    Int,
    Quit,
    Usr1,
    Usr2,
    /// Pause the process.
    Stop,
    /// Resume a stopped process.
    Cont,
}

impl SignalName {
    /// The name kill(1) takes after its dash.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Kill => "KILL",
            Self::Hup => "HUP",
            Self::Int => "INT",
            Self::Quit => "QUIT",
            Self::Usr1 => "USR1",
            Self::Usr2 => "USR2",
            Self::Stop => "STOP",
            Self::Cont => "CONT",
        }
    }
}

/// Arguments of `process_signal`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSignalInput {
    /// The process to signal (a positive pid; process groups are not signalled).
    #[schemars(range(min = 1))]
    pub pid: i32,
    /// TERM (default), KILL, HUP, INT, QUIT, USR1, USR2, STOP or CONT.
    #[serde(default)]
    pub signal: SignalName,
    /// Directory `kill` runs in, where the policy names `working_dirs` (as for run_command).
    pub working_dir: Option<String>,
    /// Signal pid 1 or this server itself. Refused without it.
    #[serde(default)]
    pub allow_protected: bool,
}

/// What `process_signal` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SignalOutcome {
    pub pid: i32,
    pub signal: SignalName,
    /// The process's name when the signal was sent.
    pub name: String,
    /// kill(1) reported success.
    pub sent: bool,
    /// The process was gone (or a zombie) within half a second.
    pub ended: bool,
    /// What kill(1) said when it failed (e.g. "Operation not permitted").
    pub error: Option<String>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Send a signal (TERM by default; KILL, HUP, INT, QUIT, USR1, USR2, STOP, CONT) to one \
         process by pid. Goes through the command policy as `kill -SIGNAL PID` and is \
         audited. Refuses pid 1 and the server itself unless allow_protected is true. Says \
         whether the process ended.",
        schema_for_type::<ProcessSignalInput>(),
    )
    .with_raw_output_schema(schema_for_output::<SignalOutcome>())
    .with_annotations(
        ToolAnnotations::with_title("Signal a process")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    )
}

/// Whether `pid` may be signalled without `allow_protected`: not init, not this server.
pub fn is_protected(pid: i32) -> bool {
    pid == 1 || u32::try_from(pid).is_ok_and(|pid| pid == std::process::id())
}

/// The argv the policy judges and that runs.
pub fn kill_argv(signal: SignalName, pid: i32) -> Vec<String> {
    vec![
        "kill".to_owned(),
        format!("-{}", signal.as_str()),
        pid.to_string(),
    ]
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: ProcessSignalInput = super::parse_arguments(arguments, NAME)?;
    if input.pid < 1 {
        return Err(McpError::invalid_params(
            "process_signal: pid must be a positive process id",
            None,
        ));
    }
    // A thread id names its whole process to kill(2): judge (and protect) the process.
    if let Some(process) = crate::host::processes::thread_group(input.pid)
        && process != input.pid
    {
        return Err(McpError::invalid_params(
            format!(
                "process_signal: {} is a thread of process {process}; a signal reaches the whole \
                 process, so name the process: pid {process}",
                input.pid
            ),
            None,
        ));
    }
    let principal = &caller.principal;
    let trail = caller.audit_context(NAME);
    if is_protected(input.pid) && !input.allow_protected {
        let reason = format!(
            "refused: pid {} is {}; pass allow_protected: true to signal it anyway",
            input.pid,
            if input.pid == 1 {
                "init (pid 1)"
            } else {
                "this server"
            }
        );
        let event = AuditEvent::ToolDenied {
            tool: NAME.to_owned(),
            rule: "protected_pid".to_owned(),
            reason: reason.clone(),
        };
        state.audit.record_or_log(trail, event).await;
        return Ok(error_text(reason));
    }
    let name = match processes::read_one(input.pid) {
        Ok(row) => row.name,
        Err(error) => return Ok(error_text(error.to_string())),
    };
    let command = ToolCommand {
        command: CommandLine::Argv(kill_argv(input.signal, input.pid)),
        working_dir: input.working_dir.map(Into::into),
        env: Vec::new(),
        stdin: None,
        timeout: KILL_TIMEOUT,
    };
    tracing::info!(
        principal = principal.name(),
        tool = NAME,
        pid = input.pid,
        signal = input.signal.as_str(),
        "tool call"
    );
    let admitted =
        match command_pipeline::admit(state, principal, trail, command, Launch::Wait, None).await {
            Ok(admitted) => admitted,
            Err(refusal) => return Ok(error_text(refusal.to_string())),
        };
    let Admitted {
        spec,
        audited,
        slot: _slot,
        command,
        ..
    } = admitted;
    let limits = ExecLimits {
        max_output_bytes: 4096,
        ..ExecLimits::default()
    };
    let outcome = match exec::run(
        spec,
        &limits,
        &state.base_env,
        tokio_util::sync::CancellationToken::new(),
        None,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(error) => {
            audited
                .not_started(&command.command, error.to_string())
                .await;
            return Ok(error_text(error.to_string()));
        }
    };
    audited.finished(&outcome);
    let sent = outcome.is_success();
    let ended = sent && ends_within(input.pid, WATCH).await;
    let stderr = outcome.stderr.to_text();
    let result = SignalOutcome {
        pid: input.pid,
        signal: input.signal,
        name,
        sent,
        ended,
        error: (!sent).then(|| stderr.trim().to_owned()),
    };
    let text = render(&result);
    let mut answer = if sent {
        CallToolResult::success(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    answer.structured_content = serde_json::to_value(&result).ok();
    Ok(answer)
}

/// Whether `pid` is gone or a zombie within `watch`.
async fn ends_within(pid: i32, watch: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + watch;
    loop {
        let ended = match processes::read_one(pid) {
            Ok(row) => row.state == "Z" || row.state == "X",
            Err(_) => true,
        };
        if ended || tokio::time::Instant::now() >= deadline {
            return ended;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn render(outcome: &SignalOutcome) -> String {
    let what = format!(
        "SIG{} to {} {}",
        outcome.signal.as_str(),
        outcome.pid,
        outcome.name
    );
    match (&outcome.error, outcome.ended) {
        (Some(error), _) => format!("{what} failed: {error}"),
        (None, true) => format!("{what} sent; the process ended"),
        (None, false) => format!("{what} sent; the process is still running"),
    }
}

fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_and_the_server_are_protected_and_others_not() {
        assert!(is_protected(1));
        assert!(is_protected(std::process::id() as i32));
        // Near misses: a neighbour pid and pid 2 (kthreadd) are not protected here.
        assert!(!is_protected(2));
        assert!(!is_protected(std::process::id() as i32 + 1));
    }

    #[test]
    fn a_thread_id_names_its_process_so_the_server_cannot_be_reached_through_one() {
        let server = std::process::id() as i32;
        let tid = std::thread::spawn(|| nix::unistd::gettid().as_raw())
            .join()
            .unwrap();
        // The thread has ended; this thread of the test process stands in for a live one.
        let live = nix::unistd::gettid().as_raw();
        assert_eq!(crate::host::processes::thread_group(live), Some(server));
        // Near misses: a process is its own group, and a task that is gone has none.
        assert_eq!(crate::host::processes::thread_group(server), Some(server));
        assert_eq!(crate::host::processes::thread_group(tid), None);
    }

    #[test]
    fn the_policy_sees_kill_with_the_signal_and_the_pid() {
        assert_eq!(kill_argv(SignalName::Hup, 4321), ["kill", "-HUP", "4321"]);
        assert_eq!(kill_argv(SignalName::default(), 7), ["kill", "-TERM", "7"]);
    }

    #[test]
    fn only_named_signals_parse() {
        let parse = |signal: &str| {
            serde_json::from_value::<ProcessSignalInput>(
                serde_json::json!({"pid": 5, "signal": signal}),
            )
        };
        assert_eq!(parse("KILL").unwrap().signal, SignalName::Kill);
        assert!(parse("SEGV").is_err());
        assert!(parse("kill").is_err());
    }
}
