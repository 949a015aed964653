//! `CREDENTIAL_MODE=per_user` against a local stand-in for the Telnyx API: one credential per
//! user, cached login tokens, single flight, restarts, revocation, and every failure mode.

mod common;

use std::time::{Duration, Instant};

use common::telnyx::{Behaviour, CONNECTION_ID, FakeTelnyx, TELNYX_API_KEY};
use common::*;
use futures_util::future::join_all;
use serde_json::Value;

fn exp_of(login_token: &str) -> u64 {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(login_token).unwrap();
    claims["exp"].as_u64().unwrap()
}

#[tokio::test]
async fn concurrent_requests_for_three_users_create_three_credentials_and_mint_three_tokens() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    let users = ["user-a", "user-b", "user-c"];
    let tokens: Vec<String> = users.iter().map(|user| app.token_for(user)).collect();

    let requests = (0..30).map(|n| app.credential(&tokens[n % 3]));
    let answers = join_all(requests).await;

    assert_eq!(telnyx.requests("create"), 3);
    assert_eq!(telnyx.requests("token"), 3);
    let stored = telnyx.credentials();
    assert_eq!(stored.len(), 3);
    let minted = telnyx.minted();
    for (n, answer) in answers.iter().enumerate() {
        let user = users[n % 3];
        let own = stored
            .iter()
            .find(|credential| credential.name == format!("supabase:{user}"))
            .unwrap();
        assert_eq!(own.resource_id, format!("connection:{CONNECTION_ID}"));
        assert_eq!(answer["username"], own.sip_username);
        assert_eq!(
            answer["sip_uri"],
            format!("sip:{}@sip.telnyx.com", own.sip_username)
        );
        let login_token = answer["login_token"].as_str().unwrap();
        assert!(minted.iter().any(|token| token == login_token));
        assert_eq!(answer["expires_at"], exp_of(login_token) * 1000);
        assert!(answer.get("password").is_none(), "{answer}");
        // No SIP password anywhere in the answer, TURN included.
        assert!(!answer.to_string().contains(&own.sip_password));
        assert!(answer["turn_servers"][0].get("credential").is_none());
        // No TURN credentials configured: no ice_servers, so the SDK keeps its own relays.
        assert!(answer.get("ice_servers").is_none(), "{answer}");
    }

    let before = telnyx.total_requests();
    for token in tokens.iter().cycle().take(30) {
        app.credential(token).await;
    }
    assert_eq!(
        telnyx.total_requests(),
        before,
        "cached tokens need no Telnyx call"
    );
}

#[tokio::test]
async fn a_restart_or_a_second_replica_reuses_the_credential_and_mints_a_new_token() {
    let telnyx = FakeTelnyx::start().await;
    let first = TestApp::per_user(&telnyx, &[]).await;
    let token = first.token_for("user-restart");
    let before = first.credential(&token).await;
    drop(first);

    // Each app has its own Supabase stand-in, so each signs its own token for the same user.
    let restarted = TestApp::per_user(&telnyx, &[]).await;
    let replica = TestApp::per_user(&telnyx, &[]).await;
    let after = restarted
        .credential(&restarted.token_for("user-restart"))
        .await;
    let elsewhere = replica.credential(&replica.token_for("user-restart")).await;

    assert_eq!(
        telnyx.requests("create"),
        1,
        "one credential per user, ever"
    );
    assert_eq!(telnyx.credentials().len(), 1);
    assert_eq!(telnyx.requests("token"), 3);
    assert_eq!(after["username"], before["username"]);
    assert_eq!(elsewhere["username"], before["username"]);
    assert_ne!(after["login_token"], before["login_token"]);
}

