//! What confines one command besides its argv: the switch to its run-as user, the
//! `no_new_privs` flag (always set), its resource limits ([`ResourceLimits`](crate::limits::ResourceLimits), from its
//! token and its policy rule) and its reach (filesystem roots and network, [`Reach`], one
//! layer from the token and one from the rule). All of it is applied in the child between
//! fork and exec, in the crate's one `unsafe` block ([`install`]); what can be prepared
//! before the fork is (the Landlock rulesets are built in the parent, [`super::landlock`]).
//!
//! Order in the child: joining the command's cgroup (writing `0` to each `cgroup.procs` the
//! parent opened, [`super::cgroup`]), while still root and before anything else, so the
//! program and everything it starts are counted from the first byte; rlimits; a fresh network namespace (`unshare(CLONE_NEWNET)`, while
//! still root) for `network = "none"`; the user switch; `no_new_privs`; then each Landlock
//! layer (`landlock_restrict_self`), so the program and everything it starts are confined.
//!
//! Which rlimit each limit sets, and why: [`crate::limits`].

use std::os::unix::process::CommandExt;

use std::os::fd::AsRawFd;

use super::{ExecError, landlock, run_as::RunAsUser};
pub use crate::limits::{ResourceLimits, ZeroLimit};
use crate::reach::{Network, Reach};

/// Everything that confines a command beyond its user: its resource limits and what it
/// may reach (each layer applies: a command gets what all of them allow).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    pub limits: ResourceLimits,
    /// The token's reach and the rule's; an unconfined layer may be left out.
    pub layers: Vec<Reach>,
}

impl Confinement {
    /// Whether some layer takes the network away entirely.
    pub fn no_network(&self) -> bool {
        self.layers
            .iter()
            .any(|layer| layer.network == Some(Network::None))
    }
}

