//! `THIRD_PARTY_ISSUERS`: tokens of Clerk-, Auth0- and Firebase-shaped issuers (local stand-ins)
//! beside Supabase's own, each verified with its issuer's keys alone; one user per issuer and
//! `sub`; issuers that cannot be reached; bounded refetches per issuer.

mod common;

use std::time::{Duration, Instant};

use common::issuer::*;
use common::process::Process;
use common::telnyx::FakeTelnyx;
use common::*;
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use telnyx_webrtc_credentials::config::JwksTiming;
use telnyx_webrtc_credentials::credentials::issuer_tag;

fn timing(min_refetch_ms: u64) -> JwksTiming {
    JwksTiming {
        refresh_interval: Duration::from_secs(600),
        retry_interval: Duration::from_millis(100),
        min_refetch_interval: Duration::from_millis(min_refetch_ms),
        fetch_timeout: Duration::from_millis(500),
    }
}

/// A Clerk-shaped issuer (ES256, by discovery) and an Auth0-shaped one (RS256, by discovery,
/// with an audience).
async fn clerk_and_auth0() -> (FakeIssuer, FakeIssuer) {
    let idp = issuer_keys();
    (
        FakeIssuer::start(Shape::Clerk, &[&idp.clerk]).await,
        FakeIssuer::start(Shape::Auth0, &[&idp.auth0]).await,
    )
}

fn issuers_env(issuers: &[&FakeIssuer]) -> (&'static str, String) {
    let entries: Vec<String> = issuers.iter().map(|issuer| issuer.entry()).collect();
    ("THIRD_PARTY_ISSUERS", entries.join(","))
}

