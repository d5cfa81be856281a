//! Whether a Unix user can read one of the server's own files, decided from mode bits: the
//! owner, group and other permissions of the file and the search permission of every
//! directory above it. POSIX ACLs and capabilities are not considered (root reads anything).

use std::{
    io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Read permission in one class of a mode.
const READ: u32 = 0o4;
/// Search (execute) permission in one class of a mode.
const SEARCH: u32 = 0o1;

/// Owner, group and permission bits of one file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub uid: u32,
    pub gid: u32,
    /// The permission bits (`0o777` and below).
    pub bits: u32,
}

impl Mode {
    /// The mode of `path`, symlinks followed.
    pub fn of(path: &Path) -> io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            uid: metadata.uid(),
            gid: metadata.gid(),
            bits: metadata.mode() & 0o777,
        })
    }

    /// The class of this mode that applies to `user`.
    pub fn class_for(&self, user: &UserIds) -> Class {
        if self.uid == user.uid {
            Class::Owner
        } else if user.gids.contains(&self.gid) {
            Class::Group
        } else {
            Class::Other
        }
    }

    fn grants(&self, user: &UserIds, permission: u32) -> bool {
        let shift = match self.class_for(user) {
            Class::Owner => 6,
            Class::Group => 3,
            Class::Other => 0,
        };
        (self.bits >> shift) & permission == permission
    }
}

/// Which class of a mode applies to a user: the owner's, the group's or everyone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Owner,
    Group,
    Other,
}

/// The ids that decide what a (non-root) user can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIds {
    pub name: String,
    pub uid: u32,
    /// Primary and supplementary groups.
    pub gids: Vec<u32>,
}

/// A server file a user can read, and the mode that lets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub path: PathBuf,
    pub mode: Mode,
    pub class: Class,
}

impl Exposure {
    /// What to run so that the user no longer can.
    pub fn hint(&self, user: &str) -> String {
        let path = self.path.display();
        match self.class {
            Class::Owner => format!(
                "{path} belongs to {user}: give it to the user hostmcp runs as (chown) and chmod 600 (700 for a directory)"
            ),
            Class::Group => format!(
                "{user} is in its group ({gid}): run `chmod g-rwx {path}`",
                gid = self.mode.gid
            ),
            Class::Other => format!("run `chmod o-rwx {path}`"),
        }
    }
}

