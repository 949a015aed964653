//! Devices in per_user mode against the local Telnyx stand-in: a credential per `device_id`
//! under one user tag, the `MAX_DEVICES_PER_USER` cap and its eviction, signing one device or
//! all out, `GET /devices`, invalid ids, rate limits per user, the admin route, static mode.

mod common;

use std::collections::BTreeSet;

use common::telnyx::{Behaviour, FakeTelnyx};
use common::*;
use reqwest::{Method, header};
use serde_json::{Value, json};
use telnyx_webrtc_credentials::credentials::Holder;

const ADMIN_TOKEN: &str = "9c1e7a2f4e6b8d0c1a3e5f7b9d1c4b1d-admin";

/// The user's tag at Telnyx, as the service computes it.
fn tag_of(user: &str) -> String {
    Holder::supabase_user(user).tag()
}

/// The `device_id`s of a `GET /devices` answer, in its order (`""` for the default).
fn ids(devices: &[Value]) -> Vec<String> {
    devices
        .iter()
        .map(|device| device["device_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn two_devices_of_one_user_get_their_own_sip_usernames_under_one_tag() {
    let telnyx = FakeTelnyx::start().await;
    // Listings by tag take a page per credential: the devices are found across pages.
    telnyx.set_page_cap(1);
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-two");

    let laptop = app.device_credential(&token, "laptop").await;
    let phone = app.device_credential(&token, "phone-7").await;
    let default = app.credential(&token).await;
    app.credential(&app.token_for("user-other")).await;

    let usernames: BTreeSet<&str> = [&laptop, &phone, &default]
        .iter()
        .map(|credential| credential["username"].as_str().unwrap())
        .collect();
    assert_eq!(usernames.len(), 3, "one SIP identity per device");
    let tagged = telnyx.tagged(&tag_of("user-two"));
    let mut names: Vec<&str> = tagged.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "supabase:user-two",
            "supabase:user-two:laptop",
            "supabase:user-two:phone-7"
        ]
    );
    assert_eq!(telnyx.tagged(&tag_of("user-other")).len(), 1);
    assert_ne!(tag_of("user-two"), tag_of("user-other"));
    assert_eq!(
        telnyx
            .named("supabase:user-two:laptop")
            .unwrap()
            .sip_username,
        laptop["username"]
    );

    let before = telnyx.total_requests();
    let devices = app.devices(&token).await;
    assert_eq!(ids(&devices), ["laptop", "phone-7", ""], "oldest first");
    let seen = telnyx.seen();
    let listings: Vec<_> = seen[before..]
        .iter()
        .filter(|seen| seen.query.get("filter[tag]") == Some(&tag_of("user-two")))
        .collect();
    assert_eq!(listings.len(), 3, "three pages of one: {listings:?}");
    for (device, credential) in devices.iter().zip([&laptop, &phone, &default]) {
        assert_eq!(device["sip_username"], credential["username"]);
        let stored = telnyx
            .credentials()
            .into_iter()
            .find(|stored| stored.sip_username == credential["username"])
            .unwrap();
        assert!(device["created_at"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(
            device["expires_at"].as_u64().unwrap(),
            stored.expires_at_secs().unwrap() * 1000
        );
        assert!(device["last_issued_at"].as_u64().unwrap() > 1_700_000_000_000);
        let fields: BTreeSet<&str> = device
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from([
                "device_id",
                "sip_username",
                "created_at",
                "expires_at",
                "last_issued_at"
            ])
        );
        assert!(!device.to_string().contains(&stored.sip_password));
    }
    assert_eq!(devices[2]["device_id"], Value::Null);
    let text = serde_json::to_string(&devices).unwrap();
    for minted in telnyx.minted() {
        assert!(!text.contains(&minted), "a login token in GET /devices");
    }
    // Another user sees their own alone.
    let other = app.devices(&app.token_for("user-other")).await;
    assert_eq!(ids(&other), [""]);
}

#[tokio::test]
async fn a_new_device_past_the_cap_evicts_the_least_recently_issued_one_at_telnyx() {
    let telnyx = FakeTelnyx::start().await;
    let (mut service, address, token) = serve_with_json_logs(
        &telnyx,
        &[
            ("MAX_DEVICES_PER_USER", "2"),
            ("RATE_LIMIT_PER_USER", "off"),
        ],
        "user-cap",
    )
    .await;
    let client = reqwest::Client::new();
    let get = |device: &'static str| {
        let request = client
            .get(format!("{address}/credentials?device_id={device}"))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "the user gets no error");
            let body: Value = response.json().await.unwrap();
            body["credential"]["username"].as_str().unwrap().to_owned()
        }
    };
    let a = get("a").await;
    let b = get("b").await;
    get("a").await; // a is now the more recent
    let c = get("c").await;

    let names: BTreeSet<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "supabase:user-cap:a".to_owned(),
            "supabase:user-cap:c".to_owned()
        ]),
        "b, least recently issued, was deleted at Telnyx"
    );
    assert_eq!(telnyx.requests("delete"), 1);
    assert_eq!(get("a").await, a, "a keeps its credential");
    assert_eq!(get("c").await, c);
    // b comes back as a new device, with a new credential, and evicts the older of a and c.
    let b_again = get("b").await;
    assert_ne!(b_again, b);
    let names: BTreeSet<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "supabase:user-cap:b".to_owned(),
            "supabase:user-cap:c".to_owned()
        ])
    );

    let metrics = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("devices_evicted_total 2"), "{metrics}");
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();
    let evicted: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["audit"] == "device_evicted")
        .collect();
    assert_eq!(evicted.len(), 2, "{logs}");
    assert_eq!(evicted[0]["device_id"], "b");
    assert_eq!(evicted[0]["sip_username"], b.as_str());
    assert_eq!(evicted[0]["user_id"], "user-cap");
    assert_eq!(evicted[0]["max_devices"], 2);
    assert_eq!(evicted[1]["device_id"], "a");
}

