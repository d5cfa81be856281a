//! The policy's only I/O: looking programs up in `PATH` and canonicalizing paths, both for
//! a request ([`resolve()`]) and for the paths a policy names ([`resolve_policy`]).
//!
//! Everything here reads the filesystem as the server sees it at this moment; the results
//! are canonical paths (absolute, no `.`/`..`, no symlinks), which is what the pure
//! decision compares and what the exec engine must then execute as is.

use std::{
    fs, io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use nix::{
    fcntl::AT_FDCWD,
    unistd::{AccessFlags, faccessat},
};

use crate::{auth::Role, command::CommandLine};

use super::{
    CommandRequest, Denial, Policy, PolicyConfig, PolicyError, PolicyProblem, ResolvedRequest,
    decide::{inside_roots, outside_roots},
    rules::{ProgramPattern, Root},
};

/// The shell that runs shell-mode requests, before canonicalization.
pub const SHELL: &str = "/bin/sh";

/// Why a request could not be resolved to something that could run. Not a denial: the
/// request names something that does not exist or is malformed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("argv is empty; give the program and then its arguments")]
    EmptyArgv,
    #[error("argv[0] is empty; give the program name or path")]
    EmptyProgram,
    #[error("{what} contains a NUL byte")]
    NulByte { what: String },
    /// The message names the program only: the server's `PATH` is configuration the caller
    /// does not need (it maps the host's layout). [`ResolveError::detail`] has it, for
    /// `hostmcp policy explain`.
    #[error(
        "program {program:?} was not found on this host; give an installed program's name \
         or absolute path"
    )]
    NotFound {
        program: String,
        search_path: String,
    },
    #[error("program {program:?} is a relative path; give a working_dir or an absolute path")]
    RelativeProgram { program: String },
    #[error("program {program:?} ({path}): {source}")]
    Program {
        program: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("program {program:?} resolves to {path}, which is not an executable file")]
    NotExecutable { program: String, path: PathBuf },
    #[error("program {program:?} resolves to a path that is not UTF-8: {path:?}")]
    NonUtf8 { program: String, path: PathBuf },
    #[error("working_dir {path:?} is not an absolute path")]
    RelativeWorkingDir { path: PathBuf },
    #[error("working_dir {path:?}: {source}")]
    WorkingDir { path: PathBuf, source: io::Error },
    #[error("working_dir {path:?} resolves to {resolved}, which is not a directory")]
    NotADirectory { path: PathBuf, resolved: PathBuf },
    /// `chdir` into it would fail: the server's user lacks search (`x`) permission on it.
    #[error(
        "working_dir {path:?} cannot be entered: the server's user may not search it \
         ({source}); give a directory it may enter"
    )]
    NotSearchable { path: PathBuf, source: io::Error },
    /// With `working_dirs` configured: the working dir is outside every root, or could not
    /// be resolved where the caller may not look. The text is the `working_dirs` denial's,
    /// the same whether the directory exists or not.
    #[error("{0}")]
    OutsideRoots(Denial),
    #[error("env: {name:?} is not a valid variable name")]
    BadEnvName { name: String },
}

impl ResolveError {
    /// What refused the request, for the audit log: `working_dirs` for
    /// [`ResolveError::OutsideRoots`], `resolve` for the rest.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::OutsideRoots(_) => "working_dirs",
            _ => "resolve",
        }
    }

    /// The message with what only the server's operator should see (the `PATH` that was
    /// searched), for `hostmcp policy explain`, which the operator runs.
    pub fn detail(&self) -> String {
        match self {
            Self::NotFound { search_path, .. } => format!("{self} (PATH searched: {search_path})"),
            _ => self.to_string(),
        }
    }
}

