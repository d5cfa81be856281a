//! Configuration: flags > environment > TOML file > defaults, resolved once into one
//! validated [`Config`]. Resolution is pure (the environment comes in as an [`EnvSnapshot`])
//! so every precedence rule is testable without touching the process environment.

pub mod acme;
pub mod connections;
pub mod discovery;
pub mod file;
pub mod services;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use crate::{
    auth::{Role, Secret, TokenDigest, TokenEntry, client_address::TrustedProxies},
    cli::ServeArgs,
    env_vars,
};
pub use connections::ConnectionSettings;
pub use discovery::{ConfigSource, discover_here};
pub use file::FileConfig;

/// Where `serve` listens when nothing says otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);

/// The validated settings of a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub auth: AuthSetting,
    /// Host names accepted in addition to the host's own names and addresses.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted in an `Origin` header.
    pub allowed_origins: Vec<String>,
    pub limits: CommandLimits,
    pub jobs: JobSettings,
    /// The `[terminals]` table: limits of the interactive terminals.
    pub terminals: crate::terminals::TerminalSettings,
    /// The `[approval]` table: how commands wait for a person.
    pub approval: crate::approval::ApprovalSettings,
    /// Where audit records go: a file, or `None` for the log only.
    pub audit: Option<AuditFile>,
    pub abuse: AbuseLimits,
    /// The `[policy]` table as written; `crate::policy::resolve_policy` makes it a policy.
    pub policy: Option<crate::policy::PolicyConfig>,
    /// Certificate and key files for HTTPS.
    pub tls: Option<TlsFiles>,
    /// `[tls.acme]`: HTTPS with certificates from an ACME CA (never with `tls`).
    pub acme: Option<acme::AcmeSettings>,
    /// Plain HTTP off loopback was explicitly allowed.
    pub allow_plaintext: bool,
    /// The Unix user commands run as when the token names none.
    pub run_as: Option<String>,
    /// What revoking or expiring a token does to its sessions, calls and jobs.
    pub on_revoke: crate::auth::OnRevoke,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: TrustedProxies,
    /// The `[connections]` table: connection and stream limits, header and handshake timeouts.
    pub connections: ConnectionSettings,
    /// The `[files]` table: the directories the file tools may reach.
    pub files: crate::files::FileRoots,
    /// The `[systemd]` and `[logs]` tables (`service_status`, `log_query`).
    pub services: services::ServiceSettings,
    /// `--log-format`, else `[log] format`, else text.
    pub log_format: crate::cli::LogFormat,
    /// `/metrics`, when served (`--metrics` or a `[metrics]` table).
    pub metrics: Option<MetricsSettings>,
    /// The embedded OAuth authorization server, when on (`--oauth` or an `[oauth]` table).
    pub oauth: Option<crate::oauth::OAuthSettings>,
    /// Each `[[tokens]]` entry's `limits`, by token name (tokens without limits absent).
    pub token_limits: std::collections::HashMap<String, crate::exec::ResourceLimits>,
    /// Each `[[tokens]]` entry's reach (`fs_read`, `fs_write`, `network`), roots
    /// canonical, by token name (unconfined tokens absent).
    pub token_reach: std::collections::HashMap<String, crate::reach::Reach>,
    /// `[confinement] degrade`: run commands with what the host can enforce.
    pub confinement_degrade: bool,
    /// `[confinement] cgroup_parent`: where commands' cgroups go on cgroup v2.
    pub cgroup_parent: Option<std::path::PathBuf>,
    /// The `[auth]` table: the API-key header and outside issuers.
    pub outside_auth: OutsideAuthSettings,
    /// The fleet this host joins over NATS (`--fleet` or `[fleet] url`), when it does.
    pub fleet: Option<crate::fleet::settings::FleetSettings>,
}

/// The `[auth]` table, checked.
#[derive(Debug, Clone, Default)]
pub struct OutsideAuthSettings {
    pub api_key_header: Option<crate::auth::api_key::ApiKeyHeader>,
    pub issuers: Vec<crate::auth::jwt::IssuerSettings>,
    /// The normalized public URL, when there are outside issuers and one is configured:
    /// their default audience is `<public_url>/mcp`, and the server publishes its
    /// protected-resource metadata naming them.
    pub public_url: Option<String>,
}

