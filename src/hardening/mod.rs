//! The server process's defences against the commands it runs.
//!
//! Commands can run as the server's own uid (the default of a server that is not root, and
//! `run_as = "root"` under a root server). Such a process could read the server's memory
//! and environment (`/proc/<server pid>/environ` holds `HOSTMCP_TOKEN`) and its files (TLS
//! key, token file, audit log, state directory), whatever the policy says. This module owns:
//!
//! - [`make_non_dumpable`]: `PR_SET_DUMPABLE` 0, called first by `serve` and `stdio`. The
//!   kernel then refuses `/proc/<pid>/environ`, `mem`, `fd/`, `maps` (and ptrace) to other
//!   processes of the same uid; root keeps `CAP_SYS_PTRACE` and reads them anyway. The flag
//!   is inherited by `fork` and reset by `execve`, so a command's own `/proc/self` stays
//!   readable to it.
//! - [`check_at_start`] (run again after each SIGHUP token reload): one loud warning when
//!   restricted principals (operators, or admins under `restrict_admin`) run commands as
//!   the server's uid, since no policy protects the server's files from them and they can
//!   signal (kill) the server; one warning per uid that two or more principals run
//!   commands as, one of them restricted, since they can read each other's command
//!   environments, signal each other's processes and keep a daemon alive under another's
//!   running command; and, for every other command user, a warning with a hint for each
//!   server file (state directory, token file, audit log, its anchor and key, TLS key)
//!   that user can read or owns (from mode bits and owner, see [`modes`]), and the config
//!   file when that user owns it.

pub mod exposure;
pub mod modes;

use std::path::{Path, PathBuf};

use exposure::{Finding, Placement, PrincipalFacts};
use modes::{Mode, UserIds};

use crate::{
    auth::{Role, TokenEntry, danger},
    config::{AuthSetting, Config},
    exec::run_as::RunAsUser,
};

/// Why the process could not be hardened.
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    #[error("cannot make the process non-dumpable (prctl PR_SET_DUMPABLE): {0}")]
    Dumpable(nix::errno::Errno),
}

/// Make this process non-dumpable: processes of the same uid (other than root) can no
/// longer read its `/proc/<pid>/environ`, `mem`, `fd/` or `maps`, nor ptrace it, and it
/// leaves no core dump.
pub fn make_non_dumpable() -> Result<(), HardeningError> {
    nix::sys::prctl::set_dumpable(false).map_err(HardeningError::Dumpable)
}

/// The server's own files, as configured; the ones that exist are checked.
#[derive(Debug, Clone, Default)]
pub struct ServerFiles {
    pub state_dir: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    /// The audit log's anchor file (`<log>.anchor`).
    pub audit_anchor: Option<PathBuf>,
    /// The audit key (`[audit] key_file`).
    pub audit_key: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The config file: checked only for its owner (it holds token digests, no secrets).
    pub config_file: Option<PathBuf>,
}

impl ServerFiles {
    /// Every file named here but the state directory (destructured whole, so a new field
    /// is a compile error here until it is placed).
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        let Self {
            state_dir: _,
            token_file,
            audit_log,
            audit_anchor,
            audit_key,
            tls_key,
            config_file,
        } = self;
        [
            token_file,
            audit_log,
            audit_anchor,
            audit_key,
            tls_key,
            config_file,
        ]
        .into_iter()
        .flatten()
    }

    /// The canonical paths of the files that exist.
    fn existing(&self) -> Vec<PathBuf> {
        [
            &self.state_dir,
            &self.token_file,
            &self.audit_log,
            &self.audit_anchor,
            &self.audit_key,
            &self.tls_key,
        ]
        .into_iter()
        .flatten()
        .filter_map(|path| std::fs::canonicalize(path).ok())
        .collect()
    }
}

/// Warn (once per finding, on stderr) about what the commands of `principals` can reach
/// of the server's `files`; see the module documentation.
pub fn check_at_start(
    principals: &[PrincipalFacts],
    placement: Placement<'_>,
    files: &ServerFiles,
) {
    for finding in exposure_findings(principals, placement, files) {
        report(&finding, placement.server_uid);
    }
}

/// What [`check_at_start`] warns about, as data (`hostmcp check` prints it).
pub fn exposure_findings(
    principals: &[PrincipalFacts],
    placement: Placement<'_>,
    files: &ServerFiles,
) -> Vec<Finding> {
    let runners = exposure::runners(principals, placement, lookup_user);
    let existing = files.existing();
    let paths: Vec<&Path> = existing.iter().map(PathBuf::as_path).collect();
    let mut found = exposure::findings(&runners, &paths, Mode::of);
    let config: Vec<PathBuf> = files
        .config_file
        .iter()
        .filter_map(|path| std::fs::canonicalize(path).ok())
        .collect();
    let config: Vec<&Path> = config.iter().map(PathBuf::as_path).collect();
    found.extend(exposure::owned_findings(&runners, &config, Mode::of));
    found
}

/// One line for a finding, with what to do about it.
pub fn finding_line(finding: &Finding) -> String {
    match finding {
        Finding::SharedUid { principals } => format!(
            "restricted tokens run commands as the server's own user: {} (give them run_as users of their own)",
            principals.join(", ")
        ),
        Finding::SharedRunAs { user, principals } => format!(
            "tokens share a run-as user ({}): {} (give each restricted token its own user)",
            user.as_deref().unwrap_or("the server's own user"),
            principals.join(", ")
        ),
        Finding::Readable { user, exposure } => format!(
            "{} is readable by {user}, a user commands run as ({})",
            exposure.path.display(),
            exposure.hint(user)
        ),
        Finding::Owned { user, exposure } => format!(
            "{} belongs to {user}, a user commands run as ({})",
            exposure.path.display(),
            exposure.hint(user)
        ),
    }
}

