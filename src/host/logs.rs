//! Log lines from the journal and from log files, always bounded: a line cap, a byte cap
//! on what is returned, a cap on what is scanned, and a time limit.
//!
//! - [`journal`]: the systemd journal, read by `journalctl --output=json` run with a fixed
//!   argument vector (no shell), newest first, stopped as soon as enough lines matched.
//! - [`file`]: a configured log file's tail, opened so that a symlink put in its place
//!   (or in any directory on its path) is refused.
//! - [`select`]: the filter both share (time window, grep, line and byte caps) and the
//!   [`LogEntry`] they produce.
//! - [`time`]: timestamps: the caller's `since`/`until` and the ones found in file lines.

pub mod file;
pub mod journal;
pub mod select;
pub mod time;

pub use select::{LogEntry, Selected, Selection};
