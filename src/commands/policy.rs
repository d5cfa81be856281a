//! `hostmcp policy explain`: how the configured policy would judge a command for a token,
//! rule by rule, without running anything.

use super::{CommandError, resolve_policy};
use crate::{
    auth::Role,
    cli::{PolicyCommand, ServeArgs},
    command::CommandLine,
    config::{self, AuthSetting, Config, EnvSnapshot},
    exec::{BaseEnv, DEFAULT_PATH},
    policy::{self, CommandRequest},
};

pub fn run(command: PolicyCommand) -> Result<(), CommandError> {
    let PolicyCommand::Explain {
        config: config_path,
        token_name,
        shell,
        working_dir,
        argv,
    } = command;
    let env = EnvSnapshot::capture();
    let source = config::discover_here(config_path.as_deref(), &env);
    tracing::info!("{}", source.describe());
    let args = ServeArgs {
        config: source.path().map(std::path::Path::to_path_buf),
        ..ServeArgs::default()
    };
    let config = Config::resolve(&args, &env, source.load()?)?;
    let role = role_of(&config.auth, &token_name)?;
    let policy = resolve_policy(config.policy.clone())?;
    let command = match shell {
        Some(script) => CommandLine::Shell(script),
        None if argv.is_empty() => {
            return Err(CommandError::new("nothing to explain").with_hint(
                "give the command after `--`, e.g. `-- systemctl status nginx`, or use --shell",
            ));
        }
        None => CommandLine::Argv(argv),
    };
    let request = CommandRequest {
        principal_name: &token_name,
        role,
        command: &command,
        working_dir: working_dir.as_deref(),
        env: &[],
    };
    let base_env = BaseEnv::from_server_env();
    let search_path = base_env.get("PATH").unwrap_or(DEFAULT_PATH);
    let resolved = policy::resolve(&request, search_path).map_err(|error| {
        CommandError::new(format!(
            "the request cannot be resolved: {}",
            error.detail()
        ))
    })?;
    println!("{}", policy::explain(&policy, &resolved));
    let token_limits = config
        .token_limits
        .get(&token_name)
        .copied()
        .unwrap_or_default();
    println!(
        "token limits: {} (with the rule's, the stricter of each applies)",
        token_limits.describe()
    );
    let token_reach = config
        .token_reach
        .get(&token_name)
        .cloned()
        .unwrap_or_default();
    println!(
        "token reach: {} (with the rule's, a command gets only what both allow)",
        token_reach.describe()
    );
    println!(
        "confinement here: {}; no_new_privs always",
        crate::exec::landlock::Support::here().describe()
    );
    let cgroups = &crate::exec::cgroup::detect::look(config.cgroup_parent.as_deref());
    let limits = match policy::decide(&policy, &resolved) {
        policy::Decision::Permit(permit) => token_limits.stricter(permit.limits()),
        policy::Decision::Deny(_) => token_limits,
    };
    println!(
        "cgroups here: {}\ncommand tree: {}",
        cgroups.describe(),
        crate::exec::cgroup::scope(&limits, cgroups)
    );
    Ok(())
}

fn role_of(auth: &AuthSetting, token_name: &str) -> Result<Role, CommandError> {
    let unknown = || {
        CommandError::new(format!("no token named {token_name:?} in the configuration"))
            .with_hint("give the name of a [[tokens]] entry, or `default` for HOSTMCP_TOKEN or the generated token")
    };
    match auth {
        AuthSetting::Tokens(tokens) => tokens
            .iter()
            .find(|token| token.name() == token_name)
            .map(|token| token.role())
            .ok_or_else(unknown),
        AuthSetting::GeneratedToken { .. } if token_name == "default" => Ok(Role::Admin),
        AuthSetting::GeneratedToken { .. } => Err(unknown()),
        AuthSetting::Disabled => Ok(Role::Admin),
    }
}
