//! The handler's side of the caller and the tool table: a call without a [`Caller`] is an
//! internal error, the role gate sits before every handler, and the table is consistent.

use std::collections::HashSet;

use rmcp::model::{CallToolRequestParams, ErrorCode, RequestId};

use super::*;
use crate::auth::{Principal, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator};

fn tools() -> HostTools {
    HostTools::new(ToolsState::new(
        ToolSettings::default(),
        BaseEnv::from_server_env(),
        AuditLog::disabled(),
        &CancellationToken::new(),
    ))
}

/// A request context carrying `caller`, or none.
fn context(tools: &HostTools, caller: Option<Caller>) -> RequestContext<RoleServer> {
    let peer = crate::transport::direct_call::detached_peer(tools.clone(), None);
    let mut context = RequestContext::new(RequestId::Number(1), peer);
    if let Some(caller) = caller {
        context.extensions.insert(caller);
    }
    context
}

fn reader() -> Principal {
    let secret = "read-token";
    let entry = TokenEntry::new("reader", TokenDigest::of_token(secret), Role::Read);
    let auth = Authenticator::tokens(TokenSet::new(vec![entry]));
    let header = axum::http::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap();
    auth.authenticate(Some(&header)).unwrap()
}

fn text_of(response: CallToolResponse) -> (bool, String) {
    let CallToolResponse::Complete(result) = response else {
        panic!("a complete result: {response:?}");
    };
    let value = serde_json::to_value(result).unwrap();
    let text = value["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (value["isError"] == true, text)
}

#[tokio::test]
async fn a_call_without_a_caller_is_an_internal_error_and_one_with_a_caller_runs() {
    let tools = tools();
    let call = || CallToolRequestParams::new(host_info::NAME);
    let error = tools
        .call_tool(call(), context(&tools, None))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::INTERNAL_ERROR);
    assert!(error.message.contains("no caller"), "{}", error.message);

    let caller = Caller::stdio(crate::auth::danger::stdio_owner());
    let response = tools
        .call_tool(call(), context(&tools, Some(caller)))
        .await
        .unwrap();
    let (is_error, text) = text_of(response);
    assert!(!is_error, "{text}");
}

#[tokio::test]
async fn the_role_gate_refuses_a_tool_above_the_callers_role_and_allows_its_own() {
    let tools = tools();
    let caller = Caller::mcp_stateless(reader(), None);
    let refused = tools
        .call_tool(
            CallToolRequestParams::new(jobs::LIST),
            context(&tools, Some(caller.clone())),
        )
        .await
        .unwrap();
    let (is_error, text) = text_of(refused);
    assert!(is_error);
    assert_eq!(
        text,
        "denied: tool job_list needs the operator role; token \"reader\" has the read role"
    );

    let allowed = tools
        .call_tool(
            CallToolRequestParams::new(host_info::NAME),
            context(&tools, Some(caller)),
        )
        .await
        .unwrap();
    assert!(!text_of(allowed).0);
}

#[tokio::test]
async fn tools_list_shows_a_caller_the_tools_of_its_role_and_nothing_without_a_caller() {
    let tools = tools();
    let names = |result: ListToolsResult| -> Vec<String> {
        result
            .tools
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect()
    };
    let none = tools.list_tools(None, context(&tools, None)).await.unwrap();
    assert!(names(none).is_empty());
    let reader = Caller::mcp_stateless(reader(), None);
    let read = tools
        .list_tools(None, context(&tools, Some(reader)))
        .await
        .unwrap();
    assert_eq!(
        names(read),
        vec![
            host_info::NAME,
            process_list::NAME,
            process_tree::NAME,
            disk_usage::NAME,
            network_info::NAME,
            service_status::NAME,
            log_query::NAME,
            file_read::NAME,
            file_list::NAME,
            file_search::NAME,
        ]
    );
    let owner = Caller::stdio(crate::auth::danger::stdio_owner());
    let all = tools
        .list_tools(None, context(&tools, Some(owner.clone())))
        .await
        .unwrap();
    // A client that renders no MCP Apps is not shown the two tools only a view calls.
    let all = names(all);
    assert_eq!(all.len(), TOOLS.len() - 2);
    assert!(
        !all.iter().any(|name| name.starts_with("approval_")),
        "{all:?}"
    );
    // Near miss: one that does is shown every tool.
    let mut apps = context(&tools, Some(owner));
    let capabilities: rmcp::model::ClientCapabilities = serde_json::from_value(serde_json::json!({
        "extensions": { crate::apps::EXTENSION_ID: { "mimeTypes": [crate::apps::MIME_TYPE] } }
    }))
    .unwrap();
    apps.meta.set_client_capabilities(capabilities);
    let everything = names(tools.list_tools(None, apps).await.unwrap());
    assert_eq!(everything.len(), TOOLS.len());
    assert!(everything.iter().any(|name| name == "approval_decide"));
}

