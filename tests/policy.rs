//! Who may have a phone, over HTTP: the claim, email-domain and MFA rules, and the remote
//! session check against a local stand-in for Supabase's `GET /auth/v1/user`.

mod common;

use common::*;
use reqwest::header;
use serde_json::{Value, json};

fn env(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

async fn spawn(pairs: &[(&'static str, &str)]) -> TestApp {
    TestApp::spawn_with(Options {
        env: env(pairs),
        ..Options::default()
    })
    .await
}

/// The app's user claims with `patch` applied, signed with the legacy secret.
fn token(app: &TestApp, patch: Value) -> String {
    let mut claims = app.claims();
    for (key, value) in patch.as_object().unwrap() {
        claims[key] = value.clone();
    }
    sign_hs256(&claims)
}

async fn refused_with(app: &TestApp, token: &str) -> (u16, String) {
    status_and_code(app.get_credentials(token).await).await
}

#[tokio::test]
async fn require_claims_admits_only_users_the_app_has_enabled() {
    let app = spawn(&[(
        "REQUIRE_CLAIMS",
        r#"app_metadata.phone_enabled=true,app_metadata.plan="pro""#,
    )])
    .await;
    let enabled = token(
        &app,
        json!({"app_metadata": {"provider": "email", "phone_enabled": true, "plan": "pro"}}),
    );
    assert_eq!(app.status_for(&enabled).await, 200);

    for app_metadata in [
        json!({"provider": "email"}),
        json!({"phone_enabled": true, "plan": "free"}),
        json!({"phone_enabled": "true", "plan": "pro"}),
        json!({"phone_enabled": false, "plan": "pro"}),
    ] {
        let refused = token(&app, json!({ "app_metadata": app_metadata }));
        assert_eq!(
            refused_with(&app, &refused).await,
            (403, "claim_requirement_not_met".into()),
            "{app_metadata}"
        );
    }
    let self_enabled = token(
        &app,
        json!({"user_metadata": {"phone_enabled": true, "plan": "pro"}}),
    );
    assert_eq!(
        refused_with(&app, &self_enabled).await.0,
        403,
        "user_metadata is not app_metadata"
    );
}

#[tokio::test]
async fn allowed_email_domains_admit_only_those_domains() {
    let app = spawn(&[("ALLOWED_EMAIL_DOMAINS", "example.com,example.org")]).await;
    for email in ["ada@example.com", "grace@Example.ORG"] {
        let allowed = token(&app, json!({ "email": email }));
        assert_eq!(app.status_for(&allowed).await, 200, "{email}");
    }
    for email in [
        json!("ada@evil.com"),
        json!("ada@mail.example.com"),
        json!(""),
        json!(null),
    ] {
        let refused = token(&app, json!({ "email": email }));
        assert_eq!(
            refused_with(&app, &refused).await,
            (403, "email_domain_not_allowed".into()),
            "{email}"
        );
    }
}

#[tokio::test]
async fn require_aal2_admits_only_multi_factor_sessions() {
    let app = spawn(&[("REQUIRE_AAL2", "true")]).await;
    assert_eq!(
        app.status_for(&token(&app, json!({"aal": "aal2"}))).await,
        200
    );
    let single_factor = token(&app, json!({"aal": "aal1"}));
    assert_eq!(
        refused_with(&app, &single_factor).await,
        (403, "aal2_required".into())
    );
    let without = spawn(&[]).await;
    assert_eq!(
        without
            .status_for(&token(&without, json!({"aal": "aal1"})))
            .await,
        200,
        "off by default"
    );
}

async fn spawn_checking_sessions(
    supabase: &FakeSupabase,
    extra: &[(&'static str, &str)],
) -> TestApp {
    let mut env = env(&[
        ("SUPABASE_VERIFY_SESSION", "true"),
        ("SUPABASE_ANON_KEY", ANON_KEY),
    ]);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    TestApp::spawn_with(Options {
        env,
        supabase: Some(supabase.clone()),
        ..Options::default()
    })
    .await
}

/// A token of the user and session that these names stand for (see [`uuid_for`]).
fn user(app: &TestApp, sub: &str, session_id: &str) -> String {
    token(
        app,
        json!({"sub": uuid_for(sub), "session_id": uuid_for(session_id)}),
    )
}

#[tokio::test]
async fn a_signed_out_session_or_deleted_user_is_refused_before_the_token_expires() {
    let supabase = FakeSupabase::start(&[]).await;
    let app = spawn_checking_sessions(&supabase, &[("SESSION_CHECK_CACHE_SECS", "0")]).await;
    let ada = user(&app, "ada", "ada-laptop");
    let ada_phone = user(&app, "ada", "ada-phone");
    assert_eq!(app.status_for(&ada).await, 200);
    assert_eq!(app.status_for(&ada_phone).await, 200);

    supabase.revoke_session(&uuid_for("ada-laptop"));
    let response = app.get_credentials(&ada).await;
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(
        status_and_code(response).await,
        (401, "session_revoked".into())
    );
    assert_eq!(
        app.status_for(&ada_phone).await,
        200,
        "other sessions live on"
    );

    supabase.delete_user(&uuid_for("ada"));
    assert_eq!(
        refused_with(&app, &ada_phone).await,
        (401, "session_revoked".into())
    );
    assert_eq!(
        supabase.user_calls(),
        5,
        "with no cache, every request asks"
    );
}

#[tokio::test]
async fn a_positive_answer_is_cached_per_session() {
    let supabase = FakeSupabase::start(&[]).await;
    let app = spawn_checking_sessions(&supabase, &[("RATE_LIMIT_PER_USER", "off")]).await;
    let ada = user(&app, "ada", "ada-laptop");
    for _ in 0..5 {
        assert_eq!(app.status_for(&ada).await, 200);
    }
    assert_eq!(supabase.user_calls(), 1);
    assert_eq!(app.status_for(&user(&app, "ada", "ada-phone")).await, 200);
    assert_eq!(supabase.user_calls(), 2, "another session is asked about");

    // A revocation is remembered too: a signed-out session is refused without asking again.
    supabase.revoke_session(&uuid_for("ada-tablet"));
    let tablet = user(&app, "ada", "ada-tablet");
    for _ in 0..2 {
        assert_eq!(
            refused_with(&app, &tablet).await,
            (401, "session_revoked".into())
        );
    }
    assert_eq!(supabase.user_calls(), 3);

    // Failures are not: the next request asks again.
    supabase.set_user_endpoint_failing(true);
    let desktop = user(&app, "ada", "ada-desktop");
    for _ in 0..2 {
        assert_eq!(refused_with(&app, &desktop).await.0, 503);
    }
    assert_eq!(supabase.user_calls(), 5);
    supabase.set_user_endpoint_failing(false);
    assert_eq!(app.status_for(&desktop).await, 200);
}

#[tokio::test]
async fn concurrent_checks_of_one_session_share_one_call() {
    let supabase = FakeSupabase::start(&[]).await;
    let app = spawn_checking_sessions(&supabase, &[("RATE_LIMIT_PER_USER", "off")]).await;
    supabase.hold_user_requests();
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let client = app.client.clone();
            let url = format!("{}/credentials", app.address);
            let token = user(&app, "ada", "ada-laptop");
            tokio::spawn(async move { client.get(url).bearer_auth(token).send().await })
        })
        .collect();
    supabase.wait_for_user_calls(1).await;
    supabase.release_user_requests();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(supabase.user_calls(), 1);
}

#[tokio::test]
async fn the_session_check_fails_closed() {
    let supabase = FakeSupabase::start(&[]).await;
    let app = spawn_checking_sessions(&supabase, &[("SESSION_CHECK_CACHE_SECS", "0")]).await;
    let ada = user(&app, "ada", "ada-laptop");
    supabase.set_user_endpoint_failing(true);
    assert_eq!(
        refused_with(&app, &ada).await,
        (503, "session_check_unavailable".into())
    );
    supabase.set_user_endpoint_failing(false);
    assert_eq!(app.status_for(&ada).await, 200);

    let wrong_key =
        spawn_checking_sessions(&supabase, &[("SUPABASE_ANON_KEY", "not-the-key")]).await;
    assert_eq!(
        refused_with(&wrong_key, &user(&wrong_key, "ada", "ada-laptop")).await,
        (503, "session_check_unavailable".into()),
        "a refused apikey is our misconfiguration, not a signed-out user"
    );
}

#[tokio::test]
async fn an_unreachable_supabase_means_503_never_an_accept() {
    // HS256 tokens verify without Supabase; the session check cannot reach it.
    let refusing = ClosedPort::new();
    let nowhere = refusing.url.as_str();
    let app = TestApp::spawn_with(Options {
        env: env(&[
            ("SUPABASE_URL", nowhere),
            ("SUPABASE_VERIFY_SESSION", "true"),
            ("SUPABASE_ANON_KEY", ANON_KEY),
        ]),
        wait_until_ready: false,
        ..Options::default()
    })
    .await;
    let token = sign_hs256(&user_claims(&format!("{nowhere}/auth/v1")));
    assert_eq!(
        status_and_code(app.get_credentials(&token).await).await,
        (503, "session_check_unavailable".into())
    );
}

#[tokio::test]
async fn the_session_check_works_with_a_custom_audience() {
    let supabase = FakeSupabase::start(&[]).await;
    let app = spawn_checking_sessions(&supabase, &[("SUPABASE_JWT_AUDIENCE", "phone-app")]).await;
    for aud in [json!("phone-app"), json!(["phone-app", "authenticated"])] {
        let mut claims = app.claims();
        claims["aud"] = aud.clone();
        claims["session_id"] = json!(uuid_for(&aud.to_string()));
        assert_eq!(app.status_for(&sign_hs256(&claims)).await, 200, "{aud}");
    }
    assert_eq!(supabase.user_calls(), 2, "Supabase was asked each time");
}

#[tokio::test]
async fn a_400_from_the_session_check_fails_closed_and_its_error_code_is_logged() {
    let supabase = FakeSupabase::start(&[]).await;
    let mut env = test_env(&supabase.url);
    env.extend([
        ("LOG_FORMAT", "json".into()),
        ("SUPABASE_VERIFY_SESSION", "true".into()),
        ("SUPABASE_ANON_KEY", ANON_KEY.into()),
        ("SESSION_CHECK_CACHE_SECS", "0".into()),
    ]);
    let mut service = common::process::Process::start(&["serve"], &env);
    let address = service.address().await;
    let mut not_a_uuid = user_claims(&supabase.issuer());
    not_a_uuid["sub"] = json!("user-42");
    // Our check needs the audience somewhere in `aud`; Supabase's needs it first.
    let mut audience_second = user_claims(&supabase.issuer());
    audience_second["aud"] = json!(["", "authenticated"]);
    let client = reqwest::Client::new();
    for claims in [&not_a_uuid, &audience_second] {
        let response = client
            .get(format!("{address}/credentials"))
            .bearer_auth(sign_hs256(claims))
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_and_code(response).await,
            (503, "session_check_unavailable".into())
        );
    }
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);

    let codes: Vec<String> = service
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|event| event["error_code"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        codes,
        ["bad_jwt", "validation_failed"],
        "{}",
        service.text()
    );
}
