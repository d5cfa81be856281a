//! The audit trail of a command a tool runs: `command_started` is written before the
//! command runs — and if it cannot be written, the command is refused, never run
//! unaudited — then `command_finished` once it has ended.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    authorize::{PermitFacts, ToolCommand},
    refusal::Refusal,
};
use crate::{
    audit::{
        AuditConfinement, AuditContext, AuditEnv, AuditEvent, AuditLog, AuditText, CommandLine,
    },
    command,
    exec::{ExecOutcome, ResourceLimits, diagnose, landlock::Support},
    reach::{Network, Reach},
};

static NEXT_COMMAND: AtomicU64 = AtomicU64::new(1);

/// A command whose start is on record.
#[derive(Debug)]
pub struct AuditedCommand {
    audit: AuditLog,
    context: AuditContext,
    command_id: String,
    /// The command's resource limits, to name the one that stopped it.
    limits: ResourceLimits,
    /// The Unix user it runs as.
    run_as: Option<String>,
}

impl AuditedCommand {
    /// Record `command_started`: what the caller asked (`command`) and what the policy
    /// made of it (`facts`). `Err` is the refusal to answer with when it cannot be.
    pub async fn start(
        audit: &AuditLog,
        context: AuditContext,
        command: &ToolCommand,
        facts: &PermitFacts,
        job_id: Option<&str>,
    ) -> Result<Self, Refusal> {
        let command_id = format!("c-{}", NEXT_COMMAND.fetch_add(1, Ordering::Relaxed));
        let event = AuditEvent::CommandStarted {
            command_id: command_id.clone(),
            command: CommandLine::of(&command.command),
            rule: facts.rule.to_string(),
            program: AuditText::path(&facts.program),
            working_dir: facts.working_dir.as_deref().map(AuditText::path),
            run_as: facts.run_as.clone(),
            env: AuditEnv::new(command.env.iter().cloned()),
            timeout_secs: command.timeout.as_secs(),
            job_id: job_id.map(str::to_owned),
            limits: (!facts.limits.is_empty()).then(|| facts.limits.describe()),
            confinement: confinement_of(&facts.token_reach, &facts.rule_reach, Support::here()),
        };
        audit
            .record(context.clone(), event)
            .await
            .map_err(|error| {
                tracing::error!(%error, "audit log unavailable: refusing the command");
                Refusal::Unaudited {
                    reason: error.refusal_reason(),
                }
            })?;
        Ok(Self {
            audit: audit.clone(),
            context,
            command_id,
            limits: facts.limits,
            run_as: facts.run_as.clone(),
        })
    }

    /// The Unix user the command runs as (`None` only if the server's has no name).
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }

    /// The resource limits the command runs under.
    pub fn limits(&self) -> ResourceLimits {
        self.limits
    }

    /// Who the command's orphans are audited under: its principal and command id.
    pub fn owner(&self) -> crate::exec::reaper::Owner {
        crate::exec::reaper::Owner {
            principal: self.context.principal.clone(),
            command_id: Some(self.command_id.clone()),
        }
    }

    /// Record `command_finished` without making the caller wait for the disk: the command
    /// has already run (its start is on record), so the answer need not wait for the
    /// sync. The record is queued at once and written even if the server then stops.
    pub fn finished(self, outcome: &ExecOutcome) {
        let event = AuditEvent::CommandFinished {
            command_id: self.command_id,
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            timed_out: outcome.timed_out,
            cancelled: outcome.cancelled,
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            stdout_bytes: outcome.stdout.total_bytes(),
            stderr_bytes: outcome.stderr.total_bytes(),
            limit_hit: diagnose::limit_hit(outcome, &self.limits).map(|hit| hit.limit.to_owned()),
            peak_memory_bytes: outcome.usage.map(|usage| usage.peak_memory_bytes),
            cpu_time_ms: outcome
                .usage
                .map(|usage| u64::try_from(usage.cpu_time.as_millis()).unwrap_or(u64::MAX)),
        };
        self.audit.record_detached(self.context, event);
    }

    /// Record that the command could not be started (missing working dir, no such program).
    pub async fn not_started(self, asked: &command::CommandLine, reason: String) {
        let event = AuditEvent::CommandRefused {
            command: CommandLine::of(asked),
            working_dir: None,
            reason: format!("{}: {reason}", self.command_id).into(),
            rule: Some("start".to_owned()),
        };
        self.audit.record_or_log(self.context, event).await;
    }
}

