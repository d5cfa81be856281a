//! What a permit carries, how a denial reads, and what `explain` prints.

use super::*;

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

#[test]
fn explain_prints_the_trail_evaluate_kept_and_decide_keeps_none() {
    let policy = policy(OPS);
    for request in [
        argv("/usr/bin/rm", &["-rf", "x"]),
        argv("/usr/bin/ls", &["-la"]),
        shell("id").by("ci", Role::Operator),
        argv("/usr/bin/ls", &[]).by("reader", Role::Read),
    ] {
        let mut kept = decide::Trail::kept();
        let walked = decide::evaluate(&policy, &request, &mut kept);
        let mut none = decide::Trail::default();
        let quick = decide::evaluate(&policy, &request, &mut none);
        assert_eq!(walked, quick, "the whole walk decides as the short one");
        assert!(none.steps().is_empty());
        assert!(matches!(kept.steps().first(), Some(decide::Step::Role)));
        assert!(matches!(kept.steps().last(), Some(decide::Step::Default)));
        let text = explain(&policy, &request);
        let checks = text
            .lines()
            .skip_while(|line| *line != "checks:")
            .skip(1)
            .take_while(|line| line.starts_with("  "))
            .count();
        assert_eq!(checks, kept.steps().len(), "one line per step:\n{text}");
    }
}

#[test]
fn a_deciding_rule_is_written_as_the_log_writes_it() {
    assert_eq!(DecidingRule::Allow(2).to_string(), "allow[2]");
    assert_eq!(DecidingRule::Deny(0), "deny[0]");
    assert_ne!(DecidingRule::Deny(0), "deny[1]");
    assert_ne!(DecidingRule::Deny(0), "allow[0]");
    assert_ne!(DecidingRule::Deny(0), "deny[0");
    assert_eq!(DecidingRule::AllowShell, "allow_shell");
    assert_ne!(DecidingRule::AllowShell, "allow");
    assert_eq!(format!("{:?}", DecidingRule::Default), "\"default\"");
}

const APPROVE: &str = r#"
[policy]
[[policy.allow]]
program = "/usr/bin/systemctl"
args = ["restart", "*"]
approve = true
approve_reason = "restarts a service"

[[policy.allow]]
program = "/usr/bin/systemctl"
args = ["status", "*"]
"#;

#[test]
fn an_approve_rule_permits_with_the_approval_need_and_explain_says_so() {
    let policy = policy(APPROVE);
    let restart = decide(&policy, &argv("/usr/bin/systemctl", &["restart", "nginx"]))
        .into_result()
        .expect("permitted, pending approval");
    assert_eq!(
        restart.approval(),
        Some(&ApprovalNeed {
            reason: Some("restarts a service".to_owned())
        })
    );
    let text = explain(&policy, &argv("/usr/bin/systemctl", &["restart", "nginx"]));
    assert!(
        text.contains("approval: required: a person approves each command before it runs (reason: restarts a service)"),
        "{text}"
    );
    assert!(
        text.contains("approve approve_reason \"restarts a service\""),
        "{text}"
    );
    // Near miss: a rule without `approve` needs none.
    let status = decide(&policy, &argv("/usr/bin/systemctl", &["status", "nginx"]))
        .into_result()
        .expect("permitted");
    assert_eq!(status.approval(), None);
    let text = explain(&policy, &argv("/usr/bin/systemctl", &["status", "nginx"]));
    assert!(!text.contains("approval:"), "{text}");
}

#[test]
fn approve_reason_without_approve_is_refused() {
    let config =
        parse("[policy]\n[[policy.allow]]\nprogram = \"/usr/bin/ls\"\napprove_reason = \"why\"\n")
            .unwrap()
            .unwrap();
    let error = Policy::from_config(config).unwrap_err();
    assert!(
        error.to_string().contains("allow[0].approve_reason"),
        "{error}"
    );
}
