//! `/oauth/authorize`: the authorization request checked and the consent page shown
//! (GET), then the owner's answer (POST).
//!
//! Order of checks (GET): a `client_id` that is an https URL has its metadata document
//! fetched and checked first ([`super::cimd`]); the client must be registered (or so
//! admitted) and not revoked, and the
//! `redirect_uri` exactly one of its registered URIs; until both hold, errors are shown on
//! a page, never redirected (an open redirect otherwise). After that, errors go back to the
//! client's redirect URI with `error`, `state` and `iss`: `response_type` must be `code`,
//! the PKCE challenge present with method `S256`, `resource` (when given) this server's MCP
//! URL, `scope` only known scopes.
//!
//! The form carries a single-use server-side nonce that names the checked request (so a
//! form nobody was shown, or one answered twice, is refused) and the owner's hostmcp
//! token. A wrong token re-shows the page, is audited, and counts against the client
//! address's budget ([`super::CONSENT_FAILURES_PER_MINUTE`]; 429 past it). An approved
//! request becomes a grant with the token's principal and role (narrowed to `read` by the
//! `hostmcp:read` scope), and a code sent to the redirect URI with `state` and `iss`.

use std::{sync::Arc, time::Instant};

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    CODE_TTL, CONSENT_TTL, DEFAULT_SCOPE, OAuthServer, Peer, READ_SCOPE, cimd, page, pkce,
    random_token, redirect,
    store::{ClientRecord, CodeRecord, GrantRecord, now_secs},
};
use crate::{
    audit::OAuthStep,
    auth::{Role, TokenDigest},
};

/// The authorization request's parameters (RFC 6749 §4.1.1, RFC 7636, RFC 8707).
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizationRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
}

/// A checked request waiting for the owner's answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub expires: Instant,
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    pub nonce: Option<String>,
    pub token: Option<String>,
    pub decision: Option<String>,
}

/// Where an error or a code goes: the redirect URI with `params`, `state` and `iss`.
fn redirect_to(uri: &str, params: &[(&str, &str)], state: Option<&str>, issuer: &str) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.finish());
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Err(_) => return page::error(StatusCode::BAD_REQUEST, "the redirect URI cannot be used"),
    }
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    super::no_store(response)
}

/// The scope a grant gets from the requested one: the default when none is asked (ChatGPT
/// re-authorizes without), `hostmcp:read` when only that is; `offline_access` is ignored.
pub fn resolve_scope(requested: Option<&str>) -> Result<&'static str, String> {
    let mut read_only = false;
    let mut full = false;
    for scope in requested.unwrap_or("").split_whitespace() {
        match scope {
            DEFAULT_SCOPE => full = true,
            READ_SCOPE => read_only = true,
            "offline_access" => {}
            other => return Err(format!("unknown scope {other:?}")),
        }
    }
    Ok(if read_only && !full {
        READ_SCOPE
    } else {
        DEFAULT_SCOPE
    })
}

/// The role of a grant: the parent token's, at most `read` under `hostmcp:read`.
pub fn grant_role(parent: Role, scope: &str) -> Role {
    if scope == READ_SCOPE {
        parent.min(Role::Read)
    } else {
        parent
    }
}

