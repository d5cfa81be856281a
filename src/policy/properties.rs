//! Property tests of the policy: the glob dialect against a naive reference matcher, and the
//! decision's invariants over generated policies and requests (a deny always wins, a permit
//! names a rule that really matches, nothing outside the working roots is permitted, a
//! wildcard never matches an option unless the rule says so).
//!
//! The reference matchers here are written from the module docs, separately from the code
//! under test: a recursive glob, and element-wise lists with a final `**`.

use std::path::PathBuf;

use proptest::{collection::vec, prelude::*, sample::select, sample::subsequence};

use super::{glob::Glob, *};

// ---------------------------------------------------------------------------------------
// Reference matchers.
// ---------------------------------------------------------------------------------------

/// `*` any run, `?` one character, anything else itself; the whole text.
fn glob_oracle(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| glob_oracle(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && glob_oracle(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob_oracle(rest, &text[1..]),
    }
}

fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob_oracle(&pattern, &text)
}

/// Element-wise patterns with an optional final `**`. `strict`: an item that starts with
/// `-` or `@` (a response file) is matched only by a pattern that starts with the same
/// character (never by `**`).
fn list_matches(patterns: &[String], items: &[String], strict: bool) -> bool {
    let (elements, rest) = match patterns.split_last() {
        Some((last, init)) if last == "**" => (init, true),
        _ => (patterns, false),
    };
    let count_ok = if rest {
        items.len() >= elements.len()
    } else {
        items.len() == elements.len()
    };
    let option_ok = |pattern: &str, item: &str| match item.chars().next() {
        Some(first @ ('-' | '@')) if strict => pattern.starts_with(first),
        _ => true,
    };
    count_ok
        && items
            .iter()
            .enumerate()
            .all(|(index, item)| match elements.get(index) {
                Some(pattern) => glob_matches(pattern, item) && option_ok(pattern, item),
                None => option_ok("**", item),
            })
}

/// A program pattern over a canonical path, component by component.
fn program_matches(pattern: &str, program: &str) -> bool {
    let split = |path: &str| -> Vec<String> {
        path.trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect()
    };
    list_matches(&split(pattern), &split(program), false)
}

fn applies(principals: Option<&Vec<String>>, roles: Option<&Vec<RoleName>>, r: &Request) -> bool {
    principals.is_none_or(|names| names.contains(&r.principal))
        && roles.is_none_or(|roles| roles.iter().any(|role| role.0 == r.role))
}

fn allow_matches(rule: &AllowRule, r: &Request) -> bool {
    applies(rule.principals.as_ref(), rule.roles.as_ref(), r)
        && program_matches(&rule.program, &r.program)
        && rule
            .args
            .as_ref()
            .is_none_or(|args| list_matches(args, &r.args, !rule.allow_options))
}

fn deny_matches(rule: &DenyRule, r: &Request) -> bool {
    applies(rule.principals.as_ref(), rule.roles.as_ref(), r)
        && program_matches(&rule.program, &r.program)
        && rule
            .args
            .as_ref()
            .is_none_or(|args| list_matches(args, &r.args, false))
        && rule.any_arg.as_ref().is_none_or(|globs| {
            r.args
                .iter()
                .any(|arg| globs.iter().any(|glob| glob_matches(glob, arg)))
        })
}

fn shell_granted(config: &PolicyConfig, r: &Request) -> bool {
    match &config.allow_shell {
        None | Some(ShellAccess::Everyone(false)) => false,
        Some(ShellAccess::Everyone(true)) => true,
        Some(ShellAccess::Only(grantees)) => {
            applies(grantees.principals.as_ref(), grantees.roles.as_ref(), r)
        }
    }
}

/// Inside a root by whole components; `/` contains everything.
fn inside(dir: &str, root: &str) -> bool {
    dir == root || root == "/" || dir.starts_with(&format!("{root}/"))
}

// ---------------------------------------------------------------------------------------
// Generators: small alphabets, so that matches and near misses are both common.
// ---------------------------------------------------------------------------------------

