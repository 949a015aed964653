//! Abuse limits over HTTP: per-user and per-address rate limits, load shedding at the in-flight
//! cap, and request size limits. No assertion depends on how fast the machine is.

mod common;

use std::time::Duration;

use common::*;
use reqwest::header;
use serde_json::{Value, json};

fn options(env: &[(&'static str, &str)]) -> Options {
    Options {
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        ..Options::default()
    }
}

/// A signed-in user's HS256 token with its own `sub` (and session).
fn token_for(app: &TestApp, user: &str) -> String {
    let mut claims = app.claims();
    claims["sub"] = json!(uuid_for(user));
    claims["session_id"] = json!(uuid_for(&format!("session-of-{user}")));
    sign_hs256(&claims)
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_default_per_user_limit_allows_a_burst_of_ten_then_answers_429() {
    let app = TestApp::spawn().await;
    let ada = token_for(&app, "ada");
    for request in 1..=10 {
        assert_eq!(app.status_for(&ada).await, 200, "request {request}");
    }
    // Twenty a minute is one every three seconds; a slow machine may earn one back meanwhile.
    let mut refused = None;
    for _ in 0..10 {
        let response = app.get_credentials(&ada).await;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the limit refuses within ten more requests");
    let wait = retry_after(&refused);
    assert!((1..=3).contains(&wait), "Retry-After: {wait}");
    assert_eq!(status_and_code(refused).await, (429, "rate_limited".into()));

    let grace = token_for(&app, "grace");
    assert_eq!(
        app.status_for(&grace).await,
        200,
        "other users are not limited"
    );
}

#[tokio::test]
async fn a_rate_limited_user_gets_through_again_after_retry_after() {
    let app = TestApp::spawn_with(options(&[("RATE_LIMIT_PER_USER", "2/s,burst=2")])).await;
    let ada = token_for(&app, "ada");
    let mut refused = None;
    for _ in 0..50 {
        let response = app.get_credentials(&ada).await;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = refused.expect("two a second is exceeded by fifty back-to-back requests");
    let wait = retry_after(&refused);
    assert_eq!(wait, 1, "half a second to wait, rounded up");

    // GCRA guarantees a request that waited Retry-After conforms; nothing here races it.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(app.status_for(&ada).await, 200, "recovered");
}

#[tokio::test]
async fn rate_limits_can_be_turned_off() {
    let app = TestApp::spawn_with(options(&[("RATE_LIMIT_PER_USER", "off")])).await;
    let ada = token_for(&app, "ada");
    for request in 1..=40 {
        assert_eq!(app.status_for(&ada).await, 200, "request {request}");
    }
}

async fn status_from(app: &TestApp, forwarded_for: &str) -> u16 {
    app.client
        .get(format!("{}/credentials", app.address))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_per_address_limit_uses_x_forwarded_for_only_when_trusted() {
    let trusted = TestApp::spawn_with(options(&[
        ("RATE_LIMIT_PER_IP", "1/h,burst=2"),
        ("TRUST_PROXY_HEADERS", "true"),
    ]))
    .await;
    // Counted before the token is looked at: a flood of junk is limited too.
    assert_eq!(status_from(&trusted, "6.6.6.6, 203.0.113.5").await, 401);
    assert_eq!(status_from(&trusted, "7.7.7.7, 203.0.113.5").await, 401);
    assert_eq!(
        status_from(&trusted, "8.8.8.8, 203.0.113.5").await,
        429,
        "the spoofable left-hand entries do not make a new client"
    );
    assert_eq!(
        status_from(&trusted, "203.0.113.5, 198.51.100.9").await,
        401
    );
    let healthy = trusted.get("/healthz").await;
    assert_eq!(healthy.status(), 200, "the probes are not rate limited");

    let untrusted = TestApp::spawn_with(options(&[("RATE_LIMIT_PER_IP", "1/h,burst=2")])).await;
    assert_eq!(status_from(&untrusted, "203.0.113.1").await, 401);
    assert_eq!(status_from(&untrusted, "203.0.113.2").await, 401);
    let response = untrusted
        .client
        .get(format!("{}/credentials", untrusted.address))
        .header("x-forwarded-for", "203.0.113.3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "all of it is 127.0.0.1");
    assert!(retry_after(&response) > 1000, "one an hour");
    assert_eq!(
        status_and_code(response).await,
        (429, "rate_limited".into())
    );
}

#[tokio::test]
async fn past_the_in_flight_cap_the_next_request_gets_503_at_once() {
    let supabase = FakeSupabase::start(&[]).await;
    let app = TestApp::spawn_with(Options {
        env: vec![
            ("MAX_CONCURRENT_REQUESTS", "3".into()),
            ("SUPABASE_VERIFY_SESSION", "true".into()),
            ("SUPABASE_ANON_KEY", ANON_KEY.into()),
        ],
        supabase: Some(supabase.clone()),
        wait_until_ready: false,
        ..Options::default()
    })
    .await;
    // Three requests wait on the session check, which the fake holds until released.
    supabase.hold_user_requests();
    let in_flight: Vec<_> = ["ada", "grace", "linus"]
        .into_iter()
        .map(|user| {
            let client = app.client.clone();
            let url = format!("{}/credentials", app.address);
            let token = token_for(&app, user);
            tokio::spawn(async move {
                client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    supabase.wait_for_user_calls(3).await;

    let shed = app.get_credentials(&token_for(&app, "margaret")).await;
    assert_eq!(status_and_code(shed).await, (503, "overloaded".into()));
    assert_eq!(supabase.user_calls(), 3, "the shed request did no work");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "probes are not shed"
    );

    supabase.release_user_requests();
    for request in in_flight {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(
        app.status_for(&token_for(&app, "margaret")).await,
        200,
        "the permits came back"
    );
}

#[tokio::test]
async fn oversized_headers_and_bodies_are_refused_in_the_error_shape() {
    let app = TestApp::spawn_with(options(&[
        ("MAX_REQUEST_HEADER_BYTES", "4096"),
        ("MAX_REQUEST_BODY_BYTES", "16"),
    ]))
    .await;
    let token = sign_hs256(&app.claims());
    let url = format!("{}/credentials", app.address);

    let padded = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .header("x-padding", "p".repeat(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(padded).await,
        (431, "headers_too_large".into())
    );

    let large_body = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .body("x".repeat(17))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_code(large_body).await,
        (413, "payload_too_large".into())
    );

    let small_body = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(small_body.status(), 200);
    let body: Value = small_body.json().await.unwrap();
    assert_eq!(body["success"], true);
}
