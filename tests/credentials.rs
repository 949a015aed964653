//! Signed-in users get the static Telnyx credential, whichever key Supabase signed with.

mod common;

use common::*;
use reqwest::Method;
use reqwest::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

async fn assert_issued(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], json!(true), "{body}");
    assert_eq!(body["credential"]["username"], SIP_USERNAME);
    body
}

#[tokio::test]
async fn es256_rs256_eddsa_and_hs256_tokens_are_all_accepted() {
    let app = TestApp::spawn().await;
    let keys = keys();
    let claims = app.claims();
    for (name, token) in [
        ("ES256", keys.es256.sign(&claims)),
        ("RS256", keys.rs256.sign(&claims)),
        ("EdDSA", keys.eddsa.sign(&claims)),
        ("HS256", sign_hs256(&claims)),
    ] {
        let response = app.get_credentials(&token).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_issued(response).await;
    }
}

#[tokio::test]
async fn the_response_carries_the_whole_credential() {
    let app = TestApp::spawn().await;
    let before_ms = now_secs() * 1000;
    let body = assert_issued(app.get_credentials(&sign_hs256(&app.claims())).await).await;
    let credential = &body["credential"];
    let expires_at = credential["expires_at"].as_u64().unwrap();
    assert!(
        (before_ms + 86_400_000..before_ms + 86_400_000 + 5_000).contains(&expires_at),
        "expires_at {expires_at} is not now + 24 h in milliseconds"
    );
    let turn_urls = json!([
        "turn:turn.telnyx.com:3478?transport=udp",
        "turn:turn.telnyx.com:3478?transport=tcp",
        "turns:turn.telnyx.com:443"
    ]);
    let stun_urls = json!(["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"]);
    // No TURN credentials configured: no ice_servers (the SDK keeps its own relays), and the
    // SIP identity on turn_servers only, for the existing frontend.
    let mut expected = json!({
        "username": SIP_USERNAME,
        "password": SIP_PASSWORD,
        "expires_at": expires_at,
        "realm": "sip.telnyx.com",
        "sip_uri": format!("sip:{SIP_USERNAME}@sip.telnyx.com"),
        "stun_servers": stun_urls,
        "turn_servers": [{"urls": turn_urls, "username": SIP_USERNAME, "credential": SIP_PASSWORD}],
    });
    assert_eq!(credential, &expected);
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only success and credential: {body}"
    );

    // The realm, ICE lists and lifetime follow the configuration.
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("TELNYX_SIP_REALM", "sip.example.net".into()),
            ("TELNYX_STUN_URLS", "stun:stun.example.net:3478".into()),
            (
                "TELNYX_TURN_URLS",
                "turns:turn.example.net:443?transport=tcp".into(),
            ),
            ("CREDENTIAL_TTL_SECS", "600".into()),
            ("TELNYX_TURN_USERNAME", "turn-user".into()),
            ("TELNYX_TURN_PASSWORD", "turn-secret".into()),
        ],
        ..Options::default()
    })
    .await;
    let before_ms = now_secs() * 1000;
    let body = assert_issued(app.get_credentials(&sign_hs256(&app.claims())).await).await;
    let credential = &body["credential"];
    let expires_at = credential["expires_at"].as_u64().unwrap();
    assert!((before_ms + 600_000..before_ms + 605_000).contains(&expires_at));
    expected = json!({
        "username": SIP_USERNAME,
        "password": SIP_PASSWORD,
        "expires_at": expires_at,
        "realm": "sip.example.net",
        "sip_uri": format!("sip:{SIP_USERNAME}@sip.example.net"),
        "stun_servers": ["stun:stun.example.net:3478"],
        "turn_servers": [{"urls": ["turns:turn.example.net:443?transport=tcp"], "username": "turn-user", "credential": "turn-secret"}],
        "ice_servers": [
            {"urls": ["stun:stun.example.net:3478"]},
            {"urls": ["turns:turn.example.net:443?transport=tcp"], "username": "turn-user", "credential": "turn-secret"},
        ],
    });
    assert_eq!(credential, &expected);
}

#[tokio::test]
async fn post_works_like_get_and_the_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let token = app_token(&app);
    for (method, scheme) in [
        (Method::POST, "Bearer"),
        (Method::GET, "bearer"),
        (Method::POST, "BEARER"),
    ] {
        let response = app
            .credentials_with_header(method.clone(), Some(&format!("{scheme} {token}")))
            .await;
        assert_eq!(response.status(), 200, "{method} with {scheme}");
    }
    // A POST with a JSON body (as some fetch wrappers send) is fine too.
    let response = app
        .client
        .post(format!("{}/credentials", app.address))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_issued(response).await;
}

fn app_token(app: &TestApp) -> String {
    keys().es256.sign(&app.claims())
}

