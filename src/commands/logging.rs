//! Log output: where lines go (stderr, since stdout may be the MCP stream), which lines
//! (`HOSTMCP_LOG`), and in which format (`text`, or `json` for log shippers). The format
//! can change once the configuration is read ([`set_format`]): the subscriber is installed
//! first, so nothing said before the config is loaded is lost.
//!
//! A log line that cannot be written (stderr is a pipe whose reader has gone) is dropped
//! silently. tracing-subscriber's default reports such a failure with `eprintln!`, which
//! panics on the same broken pipe; in the signal task that panic used to swallow SIGTERM
//! and the server never stopped (`hostmcp serve 2>&1 | head -1`).

use std::{io::IsTerminal, sync::OnceLock};

use tracing_subscriber::{Layer, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt};

pub use crate::cli::LogFormat;
use crate::env_vars;

type Formatter = Box<dyn Layer<Registry> + Send + Sync>;

/// The handle that swaps the formatter, once the subscriber is installed.
static FORMAT: OnceLock<reload::Handle<Formatter, Registry>> = OnceLock::new();

/// Install the subscriber: stderr, filtered by `HOSTMCP_LOG`, in the text format.
pub fn init_logging() {
    let directives = log_directives(std::env::var(env_vars::LOG).ok().as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let (formatter, handle) = reload::Layer::new(formatter(LogFormat::Text));
    if tracing_subscriber::registry()
        .with(formatter)
        .with(filter)
        .try_init()
        .is_ok()
    {
        let _ = FORMAT.set(handle);
    }
}

/// Write the following lines in `format`. Nothing happens before [`init_logging`].
pub fn set_format(format: LogFormat) {
    if let Some(handle) = FORMAT.get()
        && let Err(error) = handle.reload(formatter(format))
    {
        tracing::warn!(%error, "cannot change the log format");
    }
}

fn formatter(format: LogFormat) -> Formatter {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false);
    match format {
        LogFormat::Text => Box::new(layer.with_ansi(std::io::stderr().is_terminal())),
        LogFormat::Json => Box::new(
            layer
                .json()
                .with_ansi(false)
                .with_current_span(true)
                .with_span_list(false),
        ),
    }
}

/// The log filter without `HOSTMCP_LOG`.
const DEFAULT_LOG: &str = "info,rmcp=warn";

/// The filter for `HOSTMCP_LOG`: rmcp stays at `warn` unless the variable names rmcp, as
/// rmcp's info lines quote what a client sent (a whole 4 MB `clientInfo` per initialize).
fn log_directives(env: Option<&str>) -> String {
    match env.map(str::trim) {
        None | Some("") => DEFAULT_LOG.to_owned(),
        Some(directives) if directives.contains("rmcp") => directives.to_owned(),
        Some(directives) => format!("{directives},rmcp=warn"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostmcp_log_keeps_rmcp_at_warn_unless_it_names_rmcp() {
        assert_eq!(log_directives(None), "info,rmcp=warn");
        assert_eq!(log_directives(Some(" ")), "info,rmcp=warn");
        assert_eq!(log_directives(Some("info")), "info,rmcp=warn");
        assert_eq!(
            log_directives(Some("hostmcp=debug")),
            "hostmcp=debug,rmcp=warn"
        );
        // Near miss: naming rmcp is the operator's choice and is kept.
        assert_eq!(log_directives(Some("info,rmcp=info")), "info,rmcp=info");
    }

    #[test]
    fn the_log_format_is_text_unless_json_is_written() {
        #[derive(serde::Deserialize)]
        struct Table {
            format: LogFormat,
        }
        let parse = |text: &str| toml::from_str::<Table>(text).map(|table| table.format);
        assert_eq!(parse("format = \"json\"").ok(), Some(LogFormat::Json));
        assert_eq!(parse("format = \"text\"").ok(), Some(LogFormat::Text));
        assert!(parse("format = \"xml\"").is_err());
        assert_eq!(LogFormat::default(), LogFormat::Text);
    }
}
