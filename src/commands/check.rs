//! `hostmcp check`: validate a configuration and this host for it, without serving.
//!
//! The file is found as `serve` finds it ([`crate::config::discovery`]). Checked: the file
//! parses and resolves (token digests, names, roles, expiries, limits), the `[policy]`
//! table, every run-as user exists, the TLS files load, the audit key exists, the config file is not writable by group or others, the server's files
//! are not exposed to the users commands run as ([`crate::hardening`]), the kernel offers
//! what the server relies on (`/proc`, `PR_SET_CHILD_SUBREAPER`), and each listen address
//! can be bound now; and what [`super::check_oauth`] says of the public URL, OAuth, the
//! outside issuers and ACME. Then it prints what would be served. Each problem is one line on
//! stdout (`problem: ...`); any problem makes the exit code 1.

use std::{io::Write, os::unix::fs::PermissionsExt, path::Path};

use super::CommandError;
use crate::{
    cli::ServeArgs,
    config::{self, AuthSetting, Config, EnvSnapshot},
    exec::run_as::RunAsUser,
    hardening,
    transport::tls::ReloadableTls,
};

/// Check the configuration named by `config_path` (or found where `serve` looks).
pub fn run(config_path: Option<&Path>, fetch_jwks: bool) -> Result<(), CommandError> {
    let env = EnvSnapshot::capture();
    let source = config::discover_here(config_path, &env);
    let mut report = Report::default();
    report.say(source.describe());
    let args = ServeArgs {
        config: source.path().map(Path::to_path_buf),
        ..ServeArgs::default()
    };
    match source
        .load()
        .and_then(|file| Config::resolve(&args, &env, file))
    {
        Ok(config) => {
            check(&config, source.path(), &env, &mut report);
            if fetch_jwks {
                report.add(super::check_oauth::fetch_jwks(&config));
            }
        }
        Err(error) => report.problem(format!(
            "{} (hint: {})",
            one_line(&error.to_string()),
            error.hint()
        )),
    }
    report.finish()
}

/// What check found: lines to print and problems.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    problems: usize,
}

impl Report {
    fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// One line per problem: a multi-line message (a TOML parse error quotes the file)
    /// keeps its first line and its last, which says what is wrong.
    fn problem(&mut self, text: impl std::fmt::Display) {
        self.problems += 1;
        self.lines
            .push(format!("problem: {}", one_line(&text.to_string())));
    }

    fn add(&mut self, findings: Vec<super::check_oauth::Finding>) {
        for finding in findings {
            match finding {
                super::check_oauth::Finding::Say(line) => self.say(line),
                super::check_oauth::Finding::Problem(text) => self.problem(text),
            }
        }
    }

    fn finish(self) -> Result<(), CommandError> {
        let mut out = std::io::stdout().lock();
        for line in &self.lines {
            let _ = writeln!(out, "{line}");
        }
        match self.problems {
            0 => {
                let _ = writeln!(out, "ok: no problem found");
                Ok(())
            }
            count => Err(CommandError::new(format!(
                "{count} problem{} found",
                if count == 1 { "" } else { "s" }
            ))
            .with_hint("fix each `problem:` line above, then run `hostmcp check` again")),
        }
    }
}

fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with('|')
                && !line
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '|' || c == ' ')
        })
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

