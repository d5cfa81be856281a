//! The TOML schema and its validation.

use super::*;

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
                run_as: None,
                limits: None,
                fs_read: None,
                fs_write: None,
                network: None,
                approve: false,
                approve_reason: None,
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
