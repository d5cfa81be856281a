//! What `serve` does on SIGHUP: reopen the audit log at its path (logrotate), then read the
//! configuration again and apply its tokens, `[policy]`, `[limits]`, `[approval]` and the
//! TLS files, all or nothing. Everything is read and checked first ([`Reload::prepare`]); an invalid new
//! configuration is refused whole, the error logged and audited (`config_reload_refused`),
//! and the server keeps serving what it served. An applied one is audited
//! (`config_reloaded`). Calls in flight keep the policy and limits they started with.
//! An approval already waiting keeps the timeout, page URL and webhook it was opened with
//! (its deadline and links were already announced); who may decide it on the page (the
//! tokens and `[approval] approvers`) is checked when the decision comes, so a reload that
//! removes an approver takes effect for waiting approvals too.
//!
//! Not reloaded (they need a restart): listen addresses, the audit file, `run_as`, the
//! `[connections]` and `[jobs]` tables, and the per-minute rate limits.

use std::{path::PathBuf, sync::Arc};

use crate::{
    audit::{AuditContext, AuditEvent, AuditLog},
    auth::{TokenEntry, TokenSet, authenticator::Authenticator, revocation::Revoker},
    cli::ServeArgs,
    config::{self, AuthSetting, CommandLimits, Config, ConfigError, EnvSnapshot},
    hardening,
    policy::{Policy, PolicyError},
    tools::ToolsState,
    transport::tls::{ReloadableTls, TlsError},
};

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid config: {0}")]
    Policy(#[from] PolicyError),
    #[error("the configuration now has no token")]
    NoTokens,
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("confinement: {0}")]
    Confinement(#[from] super::confinement::ConfinementError),
}

impl ReloadError {
    /// What the operator should do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Config(error) => error.hint(),
            Self::Policy(error) => error.hint(),
            Self::NoTokens => "keep at least one [[tokens]] entry (or HOSTMCP_TOKEN)",
            Self::Tls(error) => error.hint(),
            Self::Confinement(error) => error.hint(),
        }
    }
}

/// Everything a SIGHUP touches.
pub struct Reload {
    /// The file read at start (the same one is read again), or `None` for the defaults.
    pub config_path: Option<PathBuf>,
    /// The command line: its flags still win over the file.
    pub args: ServeArgs,
    pub env: EnvSnapshot,
    pub authenticator: Arc<Authenticator>,
    /// Revokes the tokens a reload drops.
    pub revoker: Revoker,
    /// A generated token is not reloaded: there is nothing to re-read.
    pub reloads_tokens: bool,
    pub tls: Option<Arc<ReloadableTls>>,
    /// Reopened at its path, so logrotate can rename it.
    pub audit: AuditLog,
    /// Where the policy and limits are swapped.
    pub tools: Arc<ToolsState>,
    /// Run again on the reloaded tokens: a new token may share a run-as user.
    pub exposure: Option<hardening::ExposureCheck>,
}

