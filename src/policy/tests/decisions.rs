//! Decision pairs: every allowed case with its near misses (`check_pairs`), step by step.

use super::*;

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
    const SECURITY_MD: &str = include_str!("../../../docs/security.md");
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
