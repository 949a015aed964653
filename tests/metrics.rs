//! `GET /metrics`: what an operator's Prometheus scrapes. The recorder is one per process and
//! the tests share it, so they compare counts before and after their own requests.

mod common;

use common::telnyx::FakeTelnyx;
use common::*;
use serde_json::json;

async fn scrape(url: &str) -> String {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// Each test counts what its own requests add; tests that send requests of the same kind would
/// count each other's, so they take turns.
async fn take_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    TURN.get_or_init(Default::default).lock().await
}

/// The value of the series whose name and labels start `series` (`name{label="value"`), or 0.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(series))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn requests_rejections_issues_and_the_key_set_are_counted() {
    let _turn = take_turn().await;
    let app = TestApp::spawn_with(Options {
        wait_until_ready: true,
        ..Options::default()
    })
    .await;
    let before = scrape(&app.address).await;
    let mut expired = app.claims();
    expired["exp"] = json!(now_secs() - 3600);

    assert_eq!(app.status_for(&keys().es256.sign(&app.claims())).await, 200);
    assert_eq!(app.status_for(&sign_hs256(&expired)).await, 401);
    assert_eq!(app.get("/no-such-page").await.status(), 404);
    let after = scrape(&app.address).await;

    let grew = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        grew(r#"http_requests_total{route="/credentials",method="GET",status="200"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        grew(r#"http_requests_total{route="/credentials",method="GET",status="401"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"http_requests_total{route="unmatched",method="GET",status="404"}"#),
        1.0
    );
    assert_eq!(grew(r#"token_rejections_total{reason="expired"}"#), 1.0);
    assert_eq!(
        grew(r#"credentials_issued_total{mode="static",issuer="supabase"}"#),
        1.0
    );
    assert!(
        grew(r#"http_request_duration_seconds_count{route="/credentials",method="GET"}"#) >= 2.0
    );
    assert!(
        value(
            &after,
            r#"jwks_fetches_total{issuer="supabase",outcome="success"}"#
        ) >= 1.0
    );
    assert!(
        after.contains("\njwks_key_set_age_seconds{issuer=\"supabase\"} "),
        "{after}"
    );
    assert!(after.contains("# HELP token_rejections_total"), "{after}");
    // The path of a 404 is not a label: series stay bounded whatever clients send.
    assert!(!after.contains("no-such-page"));
}

#[tokio::test]
async fn telnyx_calls_and_login_token_cache_lookups_are_counted() {
    let _turn = take_turn().await;
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::spawn_with(Options {
        env: telnyx.env(),
        ..Options::default()
    })
    .await;
    let before = scrape(&app.address).await;
    let mut claims = app.claims();
    claims["sub"] = json!("user-metrics");
    let token = sign_hs256(&claims);

    assert_eq!(app.status_for(&token).await, 200);
    assert_eq!(app.status_for(&token).await, 200);
    let after = scrape(&app.address).await;

    let grew = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        grew(r#"telnyx_requests_total{endpoint="create_credential",outcome="201"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        grew(r#"telnyx_requests_total{endpoint="create_token",outcome="201"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"cache_lookups_total{cache="login_tokens",result="miss"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"cache_lookups_total{cache="login_tokens",result="hit"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"credentials_issued_total{mode="per_user",issuer="supabase"}"#),
        2.0
    );
    assert!(grew(r#"telnyx_request_duration_seconds_count{endpoint="create_token"}"#) >= 1.0);
}

#[tokio::test]
async fn metrics_bind_addr_moves_metrics_off_the_public_port() {
    let app = TestApp::spawn_with(Options {
        env: vec![("METRICS_BIND_ADDR", "127.0.0.1:0".into())],
        ..Options::default()
    })
    .await;

    assert_eq!(app.get("/metrics").await.status(), 404);
    let metrics_address = app.metrics_address.clone().unwrap();
    assert!(
        scrape(&metrics_address)
            .await
            .contains("http_requests_total")
    );
}

#[tokio::test]
async fn rate_limited_requests_are_counted_as_rejections() {
    let _turn = take_turn().await;
    let app = TestApp::spawn_with(Options {
        env: vec![("RATE_LIMIT_PER_USER", "1/min,burst=1".into())],
        ..Options::default()
    })
    .await;
    let mut claims = app.claims();
    claims["sub"] = json!("user-metrics-limited");
    let token = sign_hs256(&claims);
    let before = scrape(&app.address).await;

    assert_eq!(app.status_for(&token).await, 200);
    assert_eq!(app.status_for(&token).await, 429);
    let after = scrape(&app.address).await;

    let series = r#"token_rejections_total{reason="rate_limited"}"#;
    assert_eq!(
        value(&after, series) - value(&before, series),
        1.0,
        "{after}"
    );
}

#[tokio::test]
async fn refusals_are_counted_by_reason_under_the_new_name_and_the_deprecated_one() {
    let _turn = take_turn().await;
    let app = TestApp::spawn_with(Options {
        env: vec![("MAX_REQUEST_BODY_BYTES", "16".into())],
        ..Options::default()
    })
    .await;
    let mut expired = app.claims();
    expired["exp"] = json!(now_secs() - 3600);
    let before = scrape(&app.address).await;

    assert_eq!(app.status_for(&sign_hs256(&expired)).await, 401);
    let large_body = app
        .client
        .post(format!("{}/credentials", app.address))
        .bearer_auth(sign_hs256(&app.claims()))
        .body("x".repeat(17))
        .send()
        .await
        .unwrap();
    assert_eq!(large_body.status(), 413);
    let after = scrape(&app.address).await;

    let grew = |series: &str| value(&after, series) - value(&before, series);
    // Not only tokens: a body over the limit is a refusal too, with its error code as reason.
    for reason in ["expired", "payload_too_large"] {
        for name in ["requests_refused_total", "token_rejections_total"] {
            assert_eq!(
                grew(&format!("{name}{{reason=\"{reason}\"}}")),
                1.0,
                "{name} {reason}: {after}"
            );
        }
    }
    assert!(after.contains("# HELP requests_refused_total"), "{after}");
    assert!(
        after.contains("# HELP token_rejections_total Deprecated"),
        "{after}"
    );
}
