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

// ---------------------------------------------------------------------------------------
// Decision pairs.
// ---------------------------------------------------------------------------------------

#[test]
fn programs_are_judged_by_canonical_path_and_whole_components() {
    check_pairs(vec![
        Pair {
            name: "ls allowed; an `ls` that resolves to rm is rm",
            policy: OPS,
            allowed: argv("/usr/bin/ls", &["-la"]).named("ls"),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/rm", &["-la"]).named("ls"),
                "default",
                "/usr/bin/rm (resolved from \"ls\")",
            )],
        },
        Pair {
            name: "program pattern is the whole path, not a prefix",
            policy: OPS,
            allowed: argv("/usr/bin/systemctl", &["status", "nginx"]),
            permit_rule: "allow[1]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/systemctl-evil", &["status", "nginx"]),
                    "default",
                    "no allow rule matches /usr/bin/systemctl-evil",
                ),
                (
                    argv("/usr/bin/systemctl/x", &["status", "nginx"]),
                    "default",
                    "no allow rule matches",
                ),
                (
                    argv("/opt/usr/bin/systemctl", &["status", "nginx"]),
                    "default",
                    "no allow rule matches",
                ),
            ],
        },
        Pair {
            name: "a glob's `*` stays within one path component",
            policy: BROAD,
            allowed: argv("/usr/bin/rm", &["x"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![
                (argv("/usr/bin/sub/rm", &["x"]), "default", "no allow rule"),
                (argv("/usr/bin2/rm", &["x"]), "default", "no allow rule"),
            ],
        },
    ]);
}

#[test]
fn args_globs_match_whole_elements_and_argv_is_not_shell() {
    check_pairs(vec![
        Pair {
            name: "systemctl status * allows status, not restart",
            policy: OPS,
            allowed: argv("/usr/bin/systemctl", &["status", "nginx"]),
            permit_rule: "allow[1]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/systemctl", &["restart", "nginx"]),
                    "default",
                    "Allowed for you: /usr/bin/ls (any args); /usr/bin/systemctl [\"status\", \"*\"]",
                ),
                (
                    argv("/usr/bin/systemctl", &["statusx", "nginx"]),
                    "default",
                    "no allow rule matches",
                ),
                (
                    argv("/usr/bin/systemctl", &["status"]),
                    "default",
                    "no allow rule matches",
                ),
                (
                    argv("/usr/bin/systemctl", &["status", "nginx", "reboot"]),
                    "default",
                    "no allow rule matches",
                ),
            ],
        },
        Pair {
            // One argv element is one argument: nothing interprets the `;`. Allowed by `*`
            // as a strange unit name; split into elements it is a different request.
            name: "`status \"nginx; reboot\"` is one weird unit name",
            policy: OPS,
            allowed: argv("/usr/bin/systemctl", &["status", "nginx; reboot"]),
            permit_rule: "allow[1]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/systemctl", &["status", "nginx;", "reboot"]),
                "default",
                "no allow rule",
            )],
        },
        Pair {
            name: "`**` takes any remaining arguments, `*` exactly one",
            policy: OPS,
            allowed: argv("/usr/bin/journalctl", &["-u", "nginx", "_PID=1", "_UID=0"])
                .by("deploy", Role::Operator),
            permit_rule: "allow[3]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/journalctl", &["-u"]).by("deploy", Role::Operator),
                    "default",
                    "no allow rule",
                ),
                // `**` is a wildcard too: it takes no option.
                (
                    argv(
                        "/usr/bin/journalctl",
                        &["-u", "nginx", "_PID=1", "-n", "50"],
                    )
                    .by("deploy", Role::Operator),
                    "default",
                    "In allow[3], argv[4] \"-n\" is an option, and \"**\" does not match options",
                ),
                (
                    argv("/usr/bin/journalctl", &["-f", "-u", "nginx"])
                        .by("deploy", Role::Operator),
                    "default",
                    "no allow rule",
                ),
                // The rule names its principals; alice is not one of them.
                (
                    argv("/usr/bin/journalctl", &["-u", "nginx"]),
                    "default",
                    "principal \"alice\"",
                ),
            ],
        },
    ]);
}

/// The `[policy]` table of the hardened configuration in docs/security.md: the documented
/// example is the policy under test, so the two cannot drift apart.
fn hardened() -> &'static str {
    const SECURITY_MD: &str = include_str!("../../docs/security.md");
    let section = SECURITY_MD
        .split_once("## Hardened configuration")
        .expect("docs/security.md has the hardened configuration")
        .1;
    let block = section
        .split_once("```toml")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a toml block")
        .0;
    let start = block
        .find("[policy]")
        .expect("the block has a [policy] table");
    &block[start..]
}