fn check(config: &Config, file: Option<&Path>, env: &EnvSnapshot, report: &mut Report) {
    let scheme = if config.tls.is_some() || config.acme.is_some() {
        "https"
    } else {
        "http"
    };
    for address in &config.listen {
        report.say(format!(
            "listen: {scheme}://{address}: Streamable HTTP at /mcp, legacy SSE at /sse"
        ));
    }
    describe_auth(&config.auth, report);
    describe_fleet(config, report);
    describe_policy(config, report);
    let limits = &config.limits;
    report.say(format!(
        "limits: default_timeout {} s, max_timeout {} s, max_output_bytes {}, \
         max_concurrent_commands {} ({} per principal), tool_calls_per_minute {}",
        limits.default_timeout.as_secs(),
        limits.max_timeout.as_secs(),
        limits.max_output_bytes,
        limits.max_concurrent_commands,
        limits.max_concurrent_per_principal,
        config
            .abuse
            .tool_calls_per_minute
            .map_or("unlimited".to_owned(), |limit| limit.to_string()),
    ));
    match &config.audit {
        Some(audit) => report.say(format!(
            "audit: {}{}",
            audit.path.display(),
            if audit.key_file.is_some() {
                " (sealed with a key)"
            } else {
                ""
            }
        )),
        None => report.say("audit: no file (records go to the log)"),
    }
    report.add(super::check_oauth::findings(config));
    check_policy(config, report);
    check_users(config, report);
    check_files(config, file, report);
    check_exposure(config, file, env, report);
    check_kernel(report);
    check_listen(config, report);
}

fn describe_auth(auth: &AuthSetting, report: &mut Report) {
    match auth {
        AuthSetting::Tokens(tokens) => {
            let named: Vec<String> = tokens
                .iter()
                .map(|token| match token.run_as() {
                    Some(user) => format!("{} ({}, run_as {user})", token.name(), token.role()),
                    None => format!("{} ({})", token.name(), token.role()),
                })
                .collect();
            report.say(format!("tokens: {}", named.join(", ")));
        }
        AuthSetting::GeneratedToken { state_dir } => report.say(format!(
            "tokens: default (admin), generated and kept in {}",
            state_dir.display()
        )),
        AuthSetting::Disabled => report.say("tokens: none, authentication is DISABLED"),
    }
}

fn describe_policy(config: &Config, report: &mut Report) {
    let Some(policy) = &config.policy else {
        report.say("policy: none ([policy] absent): operators and admins may run any command");
        return;
    };
    report.say(format!(
        "policy: default {}, {} allow rule{}, {} deny rule{}, restrict_admin {}",
        policy.default.map_or("deny", |default| default.as_str()),
        policy.allow.len(),
        if policy.allow.len() == 1 { "" } else { "s" },
        policy.deny.len(),
        if policy.deny.len() == 1 { "" } else { "s" },
        policy.restrict_admin.unwrap_or(false),
    ));
}

/// The fleet this host would join, and whether its credential and CA files can be read.
fn describe_fleet(config: &Config, report: &mut Report) {
    let Some(fleet) = &config.fleet else {
        return;
    };
    report.say(format!(
        "fleet: host {} on {}, {} trusted gateway(s), HTTP {}",
        fleet.name,
        fleet.servers.join(","),
        fleet.trust.gateway_count(),
        if fleet.http { "on" } else { "off" }
    ));
    if let Err(error) = fleet.check_files() {
        report.problem(format!("{error} (hint: {})", error.hint()));
    }
}

fn check_policy(config: &Config, report: &mut Report) {
    match crate::policy::resolve_policy(
        config.policy.clone(),
        &crate::exec::run_as::RunAsUser::check_switchable,
    ) {
        Err(error) => report.problem(format!("{error} (hint: {})", error.hint())),
        Ok(policy) => check_confinement(config, &policy, report),
    }
}

/// The confinement `serve` would refuse: a root over the audit log, or a reach this host
/// cannot enforce.
fn check_confinement(config: &Config, policy: &crate::policy::Policy, report: &mut Report) {
    let audit = config.audit.as_ref();
    let files = crate::hardening::ServerFiles {
        audit_log: audit.map(|audit| audit.path.clone()),
        audit_key: audit.and_then(|audit| audit.key_file.clone()),
        tls_key: config.tls.as_ref().map(|tls| tls.key.clone()),
        ..Default::default()
    };
    if let Err(error) = super::confinement::check(
        &config.token_reach,
        policy,
        &files,
        crate::exec::landlock::Support::here(),
        config.confinement_degrade,
    ) {
        report.problem(format!("{error} (hint: {})", error.hint()));
    }
    // Only looks: `serve` makes the `hostmcp/` cgroups, `check` leaves none behind.
    let cgroups = crate::exec::cgroup::detect::look(config.cgroup_parent.as_deref());
    report.say(format!("confinement: {}", cgroups.describe()));
    if let Err(error) = super::confinement::check_cgroups(
        &config.token_limits,
        policy,
        &cgroups,
        config.confinement_degrade,
    ) {
        report.problem(format!("{error} (hint: {})", error.hint()));
    }
}