/// A configuration read and checked, not yet applied.
struct Prepared {
    tokens: Option<Vec<TokenEntry>>,
    policy: Policy,
    limits: CommandLimits,
    token_limits: std::collections::HashMap<String, crate::exec::ResourceLimits>,
    token_reach: std::collections::HashMap<String, crate::reach::Reach>,
    files: crate::files::FileRoots,
    approval: crate::approval::ApprovalSettings,
    allow_rules: u64,
    deny_rules: u64,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Reload {
    /// Reopen the audit log at its path (after logrotate renamed it, or it was deleted).
    pub async fn reopen_audit(&self) {
        match self.audit.reopen().await {
            Ok(reopened) => tracing::info!(?reopened, "SIGHUP: audit log checked"),
            Err(error) => {
                tracing::error!(%error, hint = error.hint(), "SIGHUP: cannot reopen the audit log");
            }
        }
    }

    /// Read, check and apply the configuration, or refuse it whole.
    pub async fn run(&self) {
        let config_file = self
            .config_path
            .as_ref()
            .map(|path| path.display().to_string());
        match self.prepare() {
            Ok(prepared) => self.apply(prepared, config_file).await,
            Err(error) => {
                tracing::error!(%error, hint = error.hint(), "SIGHUP: reload failed; keeping the current configuration");
                let event = AuditEvent::ConfigReloadRefused {
                    config_file,
                    reason: error.to_string(),
                };
                self.audit.record_or_log(AuditContext::new(), event).await;
            }
        }
    }

    fn prepare(&self) -> Result<Prepared, ReloadError> {
        let file = config::load_file(self.config_path.as_deref())?;
        let config = Config::resolve(&self.args, &self.env, file)?;
        let (allow_rules, deny_rules) = config.policy.as_ref().map_or((0, 0), |policy| {
            (policy.allow.len() as u64, policy.deny.len() as u64)
        });
        let policy = crate::policy::resolve_policy(
            config.policy.clone(),
            &crate::exec::run_as::RunAsUser::check_switchable,
        )?;
        let server_files = self
            .exposure
            .as_ref()
            .map(|exposure| exposure.files.clone())
            .unwrap_or_default();
        for warning in super::confinement::check(
            &config.token_reach,
            &policy,
            &server_files,
            crate::exec::landlock::Support::here(),
            config.confinement_degrade,
        )? {
            tracing::warn!("SIGHUP: confinement degraded: {warning}");
        }
        for warning in super::confinement::check_cgroups(
            &config.token_limits,
            &policy,
            crate::exec::cgroup::detect::here(),
            config.confinement_degrade,
        )? {
            tracing::warn!("SIGHUP: confinement degraded: {warning}");
        }
        let tokens = if self.reloads_tokens {
            match config.auth {
                AuthSetting::Tokens(tokens) if !tokens.is_empty() => Some(tokens),
                _ => return Err(ReloadError::NoTokens),
            }
        } else {
            None
        };
        let tls = self.tls.as_ref().map(|tls| tls.read()).transpose()?;
        Ok(Prepared {
            tokens,
            policy,
            limits: config.limits,
            token_limits: config.token_limits,
            token_reach: config.token_reach,
            files: match &self.exposure {
                Some(exposure) => config
                    .files
                    .with_protected(crate::files::ProtectedFiles::of_server(&exposure.files)),
                None => config.files,
            },
            approval: config.approval,
            allow_rules,
            deny_rules,
            tls,
        })
    }

    async fn apply(&self, prepared: Prepared, config_file: Option<String>) {
        let Prepared {
            tokens,
            policy,
            limits,
            token_limits,
            token_reach,
            files,
            approval,
            allow_rules,
            deny_rules,
            tls,
        } = prepared;
        let tls_reloaded = tls.is_some();
        if let (Some(current), Some(next)) = (&self.tls, tls) {
            current.install(next);
            tracing::info!("SIGHUP: TLS certificate reloaded");
        }
        self.tools.reload(policy, limits, files);
        self.tools.identities.set_token_limits(token_limits);
        self.tools.identities.set_token_reach(token_reach);
        tracing::info!(
            allow_rules,
            deny_rules,
            "SIGHUP: policy, limits and file roots reloaded"
        );
        tracing::info!(
            timeout_secs = approval.timeout.as_secs(),
            webhook = approval.webhook_url.is_some(),
            "SIGHUP: [approval] reloaded (approvals already waiting keep their timeout and links)"
        );
        self.tools.approvals.configure(approval);
        let token_count = tokens.as_ref().map(|tokens| tokens.len() as u64);
        match tokens {
            None => tracing::info!("SIGHUP: no configured tokens to reload"),
            Some(tokens) => self.replace_tokens(tokens).await,
        }
        let event = AuditEvent::ConfigReloaded {
            config_file,
            tokens: token_count,
            allow_rules,
            deny_rules,
            tls_reloaded,
        };
        self.audit.record_or_log(AuditContext::new(), event).await;
    }

    async fn replace_tokens(&self, tokens: Vec<TokenEntry>) {
        let count = tokens.len();
        let principals = hardening::principals_of_tokens(&tokens);
        let revoked = self
            .authenticator
            .replace_tokens(TokenSet::new(tokens))
            .unwrap_or_default();
        tracing::info!(
            tokens = count,
            revoked = revoked.len(),
            "SIGHUP: tokens reloaded"
        );
        self.revoker.enforce(revoked).await;
        if let Some(exposure) = &self.exposure {
            exposure.run(&principals);
        }
    }
}
