//! The command line: clap structs only. Validation and defaults live in `config`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{auth::client_address::ProxyNet, env_vars};

/// Turn this Linux host into a remote Model Context Protocol server.
#[derive(Debug, Parser)]
#[command(name = "hostmcp", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over HTTP: Streamable HTTP at /mcp, legacy HTTP+SSE at /sse.
    Serve(ServeArgs),
    /// Serve MCP over stdin/stdout (newline-delimited JSON-RPC; logs go to stderr).
    Stdio(StdioArgs),
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect the command policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Validate a configuration and this host for it, print what would be served, and exit
    /// non-zero on any problem (each one line).
    Check(CheckArgs),
    /// Write the man pages or the shell completions into a directory (for packagers).
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
    /// Bridge stdin/stdout to a remote MCP server (Streamable HTTP, or legacy HTTP+SSE),
    /// for stdio-only clients. Token from HOSTMCP_TOKEN or --token-file.
    Connect(ConnectArgs),
    /// Call one tool of a remote MCP server and print its result (exit 1 if the tool
    /// reports an error, 2 if the server cannot be reached or refuses the call).
    Call(CallArgs),
    /// List the tools of a remote MCP server.
    Tools(ToolsArgs),
    /// Manage the OAuth authorization server's clients and grants (works beside a running
    /// server; its revocations take effect there within 2 s).
    Oauth(OAuthArgs),
    /// List, approve or deny the commands a running server holds for approval (over its
    /// approvals socket in the state directory).
    Approvals(ApprovalsArgs),
    /// Serve one MCP endpoint for a fleet of hosts that dial out to NATS (`hostmcp serve
    /// --fleet`): host_list, fleet_run and every host tool with a `host` argument.
    Gateway(GatewayArgs),
}

/// Flags of `hostmcp approvals`.
#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// The server's approvals socket. Default: approvals.sock in the state directory.
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The commands waiting for approval.
    List {
        /// Print JSON instead of one line per request.
        #[arg(long)]
        json: bool,
    },
    /// Approve a waiting command: it runs at once.
    Approve {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Deny a waiting command: it does not run.
    Deny {
        #[arg(value_name = "ID")]
        id: String,
    },
}

/// Flags of `hostmcp gateway`: the NATS bus, then every flag of `serve` (tokens, roles,
/// OAuth, TLS, audit log), which mean the same here.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
    /// NATS server URL (repeatable, or comma separated): nats://HOST:PORT, tls://HOST:PORT.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub nats: Vec<String>,
    /// NATS nkey seed file (the gateway's NATS user).
    #[arg(long, value_name = "FILE", conflicts_with = "nats_creds")]
    pub nats_nkey: Option<PathBuf>,
    /// NATS user credentials file (JWT and seed, as `nsc` writes it).
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// PEM CA certificates the NATS servers' TLS certificates must chain to (TLS required).
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
    /// Hosts one fleet_run reaches at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub fan_out: usize,
    /// Serve the gateway on stdin/stdout (newline JSON-RPC, logs on stderr) to the user who
    /// started it, as `hostmcp stdio` does, instead of over HTTP; calls reach the hosts as
    /// the fleet principal `stdio`.
    #[arg(long, conflicts_with = "listen")]
    pub stdio: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `hostmcp gateway key`.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Print the gateway's public key (nkey form, `A...`; hosts list it in `[fleet]
    /// trusted_gateways`), creating its seed in the state directory (mode 0600) if needed.
    Key,
}

/// Flags of `hostmcp oauth`.
#[derive(Debug, Args)]
pub struct OAuthArgs {
    /// TOML configuration file whose `[oauth] store` names the store.
    #[arg(long, value_name = "PATH", env = env_vars::CONFIG, global = true)]
    pub config: Option<PathBuf>,
    /// The OAuth store file. Default: `[oauth] store`, else oauth.redb in the state directory.
    #[arg(long, value_name = "PATH", global = true)]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: OAuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum OAuthCommand {
    /// Registered clients.
    #[command(subcommand)]
    Clients(OAuthItemCommand),
    /// Grants: what an owner approved, per client.
    #[command(subcommand)]
    Grants(OAuthItemCommand),
}

#[derive(Debug, Subcommand)]
pub enum OAuthItemCommand {
    /// One line each (JSON with --json).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke one by its id (a client's grants go with it).
    Revoke { id: String },
}

