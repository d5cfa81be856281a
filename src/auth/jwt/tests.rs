//! Outside JWTs against a JWKS served on loopback by the test: every refusal next to the
//! token that differs from it by the one thing refused, and the key cache's fetch budget.
//! The keys in `testdata/` are test-only (openssl genpkey), used nowhere else.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

use super::{settings::*, *};
use crate::auth::{AuthError, Role};

const RSA_A: &str = include_str!("testdata/rsa_a.pem");
const RSA_A_PUBLIC: &str = include_str!("testdata/rsa_a.pub.pem");
const RSA_B: &str = include_str!("testdata/rsa_b.pem");
const EC_A: &str = include_str!("testdata/ec_a.pem");
const ISSUER: &str = "http://127.0.0.1:9/realms/ops";
const AUDIENCE: &str = "https://host.example/mcp";

/// A JWKS endpoint whose keys the test swaps, counting its fetches.
#[derive(Clone, Default)]
struct Jwks {
    keys: Arc<parking_lot::Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl Jwks {
    fn publish(&self, keys: Vec<Jwk>) {
        *self.keys.lock() = keys;
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(jwks: Jwks) -> String {
    async fn keys(State(jwks): State<Jwks>) -> Json<Value> {
        jwks.fetches.fetch_add(1, Ordering::SeqCst);
        Json(json!({ "keys": *jwks.keys.lock() }))
    }
    let app = Router::new().route("/jwks", get(keys)).with_state(jwks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/jwks")
}

fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn file(jwks_uri: &str) -> IssuerFile {
    IssuerFile {
        name: "corp".into(),
        issuer: ISSUER.into(),
        audience: Some(vec![AUDIENCE.into()]),
        algorithms: None,
        jwks_uri: Some(jwks_uri.into()),
        principal_claim: None,
        role_claim: Some("roles".into()),
        roles: BTreeMap::from([
            ("hostmcp-read".into(), "read".into()),
            ("hostmcp-ops".into(), "operator".into()),
        ]),
        default_role: None,
        // Wide, so the near misses below stay inside it on a slow, loaded machine.
        leeway_secs: Some(60),
        ca_file: None,
        jwks_refresh_secs: None,
        jwks_min_refresh_secs: Some(1),
        fetch_timeout_secs: Some(5),
    }
}

fn issuers(files: &[IssuerFile]) -> Issuers {
    Issuers::new(resolve_issuers(files).unwrap()).unwrap()
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 300,
        "roles": ["hostmcp-ops"],
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token signed by key A (kid "a") with `claims`.
fn token(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("a"), claims, &rsa(RSA_A))
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut claims = claims();
    change(&mut claims);
    claims
}

async fn setup() -> (Jwks, Issuers) {
    let jwks = Jwks::default();
    jwks.publish(vec![jwk(&rsa(RSA_A), Algorithm::RS256, "a")]);
    let uri = serve_jwks(jwks.clone()).await;
    (jwks, issuers(&[file(&uri)]))
}

#[tokio::test]
async fn a_valid_token_is_a_principal_named_by_issuer_and_sub_with_the_mapped_role() {
    let (_, issuers) = setup().await;
    let principal = issuers.authenticate(&token(&claims())).await.unwrap();
    assert_eq!(principal.name(), "corp:alice");
    assert_eq!(principal.role(), Role::Operator);
    assert_eq!(principal.run_as(), None);
}

/// Each refused token differs from an accepted one (checked first) by one thing.
#[tokio::test]
async fn each_refusal_has_its_accepted_twin() {
    let (_, issuers) = setup().await;
    let hs256 = EncodingKey::from_secret(RSA_A_PUBLIC.as_bytes()).unwrap();
    let cases: Vec<(&str, String, String, AuthError)> = vec![
        (
            "wrong audience",
            token(&with(|c| {
                c["aud"] = json!(["https://host.example/mcp", "x"]);
            })),
            token(&with(|c| c["aud"] = json!("https://other.example/mcp"))),
            AuthError::Jwt(Refusal::Audience),
        ),
        (
            "no audience",
            token(&claims()),
            token(&with(|c| {
                c.as_object_mut().unwrap().remove("aud");
            })),
            AuthError::Jwt(Refusal::Claims),
        ),
        (
            "wrong issuer",
            token(&claims()),
            token(&with(|c| {
                c["iss"] = json!("http://127.0.0.1:9/realms/other");
            })),
            AuthError::Jwt(Refusal::UnknownIssuer),
        ),
        (
            "expired",
            token(&with(|c| c["exp"] = json!(now() - 20))),
            token(&with(|c| c["exp"] = json!(now() - 200))),
            AuthError::Expired,
        ),
        (
            "exp as a string",
            token(&claims()),
            token(&with(|c| c["exp"] = json!("99999999999"))),
            AuthError::Jwt(Refusal::Claims),
        ),
        (
            "not yet valid",
            token(&with(|c| c["nbf"] = json!(now() + 20))),
            token(&with(|c| c["nbf"] = json!(now() + 200))),
            AuthError::Jwt(Refusal::NotYetValid),
        ),
        (
            "HS256 with the public key as secret",
            token(&claims()),
            sign(Algorithm::HS256, Some("a"), &claims(), &hs256),
            AuthError::Jwt(Refusal::Algorithm),
        ),
        (
            "signed by another key under the same kid",
            token(&claims()),
            sign(Algorithm::RS256, Some("a"), &claims(), &rsa(RSA_B)),
            AuthError::Jwt(Refusal::Signature),
        ),
        (
            "an RSA kid used with an EC algorithm",
            token(&claims()),
            sign(
                Algorithm::ES256,
                Some("a"),
                &claims(),
                &EncodingKey::from_ec_pem(EC_A.as_bytes()).unwrap(),
            ),
            AuthError::Jwt(Refusal::UnknownKey),
        ),
        (
            "no role claim",
            token(&claims()),
            token(&with(|c| {
                c.as_object_mut().unwrap().remove("roles");
            })),
            AuthError::NoRole,
        ),
        (
            "roles that map to nothing",
            token(&with(|c| c["roles"] = json!(["x", "hostmcp-read"]))),
            token(&with(|c| c["roles"] = json!(["x", "hostmcp-admin"]))),
            AuthError::NoRole,
        ),
        (
            "no principal claim",
            token(&claims()),
            token(&with(|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            AuthError::Jwt(Refusal::Principal),
        ),
        (
            "a principal with whitespace",
            token(&with(|c| c["sub"] = json!("alice@example.com"))),
            token(&with(|c| c["sub"] = json!("alice smith"))),
            AuthError::Jwt(Refusal::Principal),
        ),
    ];
    for (name, allowed, refused, expected) in cases {
        assert!(
            issuers.authenticate(&allowed).await.is_ok(),
            "{name}: the allowed twin is refused"
        );
        assert_eq!(
            issuers.authenticate(&refused).await.err(),
            Some(expected),
            "{name}"
        );
    }
}

#[tokio::test]
async fn alg_none_and_garbage_are_refused() {
    use base64::Engine as _;
    let (_, issuers) = setup().await;
    let b64 =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    assert!(issuers.authenticate(&unsigned).await.is_err());
    assert_eq!(
        issuers.authenticate("a.b.c").await.err(),
        Some(AuthError::Jwt(Refusal::Malformed))
    );
    // Near miss: the same claims, signed.
    assert!(issuers.authenticate(&token(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_unknown_kid_and_a_flood_of_kids_fetches_once() {
    let jwks = Jwks::default();
    jwks.publish(vec![jwk(&rsa(RSA_A), Algorithm::RS256, "a")]);
    let mut settings = file(&serve_jwks(jwks.clone()).await);
    settings.jwks_min_refresh_secs = Some(2);
    let issuers = issuers(&[settings]);
    // Signed first: RSA signing in a debug build is slow, the flood itself is not.
    let flood: Vec<String> = (0..50)
        .map(|index| {
            let kid = format!("random-{index}");
            sign(Algorithm::RS256, Some(&kid), &claims(), &rsa(RSA_B))
        })
        .collect();
    assert!(issuers.authenticate(&token(&claims())).await.is_ok());
    assert_eq!(jwks.fetches(), 1);
    // A flood of unknown kids: one more fetch per 2 s window at most.
    let started = std::time::Instant::now();
    for token in &flood {
        assert_eq!(
            issuers.authenticate(token).await.err(),
            Some(AuthError::Jwt(Refusal::UnknownKey))
        );
    }
    let windows = usize::try_from(started.elapsed().as_secs() / 2).unwrap() + 1;
    assert!(
        jwks.fetches() <= 1 + windows,
        "fetched {} times in {windows} windows",
        jwks.fetches()
    );
    // The identity provider rotates to key B (kid "b"); past the budget it is fetched.
    jwks.publish(vec![jwk(&rsa(RSA_B), Algorithm::RS256, "b")]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let rotated = sign(Algorithm::RS256, Some("b"), &claims(), &rsa(RSA_B));
    let principal = issuers.authenticate(&rotated).await.unwrap();
    assert_eq!(principal.name(), "corp:alice");
    // The old key is gone from the set: its tokens are refused after the refresh.
    assert!(issuers.authenticate(&token(&claims())).await.is_err());
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_refuse_the_token() {
    let issuers = issuers(&[file("http://127.0.0.1:9/jwks")]);
    assert_eq!(
        issuers.authenticate(&token(&claims())).await.err(),
        Some(AuthError::Jwt(Refusal::KeysUnavailable))
    );
}

#[tokio::test]
async fn a_default_role_and_a_dotted_role_claim_and_the_highest_mapped_role() {
    let jwks = Jwks::default();
    jwks.publish(vec![jwk(&rsa(RSA_A), Algorithm::RS256, "a")]);
    let uri = serve_jwks(jwks).await;
    let mut keycloak = file(&uri);
    keycloak.role_claim = Some("realm_access.roles".into());
    keycloak.principal_claim = Some("preferred_username".into());
    keycloak.default_role = Some("read".into());
    let issuers = issuers(&[keycloak]);
    let claims = with(|c| {
        c["preferred_username"] = json!("bob");
        c["realm_access"] = json!({"roles": ["hostmcp-read", "hostmcp-ops"]});
    });
    let principal = issuers.authenticate(&token(&claims)).await.unwrap();
    assert_eq!(
        (principal.name(), principal.role()),
        ("corp:bob", Role::Operator)
    );
    let unmapped = with(|c| c["preferred_username"] = json!("carol"));
    let principal = issuers.authenticate(&token(&unmapped)).await.unwrap();
    assert_eq!(
        (principal.name(), principal.role()),
        ("corp:carol", Role::Read)
    );
}

#[test]
fn settings_refuse_symmetric_and_none_algorithms_and_plain_http_off_loopback() {
    let good = file("https://idp.example/jwks");
    let settings = resolve_issuers(std::slice::from_ref(&good)).unwrap();
    assert_eq!(settings[0].algorithms, DEFAULT_ALGORITHMS);
    for bad in ["HS256", "HS512", "none", "RSA-OAEP", ""] {
        let mut file = good.clone();
        file.algorithms = Some(vec![bad.into()]);
        assert!(
            matches!(
                resolve_issuers(&[file]),
                Err(IssuerSettingsError::BadAlgorithm { .. })
            ),
            "{bad}"
        );
    }
    let mut es = good.clone();
    es.algorithms = Some(vec!["ES256".into(), "PS256".into()]);
    assert!(resolve_issuers(&[es]).is_ok());
    for (field, url, ok) in [
        ("issuer", "http://idp.example/realms/ops", false),
        ("issuer", "http://localhost:8080/realms/ops", true),
        ("issuer", "http://[::1]:8080", true),
        ("jwks_uri", "http://10.0.0.1/jwks", false),
        ("jwks_uri", "https://idp.example/jwks?x=1", false),
        ("jwks_uri", "ftp://idp.example/jwks", false),
    ] {
        let mut file = good.clone();
        match field {
            "issuer" => file.issuer = url.into(),
            _ => file.jwks_uri = Some(url.into()),
        }
        assert_eq!(resolve_issuers(&[file]).is_ok(), ok, "{field} {url}");
    }
    let mut no_role = good.clone();
    no_role.roles.clear();
    assert!(matches!(
        resolve_issuers(&[no_role.clone()]),
        Err(IssuerSettingsError::NoRoleSource { .. })
    ));
    no_role.default_role = Some("read".into());
    assert!(resolve_issuers(&[no_role]).is_ok());
    let mut bad_role = good.clone();
    bad_role.roles.insert("x".into(), "root".into());
    assert!(matches!(
        resolve_issuers(&[bad_role]),
        Err(IssuerSettingsError::UnknownRole { .. })
    ));
    assert!(matches!(
        resolve_issuers(&[good.clone(), good]),
        Err(IssuerSettingsError::DuplicateName { .. })
    ));
}

#[test]
fn audience_defaults_to_the_mcp_url_of_the_public_url_and_is_required_without_one() {
    const OWN: &str = "https://mcp.example/mcp";
    let mut no_audience = file("https://idp.example/jwks");
    no_audience.audience = None;
    assert!(matches!(
        resolve_issuers(std::slice::from_ref(&no_audience)),
        Err(IssuerSettingsError::NoDefaultAudience { index: 0 })
    ));
    let settings = resolve_issuers_for(std::slice::from_ref(&no_audience), Some(OWN)).unwrap();
    assert_eq!(settings[0].audience, [OWN]);
    // A written audience wins over the default; an empty one is still refused.
    let written = file("https://idp.example/jwks");
    let settings = resolve_issuers_for(std::slice::from_ref(&written), Some(OWN)).unwrap();
    assert_eq!(settings[0].audience, [AUDIENCE]);
    let mut empty = written;
    empty.audience = Some(vec![]);
    assert!(matches!(
        resolve_issuers_for(&[empty], Some(OWN)),
        Err(IssuerSettingsError::NoAudience { index: 0 })
    ));
}

#[test]
fn only_three_part_tokens_look_like_jwts() {
    assert!(looks_like_jwt("a.b.c"));
    assert!(!looks_like_jwt("hmcp_abcdef"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("a.b.c.d.e"));
}
