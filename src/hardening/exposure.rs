//! Which principals run commands as which Unix user, seen at start-up and after each
//! token reload, and what that exposes: restricted principals whose commands share the
//! server's uid (no policy keeps them from the server's files, and they can signal the
//! server), principals that share a run-as uid with a restricted one (each can read the
//! other's command environments, signal its processes and adopt its `HOSTMCP_COMMAND_ID`),
//! and server files readable by (or owned by) the other command users.
//! Pure: users are looked up and file modes read through functions the caller passes.

use std::{io, path::Path};

use super::modes::{Exposure, Mode, UserIds, owned_by, readable_by};
use crate::auth::{Principal, Role};

/// A principal as the configuration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalFacts {
    pub name: String,
    pub role: Role,
    /// The token's own `run_as`, if any.
    pub run_as: Option<String>,
}

impl From<&Principal> for PrincipalFacts {
    fn from(principal: &Principal) -> Self {
        Self {
            name: principal.name().to_owned(),
            role: principal.role(),
            run_as: principal.run_as().map(str::to_owned),
        }
    }
}

/// Whose uid a principal's commands run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunsAs {
    /// The server's own uid.
    ServerUser,
    /// Another user.
    Other(UserIds),
    /// None: the principal cannot run commands (role `read`, or a `run_as` the server
    /// refuses at call time).
    Nobody,
}

/// One principal and the user its commands run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub name: String,
    /// The policy (or the role) limits what it may run: operators, and admins under
    /// `restrict_admin = true`.
    pub restricted: bool,
    pub runs_as: RunsAs,
}

/// How commands are placed, server-wide.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// `run_as` of the server (`--run-as`), for tokens without their own.
    pub default_run_as: Option<&'a str>,
    pub restrict_admin: bool,
    pub server_uid: u32,
}

/// The runners of `principals`, following the rules of [`crate::exec::identities`]: a
/// token's `run_as`, else the server's; none under a root server refuses; a non-root
/// server runs commands only as itself.
pub fn runners(
    principals: &[PrincipalFacts],
    placement: Placement<'_>,
    lookup: impl Fn(&str) -> Option<UserIds>,
) -> Vec<Runner> {
    principals
        .iter()
        .map(|principal| Runner {
            name: principal.name.clone(),
            restricted: match principal.role {
                Role::Read | Role::Operator => true,
                Role::Admin => placement.restrict_admin,
            },
            runs_as: runs_as(principal, placement, &lookup),
        })
        .collect()
}

fn runs_as(
    principal: &PrincipalFacts,
    placement: Placement<'_>,
    lookup: &impl Fn(&str) -> Option<UserIds>,
) -> RunsAs {
    if principal.role == Role::Read {
        return RunsAs::Nobody;
    }
    let server_is_root = placement.server_uid == 0;
    let Some(name) = principal.run_as.as_deref().or(placement.default_run_as) else {
        return if server_is_root {
            RunsAs::Nobody
        } else {
            RunsAs::ServerUser
        };
    };
    match lookup(name) {
        Some(user) if user.uid == placement.server_uid => RunsAs::ServerUser,
        Some(user) if server_is_root => RunsAs::Other(user),
        Some(_) | None => RunsAs::Nobody,
    }
}

/// What the start-up check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Restricted principals whose commands run as the server's own uid.
    SharedUid { principals: Vec<String> },
    /// Two or more principals whose commands run as one uid, at least one of them
    /// restricted. `user` is `None` for the server's own uid.
    SharedRunAs {
        user: Option<String>,
        principals: Vec<String>,
    },
    /// A server file another command user can read.
    Readable { user: String, exposure: Exposure },
    /// A server file whose contents are no secret (the config file) that another command
    /// user owns, and so may rewrite.
    Owned { user: String, exposure: Exposure },
}

/// The findings for `runners` and the server's files (absolute, canonical paths of files
/// that exist). Each restricted principal on the server's uid is named once, in one
/// finding; each (user, file) pair at most once.
pub fn findings(
    runners: &[Runner],
    files: &[&Path],
    mode_of: impl Fn(&Path) -> io::Result<Mode>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let shared: Vec<String> = runners
        .iter()
        .filter(|runner| runner.restricted && runner.runs_as == RunsAs::ServerUser)
        .map(|runner| runner.name.clone())
        .collect();
    if !shared.is_empty() {
        found.push(Finding::SharedUid { principals: shared });
    }
    found.extend(shared_run_as(runners));
    let mut users: Vec<&UserIds> = Vec::new();
    for runner in runners {
        if let RunsAs::Other(user) = &runner.runs_as
            && !users.contains(&user)
        {
            users.push(user);
        }
    }
    for user in users {
        for file in files {
            // A file that vanished or a directory we cannot stat is no finding: the
            // server itself reads these files at start, so this is a race at worst.
            if let Ok(Some(exposure)) = readable_by(file, user, &mode_of) {
                found.push(Finding::Readable {
                    user: user.name.clone(),
                    exposure,
                });
            }
        }
    }
    found
}