#[tokio::test]
async fn a_credential_made_elsewhere_is_found_and_the_oldest_of_duplicates_wins() {
    let telnyx = FakeTelnyx::start().await;
    let newer = telnyx.insert("supabase:user-dup", "2026-02-01T00:00:00");
    let older = telnyx.insert("supabase:user-dup", "2026-01-01T00:00:00");
    telnyx.insert("supabase:someone-else", "2025-01-01T00:00:00");
    let app = TestApp::per_user(&telnyx, &[]).await;

    let answer = app.credential(&app.token_for("user-dup")).await;

    assert_eq!(answer["username"], older.sip_username);
    assert_ne!(answer["username"], newer.sip_username);
    assert_eq!(telnyx.requests("create"), 0);
}

#[tokio::test]
async fn telnyx_failing_with_5xx_is_retried_three_times_then_503_with_retry_after() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    telnyx.set_behaviour(Behaviour::Fail {
        status: 500,
        retry_after: None,
        times: usize::MAX,
    });

    let started = Instant::now();
    let response = app.get_credentials(&app.token_for("user-500")).await;

    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (_, body) = error_body(response).await;
    assert_eq!(body["code"], "telnyx_unavailable");
    assert!(
        body["error"].as_str().unwrap().contains("try again"),
        "{body}"
    );
    assert_eq!(telnyx.requests("list"), 3, "at most 3 attempts");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "within the budget"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    telnyx.set_behaviour(Behaviour::Fail {
        status: 429,
        retry_after: Some("1".into()),
        times: 1,
    });

    app.credential(&app.token_for("user-429")).await;

    let times = telnyx.request_times();
    assert!(
        times[1] - times[0] >= Duration::from_millis(950),
        "the retry waited {:?}, not Retry-After: 1",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_fails_at_once_and_is_passed_on() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    telnyx.set_behaviour(Behaviour::Fail {
        status: 429,
        retry_after: Some("60".into()),
        times: usize::MAX,
    });

    let response = app.get_credentials(&app.token_for("user-429-long")).await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "60");
    assert_eq!(
        telnyx.total_requests(),
        1,
        "no retry that would overrun the budget"
    );
}

#[tokio::test]
async fn a_hanging_telnyx_gets_an_answer_within_the_request_budget() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[("TELNYX_REQUEST_BUDGET_SECS", "2")]).await;
    telnyx.set_behaviour(Behaviour::Hang);

    let started = Instant::now();
    let response = app.get_credentials(&app.token_for("user-hang")).await;
    let elapsed = started.elapsed();

    assert_eq!(response.status(), 503);
    let (_, body) = error_body(response).await;
    assert_eq!(body["code"], "telnyx_unavailable");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(6),
        "the 2 s budget held: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_bad_api_key_is_a_server_misconfiguration_and_never_retried() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[("TELNYX_API_KEY", "KEYrevoked-0000")]).await;

    let response = app.get_credentials(&app.token_for("user-key")).await;

    assert_eq!(response.status(), 500);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], "telnyx_misconfigured");
    assert!(!text.contains("KEYrevoked-0000"));
    assert_eq!(telnyx.total_requests(), 1);
}

#[tokio::test]
async fn a_connection_that_is_not_a_credential_connection_is_a_misconfiguration() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[("TELNYX_WEBRTC_CONNECTION_ID", "999")]).await;

    let (status, body) = error_body(app.get_credentials(&app.token_for("user-conn")).await).await;

    assert_eq!(status, 500);
    assert_eq!(body["code"], "telnyx_misconfigured");
}

/// Tokens that live 4 s (3 to 4 s from the service's clock: `exp` is in whole seconds) are due
/// for replacement after half their life, so a test reaches the refresh path without waiting a
/// day, and a token due for refresh is still valid for a second or more.
async fn app_with_short_tokens(telnyx: &FakeTelnyx) -> TestApp {
    telnyx.set_token_lifetime(Duration::from_secs(4));
    TestApp::per_user(telnyx, &[]).await
}

const PAST_HALF_LIFE: Duration = Duration::from_millis(2_100);

