//! Policy tests. Decision tests are tables of pairs: each permitted request sits next to its
//! near misses, which must be denied by the named rule. Resolver tests use a real
//! temporary directory (symlinks, renamed binaries, escaping working dirs).

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use serde::Deserialize;

use super::*;
use crate::command::CommandLine;

mod bypass_programs;
mod decisions;
mod explain;
mod globs;
mod resolver;
mod schema;

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

/// The config file, reduced to the table under test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: Option<PolicyConfig>,
}

fn parse(text: &str) -> Result<Option<PolicyConfig>, String> {
    toml::from_str::<File>(text)
        .map(|file| file.policy)
        .map_err(|error| error.to_string())
}

/// A policy from TOML, validated without I/O (paths as written). No table: permissive.
fn policy(text: &str) -> Policy {
    match parse(text).expect("test policy parses") {
        None => Policy::permissive(),
        Some(config) => Policy::from_config(config).expect("test policy validates"),
    }
}

/// An argv request by `alice` (operator), already resolved to `program` (canonical).
fn argv(program: &str, args: &[&str]) -> ResolvedRequest {
    ResolvedRequest {
        program: PathBuf::from(program),
        requested_program: program.to_owned(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        working_dir: Some(PathBuf::from("/srv/app")),
        requested_working_dir: Some(PathBuf::from("/srv/app")),
        env: Vec::new(),
        shell: false,
        principal: "alice".to_owned(),
        role: Role::Operator,
    }
}

/// A shell-mode request by `alice`, resolved as on Debian (`/bin/sh` -> `/usr/bin/dash`).
fn shell(script: &str) -> ResolvedRequest {
    ResolvedRequest {
        requested_program: SHELL.to_owned(),
        shell: true,
        ..argv("/usr/bin/dash", &["-c", script])
    }
}

impl ResolvedRequest {
    fn by(mut self, principal: &str, role: Role) -> Self {
        self.principal = principal.to_owned();
        self.role = role;
        self
    }
    /// As if `argv[0]` was `name` and resolved to the program already set.
    fn named(mut self, name: &str) -> Self {
        self.requested_program = name.to_owned();
        self
    }
    /// Working dir as given, and what it canonicalized to.
    fn in_dir(mut self, given: &str, canonical: &str) -> Self {
        self.requested_working_dir = Some(given.into());
        self.working_dir = Some(canonical.into());
        self
    }
    fn no_dir(mut self) -> Self {
        self.requested_working_dir = None;
        self.working_dir = None;
        self
    }
    fn env(mut self, name: &str) -> Self {
        self.env.push((name.to_owned(), "value".to_owned()));
        self
    }
}

/// A permitted request and its near misses, each denied by the named rule with a reason
/// containing the given text. `near_miss_policy` (if set) judges the near misses instead.
struct Pair {
    name: &'static str,
    policy: &'static str,
    allowed: ResolvedRequest,
    permit_rule: &'static str,
    near_miss_policy: Option<&'static str>,
    near_misses: Vec<(ResolvedRequest, &'static str, &'static str)>,
}

fn check_pairs(pairs: Vec<Pair>) {
    let mut failures = Vec::new();
    for pair in pairs {
        let permitting = policy(pair.policy);
        match decide(&permitting, &pair.allowed) {
            Decision::Permit(permit) if permit.rule() == pair.permit_rule => {}
            other => failures.push(format!(
                "{}: expected permit by {}, got {other:?}",
                pair.name, pair.permit_rule
            )),
        }
        assert_explain_agrees(&permitting, &pair.allowed);
        assert!(
            !pair.near_misses.is_empty(),
            "{}: every allow needs a near miss",
            pair.name
        );
        let denying = pair
            .near_miss_policy
            .map_or_else(|| permitting.clone(), policy);
        for (index, (request, rule, reason)) in pair.near_misses.iter().enumerate() {
            match decide(&denying, request) {
                Decision::Deny(denial)
                    if denial.rule() == *rule
                        && denial.reason().starts_with(&format!("denied by {rule}"))
                        && denial.reason().contains(reason) => {}
                other => failures.push(format!(
                    "{} near miss {index}: expected deny by {rule} with {reason:?}, got {other:?}",
                    pair.name
                )),
            }
            assert_explain_agrees(&denying, request);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `explain` prints the same decision as `decide`.
fn assert_explain_agrees(policy: &Policy, request: &ResolvedRequest) {
    let explanation = explain(policy, request);
    let expected = match decide(policy, request) {
        Decision::Permit(permit) => format!("decision: PERMIT by {}", permit.rule()),
        Decision::Deny(denial) => format!("decision: DENY by {}", denial.rule()),
    };
    assert!(
        explanation.contains(&expected),
        "explain disagrees with decide ({expected}):\n{explanation}"
    );
}

// ---------------------------------------------------------------------------------------
// Policies under test.
// ---------------------------------------------------------------------------------------

/// An operator policy in the style the README recommends.
const OPS: &str = r#"
[policy]
working_dirs = ["/srv/app", "/var/log"]
allow_env = ["LANG", "LC_*"]
allow_shell = { principals = ["ci"] }

[[policy.allow]]
program = "/usr/bin/ls"

[[policy.allow]]
program = "/usr/bin/systemctl"
args = ["status", "*"]

[[policy.allow]]
program = "/usr/bin/git"
args = ["log", "**"]
allow_interpreter = true
allow_options = true
note = "history only"

[[policy.allow]]
program = "/usr/bin/journalctl"
args = ["-u", "*", "**"]
principals = ["deploy"]

[[policy.allow]]
program = "/usr/bin/find"
args = ["/srv/app", "-name", "*"]
allow_interpreter = true

[[policy.deny]]
program = "/usr/bin/git"
any_arg = ["-c*", "--exec-path*", "--config-env*"]
note = "git config overrides run commands"

[[policy.deny]]
program = "/usr/bin/rm"
args = ["-rf", "**"]
"#;

/// Everything in /usr/bin, with the bypass list on (the default under default = "deny").
const BROAD: &str = r#"
[policy]
[[policy.allow]]
program = "/usr/bin/*"
"#;

/// Everything in /usr/bin, bypass list off: shows what allowing a bypass program means.
const BROAD_NO_NET: &str = r#"
[policy]
deny_interpreters = false
[[policy.allow]]
program = "/usr/bin/*"
"#;

/// A deny list: default allow.
const DENYLIST: &str = r#"
[policy]
default = "allow"
[[policy.deny]]
program = "/usr/bin/rm"
note = "use the cleanup job"
"#;

const ADMIN_RESTRICTED: &str = r#"
[policy]
restrict_admin = true
[[policy.allow]]
program = "/usr/bin/systemctl"
roles = ["admin"]
[[policy.deny]]
program = "/usr/bin/rm"
args = ["-rf", "**"]
"#;
