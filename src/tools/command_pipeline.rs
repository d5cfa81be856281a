//! The one command pipeline `run_command` and `job_start` share: the arguments parsed and
//! validated ([`request`]), then the command judged by the policy, given a slot, and its
//! start put on record ([`admit`]). The two tools differ only in what they do with the
//! [`Admitted`] command: `run_command` runs it and waits, `job_start` registers it as a job.
//! Every refusal on the way is a [`Refusal`]; every message, audit event and limit is the
//! same for both.
//!
//! ```text
//! arguments --request--> ToolCommand --authorize--> Authorized --slot--> (job id)
//!           --audit command_started--> Admitted { spec, audited, slot, job_id }
//! ```

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use rmcp::{ErrorData as McpError, model::JsonObject};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    ToolsState,
    audited::AuditedCommand,
    authorize::{Authorized, ToolCommand, authorize},
    refusal::Refusal,
};
use crate::{
    audit::AuditContext,
    auth::Principal,
    command::CommandLine,
    exec::{CommandSpec, slots::CommandSlot},
    jobs::JobRegistry,
};

/// Arguments of `run_command`. Exactly one of `command` and `argv`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommandInput {
    /// Command line run by `/bin/sh -c`: use it for pipes, redirections, globs and `&&`.
    pub command: Option<String>,
    /// Program and arguments run without a shell (no quoting or expansion): use it to pass
    /// arguments verbatim. The program is looked up in PATH.
    pub argv: Option<Vec<String>>,
    /// Directory to run in (absolute, or relative to the server's directory).
    pub working_dir: Option<String>,
    /// Seconds before the command's whole process group is killed (default 30; the
    /// server caps it).
    pub timeout_secs: Option<u64>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text written to the command's standard input (closed when absent).
    pub stdin: Option<String>,
}

/// What the admitted command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Run while the caller waits (`run_command`).
    Wait,
    /// Run in the background as a job (`job_start`): it gets a job id before its start is
    /// recorded, so `command_started` names the job.
    Job,
}

/// A command the policy permitted, holding its slot, with its start on record: ready to
/// spawn. Dropping it gives the slot back.
#[derive(Debug)]
pub struct Admitted {
    /// What exec runs, owned by the audited command (for its orphans' records).
    pub spec: CommandSpec,
    pub audited: AuditedCommand,
    pub slot: CommandSlot,
    /// The command as asked, for the record if it then cannot start.
    pub command: ToolCommand,
    /// The job id, for [`Launch::Job`].
    pub job_id: Option<String>,
}

/// Parse and validate the arguments of `tool` (`run_command` or `job_start`), with
/// `timeouts` = (default, max). An error here is the caller's malformed request
/// (`invalid_params`), not a refusal.
pub fn request(
    arguments: Option<JsonObject>,
    tool: &str,
    timeouts: (Duration, Duration),
) -> Result<ToolCommand, McpError> {
    let input: RunCommandInput = super::parse_arguments(arguments, tool)?;
    validate(input, timeouts)
}

/// Judge `command` for `principal`, take a slot, make a job id for a [`Launch::Job`], and
/// record `command_started` under `trail`, in that order; the first step that refuses
/// ends it (a policy refusal is on record as `command_refused`).
pub async fn admit(
    state: &ToolsState,
    principal: &Principal,
    trail: AuditContext,
    command: ToolCommand,
    launch: Launch,
) -> Result<Admitted, Refusal> {
    let Authorized { spec, facts } = authorize(state, principal, &command, &trail).await?;
    let slot = state.slots.try_acquire(principal.name())?;
    let job_id = match launch {
        Launch::Wait => None,
        Launch::Job => Some(JobRegistry::new_id()?),
    };
    let audited =
        AuditedCommand::start(&state.audit, trail, &command, &facts, job_id.as_deref()).await?;
    Ok(Admitted {
        spec: spec.owned_by(audited.owner()),
        audited,
        slot,
        command,
        job_id,
    })
}

