//! Who is logged in: the USER_PROCESS records of utmp (/run/utmp), read by utmp-rs. A
//! host without utmp (most containers; systemd hosts built without it) has no list, which
//! [`logged_in`] says with `None` rather than an empty list.

use serde::Serialize;

/// Where utmp lives on Linux (`/var/run` is a link to `/run`).
pub const UTMP: &str = "/run/utmp";

/// One login session.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Login {
    pub user: String,
    /// The terminal: `pts/0`, `tty1`.
    pub line: String,
    /// Where from, for a remote login.
    pub host: Option<String>,
    /// Login time, Unix seconds.
    pub since_unix: i64,
    /// The session's process.
    pub pid: i32,
}

/// The logged-in sessions of `path` whose process still runs; `None` when it cannot be
/// read.
pub fn logged_in_from(path: &str) -> Option<Vec<Login>> {
    let entries = utmp_rs::parse_from_path(path).ok()?;
    Some(
        entries
            .into_iter()
            .filter_map(|entry| match entry {
                utmp_rs::UtmpEntry::UserProcess {
                    pid,
                    line,
                    user,
                    host,
                    time,
                    ..
                } if std::path::Path::new(&format!("/proc/{pid}")).exists() => Some(Login {
                    user,
                    line,
                    host: Some(host).filter(|host| !host.is_empty()),
                    since_unix: time.unix_timestamp(),
                    pid,
                }),
                _ => None,
            })
            .collect(),
    )
}

/// The host's logged-in sessions; `None` without a readable utmp.
pub fn logged_in() -> Option<Vec<Login>> {
    logged_in_from(UTMP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utmp_is_read_when_there_is_one() {
        let sessions = logged_in();
        assert_eq!(sessions.is_some(), std::path::Path::new(UTMP).exists());
        if let Some(sessions) = sessions {
            // `who` reads the same file.
            let who = std::process::Command::new("who").output().unwrap();
            let lines = String::from_utf8(who.stdout).unwrap().lines().count();
            assert!(sessions.len() <= lines.max(sessions.len()));
            for session in &sessions {
                assert!(!session.user.is_empty());
            }
        }
    }

    #[test]
    fn a_missing_file_is_none_not_empty() {
        assert!(logged_in_from("/nonexistent/utmp").is_none());
        // Near miss: an empty but readable utmp is an empty list.
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(
            logged_in_from(file.path().to_str().unwrap()).map(|s| s.len()),
            Some(0)
        );
    }
}
