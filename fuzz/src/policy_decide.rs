//! Target `policy_decide`: a policy and a command request to a decision, as `run_command`
//! and `hostmcp policy explain` get one: the config file's `[policy]` table resolved
//! (`resolve_policy`), the request resolved against `PATH` (`resolve`), then `decide` and
//! `explain`. Nothing is run.
//!
//! Input: a config file, a line `---`, then the request as JSON, shaped like the tool's
//! arguments: `{"role": "operator", "argv": ["ls", "-l"], "working_dir": "/tmp",
//! "env": [["LANG", "C"]]}`, or `"command": "…"` for shell mode instead of `argv`.
//!
//! What must hold: `decide` is a pure function (the same decision twice); a permit runs
//! exactly what was resolved (program, arguments, working dir) for the same principal and
//! role, and names the rule it came from; a denial names its rule and says `denied by`.

use std::path::Path;

use hostmcp::{
    auth::Role,
    command::CommandLine,
    config::FileConfig,
    policy::{CommandRequest, Decision, decide, explain, resolve, resolve_policy},
};
use serde::Deserialize;

/// The `PATH` programs are looked up in.
const SEARCH_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The request half of the input.
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    argv: Option<Vec<String>>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    env: Vec<(String, String)>,
}

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((config, request)) = text.split_once("\n---\n") else {
        return;
    };
    let Ok(file) = FileConfig::parse(config) else {
        return;
    };
    let Ok(policy) = resolve_policy(file.policy, &|_| Ok(())) else {
        return;
    };
    let Ok(request) = serde_json::from_str::<Request>(request) else {
        return;
    };
    let role = match request.role.as_deref() {
        None => Role::Operator,
        Some(name) => match name.parse() {
            Ok(role) => role,
            Err(_) => return,
        },
    };
    let asked = match request.command {
        Some(script) => CommandLine::Shell(script),
        None => CommandLine::Argv(request.argv.unwrap_or_default()),
    };
    let principal = request.principal.as_deref().unwrap_or("fuzz");
    let command = CommandRequest {
        principal_name: principal,
        role,
        command: &asked,
        working_dir: request.working_dir.as_deref().map(Path::new),
        env: &request.env,
    };
    let Ok(resolved) = resolve(&command, SEARCH_PATH) else {
        return;
    };
    let first = decide(&policy, &resolved);
    let second = decide(&policy, &resolved);
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "decide is not pure"
    );
    assert_eq!(first.rule(), second.rule());
    let _ = explain(&policy, &resolved);
    match first {
        Decision::Permit(permit) => {
            assert_eq!(permit.program(), resolved.program());
            assert_eq!(permit.args(), resolved.args());
            assert_eq!(permit.is_shell(), resolved.is_shell());
            assert_eq!(permit.principal(), principal);
            assert_eq!(permit.role(), role);
            assert!(!permit.rule().to_string().is_empty());
            if let Some(dir) = resolved.working_dir() {
                assert_eq!(permit.working_dir(), Some(dir));
            }
            let names: Vec<&str> = permit.env().iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, resolved.env_names().collect::<Vec<_>>());
        }
        Decision::Deny(denial) => {
            let reason = denial.to_string();
            assert!(
                reason.starts_with(&format!("denied by {}", denial.rule())),
                "{reason}"
            );
        }
    }
}