/// A metadata-URL client: its document fetched (or cached) and checked, then kept as a client
/// record under its URL (a revoked one stays revoked), so the token endpoint finds it as any
/// registered client. A refusal is shown on the page, never redirected.
async fn admit_metadata_client(
    server: &Arc<OAuthServer>,
    context: crate::audit::AuditContext,
    client_id: &str,
) -> Result<(), Response> {
    let fetched = match server
        .cimd
        .client(client_id, &server.settings.extra_redirect_uris)
        .await
    {
        Ok(fetched) => fetched,
        Err(error) => {
            server
                .audit(
                    context,
                    OAuthStep::CimdRefused,
                    client_id,
                    None,
                    Some(error.to_string()),
                )
                .await;
            return Err(page::error(
                StatusCode::BAD_REQUEST,
                &format!("this client's metadata document cannot be used: {error}"),
            ));
        }
    };
    let stored = {
        let server = server.clone();
        let client_id = client_id.to_owned();
        let metadata = fetched.metadata.clone();
        tokio::task::spawn_blocking(move || {
            let existing = server.store.client(&client_id)?;
            if existing.as_ref().is_some_and(|client| client.revoked) {
                return Ok(());
            }
            server.store.put_client(&ClientRecord {
                client_id,
                client_name: metadata.client_name,
                redirect_uris: metadata.redirect_uris,
                created_at: existing.as_ref().map_or_else(now_secs, |c| c.created_at),
                last_used_at: existing.and_then(|client| client.last_used_at),
                revoked: false,
            })
        })
        .await
    };
    if !matches!(stored, Ok(Ok(()))) {
        tracing::error!(?stored, "cannot store a metadata-document OAuth client");
        return Err(page::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the client",
        ));
    }
    if fetched.fresh {
        server
            .audit(context, OAuthStep::CimdFetched, client_id, None, None)
            .await;
    }
    Ok(())
}

/// GET: check the request, show the page.
pub async fn show(
    State(server): State<Arc<OAuthServer>>,
    peer: Peer,
    headers: HeaderMap,
    Query(request): Query<AuthorizationRequest>,
) -> Response {
    let context = server.context(peer, &headers);
    let Some(client_id) = request.client_id.as_deref().filter(|id| !id.is_empty()) else {
        return page::error(StatusCode::BAD_REQUEST, "the request names no client_id");
    };
    if cimd::is_metadata_url(client_id)
        && let Err(refused) = admit_metadata_client(&server, context.clone(), client_id).await
    {
        return refused;
    }
    let client = {
        let server = server.clone();
        let client_id = client_id.to_owned();
        tokio::task::spawn_blocking(move || server.store.client(&client_id)).await
    };
    let client = match client {
        Ok(Ok(Some(client))) if !client.revoked => client,
        Ok(Ok(_)) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "this client is not registered here (or was revoked); register it again",
            );
        }
        _ => return page::error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the client"),
    };
    let redirect_uri = match request.redirect_uri.as_deref() {
        Some(uri) if redirect::matches_registered(uri, &client.redirect_uris) => uri.to_owned(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        Some(_) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "redirect_uri is not one this client registered",
            );
        }
        None => return page::error(StatusCode::BAD_REQUEST, "the request names no redirect_uri"),
    };
    let issuer = server.settings.issuer();
    let state = request.state.as_deref();
    let refuse = |error: &str, description: &str| {
        redirect_to(
            &redirect_uri,
            &[("error", error), ("error_description", description)],
            state,
            &issuer,
        )
    };
    if request.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "only response_type=code");
    }
    if request.code_challenge_method.as_deref() != Some(pkce::METHOD) {
        return refuse(
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required",
        );
    }
    let Some(challenge) = request
        .code_challenge
        .as_deref()
        .filter(|challenge| pkce::is_valid_challenge(challenge))
    else {
        return refuse("invalid_request", "code_challenge is missing or malformed");
    };
    let resource = match request.resource.as_deref() {
        None => server.settings.resource(),
        Some(resource) if server.settings.is_own_resource(resource) => server.settings.resource(),
        Some(_) => return refuse("invalid_target", "resource is not this server's MCP URL"),
    };
    let scope = match resolve_scope(request.scope.as_deref()) {
        Ok(scope) => scope,
        Err(description) => return refuse("invalid_scope", &description),
    };
    let nonce = random_token();
    let pending = Pending {
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        redirect_uri,
        state: request.state.clone(),
        code_challenge: challenge.to_owned(),
        scope: scope.to_owned(),
        resource,
        expires: Instant::now() + CONSENT_TTL,
    };
    let response = page::consent(&page::ConsentView {
        client_name: &pending.client_name,
        client_id: &pending.client_id,
        redirect_origin: redirect::shown_host(&pending.redirect_uri),
        scope,
        nonce: &nonce,
        error: None,
    });
    {
        let mut waiting = server.pending.lock();
        OAuthServer::prune_pending(&mut waiting, Instant::now());
        waiting.insert(nonce, pending);
    }
    server
        .audit(
            context,
            OAuthStep::ConsentShown,
            &client.client_id,
            None,
            None,
        )
        .await;
    response
}

