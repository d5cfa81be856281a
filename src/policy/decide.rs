//! The decision order: [`decide`] walks the steps of the module docs of
//! [`policy`](super) over a [`ResolvedRequest`] and returns a [`Permit`] or a [`Denial`].
//! Pure: no I/O, no clock, no globals. It words nothing (a denial is data, worded in
//! `denial`) and prints nothing: when asked, it records each step it took in a [`Trail`],
//! which `explain` renders.

use std::path::Path;

use crate::auth::Role;

use super::{
    DefaultAction, Policy, ResolvedRequest,
    bypass::{BypassProgram, bypass_program},
    denial::{Allowed, Asker, DecidingRule, Denial, OptionHint, ShownCommand},
    request::Permit,
    rules::{Root, Rule, RuleMatch},
};

/// The outcome of [`decide`].
#[derive(Debug)]
// One decision per call, moved once and never stored in bulk: boxing the permit would cost
// an allocation per call for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    Permit(Permit),
    Deny(Denial),
}

impl Decision {
    /// The rule that decided: `allow[2]`, `deny[0]`, `default`, `role`, ...
    pub fn rule(&self) -> DecidingRule {
        match self {
            Self::Permit(permit) => permit.rule(),
            Self::Deny(denial) => denial.rule(),
        }
    }

    pub fn is_permit(&self) -> bool {
        matches!(self, Self::Permit(_))
    }

    pub fn into_result(self) -> Result<Permit, Denial> {
        match self {
            Self::Permit(permit) => Ok(permit),
            Self::Deny(denial) => Err(denial),
        }
    }
}

/// One step [`evaluate`] took, with what it found.
#[derive(Debug)]
pub(super) enum Step<'p> {
    /// Steps 1 and 2: the caller's role (`role` / `admin`).
    Role,
    /// Step 3: `allow_shell`; `None`: not a shell request.
    Shell { granted: Option<bool> },
    /// A deny (step 4) or allow (step 9) rule; `None`: it does not apply to the caller.
    Rule {
        rule: &'p Rule,
        judged: Option<RuleMatch>,
    },
    /// Step 5.
    WorkingDirs(Result<(), Denial>),
    /// Step 6.
    Env(Result<(), Denial>),
    /// Step 8: the bypass entry the program is, if any.
    Interpreters(Option<&'static BypassProgram>),
    /// Step 10.
    Default,
}

/// The steps [`evaluate`] took, when they are wanted. For [`decide`] nothing is kept and
/// the walk ends at the first step that decides; for `explain` every step is walked and
/// kept, and the verdict is still the first decisive step's.
#[derive(Debug, Default)]
pub(super) struct Trail<'p> {
    steps: Option<Vec<Step<'p>>>,
}

impl<'p> Trail<'p> {
    /// A trail that keeps every step.
    pub(super) fn kept() -> Self {
        Self {
            steps: Some(Vec::new()),
        }
    }

    fn is_kept(&self) -> bool {
        self.steps.is_some()
    }

    fn push(&mut self, step: impl FnOnce() -> Step<'p>) {
        if let Some(steps) = &mut self.steps {
            steps.push(step());
        }
    }

    pub(super) fn steps(&self) -> &[Step<'p>] {
        self.steps.as_deref().unwrap_or_default()
    }
}

/// Decide whether `request` may run under `policy`. Pure: no I/O, no clock, no globals;
/// the same inputs always give the same decision. See the module docs of
/// [`policy`](super) for the order.
#[must_use]
pub fn decide(policy: &Policy, request: &ResolvedRequest) -> Decision {
    into_decision(
        policy,
        request,
        evaluate(policy, request, &mut Trail::default()),
    )
}

/// The permit carries what its allow rule says of how to run: `run_as` and `limits`.
pub(super) fn into_decision(
    policy: &Policy,
    request: &ResolvedRequest,
    verdict: Result<DecidingRule, Denial>,
) -> Decision {
    match verdict {
        Ok(rule) => {
            let allowed_by = match rule {
                DecidingRule::Allow(index) => policy.allow.get(index),
                _ => None,
            };
            Decision::Permit(Permit::new(request, rule, allowed_by))
        }
        Err(denial) => Decision::Deny(denial),
    }
}