/// How `/metrics` is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The scrape token's file; without one, only loopback may scrape.
    pub token_file: Option<PathBuf>,
}

/// The PEM files of the server's certificate chain and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Limits against abuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbuseLimits {
    /// Failed authentications per client address and minute before it gets 429.
    pub auth_failures_per_minute: u32,
    /// Tool calls per principal and minute; `None` for no limit.
    pub tool_calls_per_minute: Option<u32>,
}

/// Tool calls a principal may make per minute unless configured: ten a second, far above
/// what an agent working a host needs, and low enough that one token's flood of calls
/// (each one an audit record) cannot crowd out the others.
pub const DEFAULT_TOOL_CALLS_PER_MINUTE: u32 = 600;

impl Default for AbuseLimits {
    fn default() -> Self {
        Self {
            auth_failures_per_minute: 30,
            tool_calls_per_minute: Some(DEFAULT_TOOL_CALLS_PER_MINUTE),
        }
    }
}

/// The audit log file and how it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFile {
    pub path: PathBuf,
    pub redact_env_values: bool,
    /// The audit key file: lines are sealed with it and an anchor file is kept.
    pub key_file: Option<PathBuf>,
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum AuthSetting {
    /// The configured tokens (from the environment and the file).
    Tokens(Vec<TokenEntry>),
    /// Nothing configured: use the generated token kept in the state directory.
    GeneratedToken { state_dir: PathBuf },
    /// `--no-auth` on loopback only.
    Disabled,
}

/// Limits on what one command may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLimits {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Cap per output stream (stdout and stderr each).
    pub max_output_bytes: usize,
    /// Commands (calls and jobs) running at once, server-wide.
    pub max_concurrent_commands: usize,
    /// Commands (calls and jobs) running at once for one principal.
    pub max_concurrent_per_principal: usize,
    /// Bytes of one whole serialized tool result (text and structured content together).
    pub result_budget_bytes: usize,
}

/// The default result budget: well under the Python SDK's 1 MiB SSE event limit and
/// claude.ai's ~150k characters, about 25k tokens (Claude Code's cut).
pub const DEFAULT_RESULT_BUDGET_BYTES: usize = 100 * 1024;
/// The smallest result budget accepted: room for a status line and some output.
pub const MIN_RESULT_BUDGET_BYTES: usize = 4096;

impl Default for CommandLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(600),
            max_output_bytes: 1024 * 1024,
            max_concurrent_commands: 64,
            max_concurrent_per_principal: 16,
            result_budget_bytes: DEFAULT_RESULT_BUDGET_BYTES,
        }
    }
}

/// Settings of background jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    pub registry: crate::jobs::JobLimits,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            registry: crate::jobs::JobLimits::default(),
            default_timeout: Duration::from_secs(3600),
            max_timeout: Duration::from_secs(24 * 3600),
        }
    }
}

/// The parts of the process environment that configuration reads, captured once.
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    pub token: Option<Secret>,
    pub state_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// `XDG_CONFIG_HOME`: where the user's config file is looked for.
    pub config_home: Option<PathBuf>,
}

impl EnvSnapshot {
    /// Read the variables named in [`env_vars`] from this process's environment.
    pub fn capture() -> Self {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        Self {
            token: std::env::var(env_vars::TOKEN)
                .ok()
                .filter(|value| !value.is_empty())
                .map(Secret::new),
            state_home: non_empty(env_vars::XDG_STATE_HOME).map(PathBuf::from),
            home: non_empty(env_vars::HOME).map(PathBuf::from),
            config_home: non_empty(env_vars::XDG_CONFIG_HOME).map(PathBuf::from),
        }
    }

