use std::net::SocketAddr;

use axum::http::{HeaderMap, Request};

use super::*;
use crate::auth::client_address::TrustedProxies;

fn client() -> ClientAddress {
    let peer: SocketAddr = "10.0.0.5:51234".parse().unwrap();
    TrustedProxies::default().resolve(peer, &HeaderMap::new())
}

fn owner() -> Principal {
    crate::auth::danger::stdio_owner()
}

#[test]
fn each_producer_gives_its_fields() {
    let stdio = Caller::stdio(owner());
    assert_eq!(stdio.principal.name(), "stdio");
    assert_eq!(
        (stdio.client, stdio.session, stdio.transport),
        (None, None, Transport::Stdio)
    );

    let sse = Caller::sse(owner(), Some(client()), "abc");
    assert_eq!(sse.client, Some(client()));
    assert_eq!(sse.session.as_ref().map(SessionId::as_str), Some("abc"));
    assert_eq!(sse.transport, Transport::Sse);

    let session = Caller::mcp_session(owner(), Some(client()), "def");
    assert_eq!(session.session.as_ref().map(SessionId::as_str), Some("def"));
    assert_eq!(session.transport, Transport::McpSession);

    let stateless = Caller::mcp_stateless(owner(), Some(client()));
    assert_eq!(stateless.client, Some(client()));
    assert_eq!(stateless.session, None);
    assert_eq!(stateless.transport, Transport::McpStateless);
}

#[test]
fn the_accessor_finds_the_caller_a_transport_put_in_the_extensions() {
    let mut extensions = Extensions::new();
    assert_eq!(Caller::of(&extensions).unwrap_err(), NoCaller);
    extensions.insert(Caller::sse(owner(), None, "abc"));
    let caller = Caller::of(&extensions).unwrap();
    assert_eq!(caller.transport, Transport::Sse);
}

#[test]
fn the_accessor_finds_the_caller_in_the_parts_rmcp_stores_and_nothing_else_there() {
    let (mut parts, ()) = Request::new(()).into_parts();
    // Near miss: HTTP parts that carry only a principal are not a caller.
    parts.extensions.insert(owner());
    let mut extensions = Extensions::new();
    extensions.insert(parts.clone());
    assert_eq!(Caller::of(&extensions).unwrap_err(), NoCaller);

    parts
        .extensions
        .insert(Caller::mcp_session(owner(), None, "def"));
    let mut extensions = Extensions::new();
    extensions.insert(parts);
    let caller = Caller::of(&extensions).unwrap();
    assert_eq!(caller.session.as_ref().map(SessionId::as_str), Some("def"));
}

#[test]
fn the_audit_context_names_who_from_where_in_which_session_and_the_tool() {
    let context = Caller::mcp_session(owner(), Some(client()), "def").audit_context("host_info");
    assert_eq!(context.principal.as_deref(), Some("stdio"));
    assert_eq!(context.client.as_deref(), Some("10.0.0.5:51234"));
    assert_eq!(context.session.as_deref(), Some("def"));
    assert_eq!(context.tool.as_deref(), Some("host_info"));

    let local = Caller::stdio(owner()).audit_context("run_command");
    assert_eq!((local.client, local.session), (None, None));
    assert_eq!(local.tool.as_deref(), Some("run_command"));
}