/// The first verdict reached, and whether to walk on.
struct Verdict {
    reached: Option<Result<DecidingRule, Denial>>,
    walk_on: bool,
}

impl Verdict {
    /// Record `verdict` if none was reached yet; `true` when the walk should stop.
    fn settle(&mut self, verdict: Result<DecidingRule, Denial>) -> bool {
        if self.reached.is_none() {
            self.reached = Some(verdict);
        }
        !self.walk_on
    }

    fn done(self) -> Result<DecidingRule, Denial> {
        self.reached.expect("the walk ends with the default step")
    }
}

/// The steps of the module docs, recorded in `trail`; `Ok(rule)` permits.
pub(super) fn evaluate<'p>(
    policy: &'p Policy,
    request: &ResolvedRequest,
    trail: &mut Trail<'p>,
) -> Result<DecidingRule, Denial> {
    let mut verdict = Verdict {
        reached: None,
        walk_on: trail.is_kept(),
    };
    trail.push(|| Step::Role);
    if let Some(decided) = role_step(policy, request)
        && verdict.settle(decided)
    {
        return verdict.done();
    }
    let granted = policy.shell.includes(&request.principal, request.role);
    trail.push(|| Step::Shell {
        granted: request.shell.then_some(granted),
    });
    if request.shell && !granted && verdict.settle(Err(shell_denial(policy, request))) {
        return verdict.done();
    }
    for rule in &policy.deny {
        let judged = applies(rule, request).then(|| rule.matches(&request.program, &request.args));
        let matched = judged.as_ref().is_some_and(RuleMatch::is_yes);
        trail.push(|| Step::Rule { rule, judged });
        if matched && verdict.settle(Err(deny_rule_denial(rule, request))) {
            return verdict.done();
        }
    }
    let dir = working_dir_step(policy, request);
    let dir_denial = dir.clone().err();
    trail.push(|| Step::WorkingDirs(dir));
    if let Some(denial) = dir_denial
        && verdict.settle(Err(denial))
    {
        return verdict.done();
    }
    let env = env_step(policy, request);
    let env_denial = env.clone().err();
    trail.push(|| Step::Env(env));
    if let Some(denial) = env_denial
        && verdict.settle(Err(denial))
    {
        return verdict.done();
    }
    if request.shell && verdict.settle(Ok(DecidingRule::AllowShell)) {
        return verdict.done();
    }
    // Every allow rule that applies to the caller, judged once: the permit is the first
    // match, and a denial explains the near matches.
    let judged: Vec<(&Rule, Option<RuleMatch>)> = policy
        .allow
        .iter()
        .map(|rule| {
            let judged =
                applies(rule, request).then(|| rule.matches(&request.program, &request.args));
            (rule, judged)
        })
        .collect();
    let bypass = bypass_program(&request.program);
    trail.push(|| Step::Interpreters(bypass));
    if policy.deny_interpreters
        && let Some(bypass) = bypass
    {
        let interpreter_rule = judged.iter().find(|(rule, outcome)| {
            rule.allow_interpreter && outcome.as_ref().is_some_and(RuleMatch::is_yes)
        });
        let decided = match interpreter_rule {
            Some((rule, _)) => Ok(rule.decided_by()),
            None => Err(Denial::Interpreter {
                bypass,
                program: request.program.clone(),
                hint: option_hint(&judged),
                allowed: allowed(policy, request),
            }),
        };
        if verdict.settle(decided) {
            return verdict.done();
        }
    }
    for (rule, outcome) in &judged {
        let matched = outcome.as_ref().is_some_and(RuleMatch::is_yes);
        trail.push(|| Step::Rule {
            rule,
            judged: outcome.clone(),
        });
        if matched && verdict.settle(Ok(rule.decided_by())) {
            return verdict.done();
        }
    }
    trail.push(|| Step::Default);
    verdict.settle(match policy.default {
        DefaultAction::Allow => Ok(DecidingRule::Default),
        DefaultAction::Deny => Err(Denial::Default {
            command: shown_command(request),
            asker: asker(request),
            hint: option_hint(&judged),
            allowed: allowed(policy, request),
        }),
    });
    verdict.done()
}

