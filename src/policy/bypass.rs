//! The built-in list of programs that run other programs ([`BYPASS_PROGRAMS`]), behind
//! `deny_interpreters`: allowing one of them allows (nearly) any command. Changes when a new
//! bypass program is found, and for no other reason.

use std::path::Path;

use super::glob::Glob;

/// A program that can run other programs, so allowing it allows (nearly) anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BypassProgram {
    /// Glob over the file name of the canonical program path (`python*` matches
    /// `/usr/bin/python3.11`).
    pub name: &'static str,
    /// Why allowing it allows arbitrary commands.
    pub why: &'static str,
}

const SHELL: &str = "is a shell: it runs any command line it is given";
const INTERPRETER: &str = "is a language interpreter: `-c`/`-e` or a script runs any code";
const RUNNER: &str = "runs its arguments as a command";
const PRIVILEGE: &str = "runs its arguments as a command, as another user";
const TRACER: &str = "starts and controls another program given as an argument";
const LOADER: &str = "is the dynamic loader: it runs any executable given as an argument";

macro_rules! bypass {
    ($($name:literal => $why:expr),* $(,)?) => {
        &[$(BypassProgram { name: $name, why: $why }),*]
    };
}

/// The built-in list behind `deny_interpreters`. Matched by the file name of the canonical
/// program, so a symlink or alternative (`/usr/bin/python3` -> `python3.11`) is recognised;
/// a copy renamed to something else is not. Known, not complete: the defence is an allowlist
/// with tight `args`, and this list is the net under it.
pub const BYPASS_PROGRAMS: &[BypassProgram] = bypass![
    // Shells and multi-call binaries.
    "sh" => SHELL, "ash" => SHELL, "dash" => SHELL, "bash" => SHELL, "rbash" => SHELL,
    "zsh" => SHELL, "ksh*" => SHELL, "mksh*" => SHELL, "pdksh" => SHELL, "oksh" => SHELL,
    "yash" => SHELL, "posh" => SHELL, "fish" => SHELL, "csh" => SHELL, "tcsh" => SHELL,
    "elvish" => SHELL, "nu" => SHELL, "xonsh" => SHELL, "pwsh" => SHELL,
    "busybox" => "is a multi-call binary: `busybox sh` is a shell",
    "toybox" => "is a multi-call binary: `toybox sh` is a shell",
    // Interpreters.
    "python*" => INTERPRETER, "pypy*" => INTERPRETER, "perl*" => INTERPRETER,
    "ruby*" => INTERPRETER, "irb*" => INTERPRETER, "php*" => INTERPRETER,
    "node" => INTERPRETER, "nodejs" => INTERPRETER, "deno" => INTERPRETER, "bun" => INTERPRETER,
    "lua*" => INTERPRETER, "tclsh*" => INTERPRETER, "wish*" => INTERPRETER,
    "expect" => INTERPRETER, "guile*" => INTERPRETER, "R" => INTERPRETER,
    "Rscript" => INTERPRETER, "julia" => INTERPRETER, "jshell" => INTERPRETER,
    "java" => "runs any code from a class path or jar, and -XX:OnError runs a command",
    "groovy*" => INTERPRETER, "erl" => INTERPRETER, "escript" => INTERPRETER,
    "elixir" => INTERPRETER, "iex" => INTERPRETER, "racket" => INTERPRETER,
    "sbcl" => INTERPRETER, "clisp" => INTERPRETER, "ocaml*" => INTERPRETER,
    "runghc" => INTERPRETER, "ghci" => INTERPRETER,
    "awk" => "awk's system() and pipes run commands", "gawk" => "awk's system() runs commands",
    "mawk" => "awk's system() runs commands", "nawk" => "awk's system() runs commands",
    "original-awk" => "awk's system() runs commands",
    // Command runners.
    "env" => RUNNER, "xargs" => RUNNER, "parallel" => RUNNER, "nohup" => RUNNER,
    "setsid" => RUNNER, "timeout" => RUNNER, "nice" => RUNNER, "ionice" => RUNNER,
    "chrt" => RUNNER, "taskset" => RUNNER, "stdbuf" => RUNNER, "time" => RUNNER,
    "watch" => RUNNER, "flock" => RUNNER, "chroot" => RUNNER, "unshare" => RUNNER,
    "nsenter" => RUNNER, "prlimit" => RUNNER, "setpriv" => RUNNER, "capsh" => RUNNER,
    "runcon" => RUNNER, "cgexec" => RUNNER, "firejail" => RUNNER, "bwrap" => RUNNER,
    "fakeroot*" => RUNNER, "catchsegv" => RUNNER, "daemonize" => RUNNER,
    "start-stop-daemon" => RUNNER, "systemd-run" => RUNNER,
    "script" => "`script -c` runs a command",
    "run-parts" => "runs every executable in a directory",
    "at" => "schedules any command", "batch" => "schedules any command",
    "crontab" => "schedules any command",
    // Privilege changers.
    "sudo" => PRIVILEGE, "su" => PRIVILEGE, "doas" => PRIVILEGE, "pkexec" => PRIVILEGE,
    "runuser" => PRIVILEGE, "sg" => PRIVILEGE, "sudoedit" => "edits any file as another user",
    // Tracers, debuggers, loaders.
    "strace" => TRACER, "ltrace" => TRACER, "gdb" => TRACER, "valgrind*" => TRACER,
    "perf" => TRACER, "ld-linux*" => LOADER, "ld.so" => LOADER, "ld-musl*" => LOADER,
    // Programs with an option or subcommand that runs commands.
    "find" => "-exec, -execdir, -ok and -okdir run any command",
    "git" => "-c alias.x=!cmd, -c core.pager/core.sshCommand, and hooks or core.fsmonitor \
              in a repository's config run any command",
    "make" => "recipes and --eval run any command", "gmake" => "recipes run any command",
    "cmake" => "-P scripts run any command (execute_process)",
    "tar" => "--to-command, --checkpoint-action=exec and --use-compress-program run commands",
    "rsync" => "-e/--rsh and --rsync-path run any command",
    "ssh" => "-o ProxyCommand=/LocalCommand= run a local command",
    "scp" => "-S runs any program", "sftp" => "-S runs any program",
    "zip" => "-TT/--unzip-command runs any command",
    "sed" => "GNU sed's `e` command and `s///e` flag run commands",
    "vi" => "`:!cmd` and -c run commands", "vim*" => "`:!cmd` and -c run commands",
    "nvim" => "`:!cmd` and -c run commands", "ex" => "`:!cmd` runs commands",
    "emacs*" => "--batch --eval runs any code", "ed" => "`!cmd` (from stdin) runs commands",
    "tmux" => "new-session runs any command", "screen" => "-dm runs any command",
    "socat" => "EXEC: and SYSTEM: addresses run commands",
    "nc" => "-e/-c run a program", "ncat" => "-e/-c run a program",
    "netcat" => "-e/-c run a program", "nc.*" => "-e/-c run a program",
    "npm" => "scripts and install hooks run commands", "npx" => "runs any package's binary",
    "yarn" => "scripts run commands", "pnpm" => "scripts run commands",
    "pip" => "installing runs a package's build code", "pip3*" => "installing runs build code",
    "pipx" => "runs any package's binary",
    "cargo" => "build scripts and `cargo run` run any code",
    "docker" => "runs containers with host mounts (root on the host)",
    "podman" => "runs containers with host mounts", "kubectl" => "exec runs commands in pods",
    "apt" => "-o APT::...::Pre-Invoke runs commands; packages run maintainer scripts",
    "apt-get" => "-o APT::...::Pre-Invoke runs commands; packages run maintainer scripts",
    "dpkg" => "packages run maintainer scripts as root",
    "rpm" => "packages run scriptlets as root", "dnf" => "packages run scriptlets as root",
    "yum" => "packages run scriptlets as root",
];

/// The [`BYPASS_PROGRAMS`] entry that `program` (a canonical path) is, if any.
pub fn bypass_program(program: &Path) -> Option<&'static BypassProgram> {
    let name = program.file_name()?.to_string_lossy();
    BYPASS_PROGRAMS
        .iter()
        .find(|entry| Glob::new(entry.name).matches(&name))
}