const PROGRAMS: &[&str] = &[
    "/usr/bin/ls",
    "/usr/bin/systemctl",
    "/usr/bin/rm",
    "/usr/bin/git",
    "/usr/bin/env",
    "/usr/sbin/ls",
];
const PROGRAM_PATTERNS: &[&str] = &[
    "/usr/bin/ls",
    "/usr/bin/systemctl",
    "/usr/bin/rm",
    "/usr/bin/git",
    "/usr/bin/*",
    "/usr/*/ls",
    "/usr/bin/s*",
    "/**",
    "/usr/**",
];
const ARG_PATTERNS: &[&str] = &[
    "status", "*", "?", "-*", "--host=*", "-c*", "-", "--", "*x", "c*", "-H", "@*", "*@x",
];
const ARGS: &[&str] = &[
    "status",
    "cron",
    "--host=me@elsewhere",
    "-H",
    "-c",
    "-",
    "--",
    "x",
    "cx",
    "",
    "-la",
    "@x",
    "@",
];
const ANY_ARG: &[&str] = &["-c*", "--host*", "-H", "x"];
const PRINCIPALS: &[&str] = &["alice", "bob"];
const ROOTS: &[&str] = &["/srv/app", "/srv", "/var/log", "/"];
const DIRS: &[&str] = &[
    "/srv/app",
    "/srv/app/sub",
    "/srv/app2",
    "/srv",
    "/etc",
    "/",
    "/var/log/nginx",
    "/var",
];
const ENV: &[&str] = &["LANG", "LC_ALL", "LD_PRELOAD"];

fn strings(items: Vec<&str>) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn principals() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::of(subsequence(PRINCIPALS, 1..=2).prop_map(strings))
}

fn roles() -> impl Strategy<Value = Option<Vec<RoleName>>> {
    prop::option::of(
        subsequence(vec![Role::Operator, Role::Admin], 1..=2)
            .prop_map(|roles| roles.into_iter().map(RoleName).collect()),
    )
}

fn arg_patterns() -> impl Strategy<Value = Vec<String>> {
    (vec(select(ARG_PATTERNS), 0..4), any::<bool>()).prop_map(|(patterns, rest)| {
        let mut patterns = strings(patterns);
        if rest {
            patterns.push("**".to_owned());
        }
        patterns
    })
}