/// The findings for files that may be read by anyone but must not belong to a command user
/// (the config file: token digests, no secrets).
pub fn owned_findings(
    runners: &[Runner],
    files: &[&Path],
    mode_of: impl Fn(&Path) -> io::Result<Mode>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut seen: Vec<&UserIds> = Vec::new();
    for runner in runners {
        let RunsAs::Other(user) = &runner.runs_as else {
            continue;
        };
        if seen.contains(&user) {
            continue;
        }
        seen.push(user);
        for file in files {
            if let Ok(Some(exposure)) = owned_by(file, user, &mode_of) {
                found.push(Finding::Owned {
                    user: user.name.clone(),
                    exposure,
                });
            }
        }
    }
    found
}

/// One finding per uid that two or more principals run commands as, when at least one of
/// them is restricted: they are not separated from each other.
fn shared_run_as(runners: &[Runner]) -> Vec<Finding> {
    let mut groups: Vec<(&RunsAs, Vec<&Runner>)> = Vec::new();
    for runner in runners {
        if runner.runs_as == RunsAs::Nobody {
            continue;
        }
        let same_uid = |other: &RunsAs| match (other, &runner.runs_as) {
            (RunsAs::Other(a), RunsAs::Other(b)) => a.uid == b.uid,
            (a, b) => a == b,
        };
        match groups.iter_mut().find(|(runs_as, _)| same_uid(runs_as)) {
            Some((_, members)) => members.push(runner),
            None => groups.push((&runner.runs_as, vec![runner])),
        }
    }
    groups
        .into_iter()
        .filter(|(_, members)| members.len() >= 2 && members.iter().any(|m| m.restricted))
        .map(|(runs_as, members)| Finding::SharedRunAs {
            user: match runs_as {
                RunsAs::Other(user) => Some(user.name.clone()),
                _ => None,
            },
            principals: members.iter().map(|m| m.name.clone()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::hardening::modes::Class;

    const SERVER_UID: u32 = 1000;

    fn principal(name: &str, role: Role, run_as: Option<&str>) -> PrincipalFacts {
        PrincipalFacts {
            name: name.into(),
            role,
            run_as: run_as.map(Into::into),
        }
    }

    fn user(name: &str, uid: u32) -> UserIds {
        UserIds {
            name: name.into(),
            uid,
            gids: vec![uid],
        }
    }

    fn lookup(name: &str) -> Option<UserIds> {
        match name {
            "root" => Some(user("root", 0)),
            "hostmcp" => Some(user("hostmcp", SERVER_UID)),
            "deploy" => Some(user("deploy", 1001)),
            _ => None,
        }
    }

    fn placement(server_uid: u32, default_run_as: Option<&str>) -> Placement<'_> {
        Placement {
            default_run_as,
            restrict_admin: false,
            server_uid,
        }
    }

    fn runs(principal: PrincipalFacts, placement: Placement<'_>) -> RunsAs {
        runners(&[principal], placement, lookup).remove(0).runs_as
    }

    #[test]
    fn a_non_root_server_runs_commands_as_itself_or_not_at_all() {
        let place = placement(SERVER_UID, None);
        assert_eq!(
            runs(principal("a", Role::Operator, None), place),
            RunsAs::ServerUser
        );
        assert_eq!(
            runs(principal("a", Role::Operator, Some("hostmcp")), place),
            RunsAs::ServerUser
        );
        assert_eq!(
            runs(principal("a", Role::Operator, Some("deploy")), place),
            RunsAs::Nobody
        );
        assert_eq!(
            runs(principal("r", Role::Read, None), place),
            RunsAs::Nobody
        );
    }

    #[test]
    fn a_root_server_runs_as_the_named_user_and_root_is_its_own_uid() {
        assert_eq!(
            runs(principal("a", Role::Operator, None), placement(0, None)),
            RunsAs::Nobody
        );
        assert_eq!(
            runs(
                principal("a", Role::Operator, None),
                placement(0, Some("root"))
            ),
            RunsAs::ServerUser
        );
        assert_eq!(
            runs(
                principal("a", Role::Operator, Some("deploy")),
                placement(0, Some("root"))
            ),
            RunsAs::Other(user("deploy", 1001))
        );
        assert_eq!(
            runs(
                principal("a", Role::Operator, Some("ghost")),
                placement(0, None)
            ),
            RunsAs::Nobody
        );
    }

    #[test]
    fn admins_are_restricted_only_under_restrict_admin() {
        let admin = [principal("boss", Role::Admin, None)];
        let place = placement(SERVER_UID, None);
        assert!(!runners(&admin, place, lookup)[0].restricted);
        let strict = Placement {
            restrict_admin: true,
            ..place
        };
        assert!(runners(&admin, strict, lookup)[0].restricted);
    }

    fn closed(_: &Path) -> io::Result<Mode> {
        Ok(Mode {
            uid: 0,
            gid: 0,
            bits: 0o700,
        })
    }

    fn open(_: &Path) -> io::Result<Mode> {
        Ok(Mode {
            uid: 0,
            gid: 0,
            bits: 0o755,
        })
    }

    #[test]
    fn restricted_principals_on_the_server_uid_are_named_once_and_admins_are_not() {
        let principals = [
            principal("alice", Role::Operator, None),
            principal("bob", Role::Operator, None),
            principal("boss", Role::Admin, None),
            principal("reader", Role::Read, None),
        ];
        let found = findings(
            &runners(&principals, placement(SERVER_UID, None), lookup),
            &[],
            closed,
        );
        assert_eq!(
            found,
            vec![
                Finding::SharedUid {
                    principals: vec!["alice".into(), "bob".into()]
                },
                Finding::SharedRunAs {
                    user: None,
                    principals: vec!["alice".into(), "bob".into(), "boss".into()]
                }
            ]
        );
        let admins_only = [principal("boss", Role::Admin, None)];
        let found = findings(
            &runners(&admins_only, placement(SERVER_UID, None), lookup),
            &[],
            closed,
        );
        assert_eq!(found, vec![]);
    }

    #[test]
    fn a_file_open_to_another_command_user_is_found_once_and_a_closed_one_is_not() {
        let principals = [
            principal("alice", Role::Operator, Some("deploy")),
            principal("bob", Role::Operator, Some("deploy")),
        ];
        let runners = runners(&principals, placement(0, None), lookup);
        let key = PathBuf::from("/etc/hostmcp/key.pem");
        let found = findings(&runners, &[&key], open);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(matches!(&found[0], Finding::SharedRunAs { .. }));
        assert!(matches!(
            &found[1],
            Finding::Readable { user, exposure }
                if user == "deploy" && exposure.path == key && exposure.class == Class::Other
        ));
        assert!(
            findings(&runners, &[&key], closed)
                .iter()
                .all(|finding| !matches!(finding, Finding::Readable { .. }))
        );
    }

    #[test]
    fn a_config_owned_by_a_command_user_is_found_and_a_root_owned_one_is_not() {
        let principals = [principal("alice", Role::Operator, Some("deploy"))];
        let runners = runners(&principals, placement(0, None), lookup);
        let config = PathBuf::from("/etc/hostmcp/config.toml");
        let deploys = |path: &Path| {
            let is_config = path == Path::new("/etc/hostmcp/config.toml");
            Ok(Mode {
                uid: if is_config { 1001 } else { 0 },
                gid: 0,
                bits: if is_config { 0o644 } else { 0o755 },
            })
        };
        let found = owned_findings(&runners, &[&config], deploys);
        assert!(matches!(&found[..], [Finding::Owned { user, .. }] if user == "deploy"));
        assert_eq!(owned_findings(&runners, &[&config], open), vec![]);
    }

    #[test]
    fn principals_sharing_a_run_as_uid_with_a_restricted_one_are_named_together() {
        let principals = [
            principal("alice", Role::Operator, Some("deploy")),
            principal("boss", Role::Admin, Some("deploy")),
            principal("carol", Role::Operator, Some("root")),
            principal("reader", Role::Read, Some("deploy")),
        ];
        let found = findings(
            &runners(&principals, placement(0, None), lookup),
            &[],
            closed,
        );
        assert!(found.contains(&Finding::SharedRunAs {
            user: Some("deploy".into()),
            principals: vec!["alice".into(), "boss".into()]
        }));
        // carol is alone on root (the server's uid): no shared-run-as finding for her.
        assert!(!found.iter().any(|finding| matches!(
            finding,
            Finding::SharedRunAs { principals, .. } if principals.contains(&"carol".to_owned())
        )));
    }

    #[test]
    fn admins_alone_on_a_uid_or_each_on_their_own_are_no_finding() {
        let admins = [
            principal("boss", Role::Admin, Some("deploy")),
            principal("root2", Role::Admin, Some("deploy")),
        ];
        let found = findings(&runners(&admins, placement(0, None), lookup), &[], closed);
        assert_eq!(found, vec![]);
        let apart = [
            principal("alice", Role::Operator, Some("deploy")),
            principal("boss", Role::Admin, Some("hostmcp")),
        ];
        let found = findings(&runners(&apart, placement(0, None), lookup), &[], closed);
        assert_eq!(found, vec![]);
    }
}