/// Flags of `hostmcp check`.
#[derive(Debug, Default, Args)]
pub struct CheckArgs {
    /// TOML configuration file. Default: where `serve` looks
    /// ($XDG_CONFIG_HOME/hostmcp/hostmcp.toml, then /etc/hostmcp/hostmcp.toml as root).
    #[arg(long, value_name = "PATH", env = env_vars::CONFIG)]
    pub config: Option<PathBuf>,
    /// Also fetch each outside issuer's JWK set ([[auth.issuers]]): goes to the network.
    #[arg(long)]
    pub fetch_jwks: bool,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write hostmcp.1 and one page per subcommand (hostmcp-serve.1, ...) into DIR.
    Man { dir: PathBuf },
    /// Write the bash (hostmcp), zsh (_hostmcp) and fish (hostmcp.fish) completions into DIR.
    Completions { dir: PathBuf },
}

/// How `connect`, `call` and `tools` reach the server.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The server's URL: http(s)://HOST:PORT/mcp (or /sse for legacy HTTP+SSE).
    #[arg(value_name = "URL")]
    pub url: String,
    /// File whose first line is the bearer token. Default: the HOSTMCP_TOKEN environment
    /// variable. (There is no --token: the command line is visible to every user.)
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// For https:// URLs, trust only the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Refused with a hint: a token on the command line is readable by every user.
    #[arg(long, hide = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Flags of `hostmcp connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// After losing the server, how long to keep trying to open a new session before the
    /// waiting requests fail.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub reconnect_for: u64,
}

/// Flags of `hostmcp call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The tool's name.
    #[arg(value_name = "TOOL")]
    pub tool: String,
    /// The tool's arguments as a JSON object.
    #[arg(value_name = "JSON", default_value = "{}")]
    pub arguments: String,
    /// Print the whole CallToolResult as JSON instead of its text.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `hostmcp tools`.
#[derive(Debug, Args)]
pub struct ToolsArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print the tools as the server lists them (a JSON array) instead of names and summaries.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print how the policy would decide a command for a token, without running anything.
    Explain {
        /// TOML configuration file holding the tokens and the [policy] table.
        #[arg(long, value_name = "PATH", env = env_vars::CONFIG)]
        config: Option<PathBuf>,
        /// The token whose rights are checked (its name in [[tokens]], or `default`).
        #[arg(long, value_name = "NAME")]
        token_name: String,
        /// Judge a shell command line (`command` mode) instead of an argv.
        #[arg(long, value_name = "COMMAND_LINE", conflicts_with = "argv")]
        shell: Option<String>,
        /// Working directory of the command.
        #[arg(long, value_name = "DIR")]
        working_dir: Option<PathBuf>,
        /// The program and its arguments.
        #[arg(last = true, value_name = "ARGV")]
        argv: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that an audit log is intact: every line parses, sequence numbers follow each
    /// other, and each line carries the hash of the one before.
    Verify {
        /// The audit log files, oldest first, checked as one chain (after a rotation:
        /// audit.jsonl.1 audit.jsonl).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// `SEQ:HASH` printed by an earlier verify, to also detect lines cut off the end.
        #[arg(long)]
        anchor: Option<String>,
        /// The audit key file: every line must carry a MAC that it confirms, and the anchor
        /// file the server keeps must be there, sealed with it, and name a line of the chain.
        #[arg(long, value_name = "KEY_FILE")]
        key: Option<PathBuf>,
        /// The anchor file checked with --key. Default: the last FILE with `.anchor` added.
        #[arg(long, value_name = "PATH", requires = "key")]
        anchor_file: Option<PathBuf>,
        /// With --key, check no anchor file (lines cut off the end then go unseen).
        #[arg(long, requires = "key", conflicts_with = "anchor_file")]
        no_anchor_file: bool,
        /// The first FILE may start mid-chain (it was rotated out of a longer log): its first
        /// line is not checked against the lines before it; the report names where it starts.
        #[arg(long)]
        mid_chain: bool,
    },
    /// Make a new audit key file (32 random bytes in hex, mode 0600), for `[audit] key_file`.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        file: PathBuf,
    },
}