fn allow_rule() -> impl Strategy<Value = AllowRule> {
    (
        select(PROGRAM_PATTERNS),
        prop::option::of(arg_patterns()),
        principals(),
        roles(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(program, args, principals, roles, allow_interpreter, allow_options)| AllowRule {
                program: program.to_owned(),
                allow_options: allow_options && args.is_some(),
                args,
                principals,
                roles,
                allow_interpreter,
                note: None,
                run_as: None,
                limits: None,
                fs_read: None,
                fs_write: None,
                network: None,
                approve: false,
                approve_reason: None,
            },
        )
}

fn deny_rule() -> impl Strategy<Value = DenyRule> {
    (
        select(PROGRAM_PATTERNS),
        prop::option::of(arg_patterns()),
        prop::option::of(subsequence(ANY_ARG, 1..=2).prop_map(strings)),
        principals(),
        roles(),
    )
        .prop_map(|(program, args, any_arg, principals, roles)| DenyRule {
            program: program.to_owned(),
            args,
            any_arg,
            principals,
            roles,
            note: None,
        })
}

fn policy_config() -> impl Strategy<Value = PolicyConfig> {
    let shell = prop_oneof![
        Just(None),
        any::<bool>().prop_map(|all| Some(ShellAccess::Everyone(all))),
        Just(Some(ShellAccess::Only(Grantees {
            principals: Some(vec!["alice".to_owned()]),
            roles: None,
        }))),
    ];
    (
        (
            prop::option::of(prop_oneof![
                Just(DefaultAction::Deny),
                Just(DefaultAction::Allow)
            ]),
            prop::option::of(any::<bool>()),
            shell,
            prop::option::of(any::<bool>()),
        ),
        prop::option::of(subsequence(ROOTS, 1..=2).prop_map(strings)),
        prop::option::of(subsequence(&ENV[..2], 0..=2).prop_map(strings)),
        vec(allow_rule(), 0..4),
        vec(deny_rule(), 0..3),
    )
        .prop_map(
            |(
                (default, restrict_admin, allow_shell, deny_interpreters),
                working_dirs,
                allow_env,
                allow,
                deny,
            )| PolicyConfig {
                default,
                restrict_admin,
                allow_shell,
                deny_interpreters,
                working_dirs,
                allow_env,
                allow,
                deny,
            },
        )
}

/// A request as plain data; [`Request::resolved`] makes the policy's input from it.
#[derive(Debug, Clone)]
struct Request {
    program: String,
    args: Vec<String>,
    working_dir: Option<String>,
    env: Vec<String>,
    shell: bool,
    principal: String,
    role: Role,
}

impl Request {
    fn resolved(&self) -> ResolvedRequest {
        ResolvedRequest {
            program: PathBuf::from(&self.program),
            requested_program: self.program.clone(),
            args: self.args.clone(),
            working_dir: self.working_dir.as_ref().map(PathBuf::from),
            requested_working_dir: self.working_dir.as_ref().map(PathBuf::from),
            env: self
                .env
                .iter()
                .map(|name| (name.clone(), "v".to_owned()))
                .collect(),
            shell: self.shell,
            principal: self.principal.clone(),
            role: self.role,
        }
    }

    /// Judged by the rules: not role read, and not an admin the policy does not restrict.
    fn is_judged(&self, config: &PolicyConfig) -> bool {
        match self.role {
            Role::Read => false,
            Role::Admin => config.restrict_admin == Some(true),
            Role::Operator => true,
        }
    }
}

fn request() -> impl Strategy<Value = Request> {
    (
        select(PROGRAMS),
        vec(select(ARGS), 0..4),
        prop::option::of(select(DIRS)),
        prop_oneof![Just(Vec::new()), subsequence(ENV, 0..=2)],
        prop::bool::weighted(0.1),
        select(PRINCIPALS),
        select(vec![
            Role::Operator,
            Role::Operator,
            Role::Admin,
            Role::Read,
        ]),
    )
        .prop_map(
            |(program, args, working_dir, env, shell, principal, role)| {
                let (program, args) = if shell {
                    ("/usr/bin/dash", vec!["-c".to_owned(), args.join(" ")])
                } else {
                    (program, strings(args))
                };
                Request {
                    program: program.to_owned(),
                    args,
                    working_dir: working_dir.map(str::to_owned),
                    env: strings(env),
                    shell,
                    principal: principal.to_owned(),
                    role,
                }
            },
        )
}

fn compile(config: &PolicyConfig) -> Policy {
    Policy::from_config(config.clone()).expect("generated policies are valid")
}

// ---------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------

// About one generated request in twenty is permitted by an allow rule (measured: 86 of 2,000),
// half of those with an option among the arguments: 1,024 cases give each decision property
// some fifty such permits per run, in about two seconds.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn glob_agrees_with_the_reference(pattern in "[ab*?é-]{0,7}", text in "[abé-]{0,7}") {
        prop_assert_eq!(Glob::new(&pattern).matches(&text), glob_matches(&pattern, &text));
    }

    #[test]
    fn a_literal_glob_matches_only_itself(pattern in "[ab.é-]{0,6}", text in "[ab.é-]{0,6}") {
        prop_assert_eq!(Glob::new(&pattern).matches(&text), pattern == text);
        prop_assert!(Glob::new(&pattern).matches(&pattern));
        prop_assert!(Glob::new("*").matches(&text));
    }

    /// Random policies and requests: whatever `decide` says agrees with the reference.
    #[test]
    fn a_permit_names_a_rule_that_matches(config in policy_config(), r in request()) {
        let policy = compile(&config);
        let decision = decide(&policy, &r.resolved());
        let Decision::Permit(permit) = decision else {
            return Ok(());
        };
        let rule = permit.rule();
        match rule.to_string().as_str() {
            "admin" => prop_assert!(r.role == Role::Admin && config.restrict_admin != Some(true)),
            "allow_shell" => prop_assert!(r.shell && shell_granted(&config, &r)),
            "default" => prop_assert_eq!(config.default, Some(DefaultAction::Allow)),
            _ => {
                let DecidingRule::Allow(index) = rule else {
                    return Err(TestCaseError::fail(format!("unknown rule {rule}")));
                };
                let allow = config.allow.get(index);
                prop_assert!(allow.is_some_and(|allow| allow_matches(allow, &r)), "{rule}");
            }
        }
        prop_assert_eq!(permit.program(), std::path::Path::new(&r.program));
        prop_assert_eq!(permit.args(), r.args.as_slice());
    }

    /// If a deny rule that applies matches, the request is denied, whatever else says yes.
    #[test]
    fn a_deny_always_wins(config in policy_config(), r in request()) {
        prop_assume!(r.is_judged(&config));
        let decision = decide(&compile(&config), &r.resolved());
        let denying = config.deny.iter().any(|rule| deny_matches(rule, &r));
        if denying {
            prop_assert!(!decision.is_permit(), "{decision:?}");
        }
        // A deny rule made for exactly this request, added anywhere, denies it.
        let mut with_deny = config.clone();
        let exact = DenyRule {
            program: r.program.clone(),
            args: Some(r.args.clone()),
            any_arg: None,
            principals: Some(vec![r.principal.clone()]),
            roles: None,
            note: None,
        };
        with_deny.deny.insert(0, exact);
        let decision = decide(&compile(&with_deny), &r.resolved());
        // Shell mode is judged first: an ungranted shell request is refused by allow_shell.
        let expected = if r.shell && !shell_granted(&config, &r) {
            "allow_shell"
        } else {
            "deny[0]"
        };
        prop_assert_eq!(decision.rule(), expected, "{:?}", decision);
        prop_assert!(!decision.is_permit());
    }

    /// The twin of the above: a deny rule for another principal changes nothing.
    /// `explain` walks every step and keeps the trail; `decide` stops at the first that
    /// decides. Both must reach the same verdict, denial text included, and the kept trail
    /// always runs from the role step to the default.
    #[test]
    fn the_whole_walk_decides_as_the_short_one(config in policy_config(), r in request()) {
        let policy = compile(&config);
        let resolved = r.resolved();
        let mut kept = decide::Trail::kept();
        let walked = decide::evaluate(&policy, &resolved, &mut kept);
        let quick = decide::evaluate(&policy, &resolved, &mut decide::Trail::default());
        prop_assert!(matches!(kept.steps().first(), Some(decide::Step::Role)));
        prop_assert!(matches!(kept.steps().last(), Some(decide::Step::Default)));
        prop_assert_eq!(walked, quick);
    }

    #[test]
    fn a_deny_for_someone_else_changes_nothing(config in policy_config(), r in request()) {
        let before = decide(&compile(&config), &r.resolved());
        let mut with_deny = config;
        with_deny.deny.push(DenyRule {
            program: "/**".to_owned(),
            args: None,
            any_arg: None,
            principals: Some(vec!["someone-else".to_owned()]),
            roles: None,
            note: None,
        });
        let after = decide(&compile(&with_deny), &r.resolved());
        prop_assert_eq!(before.is_permit(), after.is_permit());
        prop_assert_eq!(before.rule(), after.rule());
    }

    /// With `default = "allow"` half the time, so that the roots are often all that decides.
    #[test]
    fn nothing_outside_the_working_roots_is_permitted(
        mut config in policy_config(),
        r in request(),
        allow_by_default in any::<bool>(),
    ) {
        if allow_by_default {
            config.default = Some(DefaultAction::Allow);
        }
        prop_assume!(r.is_judged(&config));
        let Some(roots) = &config.working_dirs else {
            return Ok(());
        };
        let decision = decide(&compile(&config), &r.resolved());
        let inside_a_root = r
            .working_dir
            .as_deref()
            .is_some_and(|dir| roots.iter().any(|root| inside(dir, root)));
        if !inside_a_root {
            prop_assert!(!decision.is_permit(), "{decision:?}");
        }
        if let Decision::Permit(permit) = decision {
            let dir = permit.working_dir().and_then(|dir| dir.to_str()).unwrap_or("");
            prop_assert!(roots.iter().any(|root| inside(dir, root)), "{dir}");
        }
    }

    /// A permit by an allow rule without `allow_options`: every option in the request
    /// (`-x` or a response file `@x`) sits at a position whose pattern starts with the same
    /// character (never under `*`, `?` or `**`).
    #[test]
    fn a_wildcard_never_matches_an_option_unless_the_rule_says_so(
        config in policy_config(),
        r in request(),
    ) {
        let Decision::Permit(permit) = decide(&compile(&config), &r.resolved()) else {
            return Ok(());
        };
        let DecidingRule::Allow(index) = permit.rule() else {
            return Ok(());
        };
        let rule = &config.allow[index];
        let Some(patterns) = rule.args.as_ref().filter(|_| !rule.allow_options) else {
            return Ok(());
        };
        for (position, arg) in r.args.iter().enumerate() {
            if let Some(first @ ('-' | '@')) = arg.chars().next() {
                let pattern = patterns.get(position).map_or("**", String::as_str);
                prop_assert!(
                    pattern != "**" && pattern.starts_with(first),
                    "{arg:?} at {position} matched by {pattern:?} in {patterns:?}"
                );
            }
        }
    }

    /// The same rule with `allow_options = true` admits any option its globs match: the
    /// strict rule is the only difference.
    #[test]
    fn allow_options_only_widens_to_options(
        patterns in arg_patterns(),
        args in vec(select(ARGS), 0..4),
    ) {
        let args = strings(args);
        let rule = |allow_options: bool| PolicyConfig {
            allow: vec![AllowRule {
                program: "/usr/bin/ls".to_owned(),
                args: Some(patterns.clone()),
                principals: None,
                roles: None,
                allow_interpreter: false,
                allow_options,
                note: None,
                run_as: None,
                limits: None,
                fs_read: None,
                fs_write: None,
                network: None,
                approve: false,
                approve_reason: None,
            }],
            ..PolicyConfig::default()
        };
        let r = Request {
            program: "/usr/bin/ls".to_owned(),
            args: args.clone(),
            working_dir: None,
            env: Vec::new(),
            shell: false,
            principal: "alice".to_owned(),
            role: Role::Operator,
        };
        let strict = decide(&compile(&rule(false)), &r.resolved()).is_permit();
        let loose = decide(&compile(&rule(true)), &r.resolved()).is_permit();
        prop_assert_eq!(loose, list_matches(&patterns, &args, false));
        prop_assert_eq!(strict, list_matches(&patterns, &args, true));
        prop_assert!(!strict || loose);
    }
}