#[tokio::test]
async fn an_audience_array_is_accepted_when_it_contains_ours() {
    let app = TestApp::spawn().await;
    let mut claims = app.claims();
    claims["aud"] = json!(["https://other.example.com", "authenticated"]);
    assert_issued(app.get_credentials(&keys().es256.sign(&claims)).await).await;
}

#[tokio::test]
async fn anonymous_users_are_refused_unless_allowed() {
    let app = TestApp::spawn().await;
    let mut claims = app.claims();
    claims["is_anonymous"] = json!(true);
    let token = keys().es256.sign(&claims);
    let (status, body) = error_body(app.get_credentials(&token).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("anonymous_user"))
    );

    let permissive = TestApp::spawn_with(Options {
        env: vec![("ALLOW_ANONYMOUS_USERS", "true".into())],
        ..Options::default()
    })
    .await;
    let mut claims = permissive.claims();
    claims["is_anonymous"] = json!(true);
    assert_issued(
        permissive
            .get_credentials(&keys().es256.sign(&claims))
            .await,
    )
    .await;
}

#[tokio::test]
async fn the_projects_anon_and_service_role_keys_never_buy_credentials() {
    let app = TestApp::spawn().await;
    // The legacy API keys: HS256 with the project's secret, issuer "supabase", no sub or aud.
    for role in ["anon", "service_role"] {
        let api_key = sign_hs256(&json!({
            "iss": "supabase", "ref": "abcdefghijklmnop", "role": role,
            "iat": now_secs(), "exp": now_secs() + 10 * 365 * 86_400,
        }));
        let (status, _) = error_body(app.get_credentials(&api_key).await).await;
        assert_eq!(status, 401, "{role} API key");
    }
    // Even a token that passes every other check is refused for any role but authenticated.
    for role in ["anon", "service_role", "supabase_admin"] {
        let mut claims = app.claims();
        claims["role"] = json!(role);
        let response = app.get_credentials(&sign_hs256(&claims)).await;
        assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
        let (status, body) = error_body(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("role_not_allowed")),
            "{role}"
        );
    }
}

#[tokio::test]
async fn other_methods_get_405_and_unknown_paths_404_in_the_error_shape() {
    let app = TestApp::spawn().await;
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let response = app.credentials_with_header(method.clone(), None).await;
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        let (status, body) = error_body(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (405, Some("method_not_allowed")),
            "{method}"
        );
    }
    let (status, body) = error_body(app.get("/nothing-here").await).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn health_probes_answer() {
    let app = TestApp::spawn().await;
    let live = app.get("/healthz").await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["jwks"]["keys"], 3);
}

#[tokio::test]
async fn a_request_id_is_generated_or_echoed() {
    let app = TestApp::spawn().await;
    let generated = app.get("/healthz").await;
    assert_eq!(generated.headers()["x-request-id"].len(), 36, "a UUID");
    let echoed = app
        .client
        .get(format!("{}/credentials", app.address))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn cors_preflight_is_allowed_for_configured_origins_only() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/credentials", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight(ALLOWED_ORIGIN).await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    let allowed_methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed_methods.contains("GET") && allowed_methods.contains("POST"),
        "{allowed_methods}"
    );

    let denied = preflight("https://evil.example.net").await.unwrap();
    assert!(!denied.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));

    // The actual request carries the header too, on success and on error, so the page can
    // read the error sentence.
    for token in [app_token(&app), "garbage".to_owned()] {
        let response = app
            .client
            .get(format!("{}/credentials", app.address))
            .header("origin", ALLOWED_ORIGIN)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            ALLOWED_ORIGIN
        );
        // A page can read how long to wait after a 429 or 503, and the request id to quote.
        let exposed = response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(
            exposed.contains("retry-after") && exposed.contains("x-request-id"),
            "{exposed}"
        );
    }
    let foreign = app
        .client
        .get(format!("{}/credentials", app.address))
        .header("origin", "https://evil.example.net")
        .bearer_auth(app_token(&app))
        .send()
        .await
        .unwrap();
    assert!(!foreign.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cross_origin_access() {
    let app = TestApp::spawn_with(Options {
        env: vec![("CORS_ALLOWED_ORIGINS", "".into())],
        ..Options::default()
    })
    .await;
    let preflight = app
        .client
        .request(Method::OPTIONS, format!("{}/credentials", app.address))
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !preflight
            .headers()
            .contains_key(ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[tokio::test]
async fn head_gets_405_with_allow_like_any_other_method() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(&app.claims());
    let response = app
        .credentials_with_header(Method::HEAD, Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET,POST");
    assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
    // The same answer as another method's, without the body a HEAD never gets.
    let put = app.credentials_with_header(Method::PUT, None).await;
    assert_eq!(put.headers()["allow"], "GET,POST");
    let (_, body) = error_body(put).await;
    assert!(
        body["error"].as_str().unwrap().contains("use GET or POST"),
        "{body}"
    );
    assert!(response.bytes().await.unwrap().is_empty());
}
