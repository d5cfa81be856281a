use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::*;
use crate::client::EndpointSettings;

#[test]
fn a_cancelled_request_is_remembered_until_it_finishes() {
    let mut in_flight = InFlight::default();
    in_flight.start(&Value::from(1));
    in_flight.start(&Value::from("1"));
    in_flight.cancel(&Value::from(1));
    let entry = in_flight.finish(&Value::from(1)).unwrap();
    assert!(entry.cancelled);
    // Near miss: the string id "1" is another request, not cancelled.
    assert!(!in_flight.finish(&Value::from("1")).unwrap().cancelled);
    assert!(in_flight.finish(&Value::from(1)).is_none(), "finished once");
    // Cancelling an unknown request changes nothing.
    in_flight.cancel(&Value::from(9));
    assert!(in_flight.drain(true).is_empty());
}

#[test]
fn a_lost_session_fails_the_sent_requests_and_keeps_the_queued_ones() {
    let mut in_flight = InFlight::default();
    for id in 0..3 {
        in_flight.start(&Value::from(id));
    }
    in_flight.set_queued(&Value::from(1), true);
    // A lost session fails what was sent on it; the queued request waits for the next one.
    let mut ids: Vec<_> = in_flight.drain(false).into_iter().map(|e| e.id).collect();
    ids.sort_by_key(|id| id.as_i64());
    assert_eq!(ids, vec![Value::from(0), Value::from(2)]);
    // Near miss: when reconnecting gives up, the queued one fails too.
    let rest: Vec<_> = in_flight.drain(true).into_iter().map(|e| e.id).collect();
    assert_eq!(rest, vec![Value::from(1)]);
    assert!(in_flight.drain(true).is_empty());
}

/// A loopback port with nothing listening (bound, then closed).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_server_answers_the_initialize_with_an_error_and_ends_the_bridge() {
    let endpoint = Endpoint::new(EndpointSettings {
        url: format!("http://127.0.0.1:{}/mcp", closed_port()),
        token: None,
        ca_file: None,
    })
    .unwrap();
    let (client, bridge_side) = tokio::io::duplex(64 * 1024);
    let (bridge_in, bridge_out) = tokio::io::split(bridge_side);
    let settings = BridgeSettings {
        reconnect_for: Duration::from_secs(1),
    };
    let bridge = tokio::spawn(run(
        endpoint,
        settings,
        BufReader::new(bridge_in),
        bridge_out,
    ));
    let (client_in, mut client_out) = tokio::io::split(client);
    client_out
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(client_in).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["error"]["code"], BRIDGE_ERROR);
    let text = answer["error"]["message"].as_str().unwrap();
    assert!(text.starts_with("hostmcp connect: cannot reach"), "{text}");
    let ended = tokio::time::timeout(Duration::from_secs(20), bridge).await;
    assert!(matches!(
        ended.unwrap().unwrap(),
        Err(ClientError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn a_line_that_is_not_json_gets_a_parse_error_and_the_bridge_goes_on() {
    let endpoint = Endpoint::new(EndpointSettings {
        url: format!("http://127.0.0.1:{}/mcp", closed_port()),
        token: None,
        ca_file: None,
    })
    .unwrap();
    let (client, bridge_side) = tokio::io::duplex(64 * 1024);
    let (bridge_in, bridge_out) = tokio::io::split(bridge_side);
    let settings = BridgeSettings {
        reconnect_for: Duration::from_secs(1),
    };
    let bridge = tokio::spawn(run(
        endpoint,
        settings,
        BufReader::new(bridge_in),
        bridge_out,
    ));
    let (client_in, mut client_out) = tokio::io::split(client);
    client_out.write_all(b"not json\n\n").await.unwrap();
    let mut lines = BufReader::new(client_in).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["error"]["code"], -32700);
    // Near miss: the bridge is still there, and stdin's end ends it cleanly.
    client_out.shutdown().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), bridge).await;
    assert!(ended.unwrap().unwrap().is_ok());
}