/// Resolve a request to what would run: `argv[0]` looked up in `search_path` (the `PATH`
/// commands get) and canonicalized, or the canonical [`SHELL`] in shell mode; the working
/// dir canonicalized. The only I/O of the policy; [`decide`](super::decide) does none.
///
/// Lookup follows `execvp`: a name containing `/` is a path (a relative one is taken
/// against the working dir, and needs one); otherwise the first `PATH` entry holding a
/// regular file with an execute bit wins. Empty and relative `PATH` entries (which mean
/// "the current directory") are skipped.
pub fn resolve(
    request: &CommandRequest<'_>,
    search_path: &str,
) -> Result<ResolvedRequest, ResolveError> {
    let working_dir = request.working_dir.map(resolve_working_dir).transpose()?;
    let (requested_program, program, args, shell) = match request.command {
        CommandLine::Shell(script) => {
            reject_nul("command", script)?;
            let program = canonical_executable(Path::new(SHELL), SHELL)?;
            (
                SHELL.to_owned(),
                program,
                vec!["-c".to_owned(), script.to_owned()],
                true,
            )
        }
        CommandLine::Argv(argv) => {
            let (name, args) = argv.split_first().ok_or(ResolveError::EmptyArgv)?;
            for (index, arg) in argv.iter().enumerate() {
                reject_nul(&format!("argv[{index}]"), arg)?;
            }
            let program = find_program(name, search_path, working_dir.as_deref())?;
            (name.clone(), program, args.to_vec(), false)
        }
    };
    for (name, value) in request.env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(ResolveError::BadEnvName { name: name.clone() });
        }
        reject_nul(&format!("env {name}"), value)?;
    }
    Ok(ResolvedRequest {
        program,
        requested_program,
        args,
        working_dir,
        requested_working_dir: request.working_dir.map(Path::to_owned),
        env: request.env.to_vec(),
        shell,
        principal: request.principal_name.to_owned(),
        role: request.role,
    })
}

/// [`resolve()`] under `policy`'s `working_dirs`: what the caller may learn of a working dir
/// outside the roots is only that it is outside. Without roots, the same as [`resolve()`].
///
/// With roots, the working dir is resolved first: if it resolves outside every root, or
/// cannot be resolved (missing, not a directory, not searchable) and the deepest part of it
/// that exists resolves outside every root, the request is refused with the `working_dirs`
/// denial, whose text names only the path as given. So `/etc`, `/root` and `/no/such/dir`
/// get the same answer, and nothing else (a program lookup relative to it, the allow rules)
/// is judged first. A directory that cannot be resolved inside a root keeps its own error
/// (`/srv/app/missing`: No such file or directory). [`decide`](super::decide) still checks
/// the working dir the request finally resolves to. An admin the policy does not bind
/// (`restrict_admin = false`) gets the real errors: the roots are not theirs.
pub fn resolve_confined(
    policy: &Policy,
    request: &CommandRequest<'_>,
    search_path: &str,
) -> Result<ResolvedRequest, ResolveError> {
    let bound = request.role != Role::Admin || policy.restrict_admin;
    if let (Some(roots), Some(given), true) = (&policy.working_dirs, request.working_dir, bound) {
        let outside = || ResolveError::OutsideRoots(outside_roots(roots, given));
        match resolve_working_dir(given) {
            Ok(dir) if !inside_roots(roots, &dir) => return Err(outside()),
            Err(error) if !existing_part_inside(roots, given) => {
                tracing::debug!(%error, "working_dir outside the roots did not resolve");
                return Err(outside());
            }
            Ok(_) | Err(_) => {}
        }
    }
    resolve(request, search_path)
}

/// Whether the longest prefix of `path` that canonicalizes lies inside a root.
fn existing_part_inside(roots: &[Root], path: &Path) -> bool {
    path.ancestors()
        .find_map(|prefix| fs::canonicalize(prefix).ok())
        .is_some_and(|canonical| inside_roots(roots, &canonical))
}

fn reject_nul(what: &str, text: &str) -> Result<(), ResolveError> {
    if text.contains('\0') {
        return Err(ResolveError::NulByte {
            what: what.to_owned(),
        });
    }
    Ok(())
}

fn resolve_working_dir(path: &Path) -> Result<PathBuf, ResolveError> {
    if !path.is_absolute() {
        return Err(ResolveError::RelativeWorkingDir {
            path: path.to_owned(),
        });
    }
    let resolved = fs::canonicalize(path).map_err(|source| ResolveError::WorkingDir {
        path: path.to_owned(),
        source,
    })?;
    if !resolved.is_dir() {
        return Err(ResolveError::NotADirectory {
            path: path.to_owned(),
            resolved,
        });
    }
    // Effective ids, as `chdir` in the child checks them (for the server's own user; a
    // command run as another user is checked by the kernel at spawn).
    faccessat(
        AT_FDCWD,
        &resolved,
        AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .map_err(|errno| ResolveError::NotSearchable {
        path: path.to_owned(),
        source: io::Error::from(errno),
    })?;
    Ok(resolved)
}

fn find_program(
    name: &str,
    search_path: &str,
    working_dir: Option<&Path>,
) -> Result<PathBuf, ResolveError> {
    if name.is_empty() {
        return Err(ResolveError::EmptyProgram);
    }
    if name.contains('/') {
        let path = Path::new(name);
        let path = if path.is_absolute() {
            path.to_owned()
        } else {
            working_dir
                .ok_or_else(|| ResolveError::RelativeProgram {
                    program: name.to_owned(),
                })?
                .join(path)
        };
        return canonical_executable(&path, name);
    }
    search_path
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| is_executable_file(candidate))
        .map_or_else(
            || {
                Err(ResolveError::NotFound {
                    program: name.to_owned(),
                    search_path: search_path.to_owned(),
                })
            },
            |candidate| canonical_executable(&candidate, name),
        )
}