fn check_users(config: &Config, report: &mut Report) {
    let mut users: Vec<(String, String)> = Vec::new();
    if let Some(user) = &config.run_as {
        users.push((user.clone(), "run_as".to_owned()));
    }
    if let AuthSetting::Tokens(tokens) = &config.auth {
        for token in tokens {
            if let Some(user) = token.run_as() {
                users.push((
                    user.to_string(),
                    format!("tokens {:?} run_as", token.name()),
                ));
            }
        }
    }
    for (user, whose) in users {
        if let Err(error) = RunAsUser::lookup(&user) {
            report.problem(format!("{whose}: {error}"));
        }
    }
}

fn check_files(config: &Config, file: Option<&Path>, report: &mut Report) {
    if let Some(tls) = &config.tls
        && let Err(error) = ReloadableTls::load(&tls.cert, &tls.key)
    {
        report.problem(format!("TLS: {error} (hint: {})", error.hint()));
    }
    if let Some(key) = config
        .audit
        .as_ref()
        .and_then(|audit| audit.key_file.as_ref())
        && !key.is_file()
    {
        report.problem(format!(
            "[audit] key_file {} does not exist (hint: `hostmcp audit keygen {}` makes one)",
            key.display(),
            key.display()
        ));
    }
    if let Some(path) = file
        && let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o022 != 0
    {
        report.problem(format!(
            "{} is writable by group or others (mode {:o}); chmod go-w it",
            path.display(),
            metadata.permissions().mode() & 0o7777
        ));
    }
}

fn check_exposure(config: &Config, file: Option<&Path>, env: &EnvSnapshot, report: &mut Report) {
    let audit = config.audit.as_ref();
    let files = hardening::ServerFiles {
        state_dir: env.state_dir().ok(),
        token_file: None,
        audit_log: audit.map(|audit| audit.path.clone()),
        audit_anchor: audit.map(|audit| crate::audit::anchor_path(&audit.path)),
        audit_key: audit.and_then(|audit| audit.key_file.clone()),
        tls_key: config.tls.as_ref().map(|tls| tls.key.clone()),
        config_file: file.map(Path::to_path_buf),
    };
    let placement = hardening::exposure::Placement {
        default_run_as: config.run_as.as_deref(),
        restrict_admin: hardening::restricts_admin(config),
        server_uid: nix::unistd::Uid::effective().as_raw(),
    };
    let principals = hardening::principals_of(&config.auth);
    for finding in hardening::exposure_findings(&principals, placement, &files) {
        report.problem(hardening::finding_line(&finding));
    }
}

fn check_kernel(report: &mut Report) {
    if !Path::new("/proc/self/status").is_file() {
        report.problem("/proc is not mounted: the orphan reaper and process checks need it");
    }
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        report.problem(format!(
            "PR_SET_CHILD_SUBREAPER: {error}: daemons started by commands would outlive them"
        ));
    }
}

fn check_listen(config: &Config, report: &mut Report) {
    for address in &config.listen {
        if let Err(error) = std::net::TcpListener::bind(address) {
            report.problem(format!("listen {address}: {error}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_toml_parse_error_becomes_its_first_and_last_lines() {
        let error = "invalid config file c.toml: TOML parse error at line 28, column 1\n  |\n28 | x = 1\n  | ^\nunknown field `x`\n";
        assert_eq!(
            one_line(error),
            "invalid config file c.toml: TOML parse error at line 28, column 1: unknown field `x`"
        );
        // Near miss: a one-line message is kept whole.
        assert_eq!(
            one_line("run_as: no user named \"x\""),
            "run_as: no user named \"x\""
        );
    }
}
