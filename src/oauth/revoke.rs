//! `/oauth/revoke` (RFC 7009): a refresh or access token presented here revokes its whole
//! grant (every token of the family). The answer is 200 whether or not the token was
//! known, so that it tells nothing; only the audit log says what happened.

use std::sync::Arc;

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{OAuthServer, Peer, no_store, oauth_error};
use crate::audit::OAuthStep;

#[derive(Debug, Deserialize)]
pub struct RevocationRequest {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
}

pub async fn revoke(
    State(server): State<Arc<OAuthServer>>,
    peer: Peer,
    headers: HeaderMap,
    Form(request): Form<RevocationRequest>,
) -> Response {
    let context = server.context(peer, &headers);
    let Some(token) = request.token.filter(|token| !token.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let _hint = request.token_type_hint;
    let result = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || {
            let grant_id = match server.store.refresh(&token)? {
                Some(record) => Some(record.grant_id),
                None => server
                    .key
                    .verify(
                        &token,
                        &server.settings.issuer(),
                        &server.settings.resource(),
                    )
                    .map(|claims| claims.gid),
            };
            let Some(grant_id) = grant_id else {
                return Ok(None);
            };
            let grant = server.store.grant(&grant_id)?;
            if grant.is_some() {
                server.store.revoke_grant(&grant_id, "revoked_by_client")?;
            }
            Ok::<_, super::store::StoreError>(grant)
        })
        .await
    };
    match result {
        Ok(Ok(Some(grant))) => {
            server.verifier.forget(&grant.grant_id);
            server
                .audit(
                    context.with_principal(&grant.principal),
                    OAuthStep::TokenRevoked,
                    &grant.client_id,
                    Some(&grant.grant_id),
                    None,
                )
                .await;
        }
        Ok(Ok(None)) => {
            let client_id = request.client_id.unwrap_or_default();
            server
                .audit(
                    context,
                    OAuthStep::TokenRevoked,
                    &client_id,
                    None,
                    Some("unknown token".to_owned()),
                )
                .await;
        }
        _ => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "store error",
            );
        }
    }
    no_store(StatusCode::OK.into_response())
}