#[tokio::test]
async fn the_default_credential_is_no_device_and_devices_of_unknown_order_go_by_telnyxs_dates() {
    let telnyx = FakeTelnyx::start().await;
    let tag = tag_of("user-dates");
    // Made by another replica: this one has no record of their issues.
    telnyx.insert_tagged("supabase:user-dates:old", &tag, "2026-01-01T00:00:00");
    telnyx.insert_tagged("supabase:user-dates:new", &tag, "2026-03-01T00:00:00");
    let app = TestApp::per_user(&telnyx, &[("MAX_DEVICES_PER_USER", "2")]).await;
    let token = app.token_for("user-dates");

    let before = telnyx.requests("list");
    app.credential(&token).await;
    assert_eq!(
        telnyx.credentials().len(),
        3,
        "the default credential is no device"
    );
    assert_eq!(
        telnyx.requests("list") - before,
        2,
        "a request without device_id costs what it did before devices (list, create, list)"
    );

    app.device_credential(&token, "third").await;
    let names: BTreeSet<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "supabase:user-dates".to_owned(),
            "supabase:user-dates:new".to_owned(),
            "supabase:user-dates:third".to_owned(),
        ]),
        "the device Telnyx dates oldest made room"
    );
}

#[tokio::test]
async fn deleting_one_device_leaves_the_others_working_and_no_parameter_deletes_them_all() {
    let telnyx = FakeTelnyx::start().await;
    // A default credential made before tags: found by its name.
    let legacy = telnyx.insert("supabase:user-del", "2026-01-01T00:00:00");
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-del");
    let a = app.device_credential(&token, "a").await;
    let b = app.device_credential(&token, "b").await;
    let default = app.credential(&token).await;
    assert_eq!(default["username"], legacy.sip_username);
    assert_eq!(ids(&app.devices(&token).await), ["", "a", "b"]);

    app.delete_device(&token, "a").await;
    let names: BTreeSet<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "supabase:user-del".to_owned(),
            "supabase:user-del:b".to_owned()
        ])
    );
    let before = telnyx.requests("token");
    assert_eq!(
        app.device_credential(&token, "b").await["login_token"],
        b["login_token"]
    );
    assert_eq!(
        telnyx.requests("token"),
        before,
        "b's cached token still serves"
    );
    assert_eq!(ids(&app.devices(&token).await), ["", "b"]);
    let a_again = app.device_credential(&token, "a").await;
    assert_ne!(
        a_again["username"], a["username"],
        "signed out: a new credential"
    );

    let response = app.delete_credentials(&token).await;
    assert_eq!(response.status(), 204);
    assert!(
        telnyx.credentials().is_empty(),
        "{:?}",
        telnyx.credentials()
    );
    assert!(app.devices(&token).await.is_empty());
    let fresh = app.device_credential(&token, "b").await;
    assert_ne!(
        fresh["username"], b["username"],
        "b's cached token went too"
    );
}