#[test]
fn wildcards_in_allow_rules_do_not_match_options() {
    check_pairs(vec![
        Pair {
            // systemctl -H/--host runs ssh to the named host; -M a container.
            name: "systemctl status * takes a unit name, never an option",
            policy: hardened(),
            allowed: argv("/usr/bin/systemctl", &["status", "cron"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/systemctl", &["status", "--host=me@elsewhere"]),
                    "default",
                    "In allow[0], argv[2] \"--host=me@elsewhere\" is an option, and \"*\" \
                     does not match options",
                ),
                (
                    argv("/usr/bin/systemctl", &["status", "-Hme@elsewhere"]),
                    "default",
                    "argv[2] \"-Hme@elsewhere\" is an option",
                ),
                (
                    argv("/usr/bin/systemctl", &["status", "-H", "me@elsewhere"]),
                    "default",
                    "argv[2] \"-H\" is an option",
                ),
                (
                    argv("/usr/bin/systemctl", &["status", "--machine=victim"]),
                    "default",
                    "is an option",
                ),
                (
                    argv("/usr/bin/systemctl", &["status", "-"]),
                    "default",
                    "argv[2] \"-\" is an option",
                ),
            ],
        },
        Pair {
            name: "an option the rule names is allowed, with a wildcard value",
            policy: hardened(),
            allowed: argv("/usr/bin/journalctl", &["-u", "nginx", "--since=-1h"]),
            permit_rule: "allow[1]",
            near_miss_policy: None,
            near_misses: vec![
                // journalctl -H/--host reads a remote journal over ssh; -D/--file other files.
                (
                    argv("/usr/bin/journalctl", &["-u", "--host=x", "--since=today"]),
                    "default",
                    "argv[2] \"--host=x\" is an option",
                ),
                (
                    argv("/usr/bin/journalctl", &["-u", "nginx", "-D/tmp/evil"]),
                    "default",
                    "no allow rule matches",
                ),
                (
                    argv("/usr/bin/journalctl", &["-u", "nginx", "--since", "-1h"]),
                    "default",
                    "no allow rule matches",
                ),
            ],
        },
        Pair {
            // Whether `--` ends the options is up to the program; the policy stays strict.
            name: "after a literal `--`, `*` still takes no option",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/systemctl"
                args = ["status", "--", "*"]
            "#,
            allowed: argv("/usr/bin/systemctl", &["status", "--", "cron"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/systemctl", &["status", "--", "-Hx"]),
                "default",
                "argv[3] \"-Hx\" is an option",
            )],
        },
        Pair {
            name: "`-*` names any one option at its position, and only there",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/ls"
                args = ["-*", "*"]
            "#,
            allowed: argv("/usr/bin/ls", &["-la", "srv"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/ls", &["-la", "-R"]),
                    "default",
                    "argv[2] \"-R\" is an option",
                ),
                (
                    argv("/usr/bin/ls", &["srv", "-la"]),
                    "default",
                    "no allow rule matches",
                ),
            ],
        },
        Pair {
            name: "allow_options = true lets the rule's wildcards match options",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/ls"
                args = ["**"]
                allow_options = true
            "#,
            allowed: argv("/usr/bin/ls", &["-la", "--color=never", "/srv"]),
            permit_rule: "allow[0]",
            near_miss_policy: Some(
                r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/ls"
                args = ["**"]
            "#,
            ),
            near_misses: vec![(
                argv("/usr/bin/ls", &["-la", "--color=never", "/srv"]),
                "default",
                "In allow[0], argv[1] \"-la\" is an option, and \"**\" does not match options",
            )],
        },
        Pair {
            // gcc, clang, ld, javac and 7z read options from `@file`: `-wrapper` in it runs a
            // program. A wildcard must not take a response file where it refuses `-wrapper`.
            name: "`*` takes no response file (`@file`); a pattern that starts with `@` does",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/gcc"
                args = ["-c", "*"]
                [[policy.allow]]
                program = "/usr/bin/gcc"
                args = ["-c", "@/srv/build/*.rsp"]
            "#,
            allowed: argv("/usr/bin/gcc", &["-c", "main.c"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/gcc", &["-c", "@/tmp/rt/opts"]),
                    "default",
                    "argv[2] \"@/tmp/rt/opts\" is an option (a response file), and \"*\" does \
                     not match options (only a pattern that starts with \"@\" does",
                ),
                (
                    argv("/usr/bin/gcc", &["-c", "-wrapper"]),
                    "default",
                    "argv[2] \"-wrapper\" is an option, and \"*\" does not match options",
                ),
            ],
        },
        Pair {
            name: "a rule that names response files allows them, and only those it names",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/gcc"
                args = ["-c", "@/srv/build/*.rsp"]
            "#,
            allowed: argv("/usr/bin/gcc", &["-c", "@/srv/build/app.rsp"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/gcc", &["-c", "@/tmp/rt/opts"]),
                "default",
                "no allow rule matches",
            )],
        },
        Pair {
            name: "allow_options = true lets wildcards take response files too",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/gcc"
                args = ["-c", "*"]
                allow_options = true
            "#,
            allowed: argv("/usr/bin/gcc", &["-c", "@/tmp/rt/opts"]),
            permit_rule: "allow[0]",
            near_miss_policy: Some(
                r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/gcc"
                args = ["-c", "*"]
            "#,
            ),
            near_misses: vec![(
                argv("/usr/bin/gcc", &["-c", "@/tmp/rt/opts"]),
                "default",
                "is an option (a response file)",
            )],
        },
        Pair {
            // A deny rule must catch more, never less: its wildcards match options.
            name: "deny rules' wildcards still match options",
            policy: r#"
                [policy]
                default = "allow"
                [[policy.deny]]
                program = "/usr/bin/rm"
                args = ["-rf", "**"]
                [[policy.deny]]
                program = "/usr/bin/systemctl"
                args = ["*", "*"]
            "#,
            allowed: argv("/usr/bin/rm", &["-r", "x"]),
            permit_rule: "default",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/rm", &["-rf", "--no-preserve-root", "/"]),
                    "deny[0]",
                    "deny rules win",
                ),
                (
                    argv("/usr/bin/systemctl", &["--host=x", "-H"]),
                    "deny[1]",
                    "deny rules win",
                ),
            ],
        },
        Pair {
            // Pagers run commands (`!cmd` in less); a caller must not choose one. Commands
            // have no tty, so none starts, and the policy refuses the variables anyway.
            name: "the hardened policy refuses pager and loader variables",
            policy: hardened(),
            allowed: argv("/usr/bin/systemctl", &["status", "cron"]).env("LC_ALL"),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: [
                "SYSTEMD_PAGER",
                "PAGER",
                "LESSOPEN",
                "SYSTEMD_LESS",
                "LD_PRELOAD",
            ]
            .into_iter()
            .map(|name| {
                (
                    argv("/usr/bin/systemctl", &["status", "cron"]).env(name),
                    "allow_env",
                    "may not be set by this request",
                )
            })
            .collect(),
        },
    ]);
}

#[test]
fn explain_shows_which_argument_matched_which_pattern() {
    let hardened = policy(hardened());
    let text = explain(&hardened, &argv("/usr/bin/systemctl", &["status", "cron"]));
    let line = "  allow[0] (program /usr/bin/systemctl args [\"status\", \"*\"]): MATCHES: \
                argv[1] \"status\" by \"status\", argv[2] \"cron\" by \"*\"";
    assert!(
        text.lines().any(|l| l == line),
        "{line:?} missing in\n{text}"
    );

    let text = explain(
        &hardened,
        &argv("/usr/bin/systemctl", &["status", "--host=me@elsewhere"]),
    );
    let line = "  allow[0] (program /usr/bin/systemctl args [\"status\", \"*\"]): args do not \
                match: argv[2] \"--host=me@elsewhere\" is an option, and \"*\" does not match \
                options (only a pattern that starts with \"-\" does, or allow_options = true)";
    assert!(
        text.lines().any(|l| l == line),
        "{line:?} missing in\n{text}"
    );

    let text = explain(&hardened, &argv("/usr/bin/git", &["log", "-c", "x=y"]));
    assert!(
        text.contains("MATCHES: argv[2] \"-c\" by any_arg \"-c*\""),
        "{text}"
    );
    let text = explain(
        &hardened,
        &argv("/usr/bin/systemctl", &["status", "a", "b"]),
    );
    assert!(
        text.contains("args do not match: the rule takes 2 arguments, 3 given"),
        "{text}"
    );
    let text = explain(&hardened, &argv("/usr/bin/systemctl", &["restart", "cron"]));
    assert!(
        text.contains("args do not match: argv[1] \"restart\" does not match \"status\""),
        "{text}"
    );
    let text = explain(&policy(OPS), &argv("/usr/bin/ls", &["-la"]));
    assert!(
        text.contains("(program /usr/bin/ls): MATCHES (any args)"),
        "{text}"
    );
}

