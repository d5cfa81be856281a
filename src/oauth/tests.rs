//! The authorization server driven through its router with `oneshot`, beside a protected
//! `/mcp` route behind the real authentication layer: the whole flow, then every near
//! miss of issue 12 with its allowed twin.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
    middleware::from_fn_with_state,
    routing::post,
};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::{OAuthServer, keys::AccessClaims, pkce, settings::OAuthSettings, store::now_secs};
use crate::{
    audit::{AuditLog, AuditOptions},
    auth::{
        Principal, Role, TokenDigest, TokenEntry, TokenSet,
        authenticator::Authenticator,
        client_address::TrustedProxies,
        layer::{AuthGate, require_principal},
    },
};

const OPS: &str = "hmcp_ops-token-0123456789";
const READER: &str = "hmcp_reader-token-0123456789";
const PUBLIC: &str = "https://host.example";
const ISSUER: &str = "https://host.example/";
const RESOURCE: &str = "https://host.example/mcp";
const CALLBACK: &str = "http://127.0.0.1:4455/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn token_set() -> TokenSet {
    TokenSet::new(vec![
        TokenEntry::new("ops", TokenDigest::of_token(OPS), Role::Operator),
        TokenEntry::new("reader", TokenDigest::of_token(READER), Role::Read),
    ])
}

