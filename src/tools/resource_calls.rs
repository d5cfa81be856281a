//! The handler's side of resources: `resources/read` of a `host://` resource
//! (`crate::resources`) or of a `file:///` URI (through the same gate, containment and
//! audit as `file_read`: `file_gate`), and `resources/subscribe` / `unsubscribe`, which
//! need a session (stdio, `/sse`, or `/mcp` with `Mcp-Session-Id`) to send updates on, and
//! their 2026-07-28 successor `subscriptions/listen`, which sends them on its own response
//! stream.

use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{ReadResourceResult, ResourceContents, SubscriptionFilter},
    service::{RequestContext, SubscriptionContext},
};

use super::{ToolsState, file_gate};
use crate::{
    audit::FileOperation,
    caller::{Caller, Transport},
    files::read::{MAX_READ_BYTES, Range, ReadOutcome, read as read_file},
    handler_link::SessionNotifier,
    resources::{self, ResourceError, subscriptions::Sink},
};

/// The name the audit record gives a `file:///` resource read, and a rate-limited read.
const FILE_RESOURCE: &str = "resources/read";

/// Read `uri`.
pub async fn read(
    state: &ToolsState,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    // A read spends the caller's tool-call budget: resources/read is not a way around it.
    if let Some(reason) = state.rate_limited(caller, FILE_RESOURCE).await {
        return Err(McpError::invalid_request(reason, None));
    }
    let Some(path) = resources::file_path(uri) else {
        return resources::read_host(uri).map_err(not_found);
    };
    let path = path.map_err(invalid)?;
    let outcome = file_gate::read_only(
        state,
        caller,
        FILE_RESOURCE,
        FileOperation::Read,
        path,
        |located| {
            let range = Range::Bytes {
                offset: 0,
                length: MAX_READ_BYTES,
            };
            read_file(located, range, MAX_READ_BYTES, false)
        },
        |outcome: &ReadOutcome| &outcome.path,
    )
    .await
    .map_err(|refusal| McpError::invalid_params(refusal.to_string(), None))?;
    let Some(text) = outcome.content else {
        return Err(McpError::invalid_params(
            format!("{uri}: binary content is not served as a resource"),
            None,
        ));
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("text/plain"),
    ]))
}

/// Start sending `notifications/resources/updated` for `uri` to this caller's session.
pub fn subscribe(
    state: &ToolsState,
    caller: &Caller,
    uri: &str,
    context: &RequestContext<RoleServer>,
) -> Result<(), McpError> {
    resources::check_subscribable(uri).map_err(invalid)?;
    let sink = match context.extensions.get::<SessionNotifier>() {
        Some(notifier) => Sink::Session(notifier.clone()),
        None if caller.transport == Transport::Stdio => Sink::Peer(context.peer.clone()),
        None => {
            return Err(McpError::invalid_request(
                "resources/subscribe needs a session to send updates on (stdio, /sse, or /mcp \
                 with Mcp-Session-Id); read host://load instead",
                None,
            ));
        }
    };
    state.subscriptions.subscribe(
        &subscriber(caller),
        uri,
        sink,
        resources::subscriptions::UPDATE_INTERVAL,
    );
    Ok(())
}

/// Stop the updates of `uri` to this caller's session (nothing subscribed is not an error).
pub fn unsubscribe(state: &ToolsState, caller: &Caller, uri: &str) {
    state.subscriptions.unsubscribe(&subscriber(caller), uri);
}

/// What of a `subscriptions/listen` filter this server serves: updates of the subscribable
/// resources (`host://load`) it names. The tool, prompt and resource lists never change
/// while the server runs, so no list-changed category is accepted (nor advertised).
pub fn accepted_filter(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let uris = requested.resource_subscriptions.as_ref().map(|uris| {
        uris.iter()
            .filter(|uri| resources::check_subscribable(uri).is_ok())
            .cloned()
            .collect::<Vec<_>>()
    });
    SubscriptionFilter::builder()
        .resource_subscriptions(uris.unwrap_or_default())
        .build()
}

/// Serve one `subscriptions/listen` stream (rmcp has sent the acknowledgment): updates of
/// each accepted resource until the client closes the stream. The request's cancellation
/// (the client went away, or the server stops) ends every update loop with it.
pub async fn listen(state: &ToolsState, caller: &Caller, context: SubscriptionContext) {
    let uris = context
        .accepted()
        .resource_subscriptions
        .clone()
        .unwrap_or_default();
    let cancelled = context.request_context().ct.clone();
    let principal = caller.principal.name();
    let updates = uris.iter().map(|uri| {
        state.subscriptions.listen(
            principal,
            uri,
            Sink::Listen(context.sink().clone()),
            resources::subscriptions::UPDATE_INTERVAL,
            cancelled.clone(),
        )
    });
    futures::future::join_all(updates).await;
    // Nothing accepted, or every update loop ended early: the stream stays open (only the
    // acknowledgment) until the client closes it.
    context.cancelled().await;
}

/// Subscriptions are per session; stdio has one.
fn subscriber(caller: &Caller) -> String {
    match &caller.session {
        Some(session) => format!("{}:{session}", caller.principal.name()),
        None => format!("{}:stdio", caller.principal.name()),
    }
}

fn not_found(error: ResourceError) -> McpError {
    McpError::resource_not_found(error.to_string(), None)
}

fn invalid(error: ResourceError) -> McpError {
    McpError::invalid_params(error.to_string(), None)
}