#[test]
fn shell_mode_is_a_rule_and_metacharacters_are_only_shell_syntax_in_shell_mode() {
    check_pairs(vec![
        Pair {
            name: "shell granted to ci only",
            policy: OPS,
            allowed: shell("ls; rm -rf /").by("ci", Role::Operator),
            permit_rule: "allow_shell",
            near_miss_policy: None,
            near_misses: vec![
                (shell("ls; rm -rf /"), "allow_shell", "Pass `argv` instead"),
                (shell("$(id)"), "allow_shell", "Pass `argv` instead"),
                (
                    shell("ls `id`"),
                    "allow_shell",
                    "granted to: principals [\"ci\"]",
                ),
                (shell("ls | sh"), "allow_shell", "/usr/bin/systemctl"),
            ],
        },
        Pair {
            name: "`$(id)` in argv is a literal file name for ls",
            policy: OPS,
            allowed: argv("/usr/bin/ls", &["$(id)"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(shell("ls $(id)"), "allow_shell", "argv")],
        },
        Pair {
            name: "`; rm -rf /` in argv is a literal file name for ls",
            policy: OPS,
            allowed: argv("/usr/bin/ls", &["; rm -rf /"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(shell("ls; rm -rf /"), "allow_shell", "argv")],
        },
        Pair {
            // The shell is judged as a program: deny rules on it still bite, even for ci.
            name: "a granted shell is still subject to deny rules on the shell program",
            policy: r#"
                [policy]
                allow_shell = true
                [[policy.deny]]
                program = "/usr/bin/dash"
                principals = ["mallory"]
            "#,
            allowed: shell("uptime"),
            permit_rule: "allow_shell",
            near_miss_policy: None,
            near_misses: vec![(
                shell("uptime").by("mallory", Role::Operator),
                "deny[0]",
                "deny rules win",
            )],
        },
        Pair {
            name: "any [policy] table turns shell mode off, even with default = allow",
            policy: "",
            allowed: shell("uptime"),
            permit_rule: "allow_shell",
            near_miss_policy: Some(DENYLIST),
            near_misses: vec![(shell("uptime"), "allow_shell", "Anything no deny rule")],
        },
    ]);
}

#[test]
fn deny_rules_win_and_see_arguments_at_any_position() {
    check_pairs(vec![
        Pair {
            name: "git log allowed; git config overrides denied wherever they are",
            policy: OPS,
            allowed: argv("/usr/bin/git", &["log", "--oneline"]),
            permit_rule: "allow[2]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/git", &["-c", "alias.x=!sh", "x"]),
                    "deny[0]",
                    "denied by deny[0] (program /usr/bin/git any_arg [\"-c*\", \"--exec-path*\", \"--config-env*\"]): /usr/bin/git [\"-c\", \"alias.x=!sh\", \"x\"] matches this deny rule, and deny rules win over allow rules. Note: git config overrides run commands",
                ),
                (
                    argv("/usr/bin/git", &["-calias.x=!sh", "x"]),
                    "deny[0]",
                    "deny rules win",
                ),
                // Allowed by allow[2] (log **), but deny wins.
                (
                    argv("/usr/bin/git", &["log", "-c", "core.pager=sh"]),
                    "deny[0]",
                    "deny rules win",
                ),
                (
                    argv("/usr/bin/git", &["log", "--exec-path=/tmp/evil"]),
                    "deny[0]",
                    "deny rules win",
                ),
                // git is a bypass program: outside allow[2] the net denies it.
                (
                    argv("/usr/bin/git", &["x"]),
                    "deny_interpreters",
                    "/usr/bin/git [\"log\", \"**\"]",
                ),
            ],
        },
        Pair {
            name: "rm -rf ** denied in any form that matches; plain rm not allowed either",
            policy: DENYLIST,
            allowed: argv("/usr/bin/ls", &["-la"]),
            permit_rule: "default",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/rm", &["-rf", "/"]),
                "deny[0]",
                "denied by deny[0] (program /usr/bin/rm): /usr/bin/rm [\"-rf\", \"/\"] matches this deny rule, and deny rules win over allow rules. Note: use the cleanup job",
            )],
        },
        Pair {
            name: "deny rule with args: exact denial text names index, program and args",
            policy: OPS,
            allowed: argv("/usr/bin/ls", &["-rf"]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/rm", &["-rf", "/"]),
                "deny[1]",
                "denied by deny[1] (program /usr/bin/rm args [\"-rf\", \"**\"]): ",
            )],
        },
    ]);
}

#[test]
fn working_dirs_are_canonical_and_compared_by_components() {
    let ls = || argv("/usr/bin/ls", &[]);
    check_pairs(vec![Pair {
        name: "inside a root by components only",
        policy: OPS,
        allowed: ls().in_dir("/srv/app/sub", "/srv/app/sub"),
        permit_rule: "allow[0]",
        near_miss_policy: None,
        near_misses: vec![
            (
                ls().in_dir("/srv/app2", "/srv/app2"),
                "working_dirs",
                "working dir /srv/app2 is not inside an allowed root",
            ),
            (
                ls().in_dir("/srv/app/../etc", "/srv/etc"),
                "working_dirs",
                "working dir /srv/app/../etc is not inside an allowed root",
            ),
            (
                ls().in_dir("/srv/app/link", "/etc"),
                "working_dirs",
                "working dir /srv/app/link is not inside an allowed root",
            ),
            (
                ls().in_dir("/srv", "/srv"),
                "working_dirs",
                "/srv/app, /var/log",
            ),
            (ls().no_dir(), "working_dirs", "no working_dir was given"),
        ],
    }]);
    check_pairs(vec![Pair {
        name: "a root itself is allowed",
        policy: OPS,
        allowed: ls().in_dir("/var/log/", "/var/log"),
        permit_rule: "allow[0]",
        near_miss_policy: None,
        near_misses: vec![(
            ls().in_dir("/var/logs", "/var/logs"),
            "working_dirs",
            "root",
        )],
    }]);
}

#[test]
fn request_environment_is_limited_to_allow_env() {
    check_pairs(vec![
        Pair {
            name: "LANG and LC_* allowed; LD_PRELOAD, PATH, GIT_* not",
            policy: OPS,
            allowed: argv("/usr/bin/ls", &[]).env("LANG").env("LC_ALL"),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/ls", &[]).env("LD_PRELOAD"),
                    "allow_env",
                    "LD_PRELOAD",
                ),
                (
                    argv("/usr/bin/ls", &[]).env("LANG").env("PATH"),
                    "allow_env",
                    "PATH",
                ),
                (
                    argv("/usr/bin/git", &["log"]).env("GIT_CONFIG_COUNT"),
                    "allow_env",
                    "GIT_CONFIG_COUNT",
                ),
                (
                    argv("/usr/bin/ls", &[]).env("LANGUAGE"),
                    "allow_env",
                    "LANGUAGE",
                ),
            ],
        },
        Pair {
            name: "a table without allow_env allows no variables",
            policy: "",
            allowed: argv("/usr/bin/ls", &[]).env("LANG"),
            permit_rule: "default",
            near_miss_policy: Some(DENYLIST),
            near_misses: vec![(
                argv("/usr/bin/ls", &[]).env("LANG"),
                "allow_env",
                "none may be set",
            )],
        },
    ]);
}

#[test]
fn roles_read_operator_admin_and_restrict_admin() {
    let rm_rf = || argv("/usr/bin/rm", &["-rf", "/"]);
    check_pairs(vec![
        Pair {
            name: "read never runs commands, even where everything is allowed",
            policy: "",
            allowed: argv("/usr/bin/ls", &[]),
            permit_rule: "default",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv("/usr/bin/ls", &[]).by("viewer", Role::Read),
                    "role",
                    "role read, which never runs commands",
                ),
                (
                    shell("id").by("viewer", Role::Read),
                    "role",
                    "operator or admin",
                ),
            ],
        },
        Pair {
            name: "read is denied by a policy that allows the operator",
            policy: OPS,
            allowed: argv("/usr/bin/ls", &[]),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/ls", &[]).by("viewer", Role::Read),
                "role",
                "read",
            )],
        },
        Pair {
            name: "admin is permitted everything unless restrict_admin",
            policy: OPS,
            allowed: rm_rf().by("root-agent", Role::Admin).no_dir(),
            permit_rule: "admin",
            near_miss_policy: Some(ADMIN_RESTRICTED),
            near_misses: vec![
                (
                    rm_rf().by("root-agent", Role::Admin),
                    "deny[0]",
                    "deny rules win",
                ),
                (
                    argv("/usr/bin/ls", &[]).by("root-agent", Role::Admin),
                    "default",
                    "Allowed for you: /usr/bin/systemctl (any args)",
                ),
                (
                    shell("id").by("root-agent", Role::Admin),
                    "allow_shell",
                    "argv",
                ),
            ],
        },
        Pair {
            name: "restricted admin: a rule for roles = [admin] does not serve operators",
            policy: ADMIN_RESTRICTED,
            allowed: argv("/usr/bin/systemctl", &["restart", "nginx"]).by("boss", Role::Admin),
            permit_rule: "allow[0]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/systemctl", &["restart", "nginx"]),
                "default",
                "No allow rule applies to you",
            )],
        },
    ]);
}