/// Whether every directory above `path` grants `user` search, so it can reach `path`.
fn reachable_by(
    path: &Path,
    user: &UserIds,
    mode_of: impl Fn(&Path) -> io::Result<Mode>,
) -> io::Result<bool> {
    for ancestor in path.ancestors().skip(1) {
        if !mode_of(ancestor)?.grants(user, SEARCH) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `Some` when `user` can read `path` (list it, for a directory): every directory above it
/// grants search and the path itself grants read, or `user` owns it (and so may chmod it). `mode_of` is [`Mode::of`] outside tests;
/// `path` must be absolute and canonical (symlinks resolved), as the walk goes up by name.
pub fn readable_by(
    path: &Path,
    user: &UserIds,
    mode_of: impl Fn(&Path) -> io::Result<Mode>,
) -> io::Result<Option<Exposure>> {
    if !reachable_by(path, user, &mode_of)? {
        return Ok(None);
    }
    let mode = mode_of(path)?;
    // An owner may `chmod` its file whatever the bits say (a 0000 key is still theirs).
    let owns = mode.class_for(user) == Class::Owner;
    Ok((owns || mode.grants(user, READ)).then(|| Exposure {
        path: path.to_owned(),
        mode,
        class: mode.class_for(user),
    }))
}

/// `Some` when `user` owns `path` and can reach it (every directory above grants search):
/// it may chmod and rewrite it. For files whose contents are no secret (the config file).
pub fn owned_by(
    path: &Path,
    user: &UserIds,
    mode_of: impl Fn(&Path) -> io::Result<Mode>,
) -> io::Result<Option<Exposure>> {
    if !reachable_by(path, user, &mode_of)? {
        return Ok(None);
    }
    let mode = mode_of(path)?;
    Ok((mode.class_for(user) == Class::Owner).then(|| Exposure {
        path: path.to_owned(),
        mode,
        class: Class::Owner,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn deploy() -> UserIds {
        UserIds {
            name: "deploy".into(),
            uid: 1001,
            gids: vec![1001, 50],
        }
    }

    /// A tree of root-owned directories (0755) with modes given for some paths.
    fn tree(modes: &[(&str, u32, u32, u32)]) -> impl Fn(&Path) -> io::Result<Mode> {
        let table: HashMap<PathBuf, Mode> = modes
            .iter()
            .map(|&(path, uid, gid, bits)| (PathBuf::from(path), Mode { uid, gid, bits }))
            .collect();
        move |path: &Path| {
            Ok(table.get(path).copied().unwrap_or(Mode {
                uid: 0,
                gid: 0,
                bits: 0o755,
            }))
        }
    }

    fn check(modes: &[(&str, u32, u32, u32)], path: &str) -> Option<Class> {
        readable_by(Path::new(path), &deploy(), tree(modes))
            .unwrap()
            .map(|exposure| exposure.class)
    }

    #[test]
    fn a_world_readable_key_is_exposed_and_its_0600_twin_is_not() {
        let key = "/etc/hostmcp/key.pem";
        assert_eq!(check(&[(key, 0, 0, 0o644)], key), Some(Class::Other));
        assert_eq!(check(&[(key, 0, 0, 0o600)], key), None);
    }

    #[test]
    fn a_group_readable_file_is_exposed_only_to_members_of_its_group() {
        let log = "/var/log/hostmcp/audit.jsonl";
        assert_eq!(check(&[(log, 0, 50, 0o640)], log), Some(Class::Group));
        assert_eq!(check(&[(log, 0, 51, 0o640)], log), None);
    }

    #[test]
    fn a_file_the_user_owns_is_exposed_even_at_0400() {
        let token = "/srv/state/token";
        assert_eq!(
            check(&[(token, 1001, 1001, 0o400)], token),
            Some(Class::Owner)
        );
        assert_eq!(check(&[(token, 1002, 1002, 0o400)], token), None);
    }

    #[test]
    fn a_key_the_user_owns_is_exposed_even_at_0000_and_its_root_owned_twin_is_not() {
        let key = "/etc/hostmcp/audit.key";
        assert_eq!(check(&[(key, 1001, 1001, 0o000)], key), Some(Class::Owner));
        assert_eq!(check(&[(key, 0, 0, 0o000)], key), None);
    }

    #[test]
    fn a_config_file_is_found_only_when_the_user_owns_it() {
        let config = "/etc/hostmcp/config.toml";
        let user = deploy();
        let owned =
            |uid| owned_by(Path::new(config), &user, tree(&[(config, uid, 0, 0o644)])).unwrap();
        assert!(owned(1001).is_some());
        assert_eq!(owned(0), None, "world-readable but root's: no finding");
    }

    #[test]
    fn a_closed_directory_above_hides_an_open_file_and_an_open_one_does_not() {
        let token = "/root/.local/state/hostmcp/token";
        assert_eq!(
            check(&[("/root", 0, 0, 0o700), (token, 0, 0, 0o644)], token),
            None
        );
        assert_eq!(
            check(&[("/root", 0, 0, 0o711), (token, 0, 0, 0o644)], token),
            Some(Class::Other)
        );
    }

    #[test]
    fn a_directory_is_exposed_when_it_can_be_listed() {
        let state = "/var/lib/hostmcp";
        assert_eq!(check(&[(state, 0, 0, 0o755)], state), Some(Class::Other));
        assert_eq!(check(&[(state, 0, 0, 0o711)], state), None);
        assert_eq!(check(&[(state, 0, 0, 0o700)], state), None);
    }

    #[test]
    fn the_hint_names_the_class_that_grants_access() {
        let exposure = |class| Exposure {
            path: "/k".into(),
            mode: Mode {
                uid: 0,
                gid: 50,
                bits: 0o644,
            },
            class,
        };
        assert_eq!(
            exposure(Class::Other).hint("deploy"),
            "run `chmod o-rwx /k`"
        );
        assert!(
            exposure(Class::Group)
                .hint("deploy")
                .contains("chmod g-rwx /k")
        );
        assert!(
            exposure(Class::Owner)
                .hint("deploy")
                .contains("belongs to deploy")
        );
    }

    #[test]
    fn real_files_are_read_through_mode_of() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.pem");
        std::fs::write(&file, "secret").unwrap();
        let stranger = UserIds {
            name: "stranger".into(),
            uid: 4_000_000,
            gids: vec![4_000_000],
        };
        let canonical = std::fs::canonicalize(&file).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = readable_by(&canonical, &stranger, Mode::of).unwrap();
        assert_eq!(open.map(|exposure| exposure.class), Some(Class::Other));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(readable_by(&canonical, &stranger, Mode::of).unwrap(), None);
    }
}
