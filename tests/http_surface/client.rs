//! hostmcp's own client (`hostmcp::client`) against the product's router on a loopback
//! socket: the stdio bridge relays a whole session on `/mcp` and, by the fallback rule, on
//! `/sse`; the one-shot session lists tools by role; a wrong token is refused as such, with
//! the right token as its near miss.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hostmcp::{
    auth::Secret,
    client::{
        ClientError, Endpoint, EndpointSettings,
        bridge::{self, BridgeSettings},
        session::Session,
    },
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::bench::{ALICE, Bench, READER, Who};

/// The bench's router served on a free loopback port (until the test's runtime ends).
async fn serve(bench: &Bench) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = bench
        .app
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn endpoint(address: SocketAddr, path: &str, token: &str) -> Arc<Endpoint> {
    Endpoint::new(EndpointSettings {
        url: format!("http://{address}{path}"),
        token: Some(Secret::new(token)),
        ca_file: None,
    })
    .unwrap()
}

/// Run the bridge on a pipe, send `lines`, and read until the answer to `last_id`.
async fn through_bridge(endpoint: Arc<Endpoint>, lines: &[Value], last_id: i64) -> Vec<Value> {
    let (client, bridge_side) = tokio::io::duplex(1 << 20);
    let (bridge_in, bridge_out) = tokio::io::split(bridge_side);
    let settings = BridgeSettings {
        reconnect_for: Duration::from_secs(5),
    };
    let bridge = tokio::spawn(bridge::run(
        endpoint,
        settings,
        BufReader::new(bridge_in),
        bridge_out,
    ));
    let (client_in, mut client_out) = tokio::io::split(client);
    let mut answers = BufReader::new(client_in).lines();
    let mut seen = Vec::new();
    for line in lines {
        client_out
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        if line.get("id").is_none() {
            continue;
        }
        // One request at a time, as a client waits for its initialize answer.
        loop {
            let text = tokio::time::timeout(Duration::from_secs(30), answers.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("the bridge is still there");
            let message: Value = serde_json::from_str(&text).unwrap();
            let done = message.get("id") == line.get("id");
            seen.push(message);
            if done {
                break;
            }
        }
        if line["id"] == last_id {
            break;
        }
    }
    client_out.shutdown().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), bridge).await;
    assert!(
        ended.unwrap().unwrap().is_ok(),
        "stdin's end ends the bridge"
    );
    seen
}

fn session_lines() -> Vec<Value> {
    vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bridge-test", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "host_info", "arguments": {}}}),
    ]
}

#[tokio::test]
async fn the_bridge_relays_a_session_on_mcp_and_on_sse() {
    let bench = Bench::new();
    let address = serve(&bench).await;
    for path in ["/mcp", "/sse"] {
        let seen = through_bridge(endpoint(address, path, ALICE.token), &session_lines(), 2).await;
        let answer = |id: i64| seen.iter().find(|m| m["id"] == id).unwrap().clone();
        assert_eq!(
            answer(0)["result"]["serverInfo"]["name"],
            "hostmcp",
            "{path}"
        );
        let tools = answer(1)["result"]["tools"].as_array().unwrap().clone();
        assert!(
            tools.iter().any(|tool| tool["name"] == "run_command"),
            "{path}"
        );
        let call = answer(2);
        assert_eq!(call["result"]["isError"], false, "{path}: {call}");
        assert!(
            call["result"]["structuredContent"]["hostname"].is_string(),
            "{call}"
        );
    }
}

async fn tool_names(address: SocketAddr, path: &str, who: Who) -> Vec<String> {
    let mut session = Session::open(&endpoint(address, path, who.token))
        .await
        .unwrap();
    let listed = session
        .request("tools/list", json!({}), &mut |_| {})
        .await
        .unwrap();
    session.close().await;
    listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_session_lists_the_tools_of_the_tokens_role_on_both_transports() {
    let bench = Bench::new();
    let address = serve(&bench).await;
    for path in ["/mcp", "/sse"] {
        assert_eq!(
            tool_names(address, path, READER).await,
            // The read role's tools: the host tools and the read-only file tools (issue 13).
            [
                "host_info",
                "process_list",
                "process_tree",
                "disk_usage",
                "network_info",
                "service_status",
                "log_query",
                "file_read",
                "file_list",
                "file_search"
            ],
            "{path}"
        );
        let operator = tool_names(address, path, ALICE).await;
        assert!(operator.iter().any(|name| name == "run_command"), "{path}");
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused_as_a_token_not_taken_for_another_transport() {
    let bench = Bench::new();
    let address = serve(&bench).await;
    for path in ["/mcp", "/sse"] {
        let refused = Session::open(&endpoint(address, path, "not-a-token-0123456789")).await;
        assert!(
            matches!(refused, Err(ClientError::Unauthorized { status: 401 })),
            "{path}: {refused:?}"
        );
        // Near miss: the right token opens a session on the same path.
        let session = Session::open(&endpoint(address, path, ALICE.token)).await;
        session.unwrap().close().await;
    }
}