#[test]
fn without_a_policy_table_operators_may_run_anything() {
    check_pairs(vec![Pair {
        name: "permissive default: argv, shell, env, any dir",
        policy: "",
        allowed: argv("/usr/bin/rm", &["-rf", "/"])
            .env("LD_PRELOAD")
            .no_dir(),
        permit_rule: "default",
        near_miss_policy: Some("[policy]"),
        near_misses: vec![
            (
                argv("/usr/bin/rm", &["-rf", "/"]).no_dir(),
                "default",
                "No allow rule applies",
            ),
            (
                argv("/usr/bin/ls", &[]).env("LD_PRELOAD"),
                "allow_env",
                "LD_PRELOAD",
            ),
        ],
    }]);
    let permissive = Policy::permissive();
    assert!(!permissive.is_configured());
    assert_eq!(decide(&permissive, &shell("reboot")).rule(), "allow_shell");
}

// ---------------------------------------------------------------------------------------
// Known bypass programs.
// ---------------------------------------------------------------------------------------

/// Requests that run `rm -rf /` (or any command) through a program that may look harmless,
/// as canonical paths on Debian.
fn bypasses() -> Vec<(ResolvedRequest, &'static str)> {
    vec![
        (
            argv("/usr/bin/env", &["rm", "-rf", "/"]).named("env"),
            "env",
        ),
        (
            argv(
                "/usr/bin/find",
                &["/srv/app", "-exec", "rm", "-rf", "/", ";"],
            ),
            "find",
        ),
        (
            argv("/usr/bin/git", &["-c", "alias.x=!sh -c id", "x"]),
            "git",
        ),
        (
            argv("/usr/bin/dash", &["-c", "rm -rf /"]).named("sh"),
            "dash",
        ),
        (argv("/usr/bin/bash", &["-c", "rm -rf /"]), "bash"),
        (
            argv("/usr/bin/python3.11", &["-c", "import os; os.system('id')"]).named("python3"),
            "python*",
        ),
        (argv("/usr/bin/xargs", &["rm", "-rf"]), "xargs"),
        (argv("/usr/bin/sudo", &["rm", "-rf", "/"]), "sudo"),
        (argv("/usr/bin/su", &["-c", "id"]), "su"),
        (argv("/usr/bin/doas", &["id"]), "doas"),
        (argv("/usr/bin/nohup", &["id"]), "nohup"),
        (argv("/usr/bin/setsid", &["id"]), "setsid"),
        (argv("/usr/bin/timeout", &["5", "id"]), "timeout"),
        (argv("/usr/bin/nice", &["id"]), "nice"),
        (argv("/usr/bin/strace", &["id"]), "strace"),
        (
            argv("/usr/bin/perl5.36.0", &["-e", "system 'id'"]).named("perl"),
            "perl*",
        ),
        (
            argv("/usr/bin/mawk", &["BEGIN{system(\"id\")}"]).named("awk"),
            "mawk",
        ),
        (argv("/usr/bin/busybox", &["sh", "-c", "id"]), "busybox"),
    ]
}

#[test]
fn allowing_a_bypass_program_allows_arbitrary_commands() {
    // With the net off, a broad allow permits every one of these: the policy sees `env`,
    // `find`, `git`, not the `rm` they run. With the net on (the default under
    // default = "deny"), the same requests are denied by deny_interpreters.
    let pairs = bypasses()
        .into_iter()
        .map(|(request, entry)| Pair {
            name: entry,
            policy: BROAD_NO_NET,
            allowed: request.clone(),
            permit_rule: "allow[0]",
            near_miss_policy: Some(BROAD),
            near_misses: vec![(
                request,
                "deny_interpreters",
                "so allowing it would allow any command",
            )],
        })
        .collect();
    check_pairs(pairs);
    for (request, entry) in bypasses() {
        let found = bypass_program(request.program()).map(|bypass| bypass.name);
        assert_eq!(found, Some(entry), "{}", request.program().display());
    }
}

#[test]
fn bypass_list_is_by_file_name_and_spares_ordinary_programs() {
    check_pairs(vec![Pair {
        name: "ordinary programs pass the net",
        policy: BROAD,
        allowed: argv("/usr/bin/systemctl", &["restart", "nginx"]),
        permit_rule: "allow[0]",
        near_miss_policy: None,
        near_misses: vec![(
            argv("/usr/bin/env", &["systemctl", "restart", "nginx"]),
            "deny_interpreters",
            "built-in entry \"env\"",
        )],
    }]);
    for (loader, entry) in [
        (
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "ld-linux*",
        ),
        ("/usr/lib/ld-musl-x86_64.so.1", "ld-musl*"),
        ("/usr/bin/python3-config", "python*"),
    ] {
        let found = bypass_program(Path::new(loader)).map(|bypass| bypass.name);
        assert_eq!(found, Some(entry), "{loader}");
    }
    for ordinary in [
        "/usr/bin/ls",
        "/usr/bin/systemctl",
        "/usr/bin/envsubst",
        "/usr/bin/shred",
    ] {
        assert_eq!(bypass_program(Path::new(ordinary)), None, "{ordinary}");
    }
}

#[test]
fn allow_interpreter_is_needed_and_args_still_bind() {
    check_pairs(vec![
        Pair {
            name: "find with fixed args allowed; -exec is not in them",
            policy: OPS,
            allowed: argv("/usr/bin/find", &["/srv/app", "-name", "*.log"]),
            permit_rule: "allow[4]",
            near_miss_policy: None,
            near_misses: vec![
                (
                    argv(
                        "/usr/bin/find",
                        &["/srv/app", "-name", "x", "-exec", "sh", ";"],
                    ),
                    "deny_interpreters",
                    "-exec, -execdir, -ok and -okdir run any command",
                ),
                (
                    argv("/usr/bin/find", &["/srv/app", "-exec", "sh", ";"]),
                    "deny_interpreters",
                    "allow_interpreter = true",
                ),
                // Only an option kept allow[4] from matching: the denial says which.
                (
                    argv("/usr/bin/find", &["/srv/app", "-name", "-exec"]),
                    "deny_interpreters",
                    "allow_interpreter = true. In allow[4], argv[3] \"-exec\" is an option",
                ),
            ],
        },
        Pair {
            name: "an allow rule without allow_interpreter does not allow a bypass program",
            policy: r#"
                [policy]
                [[policy.allow]]
                program = "/usr/bin/env"
                [[policy.allow]]
                program = "/usr/bin/env"
                args = ["LANG=C", "/usr/bin/ls"]
                allow_interpreter = true
            "#,
            allowed: argv("/usr/bin/env", &["LANG=C", "/usr/bin/ls"]),
            permit_rule: "allow[1]",
            near_miss_policy: None,
            near_misses: vec![(
                argv("/usr/bin/env", &["rm", "-rf", "/"]),
                "deny_interpreters",
                "runs its arguments as a command",
            )],
        },
    ]);
}

// ---------------------------------------------------------------------------------------
// Permit, Denial, explain.
// ---------------------------------------------------------------------------------------

#[test]
fn a_permit_carries_what_was_judged_and_hides_env_values() {
    let mut request = argv("/usr/bin/ls", &["-la"]).named("ls").env("LANG");
    request.env[0].1 = "secret-value".to_owned();
    let permit = decide(&policy(OPS), &request)
        .into_result()
        .expect("permitted");
    assert_eq!(permit.program(), Path::new("/usr/bin/ls"));
    assert_eq!(permit.args(), ["-la"]);
    assert_eq!(permit.working_dir(), Some(Path::new("/srv/app")));
    assert_eq!(
        permit.env(),
        [("LANG".to_owned(), "secret-value".to_owned())]
    );
    assert_eq!(
        (
            permit.principal(),
            permit.role(),
            permit.rule(),
            permit.is_shell()
        ),
        ("alice", Role::Operator, DecidingRule::Allow(0), false)
    );
    let debug = format!("{permit:?} {request:?}");
    assert!(!debug.contains("secret-value"), "{debug}");
    assert!(debug.contains("LANG"), "{debug}");
}