/// The service with `issuers` configured, once every one of them is ready.
async fn spawn(issuers: &[&FakeIssuer], mut env: Vec<(&'static str, String)>) -> TestApp {
    env.push(issuers_env(issuers));
    let app = TestApp::spawn_with(Options {
        env,
        timing: timing(30_000),
        ..Options::default()
    })
    .await;
    wait_until_issuers_ready(&app).await;
    app
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app.get("/readyz").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn tokens_of_each_issuer_are_accepted_beside_supabases() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    let firebase = FakeIssuer::start(Shape::Firebase, &[&idp.firebase]).await;
    let app = spawn(&[&clerk, &auth0, &firebase], Vec::new()).await;

    let signed = [
        (
            &clerk,
            idp.clerk.sign(&clerk.claims("user_2kX9b7TfQmV3pLr8")),
        ),
        (
            &auth0,
            idp.auth0.sign(&auth0.claims("auth0|64f1c2a9e5b7d3")),
        ),
        (
            &firebase,
            idp.firebase
                .sign(&firebase.claims("Xq3bT0kQ3rVw8mZc5yH2pLd9sG42")),
        ),
    ];
    for (issuer, token) in &signed {
        let credential = app.credential(token).await;
        assert_eq!(credential["username"], SIP_USERNAME, "{:?}", issuer.shape);
    }
    // Supabase's own tokens are verified as before.
    assert_eq!(app.status_for(&keys().es256.sign(&app.claims())).await, 200);
    assert_eq!(app.status_for(&sign_hs256(&app.claims())).await, 200);

    let (status, body) = readiness(&app).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    let listed = body["issuers"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{body}");
    for (listed, (issuer, _)) in listed.iter().zip(&signed) {
        assert_eq!(listed["issuer"], issuer.issuer, "{body}");
        assert_eq!(listed["tag"], issuer_tag(&issuer.issuer));
        assert_eq!(listed["status"], "ready");
        assert_eq!(listed["keys"], 1);
        assert_eq!(
            listed["jwks_uri"],
            issuer.jwks_uri(),
            "discovered or configured"
        );
        assert!(listed.get("last_error").is_none(), "{listed}");
    }
    // Only the issuers found by discovery were asked for a discovery document.
    assert_eq!((clerk.discovery_fetches(), clerk.jwks_fetches()), (1, 1));
    assert_eq!((auth0.discovery_fetches(), auth0.jwks_fetches()), (1, 1));
    assert_eq!(firebase.jwks_fetches(), 1);

    // The metrics say which issuer each credential and each key fetch was for.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for (issuer, _) in &signed {
        let tag = issuer_tag(&issuer.issuer);
        for series in [
            format!("credentials_issued_total{{mode=\"static\",issuer=\"{tag}\"}} 1"),
            format!("jwks_fetches_total{{issuer=\"{tag}\",outcome=\"success\"}}"),
            format!("jwks_keys{{issuer=\"{tag}\"}} 1"),
        ] {
            assert!(
                metrics.contains(&series),
                "{series} missing from:\n{metrics}"
            );
        }
    }
    assert!(
        metrics.contains("jwks_fetches_total{issuer=\"supabase\",outcome=\"success\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_is_verified_by_the_keys_of_the_issuer_it_names_and_no_other() {
    let idp = issuer_keys();
    let clerk = FakeIssuer::start(Shape::Clerk, &[&idp.clerk]).await;
    // Auth0's set also holds a key of its own under Clerk's kid.
    let same_kid = TestKey::es256(&idp.clerk.kid);
    let auth0 = FakeIssuer::start(Shape::Auth0, &[&idp.auth0, &same_kid]).await;
    let app = spawn(&[&clerk, &auth0], Vec::new()).await;
    let supabase_claims = app.claims();

    let cases = [
        (
            "Clerk's iss, Auth0's key",
            idp.auth0.sign(&clerk.claims("user_a")),
        ),
        (
            "Auth0's iss, Clerk's key",
            idp.clerk.sign(&auth0.claims("auth0|a")),
        ),
        (
            "Clerk's iss, Auth0's key under Clerk's kid",
            same_kid.sign(&clerk.claims("user_a")),
        ),
        (
            "Auth0's iss, Clerk's key under the kid Auth0 also has",
            idp.clerk.sign(&auth0.claims("auth0|a")),
        ),
        (
            "Clerk's iss, Supabase's key",
            keys().es256.sign(&clerk.claims("user_a")),
        ),
        (
            "Clerk's iss, Supabase's legacy secret",
            sign_hs256(&clerk.claims("user_a")),
        ),
        (
            "Supabase's iss, Clerk's key",
            idp.clerk.sign(&supabase_claims),
        ),
        (
            "Supabase's iss, Auth0's key",
            idp.auth0.sign(&supabase_claims),
        ),
    ];
    for (case, token) in cases {
        let (status, code) = status_and_code(app.get_credentials(&token).await).await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"), "{case}");
    }
    // Each genuine token still passes.
    assert_eq!(
        app.status_for(&idp.clerk.sign(&clerk.claims("user_a")))
            .await,
        200
    );
    assert_eq!(
        app.status_for(&same_kid.sign(&auth0.claims("auth0|a")))
            .await,
        200
    );
}

#[tokio::test]
async fn an_unknown_issuer_is_refused() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    let app = spawn(&[&clerk, &auth0], Vec::new()).await;
    let with_iss = |iss: &str| {
        let mut claims = clerk.claims("user_a");
        claims["iss"] = json!(iss);
        claims
    };
    for iss in [
        "https://clerk.attacker.example".to_owned(),
        format!("{}/", clerk.issuer),
        auth0.issuer.trim_end_matches('/').to_owned(),
        clerk.issuer.to_uppercase(),
    ] {
        for token in [
            idp.clerk.sign(&with_iss(&iss)),
            keys().attacker.sign(&with_iss(&iss)),
        ] {
            let (status, code) = status_and_code(app.get_credentials(&token).await).await;
            assert_eq!((status, code.as_str()), (401, "invalid_token"), "{iss}");
        }
    }
}

#[tokio::test]
async fn a_token_without_role_authenticated_is_refused() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    let app = spawn(&[&clerk, &auth0], Vec::new()).await;
    for role in [
        None,
        Some("anon"),
        Some("service_role"),
        Some("admin"),
        Some(""),
    ] {
        for (issuer, key) in [(&clerk, &idp.clerk), (&auth0, &idp.auth0)] {
            let mut claims = issuer.claims("someone");
            match role {
                Some(role) => claims["role"] = json!(role),
                None => {
                    claims.as_object_mut().unwrap().remove("role");
                }
            }
            let (status, code) =
                status_and_code(app.get_credentials(&key.sign(&claims)).await).await;
            assert_eq!(
                (status, code.as_str()),
                (403, "role_not_allowed"),
                "{role:?} from {:?}",
                issuer.shape
            );
        }
    }
}

#[tokio::test]
async fn the_access_rules_apply_to_third_party_users_unchanged() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    let firebase = FakeIssuer::start(Shape::Firebase, &[&idp.firebase]).await;
    let app = spawn(
        &[&clerk, &auth0, &firebase],
        vec![
            ("ALLOWED_EMAIL_DOMAINS", "example.com".into()),
            ("REQUIRE_AAL2", "true".into()),
            (
                "REQUIRE_CLAIMS",
                r#"app_metadata.phone_enabled=true"#.into(),
            ),
        ],
    )
    .await;
    let admitted = |mut claims: Value| {
        claims["email"] = json!("ada@example.com");
        claims["aal"] = json!("aal2");
        claims["app_metadata"] = json!({"phone_enabled": true});
        claims
    };
    assert_eq!(
        app.status_for(&idp.clerk.sign(&admitted(clerk.claims("u1"))))
            .await,
        200
    );
    assert_eq!(
        app.status_for(&idp.auth0.sign(&admitted(auth0.claims("u1"))))
            .await,
        200
    );

    let refusals = [
        ("email", json!(null), "email_domain_not_allowed"),
        (
            "email",
            json!("ada@elsewhere.org"),
            "email_domain_not_allowed",
        ),
        ("aal", json!(null), "aal2_required"),
        (
            "app_metadata",
            json!({"phone_enabled": "yes"}),
            "claim_requirement_not_met",
        ),
    ];
    for (claim, value, expected) in refusals {
        let mut claims = admitted(auth0.claims("u1"));
        claims[claim] = value.clone();
        let (status, code) =
            status_and_code(app.get_credentials(&idp.auth0.sign(&claims)).await).await;
        assert_eq!((status, code.as_str()), (403, expected), "{claim}={value}");
    }
    // A Clerk session token as Clerk issues it has neither aal nor email: refused, not waved
    // through.
    let (status, code) = status_and_code(
        app.get_credentials(&idp.clerk.sign(&clerk.claims("u1")))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "aal2_required"));

    // Firebase's anonymous users are anonymous here too.
    let mut anonymous = admitted(firebase.claims("anon-uid"));
    anonymous["firebase"]["sign_in_provider"] = json!("anonymous");
    let (status, code) =
        status_and_code(app.get_credentials(&idp.firebase.sign(&anonymous)).await).await;
    assert_eq!((status, code.as_str()), (403, "anonymous_user"));
    assert_eq!(
        app.status_for(&idp.firebase.sign(&admitted(firebase.claims("uid"))))
            .await,
        200
    );
}

