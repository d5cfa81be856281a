//! The API-key header: the same token as `Authorization: Bearer`, each refusal next to its
//! accepted twin, and through the [`Authenticator`](super::super::authenticator::Authenticator)
//! exactly the checks of a bearer token.

use axum::http::{HeaderMap, HeaderValue, header};

use super::*;
use crate::auth::{
    Role, TokenDigest, TokenEntry, TokenSet,
    authenticator::{Authenticator, OutsideCredentials},
};

const TOKEN: &str = "hmcp_alice-0123456789";

fn x_api_key() -> ApiKeyHeader {
    ApiKeyHeader::parse(CONVENTIONAL_API_KEY_HEADER).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

/// Header (name, value) pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn presented(pairs: &[(&str, &str)]) -> Result<String, AuthError> {
    let key = x_api_key();
    presented_token(&headers(pairs), Some(&key)).map(str::to_owned)
}

#[test]
fn the_api_key_header_carries_the_token_and_each_refusal_has_its_twin() {
    let bearer = format!("Bearer {TOKEN}");
    // (accepted, refused, why)
    let cases: [(Pairs<'_>, Pairs<'_>, AuthError); 5] = [
        (&[("x-api-key", TOKEN)], &[], AuthError::Missing),
        (
            &[("X-Api-Key", TOKEN)],
            &[("x-api-key", "")],
            AuthError::Malformed,
        ),
        (
            &[("x-api-key", &format!(" {TOKEN} "))],
            &[("x-api-key", &bearer)],
            AuthError::Malformed,
        ),
        (
            &[("x-api-key", TOKEN), ("authorization", &bearer)],
            &[("x-api-key", "hmcp_other"), ("authorization", &bearer)],
            AuthError::Conflicting,
        ),
        (
            &[("x-api-key", TOKEN)],
            &[("x-api-key", TOKEN), ("x-api-key", TOKEN)],
            AuthError::Malformed,
        ),
    ];
    for (accepted, refused, why) in cases {
        assert_eq!(presented(accepted).as_deref(), Ok(TOKEN), "{accepted:?}");
        assert_eq!(presented(refused), Err(why), "{refused:?}");
    }
    // Authorization alone is unchanged.
    assert_eq!(
        presented(&[("authorization", &bearer)]).as_deref(),
        Ok(TOKEN)
    );
}

#[test]
fn without_a_configured_header_an_api_key_is_not_a_credential() {
    let only_key = headers(&[("x-api-key", TOKEN)]);
    assert_eq!(presented_token(&only_key, None), Err(AuthError::Missing));
    let both = headers(&[
        ("x-api-key", "hmcp_other"),
        ("authorization", &format!("Bearer {TOKEN}")),
    ]);
    assert_eq!(presented_token(&both, None), Ok(TOKEN));
}

#[test]
fn reserved_and_invalid_header_names_are_refused() {
    for name in [
        "Authorization",
        "cookie",
        "Host",
        "X-Forwarded-User",
        "Mcp-Session-Id",
        "Proxy-Authorization",
    ] {
        assert!(
            matches!(
                ApiKeyHeader::parse(name),
                Err(ApiKeyHeaderError::Reserved(_))
            ),
            "{name}"
        );
    }
    assert!(matches!(
        ApiKeyHeader::parse("X API Key"),
        Err(ApiKeyHeaderError::Invalid(_))
    ));
    for name in ["X-API-Key", "Ocp-Apim-Subscription-Key", "api-key"] {
        assert!(ApiKeyHeader::parse(name).is_ok(), "{name}");
    }
}

#[tokio::test]
async fn the_authenticator_checks_an_api_key_exactly_like_a_bearer_token() {
    let expired = TokenEntry::new("old", TokenDigest::of_token("hmcp_old"), Role::Read)
        .expiring_at(std::time::UNIX_EPOCH);
    let set = TokenSet::new(vec![
        TokenEntry::new("alice", TokenDigest::of_token(TOKEN), Role::Operator),
        expired,
    ]);
    let auth = Authenticator::tokens(set).with_outside(OutsideCredentials {
        api_key_header: Some(x_api_key()),
        issuers: None,
        resource_metadata: None,
        resource_metadata_path: None,
    });
    for (token, expected) in [
        (TOKEN, Ok("alice".to_owned())),
        ("hmcp_wrong", Err(AuthError::Invalid)),
        ("hmcp_old", Err(AuthError::Expired)),
    ] {
        for headers in [
            headers(&[("x-api-key", token)]),
            headers(&[(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))]),
        ] {
            let result = auth
                .authenticate_request(&headers)
                .await
                .map(|principal| principal.name().to_owned());
            assert_eq!(result, expected, "{headers:?}");
        }
    }
}
