//! The JWKS cache: bounded fetches, rotation, outages and readiness.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, Header};
use serde_json::Value;
use telnyx_webrtc_credentials::config::JwksTiming;

fn timing(min_refetch_ms: u64, refresh_ms: u64) -> JwksTiming {
    JwksTiming {
        refresh_interval: Duration::from_millis(refresh_ms),
        retry_interval: Duration::from_millis(100),
        min_refetch_interval: Duration::from_millis(min_refetch_ms),
        fetch_timeout: Duration::from_millis(500),
    }
}

fn unknown_kid_token(app: &TestApp, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    keys().attacker.sign_with_header(header, &app.claims())
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch_per_interval() {
    let app = TestApp::spawn().await; // the default 30 s between kid-driven fetches
    let before = app.supabase.fetches();
    assert_eq!(before, 1, "one fetch at start-up");
    let app = &app;
    let requests = (0..100).map(|n| {
        let token = unknown_kid_token(app, &format!("made-up-{n}"));
        async move { app.status_for(&token).await }
    });
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|status| *status == 401));
    assert_eq!(
        app.supabase.fetches(),
        before,
        "the start-up fetch was under 30 s ago"
    );
}

#[tokio::test]
async fn concurrent_misses_share_one_fetch() {
    let app = TestApp::with_timing(timing(0, 600_000)).await;
    app.supabase.set_delay(Duration::from_secs(1));
    let before = app.supabase.fetches();
    let app = &app;
    let requests = (0..40).map(|n| {
        let token = unknown_kid_token(app, &format!("made-up-{n}"));
        async move { app.status_for(&token).await }
    });
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|status| *status == 401));
    let fetches = app.supabase.fetches() - before;
    assert!(
        (1..=2).contains(&fetches),
        "{fetches} fetches for 40 concurrent misses"
    );
}

#[tokio::test]
async fn a_key_added_to_the_jwks_is_accepted_after_rotation() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let app = TestApp::spawn_with(Options {
        supabase: Some(supabase),
        timing: timing(100, 600_000),
        ..Options::default()
    })
    .await;
    let rotated = keys.rs256.sign(&app.claims());
    // Published after start-up: not known yet, and the kid-driven refetch is still rate-limited.
    app.supabase.set_keys(&[&keys.es256, &keys.rs256]);
    assert_eq!(app.status_for(&rotated).await, 401);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        app.status_for(&rotated).await,
        200,
        "fetched on the unknown kid"
    );
    assert_eq!(app.status_for(&keys.es256.sign(&app.claims())).await, 200);
}