#[tokio::test]
async fn the_same_sub_from_two_issuers_gets_two_credentials() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    let telnyx = FakeTelnyx::start().await;
    let mut env = telnyx.env();
    env.push(("RATE_LIMIT_PER_USER", "off".into()));
    let app = spawn(&[&clerk, &auth0], env).await;
    let sub = "user_2kX9b7TfQmV3pLr8";
    let clerk_token = idp.clerk.sign(&clerk.claims(sub));
    let auth0_token = idp.auth0.sign(&auth0.claims(sub));
    let supabase_token = app.token_for(sub);

    let answers = [
        app.credential(&clerk_token).await,
        app.credential(&auth0_token).await,
        app.credential(&supabase_token).await,
    ];
    let clerk_name = format!("{}:{sub}", issuer_tag(&clerk.issuer));
    let auth0_name = format!("{}:{sub}", issuer_tag(&auth0.issuer));
    let supabase_name = format!("supabase:{sub}");
    let names = || {
        let mut names: Vec<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
        names.sort_unstable();
        names
    };
    let mut expected = vec![
        clerk_name.clone(),
        auth0_name.clone(),
        supabase_name.clone(),
    ];
    expected.sort_unstable();
    assert_eq!(names(), expected, "one credential each");
    let usernames: std::collections::HashSet<&str> = answers
        .iter()
        .map(|answer| answer["username"].as_str().unwrap())
        .collect();
    assert_eq!(usernames.len(), 3, "three SIP identities: {answers:?}");

    // Each asks again for its own credential; revoking one leaves the others.
    for (token, answer) in [&clerk_token, &auth0_token].iter().zip(&answers) {
        assert_eq!(app.credential(token).await["username"], answer["username"]);
    }
    assert_eq!(telnyx.requests("create"), 3);
    assert_eq!(app.delete_credentials(&clerk_token).await.status(), 204);
    let mut left = vec![auth0_name, supabase_name];
    left.sort_unstable();
    assert_eq!(names(), left);
    assert_eq!(
        app.credential(&auth0_token).await["username"],
        answers[1]["username"]
    );
}