/// Whether `rule` applies to the caller (its `principals` and `roles`).
fn applies(rule: &Rule, request: &ResolvedRequest) -> bool {
    rule.grantees.includes(&request.principal, request.role)
}

fn asker(request: &ResolvedRequest) -> Asker {
    Asker {
        principal: request.principal.clone(),
        role: request.role,
    }
}

fn shown_command(request: &ResolvedRequest) -> Box<ShownCommand> {
    Box::new(ShownCommand {
        program: request.program.clone(),
        requested: request.requested_program.clone(),
        args: request.args.clone(),
    })
}

/// When an allow rule for this program failed only on an option its wildcard does not
/// match, that rule and the mismatch.
fn option_hint(judged: &[(&Rule, Option<RuleMatch>)]) -> Option<Box<OptionHint>> {
    judged.iter().find_map(|(rule, outcome)| match outcome {
        Some(RuleMatch::Args(mismatch @ super::args::Mismatch::Option { .. })) => {
            Some(Box::new(OptionHint {
                rule: rule.decided_by(),
                mismatch: mismatch.clone(),
            }))
        }
        _ => None,
    })
}

/// Steps 1 and 2: `Some` when the role alone decides.
fn role_step(policy: &Policy, request: &ResolvedRequest) -> Option<Result<DecidingRule, Denial>> {
    match request.role {
        Role::Read => Some(Err(Denial::ReadRole(asker(request)))),
        Role::Admin if !policy.restrict_admin => Some(Ok(DecidingRule::Admin)),
        Role::Operator | Role::Admin => None,
    }
}

fn shell_denial(policy: &Policy, request: &ResolvedRequest) -> Denial {
    Denial::Shell {
        asker: asker(request),
        granted_to: policy.shell.to_string(),
        allowed: allowed(policy, request),
    }
}

fn deny_rule_denial(rule: &Rule, request: &ResolvedRequest) -> Denial {
    Denial::DenyRule {
        rule: rule.decided_by(),
        title: rule.title(),
        command: shown_command(request),
        note: rule.note.clone(),
    }
}

/// Step 5.
pub(super) fn working_dir_step(policy: &Policy, request: &ResolvedRequest) -> Result<(), Denial> {
    let Some(roots) = &policy.working_dirs else {
        return Ok(());
    };
    let Some(dir) = &request.working_dir else {
        return Err(Denial::NoWorkingDir {
            roots: join_display(roots),
        });
    };
    if inside_roots(roots, dir) {
        return Ok(());
    }
    let given = request.requested_working_dir.as_deref().unwrap_or(dir);
    Err(outside_roots(roots, given))
}

/// Whether the canonical `dir` is a root or inside one, by whole components.
pub(super) fn inside_roots(roots: &[Root], dir: &Path) -> bool {
    roots.iter().any(|root| dir.starts_with(&root.effective))
}

/// The refusal of a working dir outside the roots, naming the dir only as the caller gave
/// it (the same for `/etc` and for `/no/such/dir`; see
/// [`resolve_confined`](super::resolve_confined)).
pub(super) fn outside_roots(roots: &[Root], given: &Path) -> Denial {
    Denial::OutsideRoots {
        roots: join_display(roots),
        given: given.to_owned(),
    }
}

/// Step 6.
fn env_step(policy: &Policy, request: &ResolvedRequest) -> Result<(), Denial> {
    let Some(globs) = &policy.allow_env else {
        return Ok(());
    };
    match request
        .env_names()
        .find(|name| !globs.iter().any(|glob| glob.matches(name)))
    {
        None => Ok(()),
        Some(name) => Err(Denial::Env {
            name: name.to_owned(),
            allowed: globs.iter().map(|glob| glob.as_str().to_owned()).collect(),
        }),
    }
}

/// What the caller may run instead: the allow rules that apply to it.
fn allowed(policy: &Policy, request: &ResolvedRequest) -> Allowed {
    if policy.default == DefaultAction::Allow {
        return Allowed::Anything;
    }
    Allowed::Rules(
        policy
            .allow
            .iter()
            .filter(|rule| applies(rule, request))
            .map(|rule| match &rule.args {
                Some(args) => format!("{} {args:?}", rule.program.effective),
                None => format!("{} (any args)", rule.program.effective),
            })
            .collect(),
    )
}

pub(super) fn join_display<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
