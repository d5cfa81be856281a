//! Command policy: whether a principal may run a command, decided in one pure function.
//!
//! Owns the `[policy]` schema ([`PolicyConfig`]), its validated form ([`Policy`]), the one
//! I/O step that turns a request into what would really run ([`resolve()`]), the pure
//! decision ([`decide`]) and its explanation ([`explain`]). It runs nothing: the exec engine
//! takes a [`Permit`], which only [`decide`] can make, and runs exactly the program, args,
//! working dir and environment the permit carries.
//!
//! # Flow
//!
//! ```text
//! CommandRequest --resolve (PATH lookup, canonicalize; the only I/O)--> ResolvedRequest
//! ResolvedRequest + Policy --decide (pure)--> Permit | Denial
//! ```
//!
//! [`resolve()`] looks `argv[0]` up in the given `PATH` the way `execvp` does (a name with a
//! `/` is a path, relative ones against the working dir; empty and relative `PATH` entries
//! are skipped) and canonicalizes it: every symlink followed, so a binary is judged by what
//! it really is (`/usr/bin/python3` is judged as `/usr/bin/python3.11`, an `ls` symlink to
//! `rm` as `/usr/bin/rm`). Shell mode resolves to the canonical `/bin/sh` (e.g.
//! `/usr/bin/dash`) with args `["-c", script]`. The working dir is canonicalized too, so
//! `..` and symlinks are gone before any rule sees it.
//!
//! # The `[policy]` table
//!
//! ```toml
//! [policy]
//! default = "deny"              # "deny" | "allow": requests no allow rule matches
//! restrict_admin = false        # true: admins are judged like operators
//! allow_shell = false           # true | false | { principals = [..], roles = [..] }
//! deny_interpreters = true      # default: true when default = "deny", else false
//! working_dirs = ["/srv/app"]   # roots; default: any directory
//! allow_env = ["LANG", "LC_*"]  # names a request may set; default: none
//!
//! [[policy.allow]]
//! program = "/usr/bin/systemctl"   # absolute path or glob over the canonical path
//! args = ["status", "*"]           # element-wise globs; a final "**" = any remaining
//! principals = ["deploy"]          # optional: token names
//! roles = ["operator"]             # optional: "operator", "admin"
//! allow_interpreter = false        # may this rule allow a known bypass program?
//! allow_options = false            # may its wildcards match options (args starting with -)?
//! note = "read-only unit status"   # optional free text
//! approve = false                  # true: a person approves each command first
//! approve_reason = "restarts a service"   # shown to the approver (with approve only)
//!
//! [[policy.deny]]
//! program = "/usr/bin/git"
//! any_arg = ["-c*", "--exec-path*", "--config-env*"]   # deny only: any position
//! note = "git config overrides run commands"
//! ```
//!
//! Unknown keys are errors that name the key. Validation ([`Policy::from_config`]) refuses
//! relative or non-normal paths, `**` other than as the whole last element, empty
//! `principals`/`roles`/`working_dirs`/`any_arg` lists and an empty `allow_shell` table
//! (which would match nobody, or read as everybody), role `read` in a rule, and
//! `allow_options` on a rule without `args` (which allows any arguments already).
//!
//! # Semantics
//!
//! Without a `[policy]` table at all ([`Policy::permissive`]) operators may run anything,
//! in shell mode too, with any environment, in any directory: the permissive default,
//! which keeps a fresh install usable. As soon as a `[policy]` table exists, even an empty
//! one, `default` is `"deny"` unless written otherwise, and shell mode and request
//! environment are off unless granted (`default = "allow"` alone does not turn them
//! back on: a shell line or `LD_PRELOAD` would walk around every deny rule).
//!
//! A [`ResolvedRequest`] is judged in this order; the first step that decides wins, and its
//! name is the `rule` of the [`Permit`] or [`Denial`]:
//!
//! 1. `role`: role `read` is always denied; it never runs commands.
//! 2. `admin`: role `admin` is permitted everything, unless `restrict_admin = true`, in
//!    which case admins go through the steps below like operators (rules may name them
//!    with `roles = ["admin"]`).
//! 3. `allow_shell`: a shell-mode request (`command` string) is denied unless `allow_shell`
//!    grants this principal or role; the denial tells the caller to pass `argv` instead.
//! 4. `deny[i]`: the first deny rule that applies to the caller and matches denies. Deny
//!    wins over allow.
//! 5. `working_dirs`: if roots are configured, a working dir must be given (a request
//!    without one is denied: no silent default) and, canonical, must equal a root or lie
//!    inside one by whole path components: `/srv/app2` is not inside `/srv/app`,
//!    `/srv/app/../etc` is `/srv/etc`, and a symlink in a root that points outside is
//!    judged by its target. Roots are canonicalized at load by [`resolve_policy`].
//!    [`resolve_confined`] applies this step first, before resolving anything else, and
//!    gives a dir outside the roots one answer whether it exists or not.
//! 6. `allow_env`: every environment variable the request sets must match a name glob of
//!    `allow_env` (none do when it is absent). `LD_PRELOAD`, `PATH`, `BASH_ENV`, `GIT_*`,
//!    `PYTHONPATH` and friends change what an allowed program does: grant names, not `*`.
//! 7. `allow_shell` permits a shell-mode request that passed 4-6.
//! 8. `deny_interpreters`: a program on the built-in [`BYPASS_PROGRAMS`] list is denied
//!    unless a matching allow rule says `allow_interpreter = true`, which then permits.
//! 9. `allow[i]`: the first allow rule that applies and matches permits.
//! 10. `default`: `"allow"` permits, `"deny"` denies with the list of what the caller may
//!     run.
//!
//! A rule applies to a caller when its `principals` (if present) contain the principal's
//! name and its `roles` (if present) contain its role. It matches when:
//!
//! - `program`, a pattern over the *canonical* path split at `/`: each component a glob in
//!   which `*` and `?` never cross a `/`, and a final `/**` any number of components. A
//!   literal path is exact: `/usr/bin/systemctl` does not match `/usr/bin/systemctl-evil`.
//!   [`resolve_policy`] canonicalizes each pattern's leading literal directories, so
//!   `/bin/*` means `/usr/bin/*` on a merged-`/usr` system. A deny rule's literal file is
//!   canonicalized too (deny `/usr/bin/python3` denies `/usr/bin/python3.11`, under any
//!   name); an allow rule's is not, because following it could widen the rule
//!   (`/usr/sbin/reboot` is `/usr/bin/systemctl`): write allow rules with the canonical
//!   path `hostmcp policy explain` prints.
//! - `args` (if present), matched element by element against the arguments after
//!   `argv[0]`, each glob against the *whole* element (`-c*` matches `-calias.x=!sh` and
//!   `-c`, not `x-c`); the lengths must agree unless the last pattern is `**`. `args = []`
//!   means no arguments at all. In an allow rule a wildcard never matches an *option* (an
//!   argument that starts with `-`, or with `@`: a response file, from which gcc, clang,
//!   ld, javac and 7z read more options): only a pattern that itself starts with the same
//!   character does (`-u`, `--since=*`, `-*`, `@/srv/build/*`), so `["status", "*"]`
//!   refuses `status --host=me@elsewhere` and `["-c", "*"]` refuses `gcc -c @/tmp/opts`.
//!   `allow_options = true` lets the rule's wildcards match options too. A literal `--`
//!   changes nothing. Deny rules' wildcards match options like any argument. See the
//!   `args` submodule.
//! - `any_arg` (deny rules only, if present): some argument, at any position, matches
//!   one of these globs. Positional `args` cannot say "`-c` anywhere", and options can
//!   come in any order.
//!
//! Globs: `*` any run of characters, `?` one character, nothing else is special (no
//! escapes, no classes). See the `glob` submodule.
//!
//! Arguments are never shell-interpreted: in argv mode, `["status", "nginx; reboot"]` is
//! two arguments, the second a strange unit name, and `args = ["status", "*"]` allows it.
//! Nothing runs `reboot`. Only shell mode has shell syntax, and shell mode is judged as the
//! shell itself.
//!
//! # What a policy cannot see (read before writing one)
//!
//! - **Shell mode allows whatever the shell can do.** Granting `allow_shell` grants every
//!   program the shell can reach. Deny rules still match the shell program, with
//!   `["-c", script]` as its args, but a pattern over script text is no defence (a script
//!   can spell a command in endless ways); only a deny on the shell itself is.
//! - **Bypass programs.** Allowing any of these allows arbitrary commands, because they
//!   run programs named in their arguments or code: shells (`sh`, `bash`), interpreters
//!   (`python3`, `perl`, `awk`), `env`, `xargs`, `find` (`-exec`), `git` (`-c alias.x=!sh`,
//!   `core.pager`, hooks), `sudo`/`su`/`doas`, `nohup`, `setsid`, `timeout`, `nice`,
//!   `strace`, the dynamic loader, and [more](BYPASS_PROGRAMS). `deny_interpreters`
//!   (on by default with `default = "deny"`) denies them unless an allow rule says
//!   `allow_interpreter = true`; with it, tighten `args` and deny dangerous options with
//!   `any_arg`. The list matches canonical file names: a copy of `bash` renamed `tool` in
//!   an allowed directory is not recognised, so never allow globs over directories that
//!   callers can write.
//! - **Files are not commands.** `working_dirs` fixes where a command starts, not what it
//!   may touch: an allowed program opens whatever its user may open, and a file argument
//!   (`cat /etc/shadow`, `ls /root`) is not confined to the roots. Programs that write
//!   files (`tee`, `cp`, `dd`) can rewrite what others later execute.
//! - **Options of the allowed program.** A rule judges strings, not what the program makes
//!   of them: an option a rule names (`-*`, `allow_options = true`) is allowed whatever it
//!   does (`systemctl -H` runs ssh, `journalctl -D` reads other files, `tar --to-command`
//!   runs a command). Name options one by one, and read the program's manual for those that
//!   execute, connect or read files first.
//! - **Time of check.** Canonical paths are checked, then executed; a caller who can
//!   replace a directory on that path between the two can race it. Keep roots and program
//!   directories unwritable by callers.
//! - **Multi-call binaries** (`busybox`, `systemctl` as `reboot`) share one canonical path
//!   for all their personalities, so the policy cannot tell them apart. The exec engine
//!   therefore runs [`Permit::program`] with `argv[0]` set to that same path, never the
//!   caller's name: otherwise a caller's symlink `reboot` -> `systemctl` would turn an
//!   allowed `systemctl status x` into a reboot. `busybox` is on the bypass list.

