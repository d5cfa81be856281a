//! `hostmcp stdio`: serve the tools on stdin/stdout for a local client; and the stdio seam
//! `hostmcp gateway --stdio` shares with it (the audit file beside `serve`'s, the caller).

use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

use super::{CommandError, runtime};
use crate::{
    audit::AuditLog,
    auth::danger,
    caller::Caller,
    cli::StdioArgs,
    config::{self, Config, EnvSnapshot},
    exec::{BaseEnv, run_as},
    hardening,
    tools::{HostTools, ToolsState},
};

/// File name of the default audit log of `hostmcp stdio` in the state directory.
pub const STDIO_AUDIT_FILE_NAME: &str = "audit-stdio.jsonl";

pub fn run(args: StdioArgs) -> Result<(), CommandError> {
    // First: no same-uid process (a command run by this server among them) may read this
    // one's environment or memory.
    hardening::make_non_dumpable().map_err(CommandError::new)?;
    let env = EnvSnapshot::capture();
    let source = config::discover_here(args.config.as_deref(), &env);
    let file = source.load()?;
    let serve_args = crate::cli::ServeArgs {
        no_auth: true,
        ..Default::default()
    };
    // Tokens and listen addresses do not apply to stdio: only the limits are used.
    let mut config = Config::resolve(&serve_args, &env, file)?;
    super::logging::set_format(config.log_format);
    tracing::info!("{}", source.describe());
    let audit_log = open_audit(&mut config, &env)?;
    let policy = super::resolve_policy(config.policy.clone())?;
    // The stdio principal is whoever started the process: run as that user.
    let run_as = config.run_as.clone().or_else(run_as::current_user_name);
    let server_files = hardening::ServerFiles {
        state_dir: env.state_dir().ok(),
        audit_log: config.audit.as_ref().map(|audit| audit.path.clone()),
        audit_anchor: config
            .audit
            .as_ref()
            .map(|audit| crate::audit::anchor_path(&audit.path)),
        audit_key: config
            .audit
            .as_ref()
            .and_then(|audit| audit.key_file.clone()),
        ..Default::default()
    };
    // The file tools never open these, nor the config file.
    let protected = crate::files::ProtectedFiles::of_server(&hardening::ServerFiles {
        config_file: source.path().map(std::path::Path::to_path_buf),
        ..server_files.clone()
    });
    super::confinement::check_at_start(
        &config.token_reach,
        &policy,
        &hardening::ServerFiles {
            config_file: source.path().map(std::path::Path::to_path_buf),
            ..server_files.clone()
        },
        config.confinement_degrade,
    )?;
    super::confinement::cgroups_at_start(&config, &policy)?;
    hardening::check_at_start(
        &[(&danger::stdio_owner()).into()],
        hardening::exposure::Placement {
            default_run_as: run_as.as_deref(),
            restrict_admin: hardening::restricts_admin(&config),
            server_uid: nix::unistd::Uid::effective().as_raw(),
        },
        &server_files,
    );
    runtime()?.block_on(async {
        crate::exec::reaper::start(Some(audit_log.clone()));
        let shutdown = CancellationToken::new();
        let state = ToolsState::new(
            super::tool_settings(
                &config,
                policy,
                run_as,
                (config.files.clone()).with_protected(protected),
            ),
            BaseEnv::from_server_env(),
            audit_log,
            &shutdown,
        );
        serve_owner(HostTools::new(state), &shutdown).await
    })
}

/// The audit log of a stdio process. The default file is `serve`'s, and a running server
/// holds its lock: a stdio process writes its own file next to it (an `[audit] path` in the
/// config, or `--audit-log`, is used as given).
pub(super) fn open_audit(config: &mut Config, env: &EnvSnapshot) -> Result<AuditLog, CommandError> {
    let serve_default = env
        .state_dir()
        .ok()
        .map(|dir| dir.join(config::AUDIT_FILE_NAME));
    if let Some(audit) = config.audit.as_mut()
        && Some(&audit.path) == serve_default.as_ref()
    {
        audit.path.set_file_name(STDIO_AUDIT_FILE_NAME);
    }
    super::audit::open(config.audit.as_ref())
}

/// Serve `handler` on stdin/stdout to the process's owner (`hostmcp stdio`, `hostmcp gateway
/// --stdio`) until the client closes stdin; then `shutdown` is cancelled: the client is gone,
/// its background work goes with it.
pub(super) async fn serve_owner<H: ServerHandler>(
    handler: H,
    shutdown: &CancellationToken,
) -> Result<(), CommandError> {
    let caller = Caller::stdio(danger::stdio_owner());
    let served = crate::transport::stdio::serve(handler, caller).await;
    shutdown.cancel();
    served.map_err(CommandError::new)
}
