//! The no-file mode: when no audit file is configured, each record becomes one tracing event
//! at info level (target `hostmcp::audit`) with the record's fields as structured fields and
//! environment values always redacted. Recording never fails.

use super::bounded::AuditText;
use super::events::{AuditContext, AuditEvent, CommandLine};

/// The tracing target of records when no file is configured.
const TRACE_TARGET: &str = "hostmcp::audit";

/// One tracing event for a record when no file is configured.
pub(super) fn trace_record(context: &AuditContext, mut event: AuditEvent) {
    event.settle_env(false);
    event.bound();
    let principal = context.principal.as_deref();
    let client = context.client.as_deref();
    let session = context.session.as_deref();
    let tool = context.tool.as_deref();
    let trace_id = context.trace_id.as_deref();
    let kind = event.kind();
    macro_rules! audit_event {
        ($($fields:tt)*) => {
            tracing::info!(
                target: TRACE_TARGET,
                event = kind,
                principal,
                client,
                session,
                tool,
                trace_id,
                $($fields)*
            )
        };
    }
    match &event {
        AuditEvent::ChainStarted => audit_event!(),
        AuditEvent::AuthFailed { reason } => audit_event!(reason = %reason),
        AuditEvent::AuthThrottled {
            retry_after_secs,
            refused_in_previous_window,
        } => audit_event!(retry_after_secs, refused_in_previous_window),
        AuditEvent::AuthFailedDropped { dropped } => audit_event!(dropped),
        AuditEvent::ToolDenied {
            tool: denied,
            rule,
            reason,
        } => audit_event!(denied_tool = %denied, rule = %rule, reason = %reason),
        AuditEvent::CommandStarted {
            command_id,
            command,
            rule,
            program,
            working_dir,
            run_as,
            env,
            timeout_secs,
            job_id,
            limits,
            confinement,
        } => {
            let (argv, shell) = command_fields(command);
            let confinement = confinement
                .as_ref()
                .and_then(|confinement| serde_json::to_string(confinement).ok());
            audit_event!(
                command_id = %command_id,
                argv,
                command = shell,
                rule = %rule,
                program = %program,
                working_dir = working_dir.as_ref().map(tracing::field::display),
                run_as = run_as.as_deref(),
                env = %env,
                timeout_secs,
                job_id = job_id.as_deref(),
                limits = limits.as_deref(),
                confinement = confinement.as_deref(),
            );
        }
        AuditEvent::CommandFinished {
            command_id,
            exit_code,
            signal,
            timed_out,
            cancelled,
            duration_ms,
            stdout_bytes,
            stderr_bytes,
            limit_hit,
            peak_memory_bytes,
            cpu_time_ms,
        } => audit_event!(
            command_id = %command_id,
            exit_code,
            signal,
            timed_out,
            cancelled,
            duration_ms,
            stdout_bytes,
            stderr_bytes,
            limit_hit = limit_hit.as_deref(),
            peak_memory_bytes,
            cpu_time_ms,
        ),
        AuditEvent::CommandRefused {
            command,
            working_dir,
            reason,
            rule,
        } => {
            let (argv, shell) = command_fields(command);
            audit_event!(
                argv,
                command = shell,
                working_dir = working_dir.as_ref().map(tracing::field::display),
                reason = %reason,
                rule = rule.as_deref(),
            );
        }
        AuditEvent::JobAction { job_id, action } => {
            audit_event!(job_id = %job_id, action = %action);
        }
        AuditEvent::JobRefused {
            job_id,
            action,
            reason,
        } => audit_event!(job_id = %job_id, action = %action, reason = ?reason),
        AuditEvent::TerminalInput {
            terminal_id,
            command_id,
            text,
            keys,
            bytes,
            redacted,
        } => audit_event!(
            terminal_id = %terminal_id,
            command_id = %command_id,
            text = text.as_ref().map(tracing::field::display),
            keys = ?keys,
            bytes,
            redacted,
        ),
        AuditEvent::SessionOpened { transport } | AuditEvent::SessionClosed { transport } => {
            audit_event!(transport = transport.as_str());
        }
        AuditEvent::TokenRevoked { reason, ends_work } => {
            audit_event!(reason = reason.as_str(), ends_work);
        }
        AuditEvent::EndedByRevocation { ended, id, reason } => {
            audit_event!(ended = ended.as_str(), id = %id, reason = reason.as_str());
        }
        AuditEvent::OrphanKilled {
            pid,
            uid,
            reason,
            command_id,
        } => audit_event!(
            pid,
            uid,
            reason = reason.as_str(),
            command_id = command_id.as_deref()
        ),
        AuditEvent::FileAccess {
            operation,
            requested,
            resolved,
            refused,
            sha256,
        } => audit_event!(
            operation = operation.as_str(),
            requested = %requested,
            resolved = resolved.as_ref().map(tracing::field::display),
            refused = refused.as_deref(),
            sha256 = sha256.as_deref()
        ),
        AuditEvent::ConfigReloaded {
            config_file,
            tokens,
            allow_rules,
            deny_rules,
            tls_reloaded,
        } => audit_event!(
            config_file = config_file.as_deref(),
            tokens,
            allow_rules,
            deny_rules,
            tls_reloaded
        ),
        AuditEvent::ConfigReloadRefused {
            config_file,
            reason,
        } => audit_event!(config_file = config_file.as_deref(), reason = %reason),
        AuditEvent::FleetCall {
            hosts,
            hosts_total,
            outcome,
            duration_ms,
        } => audit_event!(
            hosts = ?hosts,
            hosts_total,
            outcome = %outcome,
            duration_ms
        ),
        AuditEvent::OAuth {
            step,
            client_id,
            grant_id,
            refused,
            by,
        } => audit_event!(
            step = ?step,
            client_id = %client_id,
            grant_id = grant_id.as_deref(),
            refused = refused.as_deref(),
            by = by.as_deref(),
        ),
        AuditEvent::ApprovalRequested {
            approval_id,
            command,
            program,
            working_dir,
            run_as,
            rule,
            reason,
            timeout_secs,
            stdin,
        } => {
            let (argv, shell) = command_fields(command);
            audit_event!(
                approval_id = %approval_id,
                argv,
                command = shell,
                program = %program,
                working_dir = working_dir.as_ref().map(tracing::field::display),
                run_as = run_as.as_deref(),
                rule = %rule,
                reason = reason.as_ref().map(tracing::field::display),
                timeout_secs,
                stdin_bytes = stdin.as_ref().map(|stdin| stdin.bytes),
                stdin_sha256 = stdin.as_ref().map(|stdin| stdin.sha256.as_str()),
            );
        }
        AuditEvent::ApprovalDecided {
            approval_id,
            decision,
            via,
            decider,
        } => audit_event!(
            approval_id = %approval_id,
            decision = %decision,
            via = %via,
            decider = %decider,
        ),
        AuditEvent::ApprovalRefused {
            approval_id,
            reason,
        } => audit_event!(approval_id = %approval_id, reason = %reason),
    }
}

/// `argv` (as a debug list) or the shell string, as optional tracing fields.
fn command_fields(
    command: &CommandLine,
) -> (
    Option<tracing::field::DebugValue<&Vec<AuditText>>>,
    Option<tracing::field::DisplayValue<&AuditText>>,
) {
    match command {
        CommandLine::Argv(argv) => (Some(tracing::field::debug(argv)), None),
        CommandLine::Shell(script) => (None, Some(tracing::field::display(script))),
    }
}
