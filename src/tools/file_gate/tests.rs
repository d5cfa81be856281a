//! The file tools through the handler: the role gate (read tools for `read`, `file_write`
//! for `operator`), the identity gate (a token whose commands run as another user is
//! refused, one running as the server's user is not), and the `file_access` record with
//! the resolved path, for done and refused calls alike.

use std::path::Path;

use rmcp::{
    ServerHandler,
    model::{CallToolRequestParams, CallToolResponse, RequestId},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    audit::{AuditLog, AuditOptions},
    auth::{Principal, Role, TokenDigest, TokenEntry, TokenSet},
    caller::Caller,
    exec::BaseEnv,
    files::{FileRoots, FilesConfig, RootConfig},
    tools::{HostTools, ToolSettings, ToolsState},
};

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    audit: std::path::PathBuf,
    tools: HostTools,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("notes.txt"), "hello\n").unwrap();
    std::os::unix::fs::symlink("notes.txt", root.join("alias")).unwrap();
    let audit = base.join("audit.jsonl");
    let settings = ToolSettings {
        // The server's own user: a server running as root needs one named.
        run_as: crate::exec::run_as::current_user_name(),
        files: FileRoots::new(FilesConfig {
            roots: vec![RootConfig {
                path: root.clone(),
                write: true,
            }],
        })
        .unwrap(),
        ..ToolSettings::default()
    };
    let state = ToolsState::new(
        settings,
        BaseEnv::from_server_env(),
        AuditLog::open(&audit, AuditOptions::default()).unwrap(),
        &CancellationToken::new(),
    );
    Fixture {
        _dir: dir,
        root,
        audit,
        tools: HostTools::new(state),
    }
}

fn principal(name: &str, role: Role, run_as: Option<&str>) -> Principal {
    let mut entry = TokenEntry::new(name, TokenDigest::of_token("secret"), role);
    if let Some(user) = run_as {
        entry = entry.running_as(user);
    }
    TokenSet::new(vec![entry]).authenticate("secret").unwrap()
}

/// Call `tool` as `principal`: (is_error, text, structured content).
async fn call(
    fixture: &Fixture,
    principal: Principal,
    tool: &str,
    arguments: Value,
) -> (bool, String, Value) {
    let peer = crate::transport::direct_call::detached_peer(fixture.tools.clone(), None);
    let mut context = rmcp::service::RequestContext::new(RequestId::Number(1), peer);
    context
        .extensions
        .insert(Caller::mcp_stateless(principal, None));
    let mut request = CallToolRequestParams::new(tool.to_owned());
    request.arguments = arguments.as_object().cloned();
    let response = fixture.tools.call_tool(request, context).await.unwrap();
    let CallToolResponse::Complete(result) = response else {
        panic!("a complete result");
    };
    let value = serde_json::to_value(result).unwrap();
    (
        value["isError"] == true,
        value["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        value["structuredContent"].clone(),
    )
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["event"] == "file_access")
        .collect()
}

fn own_user() -> String {
    crate::exec::run_as::current_user_name().unwrap()
}

#[tokio::test]
async fn a_reader_reads_and_the_record_names_the_resolved_path() {
    let fixture = fixture();
    let reader = principal("reader", Role::Read, None);
    let path = format!("{}/alias", fixture.root.display());
    let (error, text, structured) =
        call(&fixture, reader, "file_read", json!({"path": path})).await;
    assert!(!error, "{text}");
    assert!(text.ends_with("hello\n"), "{text}");
    let resolved = fixture.root.join("notes.txt").display().to_string();
    assert_eq!(structured["path"], resolved);
    let records = records(&fixture.audit);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["principal"], "reader");
    assert_eq!(records[0]["tool"], "file_read");
    assert_eq!(records[0]["operation"], "read");
    assert_eq!(records[0]["requested"], path);
    assert_eq!(records[0]["resolved"], resolved);
    assert_eq!(records[0]["refused"], Value::Null);
}

#[tokio::test]
async fn a_refused_path_is_recorded_with_its_rule() {
    let fixture = fixture();
    let reader = principal("reader", Role::Read, None);
    let path = format!("{}/../audit.jsonl", fixture.root.display());
    let (error, text, _) = call(&fixture, reader, "file_read", json!({"path": path})).await;
    assert!(error && text.contains("outside the root"), "{text}");
    let records = records(&fixture.audit);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["refused"], "escape");
    assert_eq!(records[0]["resolved"], Value::Null);
}

#[tokio::test]
async fn file_write_needs_the_operator_role_and_is_recorded_with_its_hash() {
    let fixture = fixture();
    let path = format!("{}/notes.txt", fixture.root.display());
    let arguments = json!({"path": path, "content": "changed\n"});
    let reader = principal("reader", Role::Read, None);
    let (error, text, _) = call(&fixture, reader, "file_write", arguments.clone()).await;
    assert!(error && text.contains("needs the operator role"), "{text}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
    // The twin: an operator writes it.
    let operator = principal("alice", Role::Operator, None);
    let (error, text, structured) = call(&fixture, operator, "file_write", arguments).await;
    assert!(!error, "{text}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "changed\n");
    let records = records(&fixture.audit);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["operation"], "write");
    assert_eq!(records[0]["sha256"], structured["sha256"]);
    assert_eq!(records[0]["resolved"], path);
}

#[tokio::test]
async fn a_token_running_as_another_user_is_refused_and_one_as_the_server_user_is_not() {
    let fixture = fixture();
    let path = format!("{}/notes.txt", fixture.root.display());
    let other = if own_user() == "nobody" {
        "root"
    } else {
        "nobody"
    };
    let elsewhere = principal("carol", Role::Read, Some(other));
    let (error, text, _) = call(&fixture, elsewhere, "file_read", json!({"path": path})).await;
    assert!(error && text.contains("refused"), "{text}");
    assert!(!text.contains("hello"), "{text}");
    let records = records(&fixture.audit);
    assert_eq!(records.last().unwrap()["refused"], "run_as", "{records:?}");
    let same = principal("dave", Role::Read, Some(&own_user()));
    let (error, text, _) = call(&fixture, same, "file_read", json!({"path": path})).await;
    assert!(!error && text.ends_with("hello\n"), "{text}");
}

#[tokio::test]
async fn without_roots_every_file_tool_says_none_are_configured() {
    let tools = HostTools::new(ToolsState::new(
        ToolSettings {
            run_as: crate::exec::run_as::current_user_name(),
            ..ToolSettings::default()
        },
        BaseEnv::from_server_env(),
        AuditLog::disabled(),
        &CancellationToken::new(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture {
        root: dir.path().to_owned(),
        audit: dir.path().join("none"),
        _dir: dir,
        tools,
    };
    for tool in ["file_read", "file_list", "file_search"] {
        let reader = principal("reader", Role::Read, None);
        let arguments = json!({"path": "/etc", "name": "*"});
        let arguments = if tool == "file_search" {
            arguments
        } else {
            json!({"path": "/etc"})
        };
        let (error, text, _) = call(&fixture, reader, tool, arguments).await;
        assert!(
            error && text.contains("no file roots are configured"),
            "{tool}: {text}"
        );
    }
}
