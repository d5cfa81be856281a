//! MCP prompts: an operator's practice for four common incidents (high load, a full disk,
//! a failing service, a host slow to answer), each naming the tools to use and in what
//! order, with arguments where useful. Pure data and text: no I/O, nothing of the host.
//! Tools a prompt names that this server does not (yet) list are named all the same; the
//! prompt says to skip a tool the client does not see.

use rmcp::model::{
    GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role as MessageRole,
};

/// One prompt: its name, what it is for, its arguments and its steps.
struct Playbook {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// (name, description, required).
    arguments: &'static [(&'static str, &'static str, bool)],
    /// The task, with `{argument}` placeholders.
    goal: &'static str,
    /// The tools in order, each with what to look for; `{argument}` placeholders.
    steps: &'static [&'static str],
}

const PLAYBOOKS: &[Playbook] = &[
    Playbook {
        name: "diagnose_high_load",
        title: "Diagnose high load",
        description: "Find what keeps the host's load average high: CPU, I/O wait, memory \
                      pressure or too many processes.",
        arguments: &[(
            "threshold",
            "Load per CPU above which load counts as high (default 1.0)",
            false,
        )],
        goal: "The host's load looks high (threshold: {threshold} per CPU). Find the cause \
               and say what to do, without changing anything until I agree.",
        steps: &[
            "host_info: load averages against the CPU count, CPU pressure (PSI), memory and \
             swap; is the load above {threshold} per CPU, rising (1 min > 15 min) or falling?",
            "process_list with sort=cpu and limit=15: the processes using the CPU; then with \
             state=D (uninterruptible): many in D means I/O wait, not CPU",
            "process_tree for the top pid: what started it (a cron job, a service, a shell)",
            "disk_usage: a full or saturated filesystem behind I/O wait",
            "service_status for the unit owning the top process: restarts, recent failures",
            "log_query with the unit and since=\"1 hour ago\": errors around when load rose",
            "run_command only to confirm a finding (e.g. `vmstat 1 5`); propose, do not kill",
        ],
    },
    Playbook {
        name: "diagnose_full_disk",
        title: "Diagnose a full disk",
        description: "Find which filesystem is full (space or inodes) and what fills it.",
        arguments: &[(
            "path",
            "The mount point or directory that is full (default /)",
            false,
        )],
        goal: "A filesystem is (nearly) full, around {path}. Find what fills it and propose \
               what can be removed safely.",
        steps: &[
            "disk_usage: every filesystem's use and inode use; which one holds {path}",
            "disk_usage with path={path}: the largest directories below it",
            "file_list on the largest directories: big or many files, their mtime (old logs, \
             core dumps, caches)",
            "file_search under them with name=\"*.log\" or \"core*\": candidates to rotate",
            "process_list: a process writing fast, or holding a deleted file open (space not \
             freed until it closes)",
            "log_query for the unit writing there: is it logging in a loop?",
            "file_read of a config that sets retention (logrotate, journald) before proposing \
             a change; run_command only after I agree",
        ],
    },
    Playbook {
        name: "diagnose_failing_service",
        title: "Diagnose a failing service",
        description: "Find why a systemd service fails or restarts, and what would fix it.",
        arguments: &[("unit", "The systemd unit, e.g. nginx.service", true)],
        goal: "The service {unit} is failing or restarting. Find why and propose a fix.",
        steps: &[
            "service_status with unit={unit}: state, sub-state, restarts, exit code, last log \
             lines",
            "log_query with unit={unit} and since=\"1 hour ago\", priority=warning: the first \
             error, not the last",
            "file_read of the unit's config files named in its status or logs (check them for \
             the line the error names)",
            "process_list filtered by name: is another process holding its port or lock?",
            "network_info: listening sockets, if it fails to bind",
            "disk_usage: a full disk is a common cause of a failing start",
            "run_command (e.g. the program's own config check, such as `nginx -t`) to confirm; \
             restart only after I agree",
        ],
    },
    Playbook {
        name: "diagnose_slow_host",
        title: "Diagnose a host slow to answer",
        description: "Find why the host (or a service on it) answers slowly: CPU, memory, \
                      disk, network or a stuck dependency.",
        arguments: &[(
            "service",
            "The service or port that answers slowly, if known",
            false,
        )],
        goal: "The host is slow to answer (service: {service}). Find the bottleneck.",
        steps: &[
            "host_info: load, CPU and memory pressure, swap in use, uptime (a recent reboot?)",
            "process_list with sort=cpu, then sort=memory: a process starving the others",
            "disk_usage: a full filesystem; process_list with state=D for I/O waits",
            "network_info: listening sockets and connections for {service}; many connections \
             in one state point to a stuck peer",
            "service_status and log_query for {service}: timeouts, errors, restarts",
            "run_command for a measurement the tools lack (e.g. `curl -w` against the local \
             port) to confirm",
        ],
    },
];