/// Make `command` apply, in the child between fork and exec: `confinement`'s rlimits, the
/// switch to `user` (when it differs from the server's), and `no_new_privs`, so a setuid
/// program (`sudo`, `su`, `pkexec`) cannot raise the command's privileges. Forces fork+exec
/// (a `pre_exec` hook) for every command.
pub(super) fn install(
    command: &mut tokio::process::Command,
    user: Option<&RunAsUser>,
    confinement: &Confinement,
    cgroup_joins: Vec<std::fs::File>,
) -> Result<(), ExecError> {
    let ids = user.and_then(RunAsUser::switch_ids);
    let rlimits = confinement.limits.rlimits();
    let support = landlock::Support::here();
    let new_netns = confinement.no_network() && support.none_by_namespace();
    let rulesets = landlock::rulesets(&confinement.layers, support).map_err(ExecError::Confine)?;
    // The crate's one `unsafe` (see `[lints]` in Cargo.toml).
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec the closure only makes the write, setrlimit, unshare,
    // setgroups, setgid, setuid, prctl and landlock_restrict_self system calls, which are
    // async-signal-safe, and allocates nothing: the vectors it reads (and the ruleset and
    // `cgroup.procs` file descriptors, open and owned until the parent drops the command)
    // were built before the fork and are only borrowed.
    unsafe {
        command.as_std_mut().pre_exec(move || {
            for procs in &cgroup_joins {
                // "0": the writing process itself.
                if nix::libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for &(resource, soft, hard) in &rlimits {
                nix::sys::resource::setrlimit(resource, soft, hard)?;
            }
            if new_netns && nix::libc::unshare(nix::libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some((groups, gid, uid)) = &ids {
                nix::unistd::setgroups(groups)?;
                nix::unistd::setgid(*gid)?;
                nix::unistd::setuid(*uid)?;
            }
            nix::sys::prctl::set_no_new_privs()?;
            for ruleset in &rulesets {
                let fd = ruleset.as_raw_fd();
                if nix::libc::syscall(nix::libc::SYS_landlock_restrict_self, fd, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytesize::ByteSize;
    use nix::sys::resource::Resource;

    fn limits(text: &str) -> ResourceLimits {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sizes_are_read_with_binary_units_and_plain_bytes() {
        let parsed = limits("memory = \"512MiB\"\nfile_size = 4096\ncpu_seconds = 3");
        assert_eq!(parsed.memory, Some(ByteSize::mib(512)));
        assert_eq!(parsed.file_size, Some(ByteSize::b(4096)));
        assert_eq!(parsed.cpu_seconds, Some(3));
        assert_eq!(parsed.processes, None);
    }

    #[test]
    fn an_unknown_limit_is_an_error() {
        assert!(toml::from_str::<ResourceLimits>("threads = 3").is_err());
    }

    #[test]
    fn the_stricter_of_two_wins_limit_by_limit() {
        let token = limits("memory = \"1GiB\"\ncpu_seconds = 10");
        let rule = limits("memory = \"256MiB\"\ncpu_seconds = 60\nprocesses = 8");
        let both = token.stricter(rule);
        assert_eq!(both.memory, Some(ByteSize::mib(256)));
        assert_eq!(both.cpu_seconds, Some(10));
        assert_eq!(both.processes, Some(8));
        assert_eq!(both.file_size, None);
        assert_eq!(both, rule.stricter(token));
    }

    #[test]
    fn a_zero_limit_is_refused_and_a_positive_one_is_not() {
        assert_eq!(
            limits("processes = 0").validate(),
            Err(ZeroLimit("processes"))
        );
        assert_eq!(limits("processes = 1").validate(), Ok(()));
    }

    #[test]
    fn cpu_gets_a_hard_limit_one_second_past_the_soft_one() {
        let rlimits = limits("cpu_seconds = 5\nmemory = 1024").rlimits();
        assert!(rlimits.contains(&(Resource::RLIMIT_CPU, 5, 6)));
        assert!(rlimits.contains(&(Resource::RLIMIT_DATA, 1024, 1024)));
    }

    /// Runs `script` under `limits` (no user switch).
    async fn confined(script: &str, limits_toml: &str) -> crate::exec::ExecOutcome {
        let spec = crate::exec::test_support::sh(script).confined(Confinement {
            limits: limits(limits_toml),
            layers: Vec::new(),
        });
        crate::exec::test_support::run_ok(spec).await
    }

    #[tokio::test]
    async fn every_command_runs_with_no_new_privs() {
        let outcome = confined("grep NoNewPrivs /proc/self/status", "").await;
        assert_eq!(
            outcome.stdout.to_text().split_whitespace().nth(1),
            Some("1")
        );
    }

    #[tokio::test]
    async fn a_cpu_spinner_is_stopped_by_cpu_seconds_and_a_short_command_is_not() {
        let spun = confined("while :; do :; done", "cpu_seconds = 1").await;
        assert_eq!(
            spun.signal,
            Some(libc_signal(nix::sys::signal::Signal::SIGXCPU))
        );
        let hit = crate::exec::diagnose::limit_hit(&spun, &limits("cpu_seconds = 1")).unwrap();
        assert_eq!(hit.limit, "cpu_seconds");
        assert!(confined("echo ok", "cpu_seconds = 1").await.is_success());
    }

    #[tokio::test]
    async fn a_file_past_file_size_is_stopped_and_a_smaller_one_is_written() {
        let dir = crate::exec::test_support::scratch_dir("fsize");
        let big = format!("head -c 2000000 /dev/zero > {}/big", dir.display());
        let wrote = confined(&big, "file_size = \"1MiB\"").await;
        // The shell reports its child's SIGXFSZ as exit code 128 + 25.
        assert_eq!(
            wrote.exit_code,
            Some(128 + libc_signal(nix::sys::signal::Signal::SIGXFSZ))
        );
        let hit = crate::exec::diagnose::limit_hit(&wrote, &limits("file_size = \"1MiB\""));
        assert_eq!(hit.map(|hit| hit.limit), Some("file_size"));
        let small = format!("head -c 500000 /dev/zero > {}/small", dir.display());
        assert!(confined(&small, "file_size = \"1MiB\"").await.is_success());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_allocation_past_memory_fails_and_a_smaller_one_succeeds() {
        let hog = confined(
            "exec python3 -c 'b = bytearray(256 * 1024 * 1024)'",
            "memory = \"64MiB\"",
        )
        .await;
        assert!(!hog.is_success());
        let hit = crate::exec::diagnose::limit_hit(&hog, &limits("memory = \"64MiB\""));
        assert_eq!(
            hit.map(|hit| hit.limit),
            Some("memory"),
            "{}",
            hog.stderr.to_text()
        );
        let near = confined(
            "exec python3 -c 'b = bytearray(8 * 1024 * 1024)'",
            "memory = \"64MiB\"",
        )
        .await;
        assert!(near.is_success(), "{}", near.stderr.to_text());
    }

    fn libc_signal(signal: nix::sys::signal::Signal) -> i32 {
        signal as i32
    }

    #[test]
    fn limits_are_described_for_people() {
        assert_eq!(ResourceLimits::default().describe(), "none");
        assert_eq!(
            limits("memory = \"512MiB\"\nprocesses = 64").describe(),
            "memory 512.0 MiB, processes 64"
        );
    }
}