mod args;
mod bypass;
mod config;
mod decide;
mod denial;
mod error;
mod explain;
mod glob;
mod request;
mod resolve;
mod rules;
mod shown;

pub use bypass::{BYPASS_PROGRAMS, BypassProgram, bypass_program};
pub use config::{
    AllowRule, DefaultAction, DenyRule, Grantees, PolicyConfig, RoleName, ShellAccess,
};
pub use decide::{Decision, decide};
pub use denial::{Allowed, Asker, DecidingRule, Denial, OptionHint, ShownCommand};
pub use error::{PolicyError, PolicyProblem};
pub use explain::explain;
pub use glob::args_match;
pub use request::{ApprovalNeed, CommandRequest, Permit, ResolvedRequest};
pub use resolve::{ResolveError, SHELL, UserCheck, resolve, resolve_confined, resolve_policy};

use crate::auth::Role;

use rules::{Root, Rule, ShellGrant};

/// A validated policy: the data [`decide`] reads. Build it with [`resolve_policy`] (what the
/// server does), [`Policy::from_config`] (no I/O) or [`Policy::permissive`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether a `[policy]` table was given (false: [`Policy::permissive`]).
    configured: bool,
    default: DefaultAction,
    restrict_admin: bool,
    shell: ShellGrant,
    deny_interpreters: bool,
    working_dirs: Option<Vec<Root>>,
    /// `None`: any variable; `Some(globs)`: names matching one of them.
    allow_env: Option<Vec<glob::Glob>>,
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Policy {
    /// The policy when the config has no `[policy]` table: operators may run anything,
    /// shell mode and request environment included; only role `read` is denied.
    pub fn permissive() -> Self {
        Self {
            configured: false,
            default: DefaultAction::Allow,
            restrict_admin: false,
            shell: ShellGrant::Callers(rules::Callers::default()),
            deny_interpreters: false,
            working_dirs: None,
            allow_env: None,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }

    /// Whether some allow rule asks for approval (`approve = true`).
    pub fn asks_approval(&self) -> bool {
        self.allow.iter().any(|rule| rule.approval.is_some())
    }

    /// Whether this came from a `[policy]` table (false for [`Policy::permissive`]).
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// Each allow rule that sets resource limits, as `(allow[i], limits)`, for the check at
    /// load that the host can enforce them (`exec::cgroup::check`).
    pub fn limits(&self) -> impl Iterator<Item = (String, &crate::limits::ResourceLimits)> {
        self.allow
            .iter()
            .filter(|rule| !rule.limits.is_empty())
            .map(|rule| (format!("policy.allow[{}]", rule.index), &rule.limits))
    }

    /// Each allow rule that confines what its commands reach, as `(allow[i], reach)`, for
    /// the checks at load (`exec::landlock::check`, the server's own files kept out).
    pub fn reaches(&self) -> impl Iterator<Item = (String, &crate::reach::Reach)> {
        self.allow
            .iter()
            .filter(|rule| rule.reach.confines())
            .map(|rule| (format!("policy.allow[{}]", rule.index), &rule.reach))
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