#[tokio::test]
async fn rate_limits_and_the_session_check_know_whose_user_it_is() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    let app = spawn(
        &[&clerk, &auth0],
        vec![
            ("RATE_LIMIT_PER_USER", "1/h,burst=1".into()),
            ("SUPABASE_VERIFY_SESSION", "true".into()),
            ("SUPABASE_ANON_KEY", ANON_KEY.into()),
        ],
    )
    .await;
    let sub = "8d2f54a0-6c3b-4a8e-9f1d-2b7c0e5a9d41";
    let clerk_token = idp.clerk.sign(&clerk.claims(sub));
    let auth0_token = idp.auth0.sign(&auth0.claims(sub));
    // One request each within the limit: the same sub of another issuer is another user.
    assert_eq!(app.status_for(&clerk_token).await, 200);
    assert_eq!(app.status_for(&auth0_token).await, 200);
    assert_eq!(
        app.supabase.user_calls(),
        0,
        "a third-party token never goes to Supabase"
    );
    assert_eq!(app.status_for(&app.token_for(sub)).await, 200);
    assert_eq!(
        app.supabase.user_calls(),
        1,
        "Supabase's own token is checked"
    );
    let (status, code) = status_and_code(app.get_credentials(&clerk_token).await).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
}

#[tokio::test]
async fn an_issuer_unreachable_at_start_up_is_not_ready_and_the_others_serve() {
    let idp = issuer_keys();
    let (clerk, auth0) = clerk_and_auth0().await;
    clerk.set_discovery_failing(true);
    let app = TestApp::spawn_with(Options {
        env: vec![issuers_env(&[&clerk, &auth0])],
        timing: timing(0),
        ..Options::default()
    })
    .await;
    let clerk_token = idp.clerk.sign(&clerk.claims("user_a"));
    let auth0_token = idp.auth0.sign(&auth0.claims("auth0|a"));
    // Auth0's keys arrive; Clerk's discovery keeps failing.
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (status, body) = readiness(&app).await;
        assert_eq!(status, 200, "Supabase's keys decide readiness: {body}");
        if body["issuers"][1]["status"] == "ready" && clerk.discovery_fetches() >= 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let not_ready = &body["issuers"][0];
    assert_eq!(not_ready["status"], "not_ready", "{body}");
    assert!(not_ready.get("keys").is_none(), "{body}");
    let error = not_ready["last_error"].as_str().unwrap();
    assert!(
        error.contains("openid-configuration answered HTTP 500"),
        "{error}"
    );
    assert_eq!(clerk.jwks_fetches(), 0, "no JWKS without discovery");

    assert_eq!(app.status_for(&auth0_token).await, 200);
    assert_eq!(app.status_for(&sign_hs256(&app.claims())).await, 200);
    assert_eq!(app.status_for(&clerk_token).await, 401);

    // Retried in the background until the provider is back.
    clerk.set_discovery_failing(false);
    wait_until_issuers_ready(&app).await;
    assert_eq!(app.status_for(&clerk_token).await, 200);
    let (_, body) = readiness(&app).await;
    assert!(body["issuers"][0].get("last_error").is_none(), "{body}");
}