/// A regular file (after symlinks) with at least one execute bit.
fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn canonical_executable(path: &Path, program: &str) -> Result<PathBuf, ResolveError> {
    let canonical = fs::canonicalize(path).map_err(|source| ResolveError::Program {
        program: program.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    if !is_executable_file(&canonical) {
        return Err(ResolveError::NotExecutable {
            program: program.to_owned(),
            path: canonical,
        });
    }
    if canonical.to_str().is_none() {
        return Err(ResolveError::NonUtf8 {
            program: program.to_owned(),
            path: canonical,
        });
    }
    Ok(canonical)
}

/// Build the policy the server uses: `None` (no `[policy]` table) is
/// [`Policy::permissive`]; a table is validated by [`Policy::from_config`], then the paths
/// it names are canonicalized where they exist (the longest existing prefix; a path that
/// does not exist here stays as written):
///
/// - working-dir roots, so a root that is (or lies under) a symlink still contains the
///   canonical dirs of requests;
/// - the leading glob-free directories of every program pattern: `/bin/ls` becomes
///   `/usr/bin/ls` and `/bin/*` becomes `/usr/bin/*` on a merged-`/usr` system;
/// - and for deny rules only, a literal program file too: a deny rule naming an alias
///   denies the binary behind it (`/usr/bin/python3` becomes `/usr/bin/python3.11`), so
///   calling the program by its real name does not slip past. Allow rules never follow the
///   file's own symlink, since that could widen them: `/usr/sbin/reboot` is
///   `/usr/bin/systemctl` on systemd hosts, and an allow rule for it is not one for
///   every `systemctl` command. Write allow rules with the canonical path that
///   `hostmcp policy explain` prints.
///
/// Paths are resolved once, at load (and reload): a symlink changed later is seen at the
/// next load. So is each allow rule's `run_as`: the user must exist and this server must be
/// able to switch to it, which `check_user` says (the caller passes `exec`'s check,
/// `exec::run_as::check_switchable`: the policy does not know how users are switched).
/// Whether a rule's `run_as` user can be run as: `Err` with the reason when not.
pub type UserCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

pub fn resolve_policy(
    config: Option<PolicyConfig>,
    check_user: UserCheck<'_>,
) -> Result<Policy, PolicyError> {
    let Some(config) = config else {
        return Ok(Policy::permissive());
    };
    let mut policy = Policy::from_config(config)?;
    for rule in &mut policy.allow {
        canonicalize_pattern(&mut rule.program, false);
    }
    for rule in &mut policy.deny {
        canonicalize_pattern(&mut rule.program, true);
    }
    for root in policy.working_dirs.iter_mut().flatten() {
        if let Ok(canonical) = fs::canonicalize(&root.effective) {
            root.effective = canonical;
        }
    }
    for rule in &mut policy.allow {
        rule.reach = std::mem::take(&mut rule.reach)
            .canonicalize()
            .map_err(|error| {
                PolicyError::new(
                    format!("allow[{}]", rule.index),
                    PolicyProblem::Reach(error),
                )
            })?;
    }
    for rule in &policy.allow {
        if let Some(name) = &rule.run_as {
            check_user(name).map_err(|reason| {
                PolicyError::new(
                    format!("allow[{}].run_as", rule.index),
                    PolicyProblem::RunAs {
                        name: name.clone(),
                        reason,
                    },
                )
            })?;
        }
    }
    Ok(policy)
}

/// Canonicalize the longest existing glob-free prefix of `pattern` (with the program file
/// itself when `include_file`).
fn canonicalize_pattern(pattern: &mut ProgramPattern, include_file: bool) {
    let prefix: Vec<String> = pattern
        .literal_prefix(include_file)
        .into_iter()
        .map(str::to_owned)
        .collect();
    for length in (1..=prefix.len()).rev() {
        let literal = format!("/{}", prefix[..length].join("/"));
        let Ok(canonical) = fs::canonicalize(&literal) else {
            continue;
        };
        // A canonical name with glob characters would widen the pattern: keep it as written.
        match canonical.to_str() {
            Some(text) if !text.contains(['*', '?']) => pattern.rebase(length, text),
            _ => {}
        }
        return;
    }
}