/// POST: the owner's answer.
pub async fn answer(
    State(server): State<Arc<OAuthServer>>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let context = server.context(peer, &headers);
    let Some(nonce) = form.nonce.filter(|nonce| !nonce.is_empty()) else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "this form was not shown by this server (no nonce); start the authorization again",
        );
    };
    let pending = {
        let mut waiting = server.pending.lock();
        OAuthServer::prune_pending(&mut waiting, Instant::now());
        waiting.get(&nonce).cloned()
    };
    let Some(pending) = pending else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "this form has expired or was already answered; start the authorization again",
        );
    };
    let issuer = server.settings.issuer();
    if form.decision.as_deref() != Some("approve") {
        server.pending.lock().remove(&nonce);
        server
            .audit(
                context,
                OAuthStep::ConsentDenied,
                &pending.client_id,
                None,
                None,
            )
            .await;
        return redirect_to(
            &pending.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the owner denied the request"),
            ],
            pending.state.as_deref(),
            &issuer,
        );
    }
    let entered = form.token.as_deref().map(str::trim).unwrap_or_default();
    // Only a configured token approves: never an access token (a JWT has dots).
    let principal = if entered.is_empty() || entered.contains('.') {
        None
    } else {
        HeaderValue::from_str(&format!("Bearer {entered}"))
            .ok()
            .and_then(|header| server.authenticator.authenticate(Some(&header)).ok())
    };
    let Some(principal) = principal else {
        if let Some(address) = server.budget_key(peer, &headers)
            && server.consent_failures.hit(&address).is_err()
        {
            server
                .audit(
                    context,
                    OAuthStep::ConsentTokenRefused,
                    &pending.client_id,
                    None,
                    Some("too many wrong tokens from this address".to_owned()),
                )
                .await;
            let mut response = page::error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong tokens from this address; wait a minute",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return response;
        }
        server
            .audit(
                context,
                OAuthStep::ConsentTokenRefused,
                &pending.client_id,
                None,
                Some("not a token this server accepts".to_owned()),
            )
            .await;
        let mut response = page::consent(&page::ConsentView {
            client_name: &pending.client_name,
            client_id: &pending.client_id,
            redirect_origin: redirect::shown_host(&pending.redirect_uri),
            scope: &pending.scope,
            nonce: &nonce,
            error: Some("That is not a token this server accepts."),
        });
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    };
    if server.pending.lock().remove(&nonce).is_none() {
        return page::error(StatusCode::BAD_REQUEST, "this form was already answered");
    }
    let now = now_secs();
    let grant = GrantRecord {
        grant_id: random_token(),
        client_id: pending.client_id.clone(),
        principal: principal.name().to_owned(),
        parent_sha256: TokenDigest::of_token(entered).to_hex(),
        role: grant_role(principal.role(), &pending.scope)
            .as_str()
            .to_owned(),
        scope: pending.scope.clone(),
        resource: pending.resource.clone(),
        created_at: now,
        revoked: None,
    };
    let code = random_token();
    let code_record = CodeRecord {
        grant_id: grant.grant_id.clone(),
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        expires_at: now + CODE_TTL.as_secs(),
        used: false,
    };
    let stored = {
        let server = server.clone();
        let grant = grant.clone();
        let code = code.clone();
        tokio::task::spawn_blocking(move || {
            server.store.put_grant(&grant)?;
            server.store.put_code(&code, &code_record)?;
            server.store.touch_client(&grant.client_id, now)
        })
        .await
    };
    if !matches!(stored, Ok(Ok(()))) {
        tracing::error!(?stored, "cannot store an OAuth grant");
        return page::error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the grant");
    }
    server.verifier.admit(&grant, &pending.client_name);
    server
        .audit(
            context.with_principal(principal.name()),
            OAuthStep::ConsentApproved,
            &pending.client_id,
            Some(&grant.grant_id),
            None,
        )
        .await;
    redirect_to(
        &pending.redirect_uri,
        &[("code", &code)],
        pending.state.as_deref(),
        &issuer,
    )
}
