//! The `[connections]` table: how many connections the HTTP server holds, from whom, for
//! how long, and how many MCP streams one principal may keep open. Resolved into
//! [`ConnectionSettings`], which `commands::serve` hands to the HTTP transport.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The `[connections]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConnections {
    pub max_total: Option<usize>,
    pub max_per_address: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub tls_handshake_timeout_secs: Option<u64>,
    pub max_streams_per_principal: Option<usize>,
    pub max_sessions_per_principal: Option<usize>,
}

/// Validated connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Open connections, server-wide (further ones are refused at accept).
    pub max_total: usize,
    /// Open connections from one client IP address.
    pub max_per_address: usize,
    /// How long a connection may take to send a complete request head, counted from the
    /// moment it is ready for one: a new connection, or a kept-alive one after its last
    /// response. It is therefore also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// How long a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Open MCP streams (`GET /sse`, `GET /mcp`) per principal.
    pub max_streams_per_principal: usize,
    /// Open MCP sessions (Streamable HTTP sessions, and legacy SSE sessions) per principal.
    pub max_sessions_per_principal: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_total: 1024,
            max_per_address: 256,
            header_timeout: Duration::from_secs(20),
            tls_handshake_timeout: Duration::from_secs(10),
            max_streams_per_principal: 32,
            max_sessions_per_principal: 64,
        }
    }
}

/// Fill the gaps of `file` with the defaults and check the result.
pub fn resolve(file: &FileConnections) -> Result<ConnectionSettings, ConfigError> {
    let defaults = ConnectionSettings::default();
    let seconds = |value: Option<u64>, default| value.map_or(default, Duration::from_secs);
    let max_total = file.max_total.unwrap_or(defaults.max_total);
    let settings = ConnectionSettings {
        max_total,
        // A smaller max_total alone lowers the default per-address cap with it.
        max_per_address: file
            .max_per_address
            .unwrap_or(defaults.max_per_address.min(max_total)),
        header_timeout: seconds(file.header_timeout_secs, defaults.header_timeout),
        tls_handshake_timeout: seconds(
            file.tls_handshake_timeout_secs,
            defaults.tls_handshake_timeout,
        ),
        max_streams_per_principal: file
            .max_streams_per_principal
            .unwrap_or(defaults.max_streams_per_principal),
        max_sessions_per_principal: file
            .max_sessions_per_principal
            .unwrap_or(defaults.max_sessions_per_principal),
    };
    if settings.max_total == 0
        || settings.max_per_address == 0
        || settings.max_streams_per_principal == 0
        || settings.max_sessions_per_principal == 0
    {
        return Err(ConfigError::BadConnections(
            "a connection or stream limit is zero",
        ));
    }
    if settings.max_per_address > settings.max_total {
        return Err(ConfigError::BadConnections(
            "max_per_address is larger than max_total",
        ));
    }
    if settings.header_timeout.is_zero() || settings.tls_handshake_timeout.is_zero() {
        return Err(ConfigError::BadConnections("a timeout is zero"));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConnectionSettings, ConfigError> {
        let file: FileConnections = toml::from_str(text).expect("valid TOML");
        resolve(&file)
    }

    #[test]
    fn an_empty_table_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), ConnectionSettings::default());
    }

    #[test]
    fn each_key_is_read() {
        let settings = parse(
            "max_total = 10\nmax_per_address = 3\nheader_timeout_secs = 2\n\
             tls_handshake_timeout_secs = 4\nmax_streams_per_principal = 5\n\
             max_sessions_per_principal = 6\n",
        )
        .unwrap();
        assert_eq!(
            settings,
            ConnectionSettings {
                max_total: 10,
                max_per_address: 3,
                header_timeout: Duration::from_secs(2),
                tls_handshake_timeout: Duration::from_secs(4),
                max_streams_per_principal: 5,
                max_sessions_per_principal: 6,
            }
        );
    }

    #[test]
    fn zero_limits_and_timeouts_are_refused_and_one_is_not() {
        for bad in [
            "max_total = 0",
            "max_per_address = 0",
            "max_streams_per_principal = 0",
            "max_sessions_per_principal = 0",
            "header_timeout_secs = 0",
            "tls_handshake_timeout_secs = 0",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigError::BadConnections(_))),
                "{bad}"
            );
            let near_miss = bad.replace("= 0", "= 1");
            assert!(parse(&near_miss).is_ok(), "{near_miss}");
        }
    }

    #[test]
    fn a_per_address_cap_above_the_total_is_refused_and_equal_is_not() {
        assert!(matches!(
            parse("max_total = 8\nmax_per_address = 9"),
            Err(ConfigError::BadConnections(_))
        ));
        assert_eq!(
            parse("max_total = 8\nmax_per_address = 8")
                .unwrap()
                .max_per_address,
            8
        );
        assert_eq!(parse("max_total = 8").unwrap().max_per_address, 8);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<FileConnections>("max_conns = 3").is_err());
    }
}
