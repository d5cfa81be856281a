//! Running a command as another Unix user: uid, primary gid, supplementary groups, and
//! the user's HOME, USER, LOGNAME and SHELL. Looked up once (at start-up), applied in
//! the child between fork and exec.

use std::{ffi::CString, os::unix::process::CommandExt};

use nix::unistd::{Gid, Uid, User};

/// A user commands run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAsUser {
    name: String,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: String,
    shell: String,
}

/// Why a user cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error("no user named {0:?} on this host")]
    NoSuchUser(String),
    #[error("cannot look up user {name:?}: {reason}")]
    Lookup { name: String, reason: String },
}

/// The name of the user this server runs as (its effective uid), if it has one.
pub fn current_user_name() -> Option<String> {
    User::from_uid(Uid::effective())
        .ok()
        .flatten()
        .map(|user| user.name)
}

impl RunAsUser {
    /// Look `name` up in the user database.
    pub fn lookup(name: &str) -> Result<Self, RunAsError> {
        let lookup_error = |reason: String| RunAsError::Lookup {
            name: name.to_owned(),
            reason,
        };
        let user = User::from_name(name)
            .map_err(|errno| lookup_error(errno.desc().to_owned()))?
            .ok_or_else(|| RunAsError::NoSuchUser(name.to_owned()))?;
        let c_name =
            CString::new(name).map_err(|_| lookup_error("the name contains NUL".into()))?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid)
            .map_err(|errno| lookup_error(errno.desc().to_owned()))?;
        Ok(Self {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir.to_string_lossy().into_owned(),
            shell: user.shell.to_string_lossy().into_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_root(&self) -> bool {
        self.uid.is_root()
    }

    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The primary group and the supplementary groups.
    pub fn gids(&self) -> impl Iterator<Item = Gid> + '_ {
        std::iter::once(self.gid).chain(self.groups.iter().copied())
    }

    /// The variables that describe the user, for the command's environment.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("HOME", self.home.clone()),
            ("USER", self.name.clone()),
            ("LOGNAME", self.name.clone()),
            ("SHELL", self.shell.clone()),
        ]
    }

    /// Make `command` switch to this user in the child, before exec. Forces fork+exec
    /// (a `pre_exec` hook), so it is only installed when the user differs from the server's.
    pub(super) fn apply(&self, command: &mut tokio::process::Command) {
        if self.uid == Uid::effective() && self.gid == Gid::effective() {
            return;
        }
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        // The crate's one `unsafe` (see `[lints]` in Cargo.toml).
        #[allow(unsafe_code)]
        // SAFETY: between fork and exec the closure only makes the setgroups, setgid and
        // setuid system calls, which are async-signal-safe, and allocates nothing.
        unsafe {
            command.as_std_mut().pre_exec(move || {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_with_its_home() {
        let root = RunAsUser::lookup("root").unwrap();
        assert!(root.is_root());
        assert_eq!(root.env()[1], ("USER", "root".to_owned()));
    }

    #[test]
    fn an_unknown_user_is_an_error() {
        assert!(matches!(
            RunAsUser::lookup("no-such-user-hostmcp"),
            Err(RunAsError::NoSuchUser(_))
        ));
    }
}
