//! What the engine runs: a [`CommandSpec`], which outside this module only a policy
//! [`Permit`] can make ([`CommandSpec::permitted`]), and the server-wide [`ExecLimits`].
//! The spec is the permitted command and how to run it; spawning it is `run`'s business.

use std::{path::PathBuf, time::Duration};

use crate::policy::Permit;

use super::{Confinement, DEFAULT_KILL_GRACE, DEFAULT_MAX_OUTPUT_BYTES, reaper, run_as};

/// One command to run. Outside this module the only way to make one is
/// [`CommandSpec::permitted`], from a policy [`Permit`]: no code path runs a command the
/// policy has not allowed.
#[derive(Debug)]
pub struct CommandSpec {
    /// The program and its arguments. From a permit, `argv[0]` is the canonical path the
    /// policy judged (run as is, no `PATH` lookup).
    pub(super) argv: Vec<String>,
    /// Where the command runs; `None` means the server's working directory.
    pub(super) working_dir: Option<PathBuf>,
    /// Variables added on top of the [`BaseEnv`](super::BaseEnv); later entries win.
    pub(super) env: Vec<(String, String)>,
    /// Bytes written to the command's stdin, which is then closed; `None` means `/dev/null`.
    pub(super) stdin: Option<Vec<u8>>,
    /// Wall-clock limit, after which the command's process group is killed.
    pub(super) timeout: Duration,
    /// The user the command runs as; `None` for the server's own user.
    pub(super) user: Option<run_as::RunAsUser>,
    /// Whose command this is, for the audit records of the orphans it leaves.
    pub(super) owner: reaper::Owner,
    /// Its resource limits (and `no_new_privs`, which every command gets).
    pub(super) confinement: Confinement,
}

impl CommandSpec {
    /// The command a permit allows: its resolved program (an absolute path, run as is,
    /// with no PATH lookup), arguments, working directory and environment.
    pub fn permitted(permit: Permit, timeout: Duration, stdin: Option<Vec<u8>>) -> Self {
        let mut argv = Vec::with_capacity(permit.args().len() + 1);
        argv.push(permit.program().to_string_lossy().into_owned());
        argv.extend(permit.args().iter().cloned());
        Self {
            argv,
            working_dir: permit.working_dir().map(PathBuf::from),
            env: permit.env().to_vec(),
            stdin,
            timeout,
            user: None,
            owner: reaper::Owner::default(),
            confinement: Confinement::default(),
        }
    }

    /// Run as `user`, with its identity variables (HOME, USER, LOGNAME, SHELL) set
    /// before the call's own variables.
    pub fn as_user(mut self, user: run_as::RunAsUser) -> Self {
        let identity = user.env().map(|(name, value)| (name.to_owned(), value));
        self.env.splice(0..0, identity);
        self.user = Some(user);
        self
    }

    /// Run under `confinement` (its resource limits).
    pub fn confined(mut self, confinement: Confinement) -> Self {
        self.confinement = confinement;
        self
    }

    /// What confines the command.
    pub fn confinement(&self) -> &Confinement {
        &self.confinement
    }

    /// Name the principal and audit command id its orphans are audited under.
    pub fn owned_by(mut self, owner: reaper::Owner) -> Self {
        self.owner = owner;
        self
    }

    /// The name to show for the program in messages: `argv[0]`.
    pub(super) fn program_name(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// The uid the command runs as: its run-as user's, else the server's own.
    pub(super) fn uid(&self) -> u32 {
        self.user
            .as_ref()
            .map_or_else(nix::unistd::getuid, run_as::RunAsUser::uid)
            .as_raw()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A spec for `argv` with no working directory, extra variables or input (tests only:
    /// real commands come from [`Self::permitted`]).
    #[cfg(test)]
    pub(crate) fn for_test(argv: Vec<String>, timeout: Duration) -> Self {
        Self {
            argv,
            working_dir: None,
            env: Vec::new(),
            stdin: None,
            timeout,
            user: None,
            owner: reaper::Owner::default(),
            confinement: Confinement::default(),
        }
    }

    /// `/bin/sh -c script` (tests only).
    #[cfg(test)]
    pub(crate) fn shell_for_test(script: &str, timeout: Duration) -> Self {
        Self::for_test(
            vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()],
            timeout,
        )
    }
}

/// Server-wide limits for every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLimits {
    /// Bytes kept per stream (half from the start, half from the end); the rest is counted.
    pub max_output_bytes: usize,
    /// Time between SIGTERM and SIGKILL when a command is ended.
    pub kill_grace: Duration,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self {
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }
}