/// Validate the arguments, with `timeouts` = (default, max).
fn validate(
    input: RunCommandInput,
    timeouts: (Duration, Duration),
) -> Result<ToolCommand, McpError> {
    let invalid = |message: String| McpError::invalid_params(message, None);
    let command = match (input.command, input.argv) {
        (Some(command), None) if !command.trim().is_empty() => CommandLine::Shell(command),
        (None, Some(argv)) if !argv.is_empty() && !argv[0].is_empty() => CommandLine::Argv(argv),
        (Some(_), Some(_)) => {
            return Err(invalid("give either `command` or `argv`, not both".into()));
        }
        (None, None) => {
            return Err(invalid(
                "give `command` (a shell command line) or `argv`".into(),
            ));
        }
        _ => return Err(invalid("`command` or `argv` is empty".into())),
    };
    let timeout = match input.timeout_secs {
        Some(0) => return Err(invalid("timeout_secs must be at least 1".into())),
        Some(seconds) => Duration::from_secs(seconds).min(timeouts.1),
        None => timeouts.0,
    };
    if let Some(name) = input.env.keys().find(|name| !is_valid_env_name(name)) {
        return Err(invalid(format!(
            "env: {name:?} is not a valid variable name"
        )));
    }
    if input.env.values().any(|value| value.contains('\0')) {
        return Err(invalid("env: a value contains a NUL byte".into()));
    }
    Ok(ToolCommand {
        command,
        working_dir: input.working_dir.map(PathBuf::from),
        env: input.env.into_iter().collect(),
        stdin: input.stdin.map(String::into_bytes),
        timeout,
    })
}

fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{
        audit::{AuditLog, AuditOptions},
        auth::{Role, TokenDigest, TokenEntry, TokenSet},
        config::CommandLimits,
        exec::BaseEnv,
        policy::{PolicyConfig, resolve_policy},
        tools::{ToolSettings, ToolsState},
    };

    /// Operators may run `true` and nothing else; one command at a time each.
    fn state(audit: AuditLog) -> std::sync::Arc<ToolsState> {
        let config: PolicyConfig = toml::from_str(
            r#"
            [[allow]]
            program = "/usr/bin/true"
            "#,
        )
        .unwrap();
        let settings = ToolSettings {
            limits: CommandLimits {
                max_concurrent_per_principal: 1,
                ..CommandLimits::default()
            },
            policy: resolve_policy(Some(config)).unwrap(),
            // The server's own user: a server running as root needs one named.
            run_as: crate::exec::run_as::current_user_name(),
            ..ToolSettings::default()
        };
        let shutdown = CancellationToken::new();
        ToolsState::new(settings, BaseEnv::from_server_env(), None, audit, &shutdown)
    }

    fn operator() -> Principal {
        let entry = TokenEntry::new("alice", TokenDigest::of_token("secret"), Role::Operator);
        TokenSet::new(vec![entry]).authenticate("secret").unwrap()
    }

    fn asked(argv: &[&str]) -> ToolCommand {
        ToolCommand {
            command: CommandLine::Argv(argv.iter().map(|arg| (*arg).to_owned()).collect()),
            working_dir: None,
            env: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// The records of kind `event` in the log at `path`.
    fn records(path: &Path, event: &str) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|record| record["event"] == event)
            .collect()
    }

    fn open_log(dir: &tempfile::TempDir) -> (AuditLog, std::path::PathBuf) {
        let path = dir.path().join("audit.jsonl");
        (
            AuditLog::open(&path, AuditOptions::default()).unwrap(),
            path,
        )
    }

    #[tokio::test]
    async fn both_launches_refuse_a_denied_command_alike_and_record_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let (audit, path) = open_log(&dir);
        let state = state(audit);
        let mut texts = Vec::new();
        for launch in [Launch::Wait, Launch::Job] {
            let refusal = admit(
                &state,
                &operator(),
                AuditContext::new(),
                asked(&["/usr/bin/false"]),
                launch,
            )
            .await
            .unwrap_err();
            assert!(matches!(refusal, Refusal::Denied(_)), "{refusal:?}");
            assert_eq!(refusal.rule(), "default");
            texts.push(refusal.to_string());
        }
        assert_eq!(texts[0], texts[1]);
        assert!(texts[0].starts_with("denied by default"), "{}", texts[0]);
        let refused = records(&path, "command_refused");
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused.iter().all(|record| record["rule"] == "default"));
        assert!(records(&path, "command_started").is_empty());
    }

    #[tokio::test]
    async fn an_allowed_command_is_admitted_with_its_rule_and_program_on_record() {
        let dir = tempfile::tempdir().unwrap();
        let (audit, path) = open_log(&dir);
        let state = state(audit);
        let wait = admit(
            &state,
            &operator(),
            AuditContext::new(),
            asked(&["/usr/bin/true"]),
            Launch::Wait,
        )
        .await
        .unwrap();
        assert_eq!(wait.job_id, None);
        drop(wait);
        let job = admit(
            &state,
            &operator(),
            AuditContext::new(),
            asked(&["/usr/bin/true"]),
            Launch::Job,
        )
        .await
        .unwrap();
        let job_id = job.job_id.clone().expect("a job launch has a job id");
        let started = records(&path, "command_started");
        assert_eq!(started.len(), 2, "{started:?}");
        let program = std::fs::canonicalize("/usr/bin/true").unwrap();
        for record in &started {
            assert_eq!(record["rule"], "allow[0]");
            assert_eq!(record["program"], program.to_string_lossy().as_ref());
        }
        assert_eq!(started[0]["job_id"], Value::Null);
        assert_eq!(started[1]["job_id"], job_id.as_str());
        assert!(records(&path, "command_refused").is_empty());
    }

    #[tokio::test]
    async fn a_second_command_past_the_limit_is_refused_before_its_start_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (audit, path) = open_log(&dir);
        let state = state(audit);
        let command = || asked(&["/usr/bin/true"]);
        let first = admit(
            &state,
            &operator(),
            AuditContext::new(),
            command(),
            Launch::Job,
        )
        .await
        .unwrap();
        let busy = admit(
            &state,
            &operator(),
            AuditContext::new(),
            command(),
            Launch::Wait,
        )
        .await
        .unwrap_err();
        assert!(matches!(busy, Refusal::Busy(_)), "{busy:?}");
        assert_eq!(busy.rule(), "limits");
        assert!(busy.to_string().contains("your maximum of 1"), "{busy}");
        assert_eq!(records(&path, "command_started").len(), 1);
        // Near miss: once the first gives its slot back, the same command is admitted.
        drop(first);
        admit(
            &state,
            &operator(),
            AuditContext::new(),
            command(),
            Launch::Wait,
        )
        .await
        .unwrap();
        assert_eq!(records(&path, "command_started").len(), 2);
    }

    #[test]
    fn exactly_one_of_command_and_argv_is_a_request() {
        let timeouts = (Duration::from_secs(30), Duration::from_secs(60));
        let parse = |json: Value| request(json.as_object().cloned(), "run_command", timeouts);
        let argv = parse(serde_json::json!({"argv": ["ls", "-l"], "timeout_secs": 600})).unwrap();
        assert_eq!(
            argv.command,
            CommandLine::Argv(vec!["ls".to_owned(), "-l".to_owned()])
        );
        assert_eq!(argv.timeout, Duration::from_secs(60), "capped at the max");
        let shell = parse(serde_json::json!({"command": "ls | wc"})).unwrap();
        assert_eq!(shell.command, CommandLine::Shell("ls | wc".to_owned()));
        assert_eq!(shell.timeout, Duration::from_secs(30));
        let both = parse(serde_json::json!({"command": "ls", "argv": ["ls"]})).unwrap_err();
        assert!(both.message.contains("not both"), "{both:?}");
        let neither = parse(serde_json::json!({})).unwrap_err();
        assert!(neither.message.contains("give `command`"), "{neither:?}");
    }
}