/// Flags of `hostmcp serve`. Each overrides the environment and the config file.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on (repeatable). Default: 127.0.0.1:8000.
    #[arg(long = "listen", value_name = "ADDR", env = env_vars::LISTEN, value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,

    /// TOML configuration file.
    #[arg(long, value_name = "PATH", env = env_vars::CONFIG)]
    pub config: Option<PathBuf>,

    /// Serve without authentication. Refused unless every listen address is loopback.
    #[arg(long)]
    pub no_auth: bool,

    /// Extra name the server answers to in the Host header (repeatable), e.g. a public
    /// name behind a reverse proxy. The host's own names and addresses are always allowed.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Browser origin allowed to call the server (repeatable), e.g. http://localhost:6274.
    /// Requests carrying any other Origin header get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Audit log file (JSON lines, hash-chained). Default: audit.jsonl in the state directory.
    #[arg(
        long = "audit-log",
        value_name = "PATH",
        conflicts_with = "no_audit_log"
    )]
    pub audit_log: Option<PathBuf>,

    /// Write no audit file (audit records then go to the log only).
    #[arg(long)]
    pub no_audit_log: bool,

    /// Serve HTTPS with this PEM certificate chain (reloaded on SIGHUP).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    #[arg(long)]
    pub allow_plaintext: bool,

    /// Unix user that commands run as when the token names none. When hostmcp runs as
    /// root, commands are refused until a user is set; `--run-as root` allows root.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,

    /// Reverse proxy whose Forwarded / X-Forwarded-For headers name the client (repeatable;
    /// a CIDR network or an address, e.g. 10.0.0.0/8). Headers from any other peer are ignored.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = env_vars::TRUSTED_PROXIES,
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ProxyNet>,

    /// Serve Prometheus metrics at /metrics (to loopback only, unless a [metrics] token_file
    /// is configured). Same as a [metrics] table in the config file.
    #[arg(long)]
    pub metrics: bool,

    /// Log format on stderr: text (default) or json (one object per line, for log
    /// shippers). Overrides `[log] format`.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// The address clients reach this server at: https://HOST[:PORT] (plain http only on
    /// loopback). Every OAuth metadata URL derives from it. Overrides `public_url`.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Run the embedded OAuth 2.1 authorization server for apps that connect only by OAuth
    /// (claude.ai, ChatGPT, Copilot Studio); needs --public-url. Same as an [oauth] table.
    #[arg(long)]
    pub oauth: bool,

    /// Join a fleet over NATS (docs/fleet.md): `--fleet nats://HOST:PORT[,nats://...]`.
    #[command(flatten)]
    pub fleet: Box<FleetArgs>,
}

/// The fleet flags of `hostmcp serve` (docs/fleet.md); each overrides its `[fleet]` key.
#[derive(Debug, Default, Clone, Args)]
pub struct FleetArgs {
    /// Serve this host's tools to a fleet: connect out to these NATS servers (comma
    /// separated; nats:// or tls://). Same as `[fleet] url`.
    #[arg(long = "fleet", value_name = "URL", value_delimiter = ',')]
    pub fleet: Vec<String>,

    /// This host's name in the fleet (one NATS subject token: letters, digits, '-', '_').
    /// Default: `[fleet] name`, else the first label of the hostname.
    #[arg(long = "fleet-name", value_name = "NAME")]
    pub name: Option<String>,

    /// A label of this host, KEY=VALUE (repeatable), e.g. env=prod; added to `[fleet] labels`.
    #[arg(long = "fleet-label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// NATS nkey seed file (the host's NATS user).
    #[arg(long = "fleet-nkey", value_name = "FILE", conflicts_with = "creds")]
    pub nkey: Option<PathBuf>,

    /// NATS user credentials file (JWT and seed).
    #[arg(long = "fleet-creds", value_name = "FILE")]
    pub creds: Option<PathBuf>,

    /// CA certificate (PEM) the NATS servers' TLS certificates are checked against.
    #[arg(long = "fleet-ca", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Serve the fleet only: no HTTP listener (`[fleet] http = false`).
    #[arg(long)]
    pub no_http: bool,
}

/// How log lines are written (`--log-format`, `[log] format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, with the current span's fields (e.g. `trace_id`).
    Json,
}

/// Flags of `hostmcp stdio`.
#[derive(Debug, Default, Args)]
pub struct StdioArgs {
    /// TOML configuration file (command limits apply; tokens are not used on stdio).
    #[arg(long, value_name = "PATH", env = env_vars::CONFIG)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token and the config lines that register its digest.
    Create {
        /// Name of the token; it identifies the caller in logs and audit records.
        #[arg(long)]
        name: String,
        /// Role of the token: read, operator or admin.
        #[arg(long, default_value = "operator")]
        role: String,
    },
}