#[tokio::test]
async fn invalid_device_ids_get_400_before_any_telnyx_call() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-invalid");
    let long = "x".repeat(65);
    let invalid = [
        "",
        long.as_str(),
        "a%20b",
        "a:b",
        "%C3%A9",
        "a.b",
        "a%2Fb",
        "ok&device_id=twice",
    ];
    for method in [Method::GET, Method::POST, Method::DELETE] {
        for device in invalid {
            let path = format!("/credentials?device_id={device}");
            let response = app.request(method.clone(), &path, Some(&token)).await;
            let (status, code) = status_and_code(response).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "invalid_device_id"),
                "{method} {path}"
            );
        }
    }
    assert_eq!(telnyx.total_requests(), 0);
    // The token is checked first: without one, a 401 says what to do.
    let response = app
        .request(Method::GET, "/credentials?device_id=a:b", None)
        .await;
    assert_eq!(
        status_and_code(response).await,
        (401, "missing_token".into())
    );
    // Other parameters are no concern of ours.
    let path = "/credentials?device_id=4c8e6a1e-0b7c-4a55-9d7e-3f1f2a9c0d11&utm_source=x";
    assert_eq!(
        app.request(Method::GET, path, Some(&token)).await.status(),
        200
    );
}

#[tokio::test]
async fn rate_limits_stay_per_user_whatever_the_device_ids() {
    let telnyx = FakeTelnyx::start().await;
    let mut env = telnyx.env();
    env.push(("RATE_LIMIT_PER_USER", "3/h,burst=3".into()));
    let app = TestApp::spawn_with(Options {
        env,
        ..Options::default()
    })
    .await;
    let token = app.token_for("user-limited");
    for device in ["d1", "d2", "d3"] {
        app.device_credential(&token, device).await;
    }
    let response = app
        .request(Method::GET, "/credentials?device_id=d4", Some(&token))
        .await;
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        status_and_code(response).await,
        (429, "rate_limited".into())
    );
    let response = app.request(Method::GET, "/devices", Some(&token)).await;
    assert_eq!(
        status_and_code(response).await,
        (429, "rate_limited".into())
    );
    app.device_credential(&app.token_for("user-else"), "d4")
        .await;
}

