//! The end of an MCP session, as a signal work can wait on: a transport says
//! [`ended`] when a session of its table closes (however it closes), and work tied to a
//! session (an interactive terminal) holds [`watch`]'s token and stops when it fires.
//! Both sides import this module; neither imports the other. Only sessions something
//! watches have an entry, and the entry goes when the session ends.

use std::{collections::HashMap, sync::LazyLock};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

static WATCHED: LazyLock<Mutex<HashMap<String, CancellationToken>>> = LazyLock::new(Mutex::default);

/// A token cancelled when session `id` ends.
pub fn watch(id: &str) -> CancellationToken {
    WATCHED.lock().entry(id.to_owned()).or_default().clone()
}

/// Session `id` has ended: wake whatever watches it.
pub fn ended(id: &str) {
    if let Some(token) = WATCHED.lock().remove(id) {
        token.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_session_fires_its_watchers_and_no_other() {
        let mine = watch("session-a");
        let again = watch("session-a");
        let other = watch("session-b");
        ended("session-a");
        assert!(mine.is_cancelled() && again.is_cancelled());
        // Near miss: another session's watch does not fire.
        assert!(!other.is_cancelled());
        ended("session-b");
        assert!(other.is_cancelled());
        // An end nobody watched is nothing.
        ended("session-c");
    }
}