#[tokio::test]
async fn the_background_refresh_picks_up_added_and_revoked_keys() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let app = TestApp::spawn_with(Options {
        supabase: Some(supabase),
        timing: timing(600_000, 200),
        ..Options::default()
    })
    .await;
    let old = keys.es256.sign(&app.claims());
    let new = keys.eddsa.sign(&app.claims());
    assert_eq!(app.status_for(&old).await, 200);
    app.supabase.set_keys(&[&keys.eddsa]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.status_for(&new).await != 200 {
        assert!(Instant::now() < deadline, "the new key was never fetched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.status_for(&old).await,
        401,
        "a key removed from the JWKS is revoked"
    );
}

#[tokio::test]
async fn an_outage_keeps_the_known_keys_working() {
    let app = TestApp::with_timing(timing(0, 100)).await;
    let token = keys().es256.sign(&app.claims());
    app.supabase.set_failing(true);
    let before = app.supabase.fetches();
    // Both the background refresh and a kid-driven refetch fail while Supabase is down.
    assert_eq!(
        app.status_for(&unknown_kid_token(&app, "new-kid")).await,
        401
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.supabase.fetches() >= before + 2,
        "refreshes were attempted"
    );
    assert_eq!(app.status_for(&token).await, 200);
    assert_eq!(
        app.get("/readyz").await.status(),
        200,
        "still ready on the last good keys"
    );

    // A JWKS that answers with something else than a key set is an outage too.
    app.supabase.set_failing(false);
    app.supabase
        .set_document(serde_json::json!({"error": "maintenance"}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.status_for(&token).await, 200);
}

#[tokio::test]
async fn a_stalled_jwks_endpoint_times_out_without_losing_keys() {
    let app = TestApp::with_timing(timing(0, 600_000)).await;
    app.supabase.set_delay(Duration::from_secs(5));
    let started = Instant::now();
    assert_eq!(
        app.status_for(&unknown_kid_token(&app, "slow-kid")).await,
        401
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the 500 ms fetch timeout bounded the wait"
    );
    assert_eq!(app.status_for(&keys().es256.sign(&app.claims())).await, 200);
}

#[tokio::test]
async fn unreachable_supabase_at_start_up_serves_hs256_and_reports_not_ready() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    supabase.set_failing(true);
    let app = TestApp::spawn_with(Options {
        supabase: Some(supabase),
        timing: timing(0, 600_000),
        wait_until_ready: false,
        ..Options::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let not_ready = app.get("/readyz").await;
    assert_eq!(not_ready.status(), 503);
    let body: Value = not_ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reason"].as_str().unwrap().contains("SUPABASE_URL"),
        "{body}"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "alive all the same"
    );
    assert_eq!(app.status_for(&sign_hs256(&app.claims())).await, 200);
    assert_eq!(app.status_for(&keys.es256.sign(&app.claims())).await, 401);

    // Kid-driven fetches that fail alongside the background retries must not make the
    // background loop believe the keys are fresh (and wait 10 minutes to retry).
    app.supabase.set_delay(Duration::from_millis(30));
    let until = Instant::now() + Duration::from_millis(600);
    let app = &app;
    while Instant::now() < until {
        let tokens = (0..4).map(|n| unknown_kid_token(app, &format!("during-outage-{n}")));
        join_all(tokens.map(|token| async move { app.status_for(&token).await })).await;
    }
    app.supabase.set_failing(false);
    app.wait_until_ready().await;
    assert_eq!(app.status_for(&keys.es256.sign(&app.claims())).await, 200);
}

#[tokio::test]
async fn a_request_that_outlives_the_request_timeout_gets_a_503_in_the_error_shape() {
    let app = TestApp::spawn_with(Options {
        env: vec![("REQUEST_TIMEOUT_SECS", "1".into())],
        timing: JwksTiming {
            fetch_timeout: Duration::from_secs(10),
            ..timing(0, 600_000)
        },
        ..Options::default()
    })
    .await;
    app.supabase.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let response = app
        .get_credentials(&unknown_kid_token(&app, "stalls"))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "answered at the 1 s timeout"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = error_body(response).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("timeout")));
}

#[tokio::test]
async fn concurrent_refreshes_share_one_fetch_and_only_a_success_starts_a_generation() {
    use telnyx_webrtc_credentials::auth::TokenVerifier;
    use telnyx_webrtc_credentials::config::{Config, lookup_from};

    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let env = test_env(&supabase.url);
    let config =
        Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
    let verifier = TokenVerifier::new(&config.auth);
    let store = verifier.key_store().unwrap();
    assert_eq!(store.generation(), 0);
    supabase.set_delay(Duration::from_millis(300));

    let refreshes = |count| join_all((0..count).map(|_| store.refresh()));
    // The first takes the fetch; the others wait on it and take its outcome.
    assert_eq!(refreshes(5).await, [true; 5]);
    assert_eq!(supabase.fetches(), 1);
    assert_eq!(store.generation(), 1);

    supabase.set_failing(true);
    assert_eq!(refreshes(5).await, [false; 5]);
    assert_eq!(supabase.fetches(), 2);
    assert_eq!(store.generation(), 1, "a failed fetch keeps the key set");
    assert!(store.snapshot().get(&keys().es256.kid).is_some());

    supabase.set_failing(false);
    assert!(store.refresh().await);
    assert_eq!((supabase.fetches(), store.generation()), (3, 2));
}
