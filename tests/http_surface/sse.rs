//! The legacy HTTP+SSE transport (2024-11-05) through the router: a `GET /sse` stream held
//! open by keeping its response body, whose first event names the session's `/messages`
//! URL. A session takes messages only from the principal that opened it (another token
//! gets the 404 of an unknown session); a principal holds at most
//! `max_streams_per_principal` open streams (429), and closing one frees its slot.

use axum::{
    body::Body,
    http::{Method, StatusCode, header},
};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use crate::bench::{ALICE, ANSWER_WITHIN, BOB, Bench, Settings, Who, ping, request};

/// One server-sent event.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

/// An open `GET /sse` stream, read event by event.
struct EventStream {
    body: Body,
    buffer: String,
}

impl EventStream {
    async fn open(bench: &Bench, who: Who) -> Self {
        let response = bench.respond(get_sse(who)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Self {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event that carries data (keep-alive comments are skipped).
    async fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    name: "message".to_owned(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event.name = name.trim().to_owned();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        event.data.push_str(data.trim());
                    }
                }
                if !event.data.is_empty() {
                    return event;
                }
                continue;
            }
            let frame = tokio::time::timeout(ANSWER_WITHIN, self.body.frame())
                .await
                .expect("an event in time")
                .expect("the stream is still open")
                .expect("the stream is readable");
            if let Some(data) = frame.data_ref() {
                self.buffer
                    .push_str(std::str::from_utf8(data).expect("UTF-8"));
            }
        }
    }

    /// The session's `/messages` URL: the stream's first event.
    async fn endpoint(&mut self) -> String {
        let event = self.next().await;
        assert_eq!(event.name, "endpoint", "{event:?}");
        assert!(event.data.starts_with("/messages?sessionId="), "{event:?}");
        event.data
    }

    /// The next JSON-RPC message on the stream.
    async fn message(&mut self) -> Value {
        let event = self.next().await;
        assert_eq!(event.name, "message", "{event:?}");
        serde_json::from_str(&event.data).expect("a JSON-RPC message")
    }
}

fn get_sse(who: Who) -> axum::http::Request<Body> {
    request(Method::GET, "/sse")
        .header(header::ACCEPT, "text/event-stream")
        .header(header::AUTHORIZATION, who.bearer())
        .body(Body::empty())
        .unwrap()
}

fn post_message(who: Who, endpoint: &str, message: &Value) -> axum::http::Request<Body> {
    request(Method::POST, endpoint)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, who.bearer())
        .body(Body::from(message.to_string()))
        .unwrap()
}

/// Open a legacy session as `who` and complete its handshake.
async fn legacy_session(bench: &Bench, who: Who) -> (EventStream, String) {
    let mut stream = EventStream::open(bench, who).await;
    let endpoint = stream.endpoint().await;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                   "clientInfo": {"name": "http-surface", "version": "1"}},
    });
    let accepted = bench.send(post_message(who, &endpoint, &initialize)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    let answer = stream.message().await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["serverInfo"]["name"], "hostmcp");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = bench.send(post_message(who, &endpoint, &initialized)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    (stream, endpoint)
}

#[tokio::test]
async fn a_legacy_session_takes_messages_from_its_owner_only() {
    let bench = Bench::new();
    let (mut stream, endpoint) = legacy_session(&bench, ALICE).await;

    let foreign = bench.send(post_message(BOB, &endpoint, &ping(2))).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let unknown = bench
        .send(post_message(
            BOB,
            "/messages?sessionId=00000000000000000000000000000000",
            &ping(2),
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        foreign.body, unknown.body,
        "a foreign session looks unknown"
    );

    // Near miss: the owner's message is accepted and answered on the stream.
    let accepted = bench.send(post_message(ALICE, &endpoint, &ping(3))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let answer = stream.message().await;
    assert_eq!(answer["id"], 3, "bob's ping was never delivered: {answer}");
    assert!(answer["result"].is_object());

    let opened = bench.audit.events("session_opened").await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["principal"], ALICE.name);
}

#[tokio::test]
async fn a_message_without_a_session_or_that_is_not_json_rpc_is_400() {
    let bench = Bench::new();
    let (mut stream, endpoint) = legacy_session(&bench, ALICE).await;
    let no_session = bench.send(post_message(ALICE, "/messages", &ping(2))).await;
    assert_eq!(no_session.status, StatusCode::BAD_REQUEST);
    let not_json_rpc = bench
        .send(post_message(ALICE, &endpoint, &json!({"hello": 1})))
        .await;
    assert_eq!(not_json_rpc.status, StatusCode::BAD_REQUEST);

    // Near miss: the Python SDK's spelling of the query names the session too.
    let python = endpoint.replace("sessionId=", "session_id=");
    let accepted = bench.send(post_message(ALICE, &python, &ping(4))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert_eq!(stream.message().await["id"], 4);
}

#[tokio::test]
async fn a_principal_over_its_stream_cap_gets_429_until_it_closes_one() {
    let bench = Bench::with(Settings {
        max_streams_per_principal: 2,
        ..Settings::default()
    });
    let first = EventStream::open(&bench, ALICE).await;
    let _second = EventStream::open(&bench, ALICE).await;
    let refused = bench.send(get_sse(ALICE)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.text().contains("too many open streams"),
        "{}",
        refused.text()
    );

    // Near misses: another principal has slots of its own, and a closed stream frees one.
    let _bobs = EventStream::open(&bench, BOB).await;
    drop(first);
    let mut reopened = EventStream::open(&bench, ALICE).await;
    reopened.endpoint().await;
}
