//! Running a command as another Unix user: uid, primary gid, supplementary groups, and
//! the user's HOME, USER, LOGNAME and SHELL. Looked up once (at start-up); the switch is
//! made in the child between fork and exec by [`confine`](super::confine).

use std::ffi::CString;

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
    #[error(
        "hostmcp cannot switch to user {0:?}: it runs neither as root nor with CAP_SETUID and CAP_SETGID"
    )]
    CannotSwitch(String),
}

/// Whether this server may switch a command to another user: it runs as root, or holds
/// CAP_SETUID and CAP_SETGID in its effective set.
pub fn server_can_switch_users() -> bool {
    const CAP_SETGID: u32 = 6;
    const CAP_SETUID: u32 = 7;
    if Uid::effective().is_root() {
        return true;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SETUID) != 0 && caps & (1 << CAP_SETGID) != 0)
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

    /// Look `name` up and check that this server can run commands as it: it is the server's
    /// own user, or [`server_can_switch_users`].
    /// [`Self::switchable`] as the policy's `run_as` check (`policy::UserCheck`).
    pub fn check_switchable(name: &str) -> Result<(), String> {
        Self::switchable(name)
            .map(drop)
            .map_err(|error| error.to_string())
    }

    pub fn switchable(name: &str) -> Result<Self, RunAsError> {
        let user = Self::lookup(name)?;
        if user.switch_ids().is_some() && !server_can_switch_users() {
            return Err(RunAsError::CannotSwitch(name.to_owned()));
        }
        Ok(user)
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

    /// The supplementary groups, gid and uid to switch to in the child, or `None` when
    /// this user is the server's own (nothing to switch).
    pub(super) fn switch_ids(&self) -> Option<(Vec<Gid>, Gid, Uid)> {
        if self.uid == Uid::effective() && self.gid == Gid::effective() {
            return None;
        }
        Some((self.groups.clone(), self.gid, self.uid))
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
    fn the_servers_own_user_is_always_switchable() {
        let own = current_user_name().unwrap();
        assert_eq!(RunAsUser::switchable(&own).unwrap().name(), own);
        assert!(matches!(
            RunAsUser::switchable("no-such-user-hostmcp"),
            Err(RunAsError::NoSuchUser(_))
        ));
    }

    #[test]
    fn an_unknown_user_is_an_error() {
        assert!(matches!(
            RunAsUser::lookup("no-such-user-hostmcp"),
            Err(RunAsError::NoSuchUser(_))
        ));
    }
}