#[tokio::test]
async fn the_admin_route_is_absent_without_its_token_and_answers_only_to_it() {
    let telnyx = FakeTelnyx::start().await;
    let without = TestApp::per_user(&telnyx, &[]).await;
    let response = without
        .request(
            Method::GET,
            "/admin/users/user-admin/devices",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status_and_code(response).await, (404, "not_found".into()));

    let (mut service, address, token) =
        serve_with_json_logs(&telnyx, &[("ADMIN_API_TOKEN", ADMIN_TOKEN)], "user-admin").await;
    let client = reqwest::Client::new();
    for device in ["laptop", "phone"] {
        let response = client
            .get(format!("{address}/credentials?device_id={device}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let admin = |bearer: Option<String>, user: &str| {
        let mut request = client.get(format!("{address}/admin/users/{user}/devices"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    let wrong = format!("{ADMIN_TOKEN}x");
    for bearer in [
        None,
        Some(wrong),
        Some(token.clone()),
        Some(ADMIN_TOKEN[..32].to_owned()),
    ] {
        let response = admin(bearer.clone(), "user-admin").await.unwrap();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            status_and_code(response).await,
            (401, "invalid_admin_token".into()),
            "{bearer:?}"
        );
    }
    let response = admin(Some(ADMIN_TOKEN.into()), "user-admin").await.unwrap();
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    let own: Value = client
        .get(format!("{address}/devices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, own, "the same list the user sees");
    let devices = listed["devices"].as_array().unwrap();
    assert_eq!(ids(devices), ["laptop", "phone"]);
    for (device, name) in devices.iter().zip(["laptop", "phone"]) {
        let stored = telnyx
            .named(&format!("supabase:user-admin:{name}"))
            .unwrap();
        assert_eq!(device["sip_username"], stored.sip_username);
    }
    let nobody = admin(Some(ADMIN_TOKEN.into()), "user-nobody")
        .await
        .unwrap();
    assert_eq!(
        nobody.json::<Value>().await.unwrap(),
        json!({"devices": []})
    );
    let colon = admin(Some(ADMIN_TOKEN.into()), "user-admin%3Alaptop")
        .await
        .unwrap();
    assert_eq!(
        status_and_code(colon).await,
        (400, "invalid_user_id".into())
    );
    let post = client
        .post(format!("{address}/admin/users/user-admin/devices"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(post.headers()[header::ALLOW], "GET");
    assert_eq!(
        status_and_code(post).await,
        (405, "method_not_allowed".into())
    );

    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();
    assert!(
        !logs.contains(ADMIN_TOKEN),
        "the admin token reached the logs"
    );
    let lookups: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["audit"] == "admin_devices_listed")
        .collect();
    assert_eq!(lookups.len(), 2, "one audit line per lookup: {logs}");
    assert_eq!(lookups[0]["subject_user_id"], "user-admin");
    assert_eq!(lookups[0]["devices"], 2);
    assert_eq!(lookups[1]["subject_user_id"], "user-nobody");
    let refused = logs
        .lines()
        .filter(|line| line.contains("\"code\":\"invalid_admin_token\""))
        .count();
    assert_eq!(refused, 4, "{logs}");
}

#[tokio::test]
async fn a_device_issued_on_another_replica_has_no_last_issue_here_without_redis() {
    let telnyx = FakeTelnyx::start().await;
    let a = TestApp::per_user(&telnyx, &[]).await;
    let b = TestApp::per_user(&telnyx, &[]).await;
    a.device_credential(&a.token_for("user-two-replicas"), "laptop")
        .await;
    let seen_by_a = a.devices(&a.token_for("user-two-replicas")).await;
    let seen_by_b = b.devices(&b.token_for("user-two-replicas")).await;
    assert!(seen_by_a[0]["last_issued_at"].is_u64());
    assert_eq!(seen_by_b[0]["last_issued_at"], Value::Null);
    assert_eq!(seen_by_b[0]["sip_username"], seen_by_a[0]["sip_username"]);
}

#[tokio::test]
async fn a_failing_telnyx_refuses_a_new_device_and_its_listing_but_serves_a_known_one() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-down");
    let known = app.device_credential(&token, "known").await;
    telnyx.set_behaviour(Behaviour::Fail {
        status: 500,
        retry_after: None,
        times: usize::MAX,
    });
    assert_eq!(app.device_credential(&token, "known").await, known);
    let response = app
        .request(Method::GET, "/credentials?device_id=new", Some(&token))
        .await;
    assert_eq!(
        status_and_code(response).await,
        (503, "telnyx_unavailable".into())
    );
    let response = app.request(Method::GET, "/devices", Some(&token)).await;
    assert_eq!(
        status_and_code(response).await,
        (503, "telnyx_unavailable".into())
    );
}

#[tokio::test]
async fn static_mode_ignores_device_ids_and_has_no_devices_to_list() {
    let mut env = vec![("ADMIN_API_TOKEN", ADMIN_TOKEN.to_owned())];
    env.push(("RATE_LIMIT_PER_USER", "off".into()));
    let app = TestApp::spawn_with(Options {
        env,
        ..Options::default()
    })
    .await;
    let token = app.token_for("user-static");
    let one = app.device_credential(&token, "laptop").await;
    let other = app.device_credential(&token, "phone").await;
    assert_eq!(one["username"], SIP_USERNAME);
    assert_eq!(other["username"], SIP_USERNAME);
    let response = app
        .request(
            Method::GET,
            "/credentials?device_id=no%20good",
            Some(&token),
        )
        .await;
    assert_eq!(
        status_and_code(response).await,
        (400, "invalid_device_id".into())
    );

    for method in [Method::GET, Method::POST, Method::DELETE] {
        let response = app.request(method.clone(), "/devices", Some(&token)).await;
        assert_eq!(response.headers()[header::ALLOW], "", "{method}");
        let (status, body) = error_body(response).await;
        assert_eq!(
            (status, &body["code"]),
            (405, &json!("no_devices_in_static_mode"))
        );
        assert!(
            body["error"].as_str().unwrap().contains("static mode"),
            "{body}"
        );
    }
    let response = app
        .request(
            Method::GET,
            "/admin/users/user-static/devices",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status_and_code(response).await, (404, "not_found".into()));
}

#[tokio::test]
async fn devices_answers_get_alone() {
    let telnyx = FakeTelnyx::start().await;
    let app = TestApp::per_user(&telnyx, &[]).await;
    let token = app.token_for("user-methods");
    for method in [Method::POST, Method::DELETE, Method::PUT, Method::HEAD] {
        let response = app.request(method.clone(), "/devices", Some(&token)).await;
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()[header::ALLOW], "GET");
    }
    let response = app.request(Method::GET, "/devices", None).await;
    assert_eq!(
        status_and_code(response).await,
        (401, "missing_token".into())
    );
    assert_eq!(telnyx.total_requests(), 0);
}