#[tokio::test]
async fn a_credential_deleted_or_expired_at_telnyx_is_found_or_created_again_once() {
    for break_it in ["deleted", "expired"] {
        let telnyx = FakeTelnyx::start().await;
        let app = app_with_short_tokens(&telnyx).await;
        let token = app.token_for("user-gone");
        let first = app.credential(&token).await;
        let gone = telnyx.credentials()[0].clone();
        match break_it {
            "deleted" => telnyx.remove(&gone.id),
            _ => telnyx.expire(&gone.id),
        }
        tokio::time::sleep(PAST_HALF_LIFE).await;

        let second = app.credential(&token).await;

        assert_ne!(second["username"], first["username"], "{break_it}");
        assert_eq!(telnyx.requests("create"), 2, "{break_it}");
        assert_eq!(
            telnyx.requests("token"),
            3,
            "{break_it}: one failed mint, one new"
        );
    }
}

#[tokio::test]
async fn a_user_with_a_cached_token_is_served_while_telnyx_is_down() {
    let telnyx = FakeTelnyx::start().await;
    let app = app_with_short_tokens(&telnyx).await;
    let cached_user = app.token_for("user-cached");
    let before = app.credential(&cached_user).await;
    telnyx.set_behaviour(Behaviour::Fail {
        status: 503,
        retry_after: None,
        times: usize::MAX,
    });

    // Fresh: served from the cache without asking Telnyx.
    assert_eq!(
        app.credential(&cached_user).await["login_token"],
        before["login_token"]
    );
    // Due for a refresh, which fails, but not expired: still served.
    tokio::time::sleep(PAST_HALF_LIFE).await;
    assert_eq!(
        app.credential(&cached_user).await["login_token"],
        before["login_token"]
    );
    assert!(telnyx.requests("token") > 1, "a refresh was tried");
    // A user without a token cannot be served.
    let (status, body) = error_body(app.get_credentials(&app.token_for("user-new")).await).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "telnyx_unavailable");
}

#[tokio::test]
async fn concurrent_requests_for_one_user_share_one_sequence_even_when_it_fails() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    telnyx.set_behaviour(Behaviour::Fail {
        status: 500,
        retry_after: None,
        times: usize::MAX,
    });
    let token = app.token_for("user-herd");

    let statuses = join_all((0..10).map(|_| app.status_for(&token))).await;

    assert!(statuses.iter().all(|status| *status == 503), "{statuses:?}");
    assert_eq!(
        telnyx.requests("list"),
        3,
        "one sequence of 3 attempts, not 10"
    );
}