#[test]
fn explain_lists_resolution_every_rule_and_the_decision() {
    let request = argv("/usr/bin/rm", &["-rf", "x"]).named("ls");
    let text = explain(&policy(OPS), &request);
    for line in [
        "principal: alice (role operator)",
        "program: ls -> /usr/bin/rm",
        "args: [\"-rf\", \"x\"]",
        "working dir: /srv/app -> /srv/app",
        "  role: operator is subject to the policy",
        "  allow_shell (granted to: principals [\"ci\"]): not a shell request",
        "  deny[0] (program /usr/bin/git any_arg [\"-c*\", \"--exec-path*\", \"--config-env*\"]): program does not match",
        "  deny[1] (program /usr/bin/rm args [\"-rf\", \"**\"]): MATCHES",
        "  working_dirs: inside a root",
        "  deny_interpreters (on): /usr/bin/rm is not a known bypass program",
        "  allow[0] (program /usr/bin/ls): program does not match",
        "  allow[3] (program /usr/bin/journalctl args [\"-u\", \"*\", \"**\"] principals [\"deploy\"]): does not apply to principal \"alice\" (role operator)",
        "decision: DENY by deny[1]",
    ] {
        assert!(
            text.lines().any(|l| l == line || l.starts_with(line)),
            "missing {line:?} in\n{text}"
        );
    }
    let text = explain(&policy(OPS), &shell("id").by("ci", Role::Operator));
    assert!(text.contains("request: shell command \"id\""), "{text}");
    assert!(text.contains("): granted"), "{text}");
    assert!(text.ends_with("decision: PERMIT by allow_shell"), "{text}");
}

#[test]
fn denial_reasons_are_bounded() {
    let many: Vec<String> = (0..500).map(|i| format!("argument-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let denial = decide(&policy(OPS), &argv("/usr/bin/rm", &many))
        .into_result()
        .expect_err("denied");
    assert!(denial.reason().len() < 1500, "{}", denial.reason().len());
    assert!(denial.reason().contains("more"), "{}", denial.reason());
    assert_eq!(denial.to_string(), denial.reason());
    let long = "x".repeat(10_000);
    let denial = decide(&policy(OPS), &argv("/usr/bin/rm", &[&long]))
        .into_result()
        .expect_err("denied");
    assert!(denial.reason().len() < 1500, "{}", denial.reason().len());
    assert!(denial.reason().contains("xxx\"..."), "{}", denial.reason());
}

// ---------------------------------------------------------------------------------------
// Globs.
// ---------------------------------------------------------------------------------------

#[test]
fn globs_match_whole_strings() {
    use super::glob::Glob;
    let cases = [
        ("status", "status", true),
        ("status", "statusx", false),
        ("status", "xstatus", false),
        ("*", "", true),
        ("*", "nginx; reboot", true),
        ("-c*", "-c", true),
        ("-c*", "-calias.x=!sh", true),
        ("-c*", "x-c", false),
        ("--exec-path*", "--exec-path=/tmp", true),
        ("?", "", false),
        ("?", "é", true),
        ("a?c", "abc", true),
        ("a?c", "abbc", false),
        ("*.log", "a.log", true),
        ("*.log", "a.log.gz", false),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
        ("[ab]", "a", false),
        ("[ab]", "[ab]", true),
        ("\\*", "\\anything", true),
        ("**", "x", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            Glob::new(pattern).matches(text),
            expected,
            "{pattern:?} vs {text:?}"
        );
    }
}

#[test]
fn glob_lists_match_element_wise_with_a_final_rest() {
    use super::glob::GlobList;
    let cases: [(&[&str], &[&str], bool); 9] = [
        (&["status", "*"], &["status", "nginx"], true),
        (&["status", "*"], &["status"], false),
        (&["status", "*"], &["status", "a", "b"], false),
        (&["-rf", "**"], &["-rf"], true),
        (&["-rf", "**"], &["-rf", "/", "x"], true),
        (&["-rf", "**"], &["-r", "-f", "/"], false),
        (&["**"], &[], true),
        (&[], &[], true),
        (&[], &["x"], false),
    ];
    for (patterns, items, expected) in cases {
        let list = GlobList::parse(patterns).expect("valid");
        assert_eq!(list.matches(items), expected, "{patterns:?} vs {items:?}");
    }
    assert_eq!(
        GlobList::parse(&["**", "x"]).map(|_| ()),
        Err(glob::MisplacedRest { index: 0 })
    );
    assert_eq!(
        GlobList::parse(&["a**"]).map(|_| ()),
        Err(glob::MisplacedRest { index: 0 })
    );
}

// ---------------------------------------------------------------------------------------
// The TOML schema and validation.
// ---------------------------------------------------------------------------------------

/// The example of the module docs, and of the report.
const FULL_EXAMPLE: &str = r#"
[policy]
default = "deny"
restrict_admin = false
allow_shell = { principals = ["ci"], roles = ["admin"] }
deny_interpreters = true
working_dirs = ["/srv/app", "/var/log"]
allow_env = ["LANG", "LC_*"]

[[policy.allow]]
program = "/usr/bin/systemctl"
args = ["status", "*"]
principals = ["deploy"]
roles = ["operator"]
allow_interpreter = false
note = "read-only unit status"

[[policy.deny]]
program = "/usr/bin/git"
args = ["**"]
any_arg = ["-c*", "--exec-path*", "--config-env*"]
principals = ["deploy"]
roles = ["operator", "admin"]
note = "git config overrides run commands"
"#;

#[test]
fn the_full_example_parses_into_every_field() {
    let config = parse(FULL_EXAMPLE).expect("parses").expect("has [policy]");
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        config,
        PolicyConfig {
            default: Some(DefaultAction::Deny),
            restrict_admin: Some(false),
            allow_shell: Some(ShellAccess::Only(Grantees {
                principals: Some(strings(&["ci"])),
                roles: Some(vec![RoleName(Role::Admin)]),
            })),
            deny_interpreters: Some(true),
            working_dirs: Some(strings(&["/srv/app", "/var/log"])),
            allow_env: Some(strings(&["LANG", "LC_*"])),
            allow: vec![AllowRule {
                program: "/usr/bin/systemctl".to_owned(),
                args: Some(strings(&["status", "*"])),
                principals: Some(strings(&["deploy"])),
                roles: Some(vec![RoleName(Role::Operator)]),
                allow_interpreter: false,
                allow_options: false,
                note: Some("read-only unit status".to_owned()),
            }],
            deny: vec![DenyRule {
                program: "/usr/bin/git".to_owned(),
                args: Some(strings(&["**"])),
                any_arg: Some(strings(&["-c*", "--exec-path*", "--config-env*"])),
                principals: Some(strings(&["deploy"])),
                roles: Some(vec![RoleName(Role::Operator), RoleName(Role::Admin)]),
                note: Some("git config overrides run commands".to_owned()),
            }],
        }
    );
    Policy::from_config(config).expect("validates");
    for (text, expected) in [
        ("[policy]\nallow_shell = true", ShellAccess::Everyone(true)),
        (
            "[policy]\nallow_shell = false",
            ShellAccess::Everyone(false),
        ),
    ] {
        let config = parse(text).expect("parses").expect("table");
        assert_eq!(config.allow_shell, Some(expected));
    }
    assert_eq!(parse("").expect("parses"), None);
}

#[test]
fn unknown_keys_and_bad_values_are_errors_that_name_them() {
    let cases = [
        ("[policy]\nalow = []", "alow"),
        ("[policy]\ndefault = \"maybe\"", "maybe"),
        ("[policy]\nallow_shell = \"yes\"", "true, false, or a table"),
        ("[policy]\nallow_shell = { users = [\"ci\"] }", "users"),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/ls\"\nany_arg = [\"-x\"]",
            "any_arg",
        ),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/ls\"\nargz = []",
            "argz",
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/bin/ls\"\nallow_interpreter = true",
            "allow_interpreter",
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/bin/ls\"\nallow_options = true",
            "allow_options",
        ),
        ("[[policy.allow]]\nargs = []", "program"),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/ls\"\nroles = [\"root\"]",
            "unknown role \"root\"",
        ),
        ("[policy]\nrestrict_admin = \"yes\"", "restrict_admin"),
    ];
    for (text, needle) in cases {
        let error = parse(text).expect_err(text);
        assert!(error.contains(needle), "{text:?}: {error}");
    }
}