/// Every prompt, as `prompts/list` shows it.
pub fn list() -> Vec<Prompt> {
    PLAYBOOKS
        .iter()
        .map(|playbook| {
            let arguments = playbook
                .arguments
                .iter()
                .map(|(name, description, required)| {
                    PromptArgument::new(*name)
                        .with_description(*description)
                        .with_required(*required)
                })
                .collect();
            let mut prompt =
                Prompt::new(playbook.name, Some(playbook.description), Some(arguments));
            prompt.title = Some(playbook.title.to_owned());
            prompt
        })
        .collect()
}

/// Why a prompt could not be given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PromptError {
    #[error("no prompt named {0:?}; prompts/list names them")]
    Unknown(String),
    #[error("prompt {prompt}: argument {argument:?} is required")]
    Missing {
        prompt: &'static str,
        argument: &'static str,
    },
    #[error("prompt {prompt}: argument {argument:?} must be a string")]
    NotText {
        prompt: &'static str,
        argument: String,
    },
}

/// The prompt `name` with `arguments` filled in: one user message with the goal and the
/// steps in order.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, PromptError> {
    let playbook = PLAYBOOKS
        .iter()
        .find(|playbook| playbook.name == name)
        .ok_or_else(|| PromptError::Unknown(name.to_owned()))?;
    let empty = JsonObject::new();
    let given = arguments.unwrap_or(&empty);
    let mut values = Vec::new();
    for (argument, _, required) in playbook.arguments {
        let value = match given.get(*argument) {
            Some(serde_json::Value::String(text)) if !text.trim().is_empty() => text.clone(),
            Some(serde_json::Value::String(_)) | None if !required => default_of(argument),
            Some(serde_json::Value::String(_)) | None => {
                return Err(PromptError::Missing {
                    prompt: playbook.name,
                    argument,
                });
            }
            Some(_) => {
                return Err(PromptError::NotText {
                    prompt: playbook.name,
                    argument: (*argument).to_owned(),
                });
            }
        };
        values.push((*argument, value));
    }
    let fill = |text: &str| {
        values.iter().fold(text.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
    };
    let mut text = fill(playbook.goal);
    text.push_str("\n\nUse these tools in this order, stopping once the cause is clear:");
    for (index, step) in playbook.steps.iter().enumerate() {
        text.push_str(&format!("\n{}. {}", index + 1, fill(step)));
    }
    text.push_str(
        "\n\nIf a tool is not in your tool list, skip it (run_command can gather the same \
         facts where policy allows). Report the cause, the evidence (tool and figure), and the \
         fix you propose.",
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(MessageRole::User, text)])
            .with_description(playbook.description),
    )
}

fn default_of(argument: &str) -> String {
    match argument {
        "threshold" => "1.0",
        "path" => "/",
        _ => "unknown",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLS: [&str; 9] = [
        "host_info",
        "process_list",
        "process_tree",
        "disk_usage",
        "network_info",
        "service_status",
        "log_query",
        "file_read",
        "run_command",
    ];

    fn text(result: &GetPromptResult) -> String {
        serde_json::to_value(&result.messages[0]).unwrap()["content"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn four_prompts_each_naming_tools_in_order() {
        let prompts = list();
        let names: Vec<_> = prompts.iter().map(|prompt| prompt.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "diagnose_high_load",
                "diagnose_full_disk",
                "diagnose_failing_service",
                "diagnose_slow_host"
            ]
        );
        let mut named: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for prompt in &prompts {
            let arguments = serde_json::json!({"unit": "nginx.service"});
            let result = get(&prompt.name, arguments.as_object()).unwrap();
            let text = text(&result);
            assert!(text.contains("\n1. ") && text.contains("\n2. "), "{text}");
            assert!(!text.contains('{'), "an unfilled placeholder: {text}");
            named.extend(TOOLS.iter().filter(|tool| text.contains(*tool)));
        }
        assert_eq!(
            named.len(),
            TOOLS.len(),
            "every tool is named somewhere: {named:?}"
        );
    }

    #[test]
    fn arguments_are_filled_or_defaulted_and_a_required_one_is_required() {
        let arguments = serde_json::json!({"path": "/var"});
        let full = text(&get("diagnose_full_disk", arguments.as_object()).unwrap());
        assert!(
            full.contains("around /var") && full.contains("path=/var"),
            "{full}"
        );
        let defaulted = text(&get("diagnose_full_disk", None).unwrap());
        assert!(defaulted.contains("around /."), "{defaulted}");
        assert_eq!(
            get("diagnose_failing_service", None).unwrap_err(),
            PromptError::Missing {
                prompt: "diagnose_failing_service",
                argument: "unit"
            }
        );
        let unit = serde_json::json!({"unit": "cron.service"});
        let service = text(&get("diagnose_failing_service", unit.as_object()).unwrap());
        assert!(service.contains("unit=cron.service"), "{service}");
        assert!(matches!(get("nope", None), Err(PromptError::Unknown(_))));
        let number = serde_json::json!({"unit": 5});
        assert!(matches!(
            get("diagnose_failing_service", number.as_object()),
            Err(PromptError::NotText { .. })
        ));
    }
}