#[tokio::test]
async fn delete_revokes_the_users_credential_and_the_next_request_gets_a_new_one() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-revoke");
    let other = app.token_for("user-keep");
    let before = app.credential(&token).await;
    app.credential(&other).await;

    let response = app.delete_credentials(&token).await;

    assert_eq!(response.status(), 204);
    assert_eq!(telnyx.requests("delete"), 1);
    let names: Vec<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["supabase:user-keep"],
        "only the user's own credential went"
    );
    let after = app.credential(&token).await;
    assert_ne!(after["username"], before["username"]);
    assert_eq!(telnyx.requests("create"), 3);

    let unauthenticated = app
        .credentials_with_header(reqwest::Method::DELETE, None)
        .await;
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn delete_is_not_allowed_in_static_mode() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(&app.claims());

    let response = app.delete_credentials(&token).await;

    assert_eq!(response.status(), 405);
    let (_, body) = error_body(response).await;
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_api_key_sip_passwords_and_login_tokens_stay_out_of_debug_logs() {
    let telnyx = FakeTelnyx::start().await;
    let (mut service, address, token) =
        serve_with_json_logs(&telnyx, &[("RUST_LOG", "debug")], "user-logs").await;
    let client = reqwest::Client::new();
    let get = || {
        client
            .get(format!("{address}/credentials"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    let passwords: Vec<String> = telnyx
        .credentials()
        .into_iter()
        .map(|c| c.sip_password)
        .collect();
    let sip_username = telnyx.credentials()[0].sip_username.clone();
    let deleted = client
        .delete(format!("{address}/credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    telnyx.set_behaviour(Behaviour::Fail {
        status: 401,
        retry_after: None,
        times: 1,
    });
    assert_eq!(get().await.unwrap().status(), 500);
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();

    assert!(
        !logs.contains(TELNYX_API_KEY),
        "the API key reached the logs"
    );
    assert!(!passwords.is_empty());
    for password in passwords {
        assert!(!logs.contains(&password), "a SIP password reached the logs");
    }
    for minted in telnyx.minted() {
        let signature = minted.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a login token reached the logs");
    }
    assert!(logs.contains("created a telephony credential"), "{logs}");
    // The misconfiguration is one clear error line that says what to fix.
    let errors: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .collect();
    assert_eq!(errors.len(), 1, "{logs}");
    assert!(errors[0].contains("TELNYX_API_KEY"), "{}", errors[0]);

    // The audit trail names the user's own SIP identity, and the revocation.
    let audit: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["audit"].is_string())
        .collect();
    let kinds: Vec<&str> = audit.iter().map(|e| e["audit"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["credential_issued", "credential_revoked"], "{logs}");
    assert_eq!(audit[0]["mode"], "per_user");
    assert_eq!(audit[0]["sip_username"], sip_username);
    assert_eq!(audit[0]["user_id"], "user-logs");
    assert_eq!(audit[1]["mode"], "per_user");
    assert_eq!(audit[1]["user_id"], "user-logs");
}

#[tokio::test]
async fn head_is_refused_without_an_audit_line_and_a_delete_of_nothing_is_not_counted() {
    let telnyx = FakeTelnyx::start().await;
    let (mut service, address, token) = serve_with_json_logs(&telnyx, &[], "user-head").await;
    let client = reqwest::Client::new();
    let credentials = format!("{address}/credentials");
    let revoked = || async {
        let text = client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = text
            .lines()
            .find(|line| line.starts_with(r#"credentials_revoked_total{issuer="supabase"} "#));
        line.map_or(0.0, |line| {
            line.rsplit(' ').next().unwrap().parse().unwrap()
        })
    };

    // HEAD is a method /credentials does not serve: no token check, no Telnyx credential.
    let head = client
        .head(&credentials)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 405);
    assert_eq!(head.headers()["allow"], "GET,POST,DELETE");
    assert!(telnyx.credentials().is_empty());
    assert_eq!(telnyx.total_requests(), 0);
    // The sentence names every method this mode serves, as `Allow` does.
    let put = client.put(&credentials).send().await.unwrap();
    assert_eq!(put.headers()["allow"], "GET,POST,DELETE");
    let (status, body) = error_body(put).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("GET, POST or DELETE"),
        "{body}"
    );

    // Nothing to delete yet: 204, but no revocation counted or audited.
    let delete = || client.delete(&credentials).bearer_auth(&token).send();
    assert_eq!(delete().await.unwrap().status(), 204);
    assert_eq!(revoked().await, 0.0);
    let issued = client.get(&credentials).bearer_auth(&token).send().await;
    assert_eq!(issued.unwrap().status(), 200);
    assert_eq!(delete().await.unwrap().status(), 204);
    assert!(telnyx.credentials().is_empty());
    assert_eq!(revoked().await, 1.0);

    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();
    let finished: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["message"] == "finished processing request")
        .filter(|event| event["path"] == "/credentials")
        .collect();
    let lines: Vec<(&str, u64, Option<&str>)> = finished
        .iter()
        .map(|event| {
            (
                event["method"].as_str().unwrap(),
                event["status"].as_u64().unwrap(),
                event["audit"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("HEAD", 405, None),
            ("PUT", 405, None),
            ("DELETE", 204, None),
            ("GET", 200, Some("credential_issued")),
            ("DELETE", 204, Some("credential_revoked")),
        ],
        "{logs}"
    );
}