struct Harness {
    app: Router,
    server: Arc<OAuthServer>,
    authenticator: Arc<Authenticator>,
    audit_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn location(&self) -> Option<String> {
        self.headers
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap().to_owned())
    }

    /// A query parameter of the `Location` URL.
    fn redirect_param(&self, name: &str) -> Option<String> {
        let location = self.location()?;
        let (_, query) = location.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    fn nonce(&self) -> String {
        let (_, rest) = self
            .body
            .split_once(r#"name="nonce" value=""#)
            .expect("a consent form");
        rest.split('"').next().unwrap().to_owned()
    }
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&audit_path, AuditOptions::default()).unwrap();
    let authenticator = Arc::new(Authenticator::tokens(token_set()));
    let settings = OAuthSettings {
        public_url: PUBLIC.to_owned(),
        store: dir.path().join("oauth.redb"),
        extra_redirect_uris: vec![],
        max_clients: 10,
        unused_client_ttl: Duration::from_secs(3600),
        access_token_ttl: Duration::from_secs(3600),
        refresh_token_ttl: Duration::from_secs(86400),
        cimd_allow_private_networks: false,
        cimd_ca_file: None,
    };
    let server = OAuthServer::start(
        settings,
        authenticator.clone(),
        audit.clone(),
        TrustedProxies::new([]),
        crate::auth::OnRevoke::Kill,
    )
    .unwrap();
    let gate = AuthGate::new(authenticator.clone(), audit, 1000, TrustedProxies::new([]));
    let protected = Router::new()
        .route(
            "/mcp",
            post(|Extension(principal): Extension<Principal>| async move {
                format!("{} {}", principal.name(), principal.role())
            }),
        )
        .layer(from_fn_with_state(Arc::new(gate), require_principal));
    Harness {
        app: protected.merge(server.routes()),
        server,
        authenticator,
        audit_path,
        _dir: dir,
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Answer {
        let mut request = request;
        request
            .extensions_mut()
            .insert(ConnectInfo("192.0.2.7:5000".parse::<SocketAddr>().unwrap()));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post_form(&self, uri: &str, pairs: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    async fn register(&self, redirect_uris: &[&str]) -> Answer {
        let body = serde_json::json!({
            "redirect_uris": redirect_uris,
            "client_name": "Test <Client>",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        });
        self.send(
            Request::post("/oauth/register")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn client(&self) -> String {
        let answer = self.register(&[CALLBACK]).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.json()["client_id"].as_str().unwrap().to_owned()
    }

    /// GET /oauth/authorize with the usual parameters, `changes` overriding (an empty value
    /// drops the parameter).
    async fn authorize(&self, client_id: &str, changes: &[(&str, &str)]) -> Answer {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("state", "st-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", RESOURCE),
        ];
        for (name, value) in changes {
            params.retain(|(key, _)| key != name);
            if !value.is_empty() {
                params.push((name, value));
            }
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.get(&format!("/oauth/authorize?{query}")).await
    }

    /// Approve with `token`: the redirect.
    async fn approve(&self, client_id: &str, token: &str, changes: &[(&str, &str)]) -> Answer {
        let page = self.authorize(client_id, changes).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        self.post_form(
            "/oauth/authorize",
            &[
                ("nonce", &page.nonce()),
                ("token", token),
                ("decision", "approve"),
            ],
        )
        .await
    }

    async fn code(&self, client_id: &str, token: &str) -> String {
        let answer = self.approve(client_id, token, &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        answer.redirect_param("code").unwrap()
    }

    async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> Answer {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
                ("client_id", client_id),
                ("code_verifier", verifier),
                ("resource", RESOURCE),
            ],
        )
        .await
    }

    async fn refresh(&self, client_id: &str, refresh_token: &str) -> Answer {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ],
        )
        .await
    }

    /// Tokens for a new client approved with `token`: (client_id, token response).
    async fn tokens(&self, token: &str) -> (String, serde_json::Value) {
        let client_id = self.client().await;
        let code = self.code(&client_id, token).await;
        let answer = self.exchange(&client_id, &code, VERIFIER).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        (client_id, answer.json())
    }

    /// POST /mcp with a bearer token: (status, body).
    async fn call(&self, bearer: &str) -> (StatusCode, String) {
        let answer = self
            .send(
                Request::post("/mcp")
                    .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        (answer.status, answer.body)
    }

    fn audit_steps(&self) -> Vec<String> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record["event"] == "oauth")
            .filter_map(|record| record["step"].as_str().map(str::to_owned))
            .collect()
    }
}

fn access(tokens: &serde_json::Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn the_whole_flow_gives_an_access_token_that_acts_as_the_approving_token() {
    let h = harness();
    let client_id = h.client().await;
    let approved = h.approve(&client_id, OPS, &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    assert!(approved.location().unwrap().starts_with(CALLBACK));
    assert_eq!(approved.redirect_param("state").as_deref(), Some("st-1"));
    assert_eq!(approved.redirect_param("iss").as_deref(), Some(ISSUER));
    let code = approved.redirect_param("code").unwrap();
    let answer = h.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "hostmcp");
    assert_eq!(
        h.call(access(&tokens)).await,
        (StatusCode::OK, "ops operator".to_owned())
    );
    // The header client beside it is unchanged.
    assert_eq!(
        h.call(OPS).await,
        (StatusCode::OK, "ops operator".to_owned())
    );
    // Audited, each step once, and never a secret.
    let steps = h.audit_steps();
    for step in [
        "client_registered",
        "consent_shown",
        "consent_approved",
        "token_issued",
    ] {
        assert_eq!(
            steps.iter().filter(|s| *s == step).count(),
            1,
            "{step} in {steps:?}"
        );
    }
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    assert!(!log.contains(&code) && !log.contains(access(&tokens)) && !log.contains(OPS));
}

#[tokio::test]
async fn metadata_and_the_401_challenge_point_at_this_server() {
    let h = harness();
    let challenge = h.call("wrong").await;
    assert_eq!(challenge.0, StatusCode::UNAUTHORIZED);
    let answer = h
        .send(Request::post("/mcp").body(Body::empty()).unwrap())
        .await;
    let www = answer.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        www.contains(
            r#"resource_metadata="https://host.example/.well-known/oauth-protected-resource""#
        ),
        "{www}"
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let prm = h.get(path).await.json();
        assert_eq!(prm["resource"], RESOURCE);
        assert_eq!(prm["authorization_servers"][0], ISSUER);
    }
    let asm = h
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(asm["issuer"], ISSUER);
    assert_eq!(asm["token_endpoint"], "https://host.example/oauth/token");
    assert_eq!(
        asm["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
    let jwks = h.get("/oauth/jwks").await.json();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_and_the_right_one_accepted() {
    let h = harness();
    let client_id = h.client().await;
    let code = h.code(&client_id, OPS).await;
    let wrong = h
        .exchange(
            &client_id,
            &code,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json()["error"], "invalid_grant");
    let missing = h.exchange(&client_id, &code, "").await;
    assert_eq!(missing.json()["error"], "invalid_grant");
    // A code whose verifier was wrong is spent; a fresh one with the right verifier works.
    let code = h.code(&client_id, OPS).await;
    assert_eq!(
        h.exchange(&client_id, &code, VERIFIER).await.status,
        StatusCode::OK
    );
    assert!(pkce::verify(VERIFIER, CHALLENGE));
}

#[tokio::test]
async fn the_plain_method_and_a_missing_challenge_are_refused_by_redirect_and_s256_is_not() {
    let h = harness();
    let client_id = h.client().await;
    for changes in [
        &[("code_challenge_method", "plain")][..],
        &[("code_challenge_method", "")][..],
        &[("code_challenge", "")][..],
    ] {
        let answer = h.authorize(&client_id, changes).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{changes:?}");
        assert_eq!(
            answer.redirect_param("error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(answer.redirect_param("state").as_deref(), Some("st-1"));
        assert_eq!(answer.redirect_param("iss").as_deref(), Some(ISSUER));
    }
    assert_eq!(h.authorize(&client_id, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn registration_accepts_allowlisted_redirects_only() {
    let h = harness();
    for allowed in [
        "https://claude.ai/api/mcp/auth_callback",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        CALLBACK,
    ] {
        assert_eq!(
            h.register(&[allowed]).await.status,
            StatusCode::CREATED,
            "{allowed}"
        );
    }
    for refused in [
        "https://claude.ai/api/mcp/auth_callbacks",
        "https://evil.example/callback",
        "http://evil.example/callback",
    ] {
        let answer = h.register(&[refused]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(answer.json()["error"], "invalid_redirect_uri");
    }
    let confidential = h
        .send(
            Request::post("/oauth/register")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    serde_json::json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(confidential.json()["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn a_redirect_uri_one_character_off_is_shown_on_a_page_never_redirected() {
    let h = harness();
    let client_id = h.client().await;
    for (name, value) in [
        ("redirect_uri", "http://127.0.0.1:4455/callbacks"),
        ("redirect_uri", "https://evil.example/callback"),
        ("client_id", "no-such-client"),
    ] {
        let answer = h.authorize(&client_id, &[(name, value)]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{value}");
        assert_eq!(answer.location(), None, "no open redirect for {value}");
        assert!(answer.body.contains("Authorization error"));
    }
    let page = h.authorize(&client_id, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    // The form's POST carries this origin (the host guard refuses `Origin: null`, which
    // Chromium sends under `no-referrer`); other origins get no referrer.
    assert_eq!(page.headers[header::REFERRER_POLICY], "same-origin");
    assert!(
        page.body.contains("Test &lt;Client&gt;") && page.body.contains("http://127.0.0.1:4455")
    );
    assert!(!page.body.contains("<script"));
}

#[tokio::test]
async fn a_code_used_twice_revokes_its_grant_and_used_once_works() {
    let h = harness();
    let client_id = h.client().await;
    let code = h.code(&client_id, OPS).await;
    let first = h.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(first.status, StatusCode::OK);
    let access_token = first.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.call(&access_token).await.0, StatusCode::OK);
    let again = h.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(again.json()["error"], "invalid_grant");
    assert_eq!(h.call(&access_token).await.0, StatusCode::UNAUTHORIZED);
    let steps = h.audit_steps();
    assert!(
        steps.contains(&"reuse_detected".to_owned()),
        "{steps:?} {}",
        std::fs::read_to_string(&h.audit_path).unwrap()
    );
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_rotated_token_revokes_the_family() {
    let h = harness();
    let (client_id, tokens) = h.tokens(OPS).await;
    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let rotated = h.refresh(&client_id, first_refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let rotated = rotated.json();
    assert_ne!(rotated["refresh_token"], tokens["refresh_token"]);
    assert_eq!(h.call(access(&rotated)).await.0, StatusCode::OK);
    // The old one comes back: the whole family dies, the newest tokens too.
    let reuse = h.refresh(&client_id, first_refresh).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(h.call(access(&rotated)).await.0, StatusCode::UNAUTHORIZED);
    let newest = h
        .refresh(&client_id, rotated["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(newest.json()["error"], "invalid_grant");
    // Another client's refresh token is refused without harming its owner.
    let (owner, theirs) = h.tokens(OPS).await;
    let other = h.client().await;
    let stolen = h
        .refresh(&other, theirs["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    assert_eq!(
        h.refresh(&owner, theirs["refresh_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused_and_one_for_this_server_accepted() {
    let h = harness();
    let client_id = h.client().await;
    let answer = h
        .authorize(&client_id, &[("resource", "https://other.example/mcp")])
        .await;
    assert_eq!(
        answer.redirect_param("error").as_deref(),
        Some("invalid_target")
    );
    // A token signed by this server's key for another audience does not open /mcp.
    let (_, tokens) = h.tokens(OPS).await;
    let claims = h
        .server
        .key
        .verify(access(&tokens), ISSUER, RESOURCE)
        .unwrap();
    let elsewhere = h
        .server
        .key
        .sign(&AccessClaims {
            aud: "https://other.example/mcp".to_owned(),
            ..claims.clone()
        })
        .unwrap();
    assert_eq!(h.call(&elsewhere).await.0, StatusCode::UNAUTHORIZED);
    let here = h.server.key.sign(&claims).unwrap();
    assert_eq!(h.call(&here).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_access_token_is_refused_and_a_live_one_accepted() {
    let h = harness();
    let (_, tokens) = h.tokens(OPS).await;
    let claims = h
        .server
        .key
        .verify(access(&tokens), ISSUER, RESOURCE)
        .unwrap();
    let expired = h
        .server
        .key
        .sign(&AccessClaims {
            exp: now_secs() - 1,
            jti: "expired".to_owned(),
            ..claims
        })
        .unwrap();
    assert_eq!(h.call(&expired).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(h.call(access(&tokens)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_form_without_its_nonce_is_refused_and_with_it_accepted() {
    let h = harness();
    let client_id = h.client().await;
    h.authorize(&client_id, &[]).await;
    for nonce in ["", "made-up-nonce"] {
        let answer = h
            .post_form(
                "/oauth/authorize",
                &[("nonce", nonce), ("token", OPS), ("decision", "approve")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{nonce:?}");
        assert_eq!(answer.location(), None);
    }
    // Answered once, a form cannot be answered again.
    let page = h.authorize(&client_id, &[]).await;
    let form = [
        ("nonce", page.nonce()),
        ("token", OPS.to_owned()),
        ("decision", "approve".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        h.post_form("/oauth/authorize", &form).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        h.post_form("/oauth/authorize", &form).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn denying_redirects_with_access_denied_state_and_iss() {
    let h = harness();
    let client_id = h.client().await;
    let page = h.authorize(&client_id, &[]).await;
    let answer = h
        .post_form(
            "/oauth/authorize",
            &[
                ("nonce", &page.nonce()),
                ("token", ""),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.redirect_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(answer.redirect_param("state").as_deref(), Some("st-1"));
    assert_eq!(answer.redirect_param("iss").as_deref(), Some(ISSUER));
    assert_eq!(answer.redirect_param("code"), None);
    assert!(h.audit_steps().contains(&"consent_denied".to_owned()));
}

#[tokio::test]
async fn wrong_consent_tokens_are_refused_audited_and_rate_limited() {
    let h = harness();
    let client_id = h.client().await;
    let page = h.authorize(&client_id, &[]).await;
    let nonce = page.nonce();
    for wrong in ["not-a-token", "a.b.c"] {
        let answer = h
            .post_form(
                "/oauth/authorize",
                &[("nonce", &nonce), ("token", wrong), ("decision", "approve")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(answer.location(), None);
    }
    // The page stays answerable with the right token.
    let right = h
        .post_form(
            "/oauth/authorize",
            &[("nonce", &nonce), ("token", OPS), ("decision", "approve")],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    let mut statuses = Vec::new();
    for _ in 0..super::CONSENT_FAILURES_PER_MINUTE + 1 {
        let page = h.authorize(&client_id, &[]).await;
        let answer = h
            .post_form(
                "/oauth/authorize",
                &[
                    ("nonce", &page.nonce()),
                    ("token", "wrong"),
                    ("decision", "approve"),
                ],
            )
            .await;
        statuses.push(answer.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let refused = h
        .audit_steps()
        .iter()
        .filter(|step| *step == "consent_token_refused")
        .count();
    assert!(refused >= 3, "{refused}");
}

#[tokio::test]
async fn a_read_token_grants_read_only_and_an_operator_token_asking_read_gets_read() {
    let h = harness();
    let (_, read) = h.tokens(READER).await;
    assert_eq!(
        h.call(access(&read)).await,
        (StatusCode::OK, "reader read".to_owned())
    );
    let client_id = h.client().await;
    let approved = h
        .approve(&client_id, OPS, &[("scope", "hostmcp:read")])
        .await;
    let code = approved.redirect_param("code").unwrap();
    let tokens = h.exchange(&client_id, &code, VERIFIER).await.json();
    assert_eq!(tokens["scope"], "hostmcp:read");
    assert_eq!(
        h.call(access(&tokens)).await,
        (StatusCode::OK, "ops read".to_owned())
    );
    let unknown = h.authorize(&client_id, &[("scope", "admin")]).await;
    assert_eq!(
        unknown.redirect_param("error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn a_grant_whose_parent_token_is_revoked_stops_at_once_and_the_others_go_on() {
    let h = harness();
    let (client_id, ops) = h.tokens(OPS).await;
    let (_, reader) = h.tokens(READER).await;
    assert_eq!(h.call(access(&ops)).await.0, StatusCode::OK);
    // The operator drops the "ops" token (a reload).
    h.authenticator
        .replace_tokens(TokenSet::new(vec![TokenEntry::new(
            "reader",
            TokenDigest::of_token(READER),
            Role::Read,
        )]));
    assert_eq!(h.call(access(&ops)).await.0, StatusCode::UNAUTHORIZED);
    let refreshed = h
        .refresh(&client_id, ops["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    assert_eq!(h.call(access(&reader)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn revocation_kills_the_grant_and_an_unknown_token_is_answered_alike() {
    let h = harness();
    let (_, tokens) = h.tokens(OPS).await;
    let (_, other) = h.tokens(OPS).await;
    let answer = h
        .post_form(
            "/oauth/revoke",
            &[("token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(h.call(access(&tokens)).await.0, StatusCode::UNAUTHORIZED);
    let unknown = h.post_form("/oauth/revoke", &[("token", "nope")]).await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(h.call(access(&other)).await.0, StatusCode::OK);
    // Revoking by the access token works too.
    h.post_form("/oauth/revoke", &[("token", access(&other))])
        .await;
    assert_eq!(h.call(access(&other)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_request_without_scope_gets_the_default_scope() {
    let h = harness();
    let client_id = h.client().await;
    let approved = h.approve(&client_id, OPS, &[("scope", "")]).await;
    let code = approved.redirect_param("code").unwrap();
    let tokens = h.exchange(&client_id, &code, VERIFIER).await.json();
    assert_eq!(tokens["scope"], "hostmcp");
    let refreshed = h
        .refresh(&client_id, tokens["refresh_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(refreshed["scope"], "hostmcp");
}

#[tokio::test]
async fn grants_revoked_in_the_store_by_another_handle_stop_after_a_reload() {
    let h = harness();
    let (_, tokens) = h.tokens(OPS).await;
    let claims = h
        .server
        .key
        .verify(access(&tokens), ISSUER, RESOURCE)
        .unwrap();
    let cli = super::store::Store::open(&h.server.settings.store).unwrap();
    assert_eq!(
        cli.revoke_grant(&claims.gid, "revoked").unwrap(),
        Some(true)
    );
    assert_eq!(
        h.call(access(&tokens)).await.0,
        StatusCode::OK,
        "not yet re-read"
    );
    h.server.verifier.reload(&h.server.store).unwrap();
    assert_eq!(h.call(access(&tokens)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(Role::Operator.as_str(), claims.role);
}

/// The principal an access token authenticates as.
async fn principal_of(h: &Harness, token: &str) -> Principal {
    let mut headers = axum::http::HeaderMap::new();
    let value = format!("Bearer {token}").parse().unwrap();
    headers.insert(header::AUTHORIZATION, value);
    h.authenticator
        .authenticate_request(&headers)
        .await
        .unwrap()
}

#[tokio::test]
async fn revoking_a_grant_ends_its_principals_work_and_spares_another_grant() {
    let h = harness();
    let (_, victim) = h.tokens(OPS).await;
    let (_, sibling) = h.tokens(OPS).await;
    let under_victim = principal_of(&h, access(&victim)).await;
    let under_sibling = principal_of(&h, access(&sibling)).await;
    let gid = h
        .server
        .key
        .verify(access(&victim), ISSUER, RESOURCE)
        .unwrap()
        .gid;
    assert_eq!(under_victim.name(), "ops");
    assert_eq!(under_victim.grant().unwrap().grant_id, gid);
    assert_eq!(under_victim.grant().unwrap().client_name, "Test <Client>");
    // The same grant's next request holds the same lease (its sessions stay bound).
    assert_eq!(principal_of(&h, access(&victim)).await, under_victim);

    let answer = h
        .send(
            Request::post("/oauth/revoke")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "token={}",
                    victim["refresh_token"].as_str().unwrap()
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(under_victim.lease().is_ended());
    assert_eq!(
        under_victim.lease().revoked(),
        Some(crate::audit::RevokeReason::GrantRevoked)
    );
    // Near miss: the other grant of the same token goes on, and a reload keeps its lease.
    assert!(!under_sibling.lease().is_ended());
    h.server.verifier.reload(&h.server.store).unwrap();
    assert_eq!(principal_of(&h, access(&sibling)).await, under_sibling);
}

#[tokio::test]
async fn a_revocation_by_the_command_is_found_by_a_reload_once_and_ends_the_work() {
    use super::store::{RevocationNote, RevokedKind, Store};
    let h = harness();
    let (_, victim) = h.tokens(OPS).await;
    let under_victim = principal_of(&h, access(&victim)).await;
    let gid = under_victim.grant().unwrap().grant_id.clone();
    let cli = Store::open(&h.server.settings.store).unwrap();
    assert_eq!(
        cli.revoke_grant(&gid, "revoked_by_operator").unwrap(),
        Some(true)
    );
    let note = RevocationNote {
        kind: RevokedKind::Grant,
        id: gid.clone(),
        client_id: under_victim.grant().unwrap().client_id.clone(),
        principal: Some("ops".to_owned()),
        by: "root (uid 0)".to_owned(),
        at: now_secs(),
    };
    cli.note_revocation(&note).unwrap();
    assert!(!under_victim.lease().is_ended(), "not yet re-read");
    assert_eq!(h.server.verifier.reload(&h.server.store).unwrap(), [note]);
    assert!(under_victim.lease().is_ended());
    assert_eq!(h.call(access(&victim)).await.0, StatusCode::UNAUTHORIZED);
    // Taken off the list: the next reload finds nothing to record.
    assert!(
        h.server
            .verifier
            .reload(&h.server.store)
            .unwrap()
            .is_empty()
    );
}
