//! `explain`: a multi-line account of how a policy judges a request, for
//! `hostmcp policy explain`. It renders the [`Trail`] that [`evaluate`] recorded (the same
//! walk [`decide`](super::decide) takes, kept whole) and never re-walks the order itself.

use crate::auth::Role;

use super::{
    Decision, Policy, ResolvedRequest,
    args::describe_matches,
    decide::{Step, Trail, evaluate, into_decision, join_display},
    rules::{Rule, RuleMatch},
    shown::show_args,
};

/// A multi-line account of how `policy` judges `request`: what was resolved, every check
/// and rule with whether it applied and matched, and the decision (the same one
/// [`decide`](super::decide) returns). Runs nothing.
pub fn explain(policy: &Policy, request: &ResolvedRequest) -> String {
    let mut trail = Trail::kept();
    let verdict = evaluate(policy, request, &mut trail);
    let mut out = header(policy, request);
    out.push("checks:".to_owned());
    out.extend(
        trail
            .steps()
            .iter()
            .map(|step| format!("  {}", render_step(policy, request, step))),
    );
    match into_decision(policy, request, verdict) {
        Decision::Permit(permit) => {
            out.push(format!(
                "runs as: {}",
                permit.run_as().map_or_else(
                    || "the token's run_as user (the rule names none)".to_owned(),
                    |user| format!("{user} (the rule's run_as, over the token's)"),
                )
            ));
            out.push(format!("rule limits: {}", permit.limits().describe()));
            out.push(format!("rule reach: {}", permit.reach().describe()));
            if let Some(approval) = permit.approval() {
                out.push(format!(
                    "approval: required: a person approves each command before it runs{}",
                    approval
                        .reason
                        .as_ref()
                        .map_or_else(String::new, |reason| format!(" (reason: {reason})"))
                ));
            }
            out.push(format!("decision: PERMIT by {}", permit.rule()));
        }
        Decision::Deny(denial) => {
            out.push(format!("decision: DENY by {}\n  {denial}", denial.rule()));
        }
    }
    out.join("\n")
}

/// What was asked and what it resolved to, and the policy's settings.
fn header(policy: &Policy, request: &ResolvedRequest) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "principal: {} (role {})",
        request.principal, request.role
    ));
    if request.shell {
        let script = request.args.get(1).map_or("", String::as_str);
        out.push(format!("request: shell command {script:?}"));
    } else {
        out.push(format!("request: argv[0] {:?}", request.requested_program));
    }
    out.push(format!(
        "program: {} -> {}",
        request.requested_program,
        request.program.display()
    ));
    out.push(format!("args: {}", show_args(&request.args)));
    out.push(
        match (&request.requested_working_dir, &request.working_dir) {
            (Some(given), Some(dir)) => {
                format!("working dir: {} -> {}", given.display(), dir.display())
            }
            _ => "working dir: (none given)".to_owned(),
        },
    );
    let env: Vec<&str> = request.env_names().collect();
    out.push(format!("env: {env:?}"));
    out.push(format!("policy: {}", summary(policy)));
    out
}

/// One line: the settings that are not rules.
fn summary(policy: &Policy) -> String {
    if !policy.configured {
        return "no [policy] table: permissive (operators may run anything)".to_owned();
    }
    let roots = match &policy.working_dirs {
        None => "any".to_owned(),
        Some(roots) => join_display(roots),
    };
    let env = match &policy.allow_env {
        None => "any".to_owned(),
        Some(globs) if globs.is_empty() => "none".to_owned(),
        Some(globs) => format!("{globs:?}"),
    };
    format!(
        "default {}; restrict_admin {}; allow_shell {}; deny_interpreters {}; \
         working_dirs {roots}; allow_env {env}; {} allow and {} deny rules",
        policy.default.as_str(),
        policy.restrict_admin,
        policy.shell,
        policy.deny_interpreters,
        policy.allow.len(),
        policy.deny.len(),
    )
}

fn render_step(policy: &Policy, request: &ResolvedRequest, step: &Step<'_>) -> String {
    match step {
        Step::Role => format!(
            "role: {}",
            match request.role {
                Role::Read => "read never runs commands",
                Role::Admin if !policy.restrict_admin => {
                    "admin is not subject to the policy (restrict_admin = false); rules below are not applied"
                }
                Role::Admin => "admin is judged like an operator (restrict_admin = true)",
                Role::Operator => "operator is subject to the policy",
            }
        ),
        Step::Shell { granted } => format!(
            "allow_shell (granted to: {}): {}",
            policy.shell,
            match granted {
                None => "not a shell request",
                Some(true) => "granted",
                Some(false) => "NOT granted",
            }
        ),
        Step::Rule { rule, judged } => {
            format!(
                "{}: {}",
                rule.title(),
                rule_outcome(rule, request, judged.as_ref())
            )
        }
        Step::WorkingDirs(outcome) => format!(
            "working_dirs: {}",
            match outcome {
                Ok(()) if policy.working_dirs.is_none() => "any directory".to_owned(),
                Ok(()) => "inside a root".to_owned(),
                Err(denial) => format!("FAILS: {denial}"),
            }
        ),
        Step::Env(outcome) => format!(
            "allow_env: {}",
            match outcome {
                Ok(()) => "ok".to_owned(),
                Err(denial) => format!("FAILS: {denial}"),
            }
        ),
        Step::Interpreters(bypass) => format!(
            "deny_interpreters ({}): {}",
            if policy.deny_interpreters {
                "on"
            } else {
                "off"
            },
            match bypass {
                None => format!(
                    "{} is not a known bypass program",
                    request.program.display()
                ),
                Some(bypass) => format!(
                    "{} is known bypass program {:?}: {}",
                    request.program.display(),
                    bypass.name,
                    bypass.why
                ),
            }
        ),
        Step::Default => format!("default: {}", policy.default.as_str()),
    }
}

fn rule_outcome(rule: &Rule, request: &ResolvedRequest, judged: Option<&RuleMatch>) -> String {
    let Some(judged) = judged else {
        return format!(
            "does not apply to principal {:?} (role {})",
            request.principal, request.role
        );
    };
    match judged {
        RuleMatch::Yes(_) if rule.args.is_none() && rule.any_arg.is_none() => {
            "MATCHES (any args)".to_owned()
        }
        RuleMatch::Yes(matched) => {
            format!("MATCHES: {}", describe_matches(matched, &request.args))
        }
        RuleMatch::Program => "program does not match".to_owned(),
        RuleMatch::Args(mismatch) => format!("args do not match: {mismatch}"),
        RuleMatch::AnyArg => "no argument matches any_arg".to_owned(),
    }
}