#[test]
fn validation_refuses_patterns_that_cannot_mean_what_they_say() {
    let cases = [
        (
            "[[policy.allow]]\nprogram = \"git\"",
            "allow[0].program",
            PolicyProblem::NotAbsolute("git".into()),
        ),
        (
            "[[policy.allow]]\nprogram = \"\"",
            "allow[0].program",
            PolicyProblem::EmptyPattern,
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/bin/../bin/rm\"",
            "deny[0].program",
            PolicyProblem::NotNormal("/usr/bin/../bin/rm".into()),
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr//bin/rm\"",
            "deny[0].program",
            PolicyProblem::NotNormal("/usr//bin/rm".into()),
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/**/rm\"",
            "deny[0].program",
            PolicyProblem::MisplacedRest(1),
        ),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/rm\"\nargs = [\"**\", \"-rf\"]",
            "allow[0].args",
            PolicyProblem::MisplacedRest(0),
        ),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/rm\"\nargs = [\"x**\"]",
            "allow[0].args",
            PolicyProblem::MisplacedRest(0),
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/bin/git\"\nany_arg = [\"**\"]",
            "deny[0].any_arg",
            PolicyProblem::MisplacedRest(0),
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/bin/git\"\nany_arg = []",
            "deny[0].any_arg",
            PolicyProblem::EmptyList,
        ),
        (
            "[[policy.deny]]\nprogram = \"/usr/bin/git\"\nprincipals = []",
            "deny[0].principals",
            PolicyProblem::EmptyList,
        ),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/ls\"\nroles = [\"read\"]",
            "allow[0].roles",
            PolicyProblem::ReadRole,
        ),
        (
            "[policy]\nallow_shell = { roles = [] }",
            "allow_shell.roles",
            PolicyProblem::EmptyList,
        ),
        (
            "[policy]\nallow_shell = {}",
            "allow_shell",
            PolicyProblem::EmptyList,
        ),
        (
            "[policy]\nworking_dirs = []",
            "working_dirs",
            PolicyProblem::EmptyList,
        ),
        (
            "[policy]\nworking_dirs = [\"srv/app\"]",
            "working_dirs[0]",
            PolicyProblem::NotAbsolute("srv/app".into()),
        ),
        (
            "[policy]\nworking_dirs = [\"/srv/app/..\"]",
            "working_dirs[0]",
            PolicyProblem::NotNormal("/srv/app/..".into()),
        ),
        (
            "[policy]\nallow_env = [\"\"]",
            "allow_env[0]",
            PolicyProblem::EmptyPattern,
        ),
        (
            "[[policy.allow]]\nprogram = \"/usr/bin/ls\"\nallow_options = true",
            "allow[0].allow_options",
            PolicyProblem::OptionsWithoutArgs,
        ),
    ];
    for (text, location, problem) in cases {
        let config = parse(text).expect(text).expect("table");
        let error = Policy::from_config(config).expect_err(text);
        assert_eq!(
            (error.location.as_str(), &error.problem),
            (location, &problem),
            "{text}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("policy.{location}: "))
        );
        assert!(!error.hint().is_empty());
    }
    // The edges that are valid: root "/" and a program glob over everything;
    // allow_options with `args`.
    policy("[policy]\nworking_dirs = [\"/\"]\n[[policy.deny]]\nprogram = \"/**\"");
    policy("[[policy.allow]]\nprogram = \"/usr/bin/ls\"\nargs = []\nallow_options = true");
}

#[test]
fn defaults_of_a_table() {
    let table = policy("[policy]");
    assert!(table.is_configured());
    assert_eq!(table.default, DefaultAction::Deny);
    assert!(table.deny_interpreters);
    assert!(!table.restrict_admin);
    assert_eq!(table.allow_env.as_deref().map(<[_]>::len), Some(0));
    let allow = policy("[policy]\ndefault = \"allow\"");
    assert!(!allow.deny_interpreters);
    let both = policy("[policy]\ndefault = \"allow\"\ndeny_interpreters = true");
    assert!(both.deny_interpreters);
}

// ---------------------------------------------------------------------------------------
// The resolver, on a real filesystem.
// ---------------------------------------------------------------------------------------