#[test]
fn the_tools_whose_calls_may_wait_for_approval_link_the_approval_view_and_no_other_does() {
    let mut linked: Vec<_> = CATALOG
        .iter()
        .filter(|(_, tool)| {
            let meta = serde_json::to_value(&tool.meta).unwrap();
            meta["ui"]["resourceUri"] == crate::apps::approval::URI
                && !crate::apps::is_app_only(tool)
        })
        .map(|(_, tool)| tool.name.to_string())
        .collect();
    linked.sort();
    assert_eq!(linked, ["job_start", "run_command", "terminal_open"]);
    for name in &linked {
        let meta = serde_json::to_value(&find(name).unwrap().1.meta).unwrap();
        assert_eq!(meta["ui/resourceUri"], crate::apps::approval::URI, "{name}");
        assert!(
            meta["ui"].get("visibility").is_none(),
            "{name}: the model calls it"
        );
    }
    // Near miss: the tools that only read a job or a terminal wait for nobody.
    for name in ["job_output", "terminal_read", "terminal_send"] {
        assert!(find(name).unwrap().1.meta.is_none(), "{name}");
    }
}

#[test]
fn every_tool_in_the_table_has_a_name_of_its_own() {
    let names: HashSet<_> = CATALOG.iter().map(|(_, tool)| tool.name.clone()).collect();
    assert_eq!(names.len(), TOOLS.len());
    assert!(find("no_such_tool").is_none());
}

#[test]
fn a_reload_serves_the_next_calls_new_limits_and_policy_and_leaves_taken_ones_alone() {
    let one = CommandLimits {
        max_concurrent_commands: 1,
        ..CommandLimits::default()
    };
    let state = ToolsState::new(
        ToolSettings {
            limits: one,
            ..ToolSettings::default()
        },
        BaseEnv::from_server_env(),
        AuditLog::disabled(),
        &CancellationToken::new(),
    );
    let held = state.slots.try_acquire("alice").unwrap();
    assert!(
        state.slots.try_acquire("bob").is_err(),
        "one command at most"
    );
    // A call in flight holds what it loaded before the reload.
    let policy_in_flight = state.policy.load_full();
    let two = CommandLimits {
        max_concurrent_commands: 2,
        max_output_bytes: 4096,
        ..CommandLimits::default()
    };
    assert!(state.files.load().is_empty());
    let roots = crate::files::FileRoots::new(crate::files::FilesConfig {
        roots: vec![crate::files::RootConfig {
            path: std::path::PathBuf::from("/srv"),
            write: false,
        }],
    })
    .unwrap();
    state.reload(Policy::permissive(), two, roots);
    assert!(
        state.slots.try_acquire("bob").is_ok(),
        "the new limit applies"
    );
    assert_eq!(state.limits.load().max_output_bytes, 4096);
    assert!(!Arc::ptr_eq(&policy_in_flight, &state.policy.load_full()));
    assert_eq!(
        state.files.load().roots().len(),
        1,
        "the new file roots apply"
    );
    drop(held);
}

#[test]
fn a_call_that_reached_its_tool_is_counted_ok_error_or_invalid() {
    let text = || vec![ContentBlock::text("x")];
    assert_eq!(
        outcome_of(&Ok(CallToolResult::success(text()))),
        ToolOutcome::Ok
    );
    assert_eq!(
        outcome_of(&Ok(CallToolResult::error(text()))),
        ToolOutcome::Error
    );
    let invalid = McpError::invalid_params("run_command: bad", None);
    assert_eq!(outcome_of(&Err(invalid)), ToolOutcome::Invalid);
}