#[tokio::test]
async fn a_discovery_document_of_another_issuer_is_not_followed() {
    let idp = issuer_keys();
    let auth0 = FakeIssuer::start(Shape::Auth0, &[&idp.auth0]).await;
    // Configured without the trailing slash Auth0's iss has: discovery is found, but it names
    // the issuer with the slash, and its keys must not be taken for this one.
    let entry = format!(
        "{}|aud={AUTH0_CLIENT_ID}",
        auth0.issuer.trim_end_matches('/')
    );
    let app = TestApp::spawn_with(Options {
        env: vec![("THIRD_PARTY_ISSUERS", entry)],
        timing: timing(0),
        ..Options::default()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while auth0.discovery_fetches() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = readiness(&app).await;
    assert_eq!(body["issuers"][0]["status"], "not_ready", "{body}");
    let error = body["issuers"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("trailing slash included"), "{error}");
    assert!(error.contains(&format!("{:?}", auth0.issuer)), "{error}");
    assert_eq!(auth0.jwks_fetches(), 0);
}

fn unknown_kid_token(issuer: &FakeIssuer, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    keys()
        .attacker
        .sign_with_header(header, &issuer.claims("user_a"))
}

#[tokio::test]
async fn unknown_kid_refetches_stay_bounded_per_issuer() {
    let (clerk, auth0) = clerk_and_auth0().await;
    let app = spawn(&[&clerk, &auth0], Vec::new()).await; // 30 s between kid-driven fetches
    let fetches = || {
        (
            app.supabase.fetches(),
            clerk.jwks_fetches(),
            auth0.jwks_fetches(),
        )
    };
    let before = fetches();
    assert_eq!(before, (1, 1, 1), "one fetch each at start-up");
    let app_ref = &app;
    let clerk_ref = &clerk;
    let flood = (0..100).map(|n| async move {
        app_ref
            .status_for(&unknown_kid_token(clerk_ref, &format!("made-up-{n}")))
            .await
    });
    assert!(join_all(flood).await.iter().all(|status| *status == 401));
    assert_eq!(
        fetches(),
        before,
        "the start-up fetches were under 30 s ago"
    );

    // Once a refetch is due, a flood of unknown kids for one issuer costs that issuer one
    // fetch, and the others none.
    drop(app);
    let app = TestApp::spawn_with(Options {
        env: vec![issuers_env(&[&clerk, &auth0])],
        timing: timing(400),
        ..Options::default()
    })
    .await;
    wait_until_issuers_ready(&app).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let before = (
        app.supabase.fetches(),
        clerk.jwks_fetches(),
        auth0.jwks_fetches(),
    );
    let app_ref = &app;
    let started = Instant::now();
    let flood = (0..100).map(|n| async move {
        app_ref
            .status_for(&unknown_kid_token(clerk_ref, &format!("made-up-{n}")))
            .await
    });
    assert!(join_all(flood).await.iter().all(|status| *status == 401));
    let elapsed = started.elapsed();
    let clerk_fetches = clerk.jwks_fetches() - before.1;
    let bound = 1 + (elapsed.as_millis() / 400) as usize;
    assert!(
        (1..=bound).contains(&clerk_fetches),
        "{clerk_fetches} fetches in {elapsed:?} for 100 unknown kids"
    );
    assert_eq!(
        app.supabase.fetches(),
        before.0,
        "Supabase's keys were not fetched"
    );
    assert_eq!(
        auth0.jwks_fetches(),
        before.2,
        "Auth0's keys were not fetched"
    );
}

#[tokio::test]
async fn audit_lines_name_the_issuer() {
    let idp = issuer_keys();
    let clerk = FakeIssuer::start(Shape::Clerk, &[&idp.clerk]).await;
    let supabase = FakeSupabase::start(&[]).await;
    let mut env = test_env(&supabase.url);
    env.extend([("LOG_FORMAT", "json".into()), issuers_env(&[&clerk])]);
    let mut service = Process::start(&["serve"], &env);
    let address = service.address().await;
    service
        .wait_for("Clerk's keys", |line| {
            line.contains("fetched the signing keys")
                .then_some(())
                .filter(|()| line.contains(&issuer_tag(&clerk.issuer)))
        })
        .await;
    let client = reqwest::Client::new();
    for token in [
        idp.clerk.sign(&clerk.claims("user_audit")),
        sign_hs256(&user_claims(&supabase.issuer())),
    ] {
        let response = client
            .get(format!("{address}/credentials"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();
    let issued: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["audit"] == "credential_issued")
        .collect();
    assert_eq!(issued.len(), 2, "{logs}");
    assert_eq!(issued[0]["issuer"], issuer_tag(&clerk.issuer), "{logs}");
    assert_eq!(issued[0]["user_id"], "user_audit");
    assert_eq!(issued[1]["issuer"], "supabase");
}
