//! `CREDENTIAL_MODE=per_user` as Telnyx documents it, against the local Telnyx stand-in:
//! credentials with a lifetime (created with `expires_at`, moved forward at half-life, expired
//! ones deleted and replaced), tokens that never outlive their credential, the propagation wait
//! of a brand-new credential, and a lookup that reads every page and never repeats a create
//! blindly.

mod common;

use std::time::{Duration, Instant, UNIX_EPOCH};

use common::telnyx::{Behaviour, CONNECTION_ID, FakeTelnyx};
use common::*;
use futures_util::future::join_all;
use serde_json::{Value, json};

const DAY: u64 = 86_400;

fn iso(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn secs_of(iso: &str) -> u64 {
    humantime::parse_rfc3339_weak(iso)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn exp_of(login_token: &str) -> u64 {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(login_token).unwrap();
    claims["exp"].as_u64().unwrap()
}

#[tokio::test]
async fn a_credential_is_created_expiring_idle_days_ahead_and_named_after_the_user() {
    for (idle_days, expected_days) in [(None, 30), (Some("7"), 7)] {
        let telnyx = FakeTelnyx::start().await;
        let extra: Vec<(&'static str, &str)> = idle_days
            .map(|days| ("TELNYX_CREDENTIAL_IDLE_DAYS", days))
            .into_iter()
            .collect();
        let app = TestApp::per_user(&telnyx, &extra).await;

        app.credential(&app.token_for("user-lifetime")).await;

        let create = telnyx
            .seen()
            .into_iter()
            .find(|seen| seen.endpoint == "create")
            .unwrap();
        assert_eq!(create.body["name"], "supabase:user-lifetime");
        assert_eq!(create.body["connection_id"], CONNECTION_ID);
        let expires_at = secs_of(create.body["expires_at"].as_str().unwrap());
        let expected = now_secs() + expected_days * DAY;
        assert!(
            expires_at.abs_diff(expected) < 60,
            "{expires_at} vs {expected}"
        );
        assert_eq!(
            telnyx.requests("update"),
            0,
            "a new credential needs no PATCH"
        );
    }
}

#[tokio::test]
async fn a_credential_past_half_its_idle_period_is_moved_forward_before_the_token_is_minted() {
    let telnyx = FakeTelnyx::start().await;
    let now = now_secs();
    let due = telnyx.insert_with(
        "supabase:user-due",
        CONNECTION_ID,
        "2026-01-01T00:00:00",
        Some(&iso(now + 10 * DAY)),
    );
    let timeless = telnyx.insert("supabase:user-timeless", "2026-01-01T00:00:00");
    let fresh = telnyx.insert_with(
        "supabase:user-fresh",
        CONNECTION_ID,
        "2026-01-01T00:00:00",
        Some(&iso(now + 20 * DAY)),
    );
    let app = TestApp::per_user(&telnyx, &[]).await;

    app.credential(&app.token_for("user-due")).await;
    let seen = telnyx.seen();
    let endpoints: Vec<&str> = seen.iter().map(|seen| seen.endpoint).collect();
    assert_eq!(endpoints, ["list", "update", "token"]);
    let moved_to = secs_of(seen[1].body["expires_at"].as_str().unwrap());
    assert!(moved_to.abs_diff(now_secs() + 30 * DAY) < 60, "{moved_to}");
    let stored = telnyx
        .credentials()
        .into_iter()
        .find(|c| c.id == due.id)
        .unwrap();
    assert_eq!(stored.expires_at_secs(), Some(moved_to));

    // A credential made before lifetimes (no expires_at) is given one.
    app.credential(&app.token_for("user-timeless")).await;
    assert_eq!(telnyx.requests("update"), 2);
    let stored = telnyx
        .credentials()
        .into_iter()
        .find(|c| c.id == timeless.id)
        .unwrap();
    assert!(stored.expires_at.is_some());

    // More than half the period left: left alone.
    app.credential(&app.token_for("user-fresh")).await;
    assert_eq!(telnyx.requests("update"), 2);
    let stored = telnyx
        .credentials()
        .into_iter()
        .find(|c| c.id == fresh.id)
        .unwrap();
    assert_eq!(stored.expires_at_secs(), Some(now + 20 * DAY));
}

#[tokio::test]
async fn a_token_never_outlives_its_credential() {
    let telnyx = FakeTelnyx::start().await;
    // One idle day: a credential with 13 hours left is not due for a PATCH (more than half a
    // day left), and a 24-hour token would outlive it.
    let credential_expiry = now_secs() + 13 * 3600;
    telnyx.insert_with(
        "supabase:user-capped",
        CONNECTION_ID,
        "2026-01-01T00:00:00",
        Some(&iso(credential_expiry)),
    );
    let app = TestApp::per_user(&telnyx, &[("TELNYX_CREDENTIAL_IDLE_DAYS", "1")]).await;

    let answer = app.credential(&app.token_for("user-capped")).await;

    assert_eq!(telnyx.requests("update"), 0);
    let login_token = answer["login_token"].as_str().unwrap();
    assert!(
        exp_of(login_token) > credential_expiry + 3600,
        "a 24 h token"
    );
    assert_eq!(answer["expires_at"], json!(credential_expiry * 1000));
}

#[tokio::test]
async fn expired_credentials_are_deleted_and_replaced_never_reused() {
    let telnyx = FakeTelnyx::start().await;
    let flagged = telnyx.insert("supabase:user-expired", "2025-01-01T00:00:00");
    telnyx.expire(&flagged.id);
    let lapsed = telnyx.insert_with(
        "supabase:user-expired",
        CONNECTION_ID,
        "2025-02-01T00:00:00",
        Some(&iso(now_secs() - 60)),
    );
    let app = TestApp::per_user(&telnyx, &[]).await;

    let answer = app.credential(&app.token_for("user-expired")).await;

    let stored = telnyx.credentials();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_ne!(stored[0].id, flagged.id);
    assert_ne!(stored[0].id, lapsed.id);
    assert_eq!(answer["username"], stored[0].sip_username);
    assert_eq!(telnyx.requests("delete"), 2);
    assert_eq!(telnyx.requests("create"), 1);
}

#[tokio::test]
async fn a_credential_that_expires_while_known_is_deleted_and_replaced() {
    let telnyx = FakeTelnyx::start().await;
    telnyx.set_token_lifetime(Duration::from_secs(4));
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-lapses");
    let first = app.credential(&token).await;
    let known = telnyx.credentials()[0].clone();
    // Its expiry passes at Telnyx (set behind the service's back), then the token is due.
    telnyx.set_expires_at(&known.id, Some(&iso(now_secs() - 1)));
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let second = app.credential(&token).await;

    assert_ne!(second["username"], first["username"]);
    let stored = telnyx.credentials();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].id, known.id, "the expired one was deleted");
}

#[tokio::test]
async fn the_lookup_reads_every_page_and_sends_no_status_filter() {
    let telnyx = FakeTelnyx::start().await;
    telnyx.set_page_cap(1);
    telnyx.insert("supabase:user-paged", "2026-03-01T00:00:00");
    telnyx.insert("supabase:user-paged", "2026-02-01T00:00:00");
    let oldest = telnyx.insert("supabase:user-paged", "2026-01-01T00:00:00");
    let app = TestApp::per_user(&telnyx, &[]).await;

    let answer = app.credential(&app.token_for("user-paged")).await;

    assert_eq!(answer["username"], oldest.sip_username, "found on page 3");
    assert_eq!(telnyx.requests("create"), 0);
    let lists: Vec<_> = telnyx
        .seen()
        .into_iter()
        .filter(|seen| seen.endpoint == "list")
        .collect();
    let pages: Vec<&str> = lists
        .iter()
        .map(|seen| seen.query["page[number]"].as_str())
        .collect();
    assert_eq!(pages, ["1", "2", "3"]);
    for list in &lists {
        assert_eq!(list.query["page[size]"], "250", "the spec's maximum");
        assert!(
            !list.query.contains_key("filter[status]"),
            "{:?}",
            list.query
        );
        assert_eq!(
            list.query["filter[resource_id]"],
            format!("connection:{CONNECTION_ID}")
        );
    }
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_followed_by_a_list_not_a_second_create() {
    let telnyx = FakeTelnyx::start().await;
    telnyx.set_behaviour(Behaviour::FailAfterDoing {
        endpoint: "create",
        status: 503,
        times: 1,
    });
    let app = TestApp::per_user(&telnyx, &[]).await;

    let answer = app.credential(&app.token_for("user-lost")).await;

    assert_eq!(telnyx.requests("create"), 1, "no blind second POST");
    let stored = telnyx.credentials();
    assert_eq!(stored.len(), 1);
    assert_eq!(answer["username"], stored[0].sip_username);
    let endpoints: Vec<&str> = telnyx.seen().iter().map(|seen| seen.endpoint).collect();
    assert_eq!(endpoints, ["list", "create", "list", "token"]);
}

#[tokio::test]
async fn a_create_refused_with_429_is_sent_again() {
    let telnyx = FakeTelnyx::start().await;
    telnyx.set_behaviour(Behaviour::FailOn {
        endpoint: "create",
        status: 429,
        retry_after: Some("0".into()),
        times: 1,
    });
    let app = TestApp::per_user(&telnyx, &[]).await;

    app.credential(&app.token_for("user-busy")).await;

    assert_eq!(
        telnyx.requests("create"),
        2,
        "Telnyx did nothing with the first"
    );
    assert_eq!(telnyx.credentials().len(), 1);
}

#[tokio::test]
async fn a_brand_new_users_first_token_waits_out_propagation_and_concurrent_requests_share_it() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[("TELNYX_CREDENTIAL_PROPAGATION_SECS", "2")]).await;
    let token = app.token_for("user-new");

    let answers = join_all((0..5).map(|_| async {
        let answer = app.credential(&token).await;
        (answer, Instant::now())
    }))
    .await;

    assert_eq!(telnyx.requests("create"), 1);
    assert_eq!(telnyx.requests("token"), 1, "one token, shared");
    let created = telnyx.created_at(&telnyx.credentials()[0].id).unwrap();
    for (answer, answered_at) in &answers {
        assert_eq!(answer["login_token"], answers[0].0["login_token"]);
        let age = answered_at.duration_since(created);
        assert!(
            age >= Duration::from_secs(2),
            "handed out {age:?} after the credential was created"
        );
    }

    // A credential that has long propagated is not waited for.
    telnyx.insert("supabase:user-old", "2025-01-01T00:00:00");
    let asked = Instant::now();
    app.credential(&app.token_for("user-old")).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn a_propagation_wait_that_no_longer_fits_the_budget_answers_503_and_the_next_request_is_served()
 {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(
        &telnyx,
        &[
            ("TELNYX_CREDENTIAL_PROPAGATION_SECS", "2"),
            ("TELNYX_REQUEST_BUDGET_SECS", "3"),
        ],
    )
    .await;
    // The first list waits 2 s for Retry-After, leaving too little of the 3 s budget.
    telnyx.set_behaviour(Behaviour::Fail {
        status: 429,
        retry_after: Some("2".into()),
        times: 1,
    });
    let token = app.token_for("user-slow");

    let response = app.get_credentials(&token).await;

    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    let (_, body) = error_body(response).await;
    assert_eq!(body["code"], "telnyx_unavailable");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    app.credential(&token).await;
    assert_eq!(telnyx.requests("create"), 1, "the credential was kept");
}

#[tokio::test]
async fn revoking_deletes_expired_credentials_too() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-gone");
    app.credential(&token).await;
    let stale = telnyx.insert("supabase:user-gone", "2024-01-01T00:00:00");
    telnyx.expire(&stale.id);

    let response = app.delete_credentials(&token).await;

    assert_eq!(response.status(), 204);
    assert!(telnyx.credentials().is_empty());
}