/// A temporary directory removed on drop; its path is canonical.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hostmcp-policy-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        Self(fs::canonicalize(&path).expect("canonical temp dir"))
    }
    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
    fn dir(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(&path).expect("create dir");
        path
    }
    fn executable(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
    fn str(&self, relative: &str) -> String {
        self.path(relative)
            .to_str()
            .expect("utf-8 temp dir")
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn canonical(path: &str) -> PathBuf {
    fs::canonicalize(path).expect("exists on the test machine")
}

fn request<'a>(argv: &'a [String], working_dir: Option<&'a Path>) -> CommandRequest<'a> {
    CommandRequest {
        principal_name: "alice",
        role: Role::Operator,
        // Leaked: a test's request lives as long as the test process.
        command: Box::leak(Box::new(CommandLine::Argv(argv.to_vec()))),
        working_dir,
        env: &[],
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// A policy allowing the real `ls` by its canonical path, resolved like the server does.
fn allow_ls() -> Policy {
    let text = "[policy]\n[[policy.allow]]\nprogram = \"/bin/ls\"";
    resolve_policy(parse(text).expect("parses")).expect("validates")
}

#[test]
fn a_symlink_named_like_an_allowed_program_is_judged_by_its_target() {
    let tmp = TempDir::new();
    symlink(canonical("/bin/rm"), tmp.path("ls")).expect("symlink");
    let argv = strings(&["ls", "-la"]);
    let policy = allow_ls();

    // Near miss first: the temp dir is first on PATH, so `ls` is rm.
    let path = format!("{}:/usr/bin:/bin", tmp.str(""));
    let evil = resolve(&request(&argv, None), &path).expect("resolves");
    assert_eq!(evil.program(), canonical("/bin/rm"));
    assert_eq!(evil.requested_program(), "ls");
    let denial = decide(&policy, &evil).into_result().expect_err("denied");
    assert_eq!(denial.rule(), "default");
    assert!(
        denial.reason().contains("(resolved from \"ls\")"),
        "{}",
        denial.reason()
    );

    let real = resolve(&request(&argv, None), "/usr/bin:/bin").expect("resolves");
    assert_eq!(real.program(), canonical("/bin/ls"));
    assert_eq!(decide(&policy, &real).rule(), "allow[0]");
}

#[test]
fn a_renamed_copy_is_judged_by_where_it_is() {
    let tmp = TempDir::new();
    fs::copy(canonical("/bin/rm"), tmp.path("ls")).expect("copy");
    let argv = strings(&["ls"]);
    let copy = resolve(&request(&argv, None), &tmp.str("")).expect("resolves");
    assert_eq!(copy.program(), tmp.path("ls"));
    assert_eq!(decide(&allow_ls(), &copy).rule(), "default");
    let real = resolve(&request(&argv, None), "/usr/bin").expect("resolves");
    assert_eq!(decide(&allow_ls(), &real).rule(), "allow[0]");
}

#[test]
fn working_dirs_on_disk_dotdot_and_symlinks_escaping_a_root() {
    let tmp = TempDir::new();
    tmp.dir("app/sub");
    tmp.dir("app2");
    tmp.dir("outside");
    symlink(tmp.path("outside"), tmp.path("app/link")).expect("symlink");
    symlink(tmp.path("app"), tmp.path("app-link")).expect("symlink");
    let text = format!(
        "[policy]\nworking_dirs = [\"{}\"]\n[[policy.allow]]\nprogram = \"/bin/ls\"",
        tmp.str("app-link")
    );
    let policy = resolve_policy(parse(&text).expect("parses")).expect("validates");
    let argv = strings(&["ls"]);
    let judge = |dir: &str| {
        let dir = tmp.path(dir);
        let resolved = resolve(&request(&argv, Some(&dir)), "/usr/bin").expect("resolves");
        decide(&policy, &resolved).rule().to_owned()
    };
    // The root is written as a symlink (app-link -> app); resolve_policy canonicalized it.
    for allowed in ["app", "app/sub", "app/sub/..", "app-link/sub"] {
        assert_eq!(judge(allowed), "allow[0]", "{allowed}");
    }
    for escaping in [
        "app2",
        "app/../outside",
        "app/link",
        "app/sub/../../outside",
        ".",
    ] {
        assert_eq!(judge(escaping), "working_dirs", "{escaping}");
    }
    // Without resolve_policy the symlinked root is compared as written and matches nothing.
    let unresolved =
        Policy::from_config(parse(&text).expect("parses").expect("table")).expect("validates");
    let dir = tmp.path("app/sub");
    let resolved = resolve(&request(&argv, Some(&dir)), "/usr/bin").expect("resolves");
    assert_eq!(decide(&unresolved, &resolved).rule(), "working_dirs");
}

#[test]
fn resolve_policy_canonicalizes_directories_and_deny_targets_but_never_widens_allows() {
    let tmp = TempDir::new();
    tmp.dir("real");
    tmp.dir("bin");
    tmp.executable("real/tool-1.2");
    symlink(tmp.path("real/tool-1.2"), tmp.path("bin/tool")).expect("symlink");
    symlink(tmp.path("real"), tmp.path("linkdir")).expect("symlink");
    let argv = strings(&["tool", "--version"]);
    let resolved = resolve(&request(&argv, None), &tmp.str("bin")).expect("resolves");
    assert_eq!(resolved.program(), tmp.path("real/tool-1.2"));
    let load = |text: &str| resolve_policy(parse(text).expect("parses")).expect("validates");
    let as_written = |text: &str| {
        Policy::from_config(parse(text).expect("parses").expect("table")).expect("validates")
    };

    // Directories are canonicalized, for allow and deny rules: a symlinked directory in a
    // pattern means its target. Compared as written, the same rules miss.
    for written in [
        format!("{}/*", tmp.str("linkdir")),
        format!("{}/tool-1.2", tmp.str("linkdir")),
    ] {
        let text = format!("[policy]\n[[policy.allow]]\nprogram = \"{written}\"");
        assert_eq!(
            decide(&load(&text), &resolved).rule(),
            "allow[0]",
            "{written}"
        );
        assert!(explain(&load(&text), &resolved).contains(&format!("program {written} (= ")));
        assert_eq!(
            decide(&as_written(&text), &resolved).rule(),
            "default",
            "{written}"
        );
    }

    // A deny rule naming an alias (bin/tool -> real/tool-1.2) denies the real binary;
    // an allow rule naming the alias does not allow it.
    let alias = tmp.str("bin/tool");
    let deny = format!("[policy]\ndefault = \"allow\"\n[[policy.deny]]\nprogram = \"{alias}\"");
    assert_eq!(decide(&load(&deny), &resolved).rule(), "deny[0]");
    assert_eq!(decide(&as_written(&deny), &resolved).rule(), "default");
    let allow = format!("[policy]\n[[policy.allow]]\nprogram = \"{alias}\"");
    assert_eq!(decide(&load(&allow), &resolved).rule(), "default");

    // The real system: `sh` is judged as what /bin/sh links to. A deny rule naming /bin/sh
    // catches it; an allow rule must name the canonical file.
    let sh = strings(&["sh", "-c", "id"]);
    let resolved = resolve(&request(&sh, None), "/usr/bin:/bin").expect("resolves");
    assert_eq!(resolved.program(), canonical("/bin/sh"));
    let deny = "[policy]\ndefault = \"allow\"\n[[policy.deny]]\nprogram = \"/bin/sh\"";
    assert_eq!(decide(&load(deny), &resolved).rule(), "deny[0]");
    let allow = format!(
        "[policy]\n[[policy.allow]]\nprogram = \"{}\"\nallow_interpreter = true",
        canonical("/bin/sh").display()
    );
    assert_eq!(decide(&load(&allow), &resolved).rule(), "allow[0]");
    assert_eq!(resolve_policy(None).map(|p| p.is_configured()), Ok(false));
}

#[test]
fn shell_mode_resolves_to_the_canonical_shell() {
    let tmp = TempDir::new();
    let dir = tmp.dir("work");
    let resolved = resolve(
        &CommandRequest {
            principal_name: "ci",
            role: Role::Operator,
            command: &CommandLine::Shell("ls; rm -rf /".to_owned()),
            working_dir: Some(&dir),
            env: &[("LANG".to_owned(), "C".to_owned())],
        },
        "",
    )
    .expect("resolves");
    assert!(resolved.is_shell());
    assert_eq!(resolved.program(), canonical(SHELL));
    assert_eq!(resolved.args(), ["-c", "ls; rm -rf /"]);
    assert_eq!(resolved.working_dir(), Some(dir.as_path()));
    assert_eq!(resolved.env_names().collect::<Vec<_>>(), ["LANG"]);
    assert_eq!(
        (resolved.principal(), resolved.role()),
        ("ci", Role::Operator)
    );
}

#[test]
fn path_lookup_follows_execvp_without_the_current_directory() {
    let tmp = TempDir::new();
    tmp.dir("a");
    tmp.dir("b");
    tmp.executable("b/tool");
    fs::write(tmp.path("a/tool"), "not executable").expect("write");
    tmp.dir("c/tool");
    let argv = strings(&["tool"]);
    // A non-executable file and a directory of the same name are skipped.
    let path = format!("{}:{}:{}", tmp.str("a"), tmp.str("c"), tmp.str("b"));
    let found = resolve(&request(&argv, None), &path).expect("resolves");
    assert_eq!(found.program(), tmp.path("b/tool"));
    // Empty and relative entries do not mean the current directory.
    let near = resolve(&request(&argv, None), ":.:a");
    assert!(
        matches!(near, Err(ResolveError::NotFound { .. })),
        "{near:?}"
    );

    // A relative path is taken against the working dir, and needs one.
    let dot = strings(&["./tool"]);
    let dir = tmp.path("b");
    let found = resolve(&request(&dot, Some(&dir)), "").expect("resolves");
    assert_eq!(found.program(), tmp.path("b/tool"));
    let near = resolve(&request(&dot, None), "");
    assert!(
        matches!(near, Err(ResolveError::RelativeProgram { .. })),
        "{near:?}"
    );
}

#[test]
fn malformed_requests_are_resolve_errors() {
    let tmp = TempDir::new();
    let file = tmp.executable("file");
    let empty: Vec<String> = Vec::new();
    let nul = strings(&["ls", "a\0b"]);
    let ls = strings(&["ls"]);
    let not_exec = strings(&[tmp.str("plain").as_str()]);
    fs::write(tmp.path("plain"), "x").expect("write");
    let relative = PathBuf::from("srv/app");
    let missing = tmp.path("missing");
    let bad_env = [("A=B".to_owned(), "x".to_owned())];
    type Case<'a> = (CommandRequest<'a>, &'a str, fn(&ResolveError) -> bool);
    let cases: Vec<Case<'_>> = vec![
        (request(&empty, None), "/usr/bin", |e| {
            matches!(e, ResolveError::EmptyArgv)
        }),
        (request(&nul, None), "/usr/bin", |e| {
            matches!(e, ResolveError::NulByte { .. })
        }),
        (request(&ls, Some(&relative)), "/usr/bin", |e| {
            matches!(e, ResolveError::RelativeWorkingDir { .. })
        }),
        (request(&ls, Some(&missing)), "/usr/bin", |e| {
            matches!(e, ResolveError::WorkingDir { .. })
        }),
        (request(&ls, Some(&file)), "/usr/bin", |e| {
            matches!(e, ResolveError::NotADirectory { .. })
        }),
        (request(&not_exec, None), "/usr/bin", |e| {
            matches!(e, ResolveError::NotExecutable { .. })
        }),
        (request(&ls, None), "", |e| {
            matches!(e, ResolveError::NotFound { .. })
        }),
        (
            CommandRequest {
                env: &bad_env,
                ..request(&ls, None)
            },
            "/usr/bin",
            |e| matches!(e, ResolveError::BadEnvName { .. }),
        ),
    ];
    for (index, (request, path, expected)) in cases.into_iter().enumerate() {
        let error = resolve(&request, path).expect_err("fails");
        assert!(expected(&error), "case {index}: {error:?}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn a_program_not_found_names_the_program_not_the_servers_path() {
    let missing = strings(&["hostmcp-no-such-program"]);
    let search_path = "/opt/site-layout/bin:/usr/bin";
    let error = resolve(&request(&missing, None), search_path).expect_err("not found");
    let message = error.to_string();
    assert!(
        message.contains("program \"hostmcp-no-such-program\" was not found on this host"),
        "{message}"
    );
    assert!(
        !message.contains("/opt/site-layout") && !message.contains("PATH"),
        "{message}"
    );
    // The operator's view (`policy explain`) keeps the PATH that was searched.
    assert!(
        error
            .detail()
            .ends_with("(PATH searched: /opt/site-layout/bin:/usr/bin)"),
        "{}",
        error.detail()
    );
    // Near miss: a program that is there resolves through the same PATH.
    let ls = strings(&["ls"]);
    assert!(resolve(&request(&ls, None), search_path).is_ok());
}

/// F10 (red team): with `working_dirs`, a working dir outside the roots gets one answer
/// whether it exists, is a file, cannot be entered, or is missing; inside a root, the real
/// error stays (the near miss), and a dir inside a root is resolved as usual.
#[test]
fn a_working_dir_outside_the_roots_does_not_reveal_whether_it_exists() {
    let tmp = TempDir::new();
    tmp.dir("root/sub");
    tmp.dir("outside");
    fs::write(tmp.path("file"), "x").expect("write");
    let locked = tmp.dir("locked");
    let locked_in = tmp.dir("root/locked");
    for dir in [&locked, &locked_in] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let confined = policy(&format!(
        "[policy]\nworking_dirs = [{:?}]\n[[policy.allow]]\nprogram = \"/usr/bin/ls\"\n",
        tmp.str("root")
    ));
    let ls = strings(&["ls"]);
    let dot = strings(&["./tool"]);
    let refusal = |argv: &[String], dir: &str| {
        let dir = tmp.path(dir);
        match resolve_confined(&confined, &request(argv, Some(&dir)), "/usr/bin") {
            Err(error @ ResolveError::OutsideRoots(_)) => {
                assert_eq!(error.rule(), "working_dirs");
                error
                    .to_string()
                    .replace(dir.to_str().expect("utf-8"), "DIR")
            }
            other => panic!("{}: expected OutsideRoots, got {other:?}", dir.display()),
        }
    };
    let expected = format!(
        "denied by working_dirs ({}): working dir DIR is not inside an allowed root; pass a \
         working_dir that is a root or inside one, after `..` and symlinks are resolved.",
        tmp.str("root")
    );
    let root_user = nix::unistd::Uid::effective().is_root();
    let mut outside = vec![
        "outside",
        "missing",
        "missing/deeper",
        "file",
        "root/../outside",
    ];
    if !root_user {
        outside.push("locked");
    }
    for dir in outside {
        assert_eq!(refusal(&ls, dir), expected, "{dir}");
        // Nothing else is judged first: a program relative to it gets the same answer.
        assert_eq!(refusal(&dot, dir), expected, "{dir} with ./tool");
    }

    // Near misses: inside a root, a dir resolves, and a missing or locked one says so.
    let sub = tmp.path("root/sub");
    let found = resolve_confined(&confined, &request(&ls, Some(&sub)), "/usr/bin");
    assert_eq!(found.expect("inside").working_dir(), Some(sub.as_path()));
    let missing = tmp.path("root/missing");
    let error = resolve_confined(&confined, &request(&ls, Some(&missing)), "/usr/bin")
        .expect_err("missing");
    assert!(
        matches!(error, ResolveError::WorkingDir { .. }),
        "{error:?}"
    );
    assert_eq!(error.rule(), "resolve");
    if !root_user {
        let error = resolve_confined(&confined, &request(&ls, Some(&locked_in)), "/usr/bin")
            .expect_err("locked");
        assert!(
            error
                .to_string()
                .contains("cannot be entered: the server's user may not search"),
            "{error}"
        );
    }
    // An admin the policy does not bind gets the real error; one it binds does not.
    let missing = tmp.path("missing");
    let admin = CommandRequest {
        role: Role::Admin,
        ..request(&ls, Some(&missing))
    };
    let error = resolve_confined(&confined, &admin, "/usr/bin").expect_err("missing");
    assert!(
        matches!(error, ResolveError::WorkingDir { .. }),
        "{error:?}"
    );
    let restricted = policy(&format!(
        "[policy]\nrestrict_admin = true\nworking_dirs = [{:?}]\n",
        tmp.str("root")
    ));
    let error = resolve_confined(&restricted, &admin, "/usr/bin").expect_err("missing");
    assert!(matches!(error, ResolveError::OutsideRoots(_)), "{error:?}");
    // Without roots there is nothing to hide: the real errors.
    let open = Policy::permissive();
    let outside = tmp.path("missing");
    let error =
        resolve_confined(&open, &request(&ls, Some(&outside)), "/usr/bin").expect_err("missing");
    assert!(
        matches!(error, ResolveError::WorkingDir { .. }),
        "{error:?}"
    );
    if !root_user {
        // F10 (b): an unsearchable dir is reported as such, not as a program not executable.
        let error =
            resolve_confined(&open, &request(&ls, Some(&locked)), "/usr/bin").expect_err("locked");
        assert!(
            matches!(error, ResolveError::NotSearchable { .. }),
            "{error:?}"
        );
    }
    for dir in [&locked, &locked_in] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod back");
    }
}