/// The `confinement` of a `command_started` record: the layers that confine, and how
/// `support` enforces them (`exec::landlock::check`'s first gap when it cannot, which
/// only a server started with `[confinement] degrade = true` runs); `None` when no layer
/// confines.
pub fn confinement_of(token: &Reach, rule: &Reach, support: Support) -> Option<AuditConfinement> {
    let layer = |reach: &Reach| reach.confines().then(|| reach.describe());
    let (token_text, rule_text) = (layer(token), layer(rule));
    if token_text.is_none() && rule_text.is_none() {
        return None;
    }
    let layers = [("token", token), ("rule", rule)]
        .into_iter()
        .filter(|(_, reach)| reach.confines())
        .map(|(location, reach)| (location.to_owned(), reach));
    let gaps = crate::exec::landlock::check(layers, support, true).unwrap_or_else(|gap| vec![gap]);
    let enforced = match gaps.first() {
        Some(gap) => format!(
            "degraded: {} needs {}, this host has {}",
            gap.what, gap.needs, gap.has
        ),
        None => {
            let no_network = [token, rule]
                .iter()
                .any(|reach| reach.network == Some(Network::None));
            let mut text = format!("landlock ABI {}", support.landlock_abi);
            if no_network {
                text.push_str(if support.none_by_namespace() {
                    "; network none by a network namespace"
                } else {
                    "; network none by landlock"
                });
            }
            text
        }
    };
    Some(AuditConfinement {
        token: token_text,
        rule: rule_text,
        enforced,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::AuditOptions;

    fn echo() -> ToolCommand {
        ToolCommand {
            command: command::CommandLine::Argv(vec!["echo".to_owned(), "hi".to_owned()]),
            working_dir: None,
            env: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn facts() -> PermitFacts {
        PermitFacts {
            approval: None,
            rule: crate::policy::DecidingRule::Allow(0),
            program: "/usr/bin/echo".into(),
            working_dir: None,
            run_as: Some("root".to_owned()),
            limits: crate::exec::ResourceLimits::default(),
            token_reach: Reach::default(),
            rule_reach: Reach::default(),
        }
    }

    fn reach(fs_read: &[&str], network: Option<Network>) -> Reach {
        Reach {
            fs_read: (!fs_read.is_empty())
                .then(|| fs_read.iter().map(std::path::PathBuf::from).collect()),
            fs_write: None,
            network,
        }
    }

    #[test]
    fn the_confinement_names_each_confining_layer_and_how_it_is_enforced() {
        let full = Support {
            landlock_abi: 7,
            netns: true,
        };
        let rule = reach(&["/usr", "/etc"], Some(Network::None));
        let record = confinement_of(&Reach::default(), &rule, full).unwrap();
        assert_eq!(record.token, None);
        assert_eq!(
            record.rule.as_deref(),
            Some("fs_read [/usr, /etc]; fs_write []; network none")
        );
        assert_eq!(
            record.enforced,
            "landlock ABI 7; network none by a network namespace"
        );
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"rule":"fs_read [/usr, /etc]; fs_write []; network none","enforced":"landlock ABI 7; network none by a network namespace"}"#
        );
        let token = reach(&["/srv"], None);
        let both = confinement_of(
            &token,
            &rule,
            Support {
                netns: false,
                ..full
            },
        )
        .unwrap();
        assert_eq!(both.token.as_deref(), Some("fs_read [/srv]; fs_write []"));
        assert_eq!(both.enforced, "landlock ABI 7; network none by landlock");
        // Degraded: a host without Landlock says what it cannot enforce.
        let none = Support {
            landlock_abi: 0,
            netns: false,
        };
        let degraded = confinement_of(&token, &Reach::default(), none).unwrap();
        assert!(
            degraded
                .enforced
                .starts_with("degraded: fs_read/fs_write needs Landlock"),
            "{}",
            degraded.enforced
        );
        // Near miss: nothing confines, nothing recorded (an `any` network confines nothing).
        let open = reach(&[], Some(Network::Any));
        assert_eq!(confinement_of(&Reach::default(), &open, full), None);
    }

    /// A command's start goes through and its record is in the file at `path`.
    async fn start_is_recorded(log: &AuditLog, path: &std::path::Path) {
        AuditedCommand::start(log, AuditContext::new(), &echo(), &facts(), None)
            .await
            .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("command_started"), "{text}");
    }

    #[tokio::test]
    async fn a_command_is_refused_with_the_reason_when_the_audit_file_was_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
        // Near miss: with the file in place the start is recorded.
        start_is_recorded(&log, &path).await;

        std::fs::remove_file(&path).unwrap();
        let refusal = AuditedCommand::start(&log, AuditContext::new(), &echo(), &facts(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(refusal.starts_with("refused: the audit log file was deleted or renamed"));
        assert!(
            !refusal.contains(&*dir.path().to_string_lossy()),
            "{refusal}"
        );

        log.reopen().await.unwrap();
        start_is_recorded(&log, &path).await;
    }
}