/// What [`check_at_start`] needs besides the principals, kept to run it again when a
/// SIGHUP reload changes the tokens.
#[derive(Debug, Clone)]
pub struct ExposureCheck {
    pub files: ServerFiles,
    pub default_run_as: Option<String>,
    pub restrict_admin: bool,
    pub server_uid: u32,
}

impl ExposureCheck {
    /// Warn about what the commands of `principals` can reach.
    pub fn run(&self, principals: &[PrincipalFacts]) {
        let placement = Placement {
            default_run_as: self.default_run_as.as_deref(),
            restrict_admin: self.restrict_admin,
            server_uid: self.server_uid,
        };
        check_at_start(principals, placement, &self.files);
    }
}

/// Whether the `[policy]` table subjects admins to it.
pub fn restricts_admin(config: &Config) -> bool {
    config
        .policy
        .as_ref()
        .and_then(|policy| policy.restrict_admin)
        .unwrap_or(false)
}

/// The principals the authentication setting can produce.
pub fn principals_of(auth: &AuthSetting) -> Vec<PrincipalFacts> {
    match auth {
        AuthSetting::Tokens(entries) => principals_of_tokens(entries),
        // The name `serve` gives the generated token.
        AuthSetting::GeneratedToken { .. } => vec![PrincipalFacts {
            name: "default".to_owned(),
            role: Role::Admin,
            run_as: None,
        }],
        AuthSetting::Disabled => vec![(&danger::unauthenticated_local()).into()],
    }
}

/// The principals of configured token entries.
pub fn principals_of_tokens(entries: &[TokenEntry]) -> Vec<PrincipalFacts> {
    entries
        .iter()
        .map(|entry| PrincipalFacts {
            name: entry.name().to_owned(),
            role: entry.role(),
            run_as: entry.run_as().map(|user| user.to_string()),
        })
        .collect()
}

fn lookup_user(name: &str) -> Option<UserIds> {
    let user = RunAsUser::lookup(name).ok()?;
    Some(UserIds {
        name: user.name().to_owned(),
        uid: user.uid().as_raw(),
        gids: user.gids().map(|gid| gid.as_raw()).collect(),
    })
}

fn report(finding: &Finding, server_uid: u32) {
    match finding {
        Finding::SharedUid { principals } => tracing::warn!(
            principals = principals.join(", "),
            uid = server_uid,
            hint = "start hostmcp as root and give these tokens run_as = \"<a dedicated user>\" \
                    (or --run-as USER), a user that cannot read the server's files",
            "RESTRICTED TOKENS RUN COMMANDS AS THE SERVER'S OWN USER: no policy keeps their \
             commands from reading or changing the server's own files (TLS key, token file, \
             audit log, state directory), nor from signalling (killing) the server itself; \
             the server's memory and environment are protected (non-dumpable) unless that \
             user is root"
        ),
        Finding::SharedRunAs { user, principals } => tracing::warn!(
            principals = principals.join(", "),
            user = user.as_deref().unwrap_or("the server's own user"),
            hint = "give each restricted token a run_as user of its own",
            "TOKENS SHARE A RUN-AS USER: their commands can read each other's environment \
             (/proc/PID/environ: job env values, HOSTMCP_COMMAND_ID), signal each other's \
             processes, and keep a daemon alive for as long as another's command runs"
        ),
        Finding::Readable { user, exposure } => tracing::warn!(
            user = user.as_str(),
            path = %exposure.path.display(),
            mode = format_args!("{:o}", exposure.mode.bits),
            owner = format_args!("{}:{}", exposure.mode.uid, exposure.mode.gid),
            hint = exposure.hint(user),
            "a file of the server is readable by a user commands run as"
        ),
        Finding::Owned { user, exposure } => tracing::warn!(
            user = user.as_str(),
            path = %exposure.path.display(),
            owner = format_args!("{}:{}", exposure.mode.uid, exposure.mode.gid),
            hint = exposure.hint(user),
            "a file of the server belongs to a user commands run as, who may rewrite it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_is_non_dumpable_and_a_command_it_execs_is_dumpable_again() {
        make_non_dumpable().unwrap();
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
        // execve resets the flag: the command reads its own environment.
        let output = std::process::Command::new("cat")
            .arg("/proc/self/environ")
            .env("HOSTMCP_HARDENING_TWIN", "visible")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let environ = String::from_utf8_lossy(&output.stdout);
        assert!(
            environ.contains("HOSTMCP_HARDENING_TWIN=visible"),
            "{environ}"
        );
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.lines().any(|line| line.starts_with("Pid:")));
    }

    #[test]
    fn only_existing_files_are_checked_by_their_canonical_path() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "k").unwrap();
        let files = ServerFiles {
            state_dir: Some(dir.path().join(".")),
            tls_key: Some(key.clone()),
            token_file: Some(dir.path().join("missing")),
            audit_log: None,
            audit_anchor: None,
            audit_key: None,
            config_file: None,
        };
        assert_eq!(
            files.existing(),
            vec![
                std::fs::canonicalize(dir.path()).unwrap(),
                std::fs::canonicalize(&key).unwrap()
            ]
        );
    }
}