    /// `$XDG_STATE_HOME/hostmcp`, else `~/.local/state/hostmcp`.
    pub fn state_dir(&self) -> Result<PathBuf, ConfigError> {
        match (&self.state_home, &self.home) {
            (Some(state), _) => Ok(state.join("hostmcp")),
            (None, Some(home)) => Ok(home.join(".local/state/hostmcp")),
            (None, None) => Err(ConfigError::NoStateDir),
        }
    }
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("--no-auth is refused because {addr} is not a loopback address")]
    NoAuthOffLoopback { addr: SocketAddr },
    #[error("tokens[{index}] (name {name:?}): sha256 must be 64 hexadecimal characters")]
    BadDigest { index: usize, name: String },
    #[error("tokens[{index}]: name {name:?} is not valid")]
    BadTokenName { index: usize, name: String },
    #[error("token name {name:?} is used twice")]
    DuplicateTokenName { name: String },
    #[error("tokens[{index}] (name {name:?}): unknown role {role:?}")]
    UnknownRole {
        index: usize,
        name: String,
        role: String,
    },
    #[error(
        "tokens[{index}] (name {name:?}): expires must be a date-time with an offset, e.g. 2027-01-31T00:00:00Z"
    )]
    BadExpiry { index: usize, name: String },
    #[error("tokens[{index}] (name {name:?}): {zero}")]
    TokenLimit {
        index: usize,
        name: String,
        zero: crate::exec::confine::ZeroLimit,
    },
    #[error("tokens[{index}] (name {name:?}): {problem}")]
    TokenReach {
        index: usize,
        name: String,
        problem: crate::reach::ReachError,
    },
    #[error(
        "{addr} is not a loopback address, and serving it over plain HTTP would send tokens in clear"
    )]
    PlaintextOffLoopback { addr: SocketAddr },
    #[error("[tls] needs both cert and key")]
    IncompleteTls,
    #[error("limits: {0}")]
    BadLimits(&'static str),
    #[error("no state directory: neither XDG_STATE_HOME nor HOME is set")]
    NoStateDir,
    #[error("connections: {0}")]
    BadConnections(&'static str),
    #[error("{0}")]
    BadFileRoots(#[from] crate::files::RootsError),
    #[error("[auth]: {0}")]
    BadApiKeyHeader(#[from] crate::auth::api_key::ApiKeyHeaderError),
    #[error("{0}")]
    BadIssuer(#[from] crate::auth::jwt::IssuerSettingsError),
    #[error("[auth] needs token authentication; it does nothing with --no-auth")]
    OutsideAuthWithoutAuth,
    #[error("[{table}]: {message}")]
    BadServices {
        table: &'static str,
        message: String,
    },
    #[error("OAuth: {0}")]
    OAuth(#[from] crate::oauth::settings::OAuthConfigError),
    #[error("{0}")]
    Acme(#[from] acme::AcmeConfigError),
    #[error("{0}")]
    Fleet(#[from] crate::fleet::settings::FleetConfigError),
}

impl ConfigError {
    /// What the user should do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::ReadFile { .. } => "check the path given to --config or HOSTMCP_CONFIG",
            Self::ParseFile { .. } => {
                "fix the key named above; docs/configuration.md lists every key"
            }
            Self::NoAuthOffLoopback { .. } => {
                "listen on 127.0.0.1 or [::1] only, or drop --no-auth and use a token"
            }
            Self::BadDigest { .. } => {
                "`hostmcp token create --name NAME` prints a token and its sha256 line"
            }
            Self::BadTokenName { .. } => {
                "use 1-64 characters from letters, digits, '-', '_' and '.'"
            }
            Self::DuplicateTokenName { .. } => "give every [[tokens]] entry its own name",
            Self::PlaintextOffLoopback { .. } => {
                "serve HTTPS with --tls-cert and --tls-key, or pass --allow-plaintext when a TLS-terminating proxy is in front"
            }
            Self::IncompleteTls => "give both --tls-cert and --tls-key (or [tls] cert and key)",
            Self::BadExpiry { .. } => "write expires = 2027-01-31T00:00:00Z (no quotes)",
            Self::TokenLimit { .. } => {
                "e.g. limits = { memory = \"512MiB\", cpu_seconds = 30, processes = 64, file_size = \"100MiB\" }"
            }
            Self::TokenReach { .. } => {
                "e.g. fs_read = [\"/usr\", \"/etc\"], fs_write = [\"/srv/data\"], network = \"none\" \
                 (docs/security.md#confinement)"
            }
            Self::UnknownRole { .. } => "role is one of: read, operator, admin",
            Self::BadLimits(_) => {
                "timeouts must be at least 1 s with default_timeout_secs <= max_timeout_secs, and max_output_bytes at least 1024"
            }
            Self::NoStateDir => "set XDG_STATE_HOME or HOME, or configure a token",
            Self::BadConnections(_) => {
                "limits and timeouts in [connections] must be at least 1, with max_per_address <= max_total"
            }
            Self::BadFileRoots(_) => {
                "write each [[files.roots]] path once, as an absolute directory, e.g. path = \"/srv\""
            }
            Self::BadServices { .. } => "docs/services.md lists the [systemd] and [logs] keys",
            Self::OAuth(_) => {
                "docs/oauth.md: --public-url https://HOST (http only on loopback) with --oauth or an [oauth] table"
            }
            Self::BadApiKeyHeader(_) => {
                "name a header of your own, e.g. api_key_header = \"X-API-Key\""
            }
            Self::BadIssuer(error) => error.hint(),
            Self::OutsideAuthWithoutAuth => "drop --no-auth, or the [auth] table",
            Self::Acme(error) => error.hint(),
            Self::Fleet(error) => error.hint(),
        }
    }
}

impl Config {
    /// Merge flags, environment and file into one validated configuration.
    pub fn resolve(
        args: &ServeArgs,
        env: &EnvSnapshot,
        file: FileConfig,
    ) -> Result<Self, ConfigError> {
        let listen = if !args.listen.is_empty() {
            args.listen.clone()
        } else {
            file.listen.clone().unwrap_or_else(|| vec![DEFAULT_LISTEN])
        };
        let no_auth = args.no_auth || file.no_auth.unwrap_or(false);
        let auth = if no_auth {
            if let Some(addr) = listen.iter().find(|addr| !addr.ip().is_loopback()) {
                return Err(ConfigError::NoAuthOffLoopback { addr: *addr });
            }
            AuthSetting::Disabled
        } else {
            let tokens = configured_tokens(env, &file)?;
            if tokens.is_empty() {
                AuthSetting::GeneratedToken {
                    state_dir: env.state_dir()?,
                }
            } else {
                AuthSetting::Tokens(tokens)
            }
        };
        let public_url = args.public_url.as_deref().or(file.public_url.as_deref());
        let oauth =
            crate::oauth::settings::resolve(public_url, args.oauth, file.oauth.as_ref(), || {
                env.state_dir().ok()
            })?;
        let outside_auth = resolve_outside_auth(&file.auth, &auth, public_url)?;
        let fleet = crate::fleet::settings::resolve(&args.fleet, file.fleet.as_ref())?;
        Ok(Self {
            oauth,
            listen,
            auth,
            allowed_hosts: concat(&args.allowed_hosts, &file.allowed_hosts),
            allowed_origins: concat(&args.allowed_origins, &file.allowed_origins),
            limits: resolve_limits(&file)?,
            jobs: resolve_jobs(&file)?,
            terminals: crate::terminals::TerminalSettings::resolve(&file.terminals)
                .map_err(ConfigError::BadLimits)?,
            approval: crate::approval::ApprovalSettings::resolve(&file.approval)
                .map_err(ConfigError::BadLimits)?,
            audit: resolve_audit(args, env, &file)?,
            abuse: AbuseLimits {
                auth_failures_per_minute: file
                    .limits
                    .auth_failures_per_minute
                    .unwrap_or(AbuseLimits::default().auth_failures_per_minute),
                tool_calls_per_minute: file
                    .limits
                    .tool_calls_per_minute
                    .or(AbuseLimits::default().tool_calls_per_minute),
            },
            tls: tls_files(args, &file)?,
            acme: resolve_acme(args, env, &file)?,
            allow_plaintext: args.allow_plaintext || file.allow_plaintext.unwrap_or(false),
            run_as: args.run_as.clone().or_else(|| file.run_as.clone()),
            trusted_proxies: TrustedProxies::new(if args.trusted_proxies.is_empty() {
                file.trusted_proxies.clone().unwrap_or_default()
            } else {
                args.trusted_proxies.clone()
            }),
            connections: connections::resolve(&file.connections)?,
            services: services::ServiceSettings {
                systemd: services::resolve_systemd(&file.systemd)?,
                logs: services::resolve_logs(&file.logs)?,
            },
            log_format: args.log_format.or(file.log.format).unwrap_or_default(),
            metrics: resolve_metrics(args, &file),
            token_limits: token_limits(&file)?,
            token_reach: token_reach(&file)?,
            confinement_degrade: file.confinement.degrade.unwrap_or(false),
            cgroup_parent: file.confinement.cgroup_parent.clone(),
            outside_auth,
            fleet,
            files: crate::files::FileRoots::new(file.files)?,
            policy: file.policy,
            on_revoke: file.on_revoke.unwrap_or_default(),
        })
        .and_then(Self::check_plaintext)
    }

    /// Plain HTTP on a non-loopback address needs `allow_plaintext`.
    fn check_plaintext(self) -> Result<Self, ConfigError> {
        if self.tls.is_none()
            && self.acme.is_none()
            && !self.allow_plaintext
            && let Some(addr) = self.listen.iter().find(|addr| !addr.ip().is_loopback())
        {
            return Err(ConfigError::PlaintextOffLoopback { addr: *addr });
        }
        Ok(self)
    }
}

fn concat(first: &[String], second: &[String]) -> Vec<String> {
    first.iter().chain(second).cloned().collect()
}

/// The `limits` of each `[[tokens]]` entry that has some; a zero limit is an error.
fn token_limits(
    file: &FileConfig,
) -> Result<std::collections::HashMap<String, crate::exec::ResourceLimits>, ConfigError> {
    let mut limits = std::collections::HashMap::new();
    for (index, entry) in file.tokens.iter().enumerate() {
        let Some(entry_limits) = entry.limits else {
            continue;
        };
        entry_limits
            .validate()
            .map_err(|zero| ConfigError::TokenLimit {
                index,
                name: entry.name.clone(),
                zero,
            })?;
        limits.insert(entry.name.clone(), entry_limits);
    }
    Ok(limits)
}

/// The reach of each `[[tokens]]` entry that confines something, roots canonical.
fn token_reach(
    file: &FileConfig,
) -> Result<std::collections::HashMap<String, crate::reach::Reach>, ConfigError> {
    let mut reaches = std::collections::HashMap::new();
    for (index, entry) in file.tokens.iter().enumerate() {
        let written = crate::reach::ReachWritten {
            fs_read: entry.fs_read.clone(),
            fs_write: entry.fs_write.clone(),
            network: entry.network.clone(),
        };
        let reach = written
            .parse()
            .and_then(crate::reach::Reach::canonicalize)
            .map_err(|problem| ConfigError::TokenReach {
                index,
                name: entry.name.clone(),
                problem,
            })?;
        if reach.confines() {
            reaches.insert(entry.name.clone(), reach);
        }
    }
    Ok(reaches)
}

/// `HOSTMCP_TOKEN` (as `default`, admin) followed by the file's `[[tokens]]`.
fn configured_tokens(env: &EnvSnapshot, file: &FileConfig) -> Result<Vec<TokenEntry>, ConfigError> {
    let mut tokens = Vec::new();
    if let Some(secret) = &env.token {
        tokens.push(TokenEntry::new(
            "default",
            TokenDigest::of_token(secret.expose()),
            Role::Admin,
        ));
    }
    for (index, entry) in file.tokens.iter().enumerate() {
        if !crate::auth::is_valid_token_name(&entry.name) {
            return Err(ConfigError::BadTokenName {
                index,
                name: entry.name.clone(),
            });
        }
        let digest =
            TokenDigest::from_hex(&entry.sha256).ok_or_else(|| ConfigError::BadDigest {
                index,
                name: entry.name.clone(),
            })?;
        let role = match &entry.role {
            None => Role::Operator,
            Some(role) => role.parse().map_err(|_| ConfigError::UnknownRole {
                index,
                name: entry.name.clone(),
                role: role.clone(),
            })?,
        };
        if tokens
            .iter()
            .any(|token: &TokenEntry| token.name() == entry.name)
        {
            return Err(ConfigError::DuplicateTokenName {
                name: entry.name.clone(),
            });
        }
        let mut token = TokenEntry::new(&entry.name, digest, role);
        if let Some(expires) = &entry.expires {
            let expires_at =
                datetime_to_system_time(expires).ok_or_else(|| ConfigError::BadExpiry {
                    index,
                    name: entry.name.clone(),
                })?;
            token = token.expiring_at(expires_at);
        }
        if let Some(user) = &entry.run_as {
            token = token.running_as(user);
        }
        tokens.push(token);
    }
    Ok(tokens)
}

/// A TOML date-time with an offset as a point in time, to the whole second; `None` without
/// date, time or offset, or before 1970.
fn datetime_to_system_time(value: &toml::value::Datetime) -> Option<std::time::SystemTime> {
    use toml::value::Offset;
    let (date, time, offset) = (value.date?, value.time?, value.offset?);
    let offset_minutes = match offset {
        Offset::Z => 0,
        Offset::Custom { minutes } => i32::from(minutes),
    };
    // TOML admits a leap second (`:60`); jiff does not: it is the first second of the next
    // minute.
    let second = time.second.unwrap_or(0);
    let civil = jiff::civil::DateTime::new(
        i16::try_from(date.year).ok()?,
        i8::try_from(date.month).ok()?,
        i8::try_from(date.day).ok()?,
        i8::try_from(time.hour).ok()?,
        i8::try_from(time.minute).ok()?,
        i8::try_from(second.min(59)).ok()?,
        0,
    )
    .ok()?;
    let timestamp = jiff::tz::Offset::from_seconds(offset_minutes * 60)
        .ok()?
        .to_timestamp(civil)
        .ok()?;
    let seconds = u64::try_from(timestamp.as_second()).ok()? + u64::from(second.saturating_sub(59));
    std::time::SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// The tokens of a configuration, for a reload: env token plus the file's entries.
pub fn reload_tokens(
    path: Option<&std::path::Path>,
    env: &EnvSnapshot,
) -> Result<Vec<TokenEntry>, ConfigError> {
    configured_tokens(env, &load_file(path)?)
}

fn resolve_limits(file: &FileConfig) -> Result<CommandLimits, ConfigError> {
    let defaults = CommandLimits::default();
    let seconds =
        |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_secs);
    let limits = CommandLimits {
        default_timeout: seconds(file.limits.default_timeout_secs, defaults.default_timeout),
        max_timeout: seconds(file.limits.max_timeout_secs, defaults.max_timeout),
        max_output_bytes: file
            .limits
            .max_output_bytes
            .unwrap_or(defaults.max_output_bytes),
        max_concurrent_commands: file
            .limits
            .max_concurrent_commands
            .unwrap_or(defaults.max_concurrent_commands),
        max_concurrent_per_principal: file
            .limits
            .max_concurrent_per_principal
            .unwrap_or(defaults.max_concurrent_per_principal),
        result_budget_bytes: file
            .limits
            .result_budget_bytes
            .unwrap_or(defaults.result_budget_bytes),
    };
    if limits.max_concurrent_commands == 0 || limits.max_concurrent_per_principal == 0 {
        return Err(ConfigError::BadLimits("a concurrency limit is zero"));
    }
    if limits.default_timeout.is_zero() || limits.max_timeout.is_zero() {
        return Err(ConfigError::BadLimits("a timeout is zero"));
    }
    if limits.default_timeout > limits.max_timeout {
        return Err(ConfigError::BadLimits(
            "default_timeout_secs is larger than max_timeout_secs",
        ));
    }
    if limits.max_output_bytes < 1024 {
        return Err(ConfigError::BadLimits("max_output_bytes is below 1024"));
    }
    if limits.result_budget_bytes < MIN_RESULT_BUDGET_BYTES {
        return Err(ConfigError::BadLimits("result_budget_bytes is below 4096"));
    }
    Ok(limits)
}

fn tls_files(args: &ServeArgs, file: &FileConfig) -> Result<Option<TlsFiles>, ConfigError> {
    let cert = args.tls_cert.clone().or_else(|| file.tls.cert.clone());
    let key = args.tls_key.clone().or_else(|| file.tls.key.clone());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        _ => Err(ConfigError::IncompleteTls),
    }
}

/// `[tls.acme]`, checked; refused beside certificate files.
fn resolve_acme(
    args: &ServeArgs,
    env: &EnvSnapshot,
    file: &FileConfig,
) -> Result<Option<acme::AcmeSettings>, ConfigError> {
    let Some(table) = &file.tls.acme else {
        return Ok(None);
    };
    let files = [&args.tls_cert, &args.tls_key, &file.tls.cert, &file.tls.key];
    if files.iter().any(|file| file.is_some()) {
        return Err(acme::AcmeConfigError::FilesAndAcme.into());
    }
    Ok(Some(table.resolve(env.state_dir().ok())?))
}

/// The `[auth]` table, checked; refused with `--no-auth`, where nothing is authenticated.
/// The public URL is checked here only when there are issuers (it is their default
/// audience); otherwise it matters to the OAuth settings alone.
fn resolve_outside_auth(
    file: &file::FileAuth,
    auth: &AuthSetting,
    public_url: Option<&str>,
) -> Result<OutsideAuthSettings, ConfigError> {
    let public_url = match public_url {
        Some(raw) if !file.issuers.is_empty() => {
            Some(crate::oauth::settings::normalize_public_url(raw)?)
        }
        _ => None,
    };
    let default_audience = public_url.as_deref().map(|url| format!("{url}/mcp"));
    let settings = OutsideAuthSettings {
        api_key_header: file
            .api_key_header
            .as_deref()
            .map(crate::auth::api_key::ApiKeyHeader::parse)
            .transpose()?,
        issuers: crate::auth::jwt::resolve_issuers_for(&file.issuers, default_audience.as_deref())?,
        public_url,
    };
    let configured = settings.api_key_header.is_some() || !settings.issuers.is_empty();
    if configured && matches!(auth, AuthSetting::Disabled) {
        return Err(ConfigError::OutsideAuthWithoutAuth);
    }
    Ok(settings)
}

/// The audit file: `--audit-log`, else `[audit] path`, else the state directory;
/// none with `--no-audit-log` or `[audit] enabled = false`.
fn resolve_audit(
    args: &ServeArgs,
    env: &EnvSnapshot,
    file: &FileConfig,
) -> Result<Option<AuditFile>, ConfigError> {
    if args.no_audit_log || file.audit.enabled == Some(false) {
        return Ok(None);
    }
    let path = match (&args.audit_log, &file.audit.path) {
        (Some(path), _) | (None, Some(path)) => path.clone(),
        (None, None) => env.state_dir()?.join(AUDIT_FILE_NAME),
    };
    Ok(Some(AuditFile {
        path,
        redact_env_values: file.audit.redact_env_values.unwrap_or(true),
        key_file: file.audit.key_file.clone(),
    }))
}

/// `/metrics`: on with `--metrics` or a `[metrics]` table, unless the table says
/// `enabled = false` (which `--metrics` overrides).
fn resolve_metrics(args: &ServeArgs, file: &FileConfig) -> Option<MetricsSettings> {
    let table = file.metrics.as_ref();
    let on = args.metrics || table.is_some_and(|table| table.enabled != Some(false));
    on.then(|| MetricsSettings {
        token_file: table.and_then(|table| table.token_file.clone()),
    })
}

/// File name of the default audit log inside the state directory.
pub const AUDIT_FILE_NAME: &str = "audit.jsonl";

fn resolve_jobs(file: &FileConfig) -> Result<JobSettings, ConfigError> {
    let defaults = JobSettings::default();
    let jobs = &file.jobs;
    let settings = JobSettings {
        registry: crate::jobs::JobLimits {
            max_per_principal: jobs
                .max_per_principal
                .unwrap_or(defaults.registry.max_per_principal),
            retained_bytes: jobs
                .retained_bytes
                .unwrap_or(defaults.registry.retained_bytes),
            keep_finished: jobs
                .keep_finished_secs
                .map_or(defaults.registry.keep_finished, Duration::from_secs),
        },
        default_timeout: jobs
            .default_timeout_secs
            .map_or(defaults.default_timeout, Duration::from_secs),
        max_timeout: jobs
            .max_timeout_secs
            .map_or(defaults.max_timeout, Duration::from_secs),
    };
    if settings.default_timeout.is_zero() || settings.default_timeout > settings.max_timeout {
        return Err(ConfigError::BadLimits(
            "jobs: default_timeout_secs must be between 1 and max_timeout_secs",
        ));
    }
    if settings.registry.max_per_principal == 0 || settings.registry.retained_bytes < 1024 {
        return Err(ConfigError::BadLimits(
            "jobs: max_per_principal must be at least 1 and retained_bytes at least 1024",
        ));
    }
    Ok(settings)
}

/// Load the file named by `path`, or an empty one.
pub fn load_file(path: Option<&std::path::Path>) -> Result<FileConfig, ConfigError> {
    path.map_or_else(|| Ok(FileConfig::default()), FileConfig::load)
}

#[cfg(test)]
mod tests;
