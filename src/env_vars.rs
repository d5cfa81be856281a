//! Every environment variable hostmcp reads, as a named constant.

/// Listen addresses for `serve`, comma-separated (same as `--listen`).
pub const LISTEN: &str = "HOSTMCP_LISTEN";
/// Path of the TOML config file (same as `--config`).
pub const CONFIG: &str = "HOSTMCP_CONFIG";
/// One bearer token in clear, registered under the name `default` with the admin role.
pub const TOKEN: &str = "HOSTMCP_TOKEN";
/// Trusted reverse proxies, comma-separated CIDRs or addresses (same as `--trusted-proxy`).
pub const TRUSTED_PROXIES: &str = "HOSTMCP_TRUSTED_PROXIES";
/// Log filter in `tracing_subscriber::EnvFilter` syntax, e.g. `info` or `hostmcp=debug`.
pub const LOG: &str = "HOSTMCP_LOG";
/// Base of the state directory that keeps the generated token.
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
/// Base of the user's config directory: `serve` reads `$XDG_CONFIG_HOME/hostmcp/hostmcp.toml`.
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Home directory, used when `XDG_STATE_HOME` is unset.
pub const HOME: &str = "HOME";
/// Set by systemd to the `DEVICE:INODE` of the journal stream it gave as stdout/stderr.
pub const JOURNAL_STREAM: &str = "JOURNAL_STREAM";
