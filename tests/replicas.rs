//! Two replicas and one real `redis-server` (`REDIS_URL`): shared rate limits, session check
//! answers, the devices' last issues and per_user login tokens, credentials, single flight and
//! revocation; what each replica falls back to when Redis is stopped or frozen, sharing again
//! once it is back, and what Redis holds. Every wait is bounded; nothing times how fast.

mod common;

use std::time::Duration;

use common::process::{self, Process};
use common::redis::RedisServer;
use common::telnyx::{Behaviour, FakeTelnyx, TELNYX_API_KEY};
use common::*;
use futures_util::future::join_all;
use reqwest::header;
use serde_json::{Value, json};

fn env(redis: &RedisServer, pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("REDIS_URL", redis.url())];
    env.extend(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// A machine busy with other builds can take more than the default 50 ms to answer a command
/// (or, right after start-up, to connect): the replica would go on alone, as it does when
/// Redis is away, and a test about sharing would test the fallback instead.
const PATIENT_REDIS: (&str, &str) = ("REDIS_COMMAND_TIMEOUT_MS", "1000");

/// A per_user replica's environment: Redis (patient), the Telnyx stand-in, no per-user limit
/// (these tests are about tokens), then `pairs`.
fn per_user_env(
    redis: &RedisServer,
    telnyx: &FakeTelnyx,
    pairs: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![("REDIS_URL", redis.url())];
    env.extend(telnyx.env());
    env.push(("RATE_LIMIT_PER_USER", "off".into()));
    env.push((PATIENT_REDIS.0, PATIENT_REDIS.1.into()));
    env.extend(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

async fn replica(supabase: &FakeSupabase, env: Vec<(&'static str, String)>) -> TestApp {
    TestApp::spawn_with(Options {
        env,
        supabase: Some(supabase.clone()),
        ..Options::default()
    })
    .await
}

/// A signed-in user's HS256 token, with its own `sub` and session.
fn token(issuer: &str, user: &str) -> String {
    let mut claims = user_claims(issuer);
    claims["sub"] = json!(user);
    claims["session_id"] = json!(format!("session-of-{user}"));
    sign_hs256(&claims)
}

/// The status and `Retry-After` of each answer.
async fn answers(responses: Vec<reqwest::Response>) -> Vec<(u16, Option<u64>)> {
    responses
        .into_iter()
        .map(|response| {
            let wait = response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|value| value.to_str().unwrap().parse().unwrap());
            (response.status().as_u16(), wait)
        })
        .collect()
}

/// `count` requests with `token`, taking turns between `apps`.
async fn alternate(apps: &[&TestApp], token: &str, count: usize) -> Vec<(u16, Option<u64>)> {
    let mut responses = Vec::new();
    for request in 0..count {
        responses.push(apps[request % apps.len()].get_credentials(token).await);
    }
    answers(responses).await
}

fn ok_count(answers: &[(u16, Option<u64>)]) -> usize {
    answers.iter().filter(|(status, _)| *status == 200).count()
}

/// The value of `redis_commands_total{outcome=…}` in a `/metrics` text.
fn redis_commands(metrics: &str, outcome: &str) -> u64 {
    let series = format!("redis_commands_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_user_limited_to_n_gets_n_through_alternating_replicas_as_one_replica_would() {
    let redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let limit = [("RATE_LIMIT_PER_USER", "5/h,burst=5")];
    let a = replica(&supabase, env(&redis, &limit)).await;
    let b = replica(&supabase, env(&redis, &limit)).await;
    let alone = replica(
        &supabase,
        limit.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    )
    .await;

    let shared = alternate(&[&a, &b], &token(&supabase.issuer(), "ada"), 12).await;
    assert_eq!(ok_count(&shared), 5, "{shared:?}");
    assert!(shared[..5].iter().all(|(status, _)| *status == 200));
    // Five an hour is one every 720 s, as governor counts it on one replica.
    let single = alternate(&[&alone], &token(&supabase.issuer(), "ada"), 12).await;
    assert_eq!(shared, single, "the same limit means the same answers");
    assert_eq!(single[5], (429, Some(720)));

    let per_address = [
        ("RATE_LIMIT_PER_USER", "off"),
        ("RATE_LIMIT_PER_IP", "4/h,burst=4"),
    ];
    let c = replica(&supabase, env(&redis, &per_address)).await;
    let d = replica(&supabase, env(&redis, &per_address)).await;
    let mut responses = Vec::new();
    for user in 0..8 {
        let app = if user % 2 == 0 { &c } else { &d };
        let token = token(&supabase.issuer(), &format!("user-{user}"));
        responses.push(app.get_credentials(&token).await);
    }
    let by_address = answers(responses).await;
    assert_eq!(ok_count(&by_address), 4, "{by_address:?}");
    assert_eq!(by_address[4], (429, Some(900)));
}

#[tokio::test]
async fn a_session_one_replica_saw_revoked_is_refused_by_the_other_without_asking() {
    let redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let checking = [
        ("SUPABASE_VERIFY_SESSION", "true"),
        ("SUPABASE_ANON_KEY", ANON_KEY),
        ("SESSION_CHECK_CACHE_SECS", "1"),
        ("RATE_LIMIT_PER_USER", "off"),
    ];
    let a = replica(&supabase, env(&redis, &checking)).await;
    let b = replica(&supabase, env(&redis, &checking)).await;
    // Supabase's GET /auth/v1/user wants a UUID `sub` (400 bad_jwt otherwise).
    let ada_id = uuid_for("ada");
    let ada = token(&supabase.issuer(), &ada_id);

    assert_eq!(a.status_for(&ada).await, 200);
    assert_eq!(b.status_for(&ada).await, 200);
    assert_eq!(supabase.user_calls(), 1, "B used the answer A got");

    supabase.revoke_session(&format!("session-of-{ada_id}"));
    tokio::time::sleep(Duration::from_millis(1_200)).await; // past SESSION_CHECK_CACHE_SECS
    assert_eq!(
        status_and_code(a.get_credentials(&ada).await).await,
        (401, "session_revoked".into())
    );
    assert_eq!(supabase.user_calls(), 2);
    for app in [&b, &a, &b] {
        assert_eq!(
            status_and_code(app.get_credentials(&ada).await).await,
            (401, "session_revoked".into())
        );
    }
    assert_eq!(
        supabase.user_calls(),
        2,
        "the revocation is remembered, and shared"
    );
}

/// The login token of an answer.
fn login_token(credential: &Value) -> &str {
    credential["login_token"].as_str().expect("a login token")
}

#[tokio::test]
async fn a_token_minted_by_one_replica_is_served_by_the_other_from_one_create_and_one_mint() {
    let PerUserPair {
        redis,
        supabase,
        telnyx,
        a,
        b,
    } = PerUserPair::start().await;
    let ada = token(&supabase.issuer(), "ada");

    let on_a = a.credential(&ada).await;
    let on_b = b.credential(&ada).await;
    assert_eq!(login_token(&on_a), login_token(&on_b));
    assert_eq!(on_a["username"], on_b["username"]);
    assert_eq!(on_a["expires_at"], on_b["expires_at"]);
    assert_eq!(telnyx.requests("create"), 1);
    assert_eq!(telnyx.minted(), [login_token(&on_a)]);

    // Both have it in memory now: no Telnyx call, whichever answers.
    let calls = telnyx.total_requests();
    for app in [&a, &b, &a, &b] {
        assert_eq!(login_token(&app.credential(&ada).await), login_token(&on_a));
    }
    assert_eq!(telnyx.total_requests(), calls);
    // A replica started later finds it in Redis too.
    let c = replica(&supabase, per_user_env(&redis, &telnyx, &[])).await;
    assert_eq!(login_token(&c.credential(&ada).await), login_token(&on_a));
    assert_eq!(telnyx.total_requests(), calls);
}

#[tokio::test]
async fn twenty_concurrent_first_requests_across_two_replicas_make_one_credential_and_one_token() {
    let redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let telnyx = FakeTelnyx::start().await;
    // A propagation wait keeps the first sequence going while the others arrive: the replica
    // without the lease waits for the token the other stores.
    let slow = [("TELNYX_CREDENTIAL_PROPAGATION_SECS", "1")];
    let a = replica(&supabase, per_user_env(&redis, &telnyx, &slow)).await;
    let b = replica(&supabase, per_user_env(&redis, &telnyx, &slow)).await;
    let grace = token(&supabase.issuer(), "grace");

    let answers = join_all((0..20).map(|n| {
        let app = if n % 2 == 0 { &a } else { &b };
        app.credential(&grace)
    }))
    .await;
    assert_eq!(telnyx.requests("create"), 1);
    assert_eq!(telnyx.requests("token"), 1);
    assert_eq!(telnyx.credentials().len(), 1);
    let minted = telnyx.minted();
    for answer in &answers {
        assert_eq!(login_token(answer), minted[0]);
    }
}

#[tokio::test]
async fn two_replicas_creating_at_once_keep_the_credential_recorded_first_in_redis() {
    let PerUserPair {
        redis,
        supabase,
        telnyx,
        a,
        b,
    } = PerUserPair::start().await;
    let grace = token(&supabase.issuer(), "grace");

    // A's create waits at Telnyx; meanwhile A's lease lapses (taken away here, as a Redis
    // that lost it would), so B creates one too, records it first and serves it.
    let gate = telnyx.hold_requests("create", 1);
    let on_a = get_in_background(&a.address, &grace);
    until_telnyx_has(&telnyx, "create", "A's create never reached Telnyx").await;
    let mut connection = redis.connection().await;
    for entry in redis.contents().await {
        if entry.key.starts_with("twc:v1:lease:") {
            let _: i64 = ::redis::cmd("DEL")
                .arg(&entry.key)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    }
    let on_b = b.credential(&grace).await;
    assert_eq!(telnyx.credentials().len(), 1);

    // Both are created within the same second, and listing fails for A from now on: neither
    // `created_at` nor a list can settle it, the record in Redis does.
    telnyx.set_behaviour(Behaviour::FailOn {
        endpoint: "list",
        status: 503,
        retry_after: None,
        times: 100,
    });
    gate.open();
    let (status, body) = on_a.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credential"]["username"], on_b["username"]);
    assert_eq!(telnyx.requests("create"), 2);
    let survivors = telnyx.credentials();
    assert_eq!(
        survivors.len(),
        1,
        "A deleted the one it created: {survivors:?}"
    );
    assert_eq!(survivors[0].sip_username, on_b["username"]);
}

#[tokio::test]
async fn a_delete_on_one_replica_then_a_request_on_the_other_gives_a_new_credential() {
    let PerUserPair {
        redis: _redis, // kept running until the test ends
        supabase,
        telnyx,
        a,
        b,
    } = PerUserPair::start().await;
    let ada = token(&supabase.issuer(), "ada");
    let before = a.credential(&ada).await;
    assert_eq!(login_token(&b.credential(&ada).await), login_token(&before));
    let old = telnyx.credentials();
    assert_eq!(old.len(), 1);

    assert_eq!(b.delete_credentials(&ada).await.status(), 204);
    assert!(telnyx.credentials().is_empty(), "deleted at Telnyx");
    let after = a.credential(&ada).await;
    assert_ne!(login_token(&after), login_token(&before));
    assert_ne!(after["username"], before["username"]);
    let now = telnyx.credentials();
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].id, old[0].id);
    assert_eq!(after["username"], now[0].sip_username);
    assert_eq!(login_token(&b.credential(&ada).await), login_token(&after));
    assert_eq!(telnyx.requests("create"), 2);
    assert_eq!(telnyx.requests("token"), 2);
}

#[tokio::test]
async fn a_mint_that_began_before_a_delete_on_the_other_replica_never_has_its_token_served() {
    let PerUserPair {
        redis: _redis, // kept running until the test ends
        supabase,
        telnyx,
        a,
        b,
    } = PerUserPair::start().await;
    let ada = token(&supabase.issuer(), "ada");

    // A's first mint is done at Telnyx, and its answer held back until B's DELETE has answered.
    let gate = telnyx.hold_answers("token", 1);
    let on_a = get_in_background(&a.address, &ada);
    until_telnyx_has(&telnyx, "token", "A's mint never reached Telnyx").await;
    let doomed = telnyx.minted()[0].clone();
    let deleted = telnyx.credentials();
    assert_eq!(b.delete_credentials(&ada).await.status(), 204);
    assert!(telnyx.credentials().is_empty());
    gate.open();

    let (status, body) = on_a.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let served = login_token(&body["credential"]).to_owned();
    assert_ne!(
        served, doomed,
        "the token of the deleted credential was served"
    );
    assert_eq!(telnyx.minted().last().unwrap(), &served);
    let live = telnyx.credentials();
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, deleted[0].id);
    assert_eq!(body["credential"]["username"], live[0].sip_username);
    for app in [&a, &b] {
        let credential = app.credential(&ada).await;
        assert_eq!(login_token(&credential), served);
    }
}

#[tokio::test]
async fn a_delete_while_redis_is_frozen_reaches_the_other_replica_once_redis_answers() {
    let PerUserPair {
        redis,
        supabase,
        telnyx,
        a,
        b,
    } = PerUserPair::start().await;
    let ada = token(&supabase.issuer(), "ada");
    let before = a.credential(&ada).await;
    assert_eq!(login_token(&b.credential(&ada).await), login_token(&before));

    redis.pause();
    assert_eq!(b.delete_credentials(&ada).await.status(), 204);
    assert!(
        telnyx.credentials().is_empty(),
        "deleted at Telnyx all the same"
    );
    // What a frozen Redis costs: A cannot hear of it, and serves its cached token.
    assert_eq!(login_token(&a.credential(&ada).await), login_token(&before));

    redis.resume();
    let mut after = before.clone();
    for attempt in 0.. {
        assert!(attempt < 60, "the revocation never reached A");
        after = a.credential(&ada).await;
        if login_token(&after) != login_token(&before) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_ne!(after["username"], before["username"]);
    let live = telnyx.credentials();
    assert_eq!(live.len(), 1);
    assert_eq!(after["username"], live[0].sip_username);
    assert_eq!(login_token(&b.credential(&ada).await), login_token(&after));
}

/// A replica as a process of its own, with JSON logs.
/// Two per_user replicas (in this test process), on one Redis and one Telnyx stand-in.
struct PerUserPair {
    redis: RedisServer,
    supabase: FakeSupabase,
    telnyx: FakeTelnyx,
    a: TestApp,
    b: TestApp,
}

impl PerUserPair {
    async fn start() -> Self {
        let redis = RedisServer::start().await;
        let supabase = FakeSupabase::start(&[]).await;
        let telnyx = FakeTelnyx::start().await;
        let a = replica(&supabase, per_user_env(&redis, &telnyx, &[])).await;
        let b = replica(&supabase, per_user_env(&redis, &telnyx, &[])).await;
        Self {
            redis,
            supabase,
            telnyx,
            a,
            b,
        }
    }
}

/// `GET /credentials` on `address` in a task of its own, for a request Telnyx holds up.
fn get_in_background(
    address: &str,
    token: &str,
) -> tokio::task::JoinHandle<(reqwest::StatusCode, Value)> {
    let (address, token) = (address.to_owned(), token.to_owned());
    tokio::spawn(async move {
        let response = reqwest::Client::new()
            .get(format!("{address}/credentials"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    })
}

/// Waits (5 s at most) for Telnyx's first request to `endpoint`; `never` says what did not happen.
async fn until_telnyx_has(telnyx: &FakeTelnyx, endpoint: &str, never: &str) {
    for _ in 0..200 {
        if telnyx.requests(endpoint) >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{never}");
}

struct Replica {
    process: Process,
    address: String,
    client: reqwest::Client,
}

impl Replica {
    /// In per_user mode against `telnyx`, with `extra` variables.
    async fn start(
        supabase: &FakeSupabase,
        redis: &RedisServer,
        telnyx: &FakeTelnyx,
        extra: &[(&'static str, &str)],
    ) -> Self {
        let mut env = test_env(&supabase.url);
        env.extend([
            ("REDIS_URL", redis.url()),
            ("LOG_FORMAT", "json".to_owned()),
            (PATIENT_REDIS.0, PATIENT_REDIS.1.to_owned()),
        ]);
        env.extend(telnyx.env());
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let process = Process::start(&["serve"], &env);
        let address = process.address().await;
        process
            .wait_for("a connected line", |line| {
                line.contains("connected to Redis").then_some(())
            })
            .await;
        let client = reqwest::Client::builder()
            // Bounds a hang; a replica falling back answers in milliseconds.
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self {
            process,
            address,
            client,
        }
    }

    async fn get_credentials(&self, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/credentials", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("the replica answers")
    }

    /// The credential of a `GET /credentials` that must succeed.
    async fn credential(&self, token: &str) -> Value {
        let response = self.get_credentials(token).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["credential"].clone()
    }

    async fn metrics(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.address));
        response.send().await.unwrap().text().await.unwrap()
    }

    /// How many log lines carry `message`.
    fn lines_saying(&self, message: &str) -> usize {
        self.process
            .text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| {
                event["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .count()
    }
}

async fn alternate_processes(
    replicas: &[&Replica],
    token: &str,
    count: usize,
) -> Vec<(u16, Option<u64>)> {
    let mut responses = Vec::new();
    for request in 0..count {
        responses.push(
            replicas[request % replicas.len()]
                .get_credentials(token)
                .await,
        );
    }
    answers(responses).await
}

const WENT_AWAY: &str = "Redis is unavailable";
const CAME_BACK: &str = "Redis answers again";

/// How many login tokens Telnyx minted for `user`.
fn mints_for(telnyx: &FakeTelnyx, user: &str) -> usize {
    telnyx.minted_for(&format!("supabase:{user}")).len()
}

#[tokio::test]
async fn with_redis_stopped_both_processes_keep_serving_on_their_own_then_share_again() {
    let mut redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let telnyx = FakeTelnyx::start().await;
    let limit = [("RATE_LIMIT_PER_USER", "3/h,burst=3")];
    let a = Replica::start(&supabase, &redis, &telnyx, &limit).await;
    let b = Replica::start(&supabase, &redis, &telnyx, &limit).await;
    let replicas = [&a, &b];
    let issuer = supabase.issuer();

    let shared = alternate_processes(&replicas, &token(&issuer, "ada"), 6).await;
    assert_eq!(ok_count(&shared), 3, "one limit for both: {shared:?}");
    assert_eq!(mints_for(&telnyx, "ada"), 1, "one token for both");
    let hopper = token(&issuer, "hopper");
    let cached = a.credential(&hopper).await;
    assert_eq!(
        login_token(&b.credential(&hopper).await),
        login_token(&cached)
    );

    redis.stop();
    let alone = alternate_processes(&replicas, &token(&issuer, "grace"), 10).await;
    assert_eq!(
        ok_count(&alone),
        6,
        "each replica counts on its own, three each: {alone:?}"
    );
    assert_eq!(mints_for(&telnyx, "grace"), 2, "each replica mints its own");
    for replica in replicas {
        // What each had in memory is served as it was.
        assert_eq!(
            login_token(&replica.credential(&hopper).await),
            login_token(&cached)
        );
        replica
            .process
            .wait_for("the warning that Redis went away", |line| {
                line.contains(WENT_AWAY).then_some(())
            })
            .await;
    }
    // Past a few cool-downs, so that probes fail too: still one line each.
    for round in 0..8 {
        for replica in replicas {
            let token = token(&issuer, &format!("while-away-{round}"));
            assert_eq!(replica.get_credentials(&token).await.status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for replica in replicas {
        assert_eq!(
            replica.lines_saying(WENT_AWAY),
            1,
            "{}",
            replica.process.text()
        );
        let metrics = replica.metrics().await;
        assert!(redis_commands(&metrics, "skipped") > 0, "{metrics}");
        assert!(redis_commands(&metrics, "error") > 0, "{metrics}");
    }

    redis.restart().await;
    for round in 0.. {
        assert!(round < 60, "no recovery line within 15 s");
        for replica in replicas {
            let token = token(&issuer, &format!("after-restart-{round}"));
            assert_eq!(replica.get_credentials(&token).await.status(), 200);
        }
        if replicas
            .iter()
            .all(|replica| replica.lines_saying(CAME_BACK) == 1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let again = alternate_processes(&replicas, &token(&issuer, "katherine"), 6).await;
    assert_eq!(ok_count(&again), 3, "one limit for both again: {again:?}");
    assert_eq!(
        mints_for(&telnyx, "katherine"),
        1,
        "one token for both again"
    );
    for replica in replicas {
        assert_eq!(replica.lines_saying(WENT_AWAY), 1);
        assert_eq!(replica.lines_saying(CAME_BACK), 1);
    }
}

#[tokio::test]
async fn restarting_both_processes_mints_nothing_new() {
    let redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let telnyx = FakeTelnyx::start().await;
    let off = [("RATE_LIMIT_PER_USER", "off")];
    let ada = token(&supabase.issuer(), "ada");
    let mut first = [
        Replica::start(&supabase, &redis, &telnyx, &off).await,
        Replica::start(&supabase, &redis, &telnyx, &off).await,
    ];
    let minted = first[0].credential(&ada).await;
    assert_eq!(
        login_token(&first[1].credential(&ada).await),
        login_token(&minted)
    );
    for replica in &mut first {
        // As a rollout stops a pod.
        replica.process.signal("-TERM");
        assert_eq!(replica.process.exit_code().await, 0);
    }

    let calls = telnyx.total_requests();
    let second = [
        Replica::start(&supabase, &redis, &telnyx, &off).await,
        Replica::start(&supabase, &redis, &telnyx, &off).await,
    ];
    for replica in &second {
        let credential = replica.credential(&ada).await;
        assert_eq!(login_token(&credential), login_token(&minted));
        assert_eq!(credential["username"], minted["username"]);
    }
    assert_eq!(telnyx.total_requests(), calls, "no Telnyx call at all");
    assert_eq!(telnyx.minted().len(), 1);
}

#[tokio::test]
async fn the_lease_holder_killed_while_telnyx_hangs_hands_over_to_the_other_replica() {
    let redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let telnyx = FakeTelnyx::start().await;
    let mut a = Replica::start(
        &supabase,
        &redis,
        &telnyx,
        &[("RATE_LIMIT_PER_USER", "off")],
    )
    .await;
    let b = replica(&supabase, per_user_env(&redis, &telnyx, &[])).await;
    let ada = token(&supabase.issuer(), "ada");

    telnyx.set_behaviour(Behaviour::Hang);
    let hung = tokio::spawn({
        let (address, ada) = (a.address.clone(), ada.clone());
        async move {
            reqwest::Client::new()
                .get(format!("{address}/credentials"))
                .bearer_auth(ada)
                .send()
                .await
        }
    });
    until_telnyx_has(&telnyx, "list", "A never called Telnyx").await;
    let leases: Vec<_> = redis
        .contents()
        .await
        .into_iter()
        .filter(|entry| entry.key.starts_with("twc:v1:lease:"))
        .collect();
    assert_eq!(leases.len(), 1, "A holds the lease while Telnyx hangs");
    a.process.signal("-KILL");
    assert_eq!(a.process.exit_code().await, -1, "killed");
    assert!(hung.await.unwrap().is_err(), "A never answered");

    telnyx.set_behaviour(Behaviour::Normal);
    // B waits out the lease A can no longer renew or release, then calls Telnyx itself.
    let credential = b.credential(&ada).await;
    assert_eq!(telnyx.requests("create"), 1);
    assert_eq!(telnyx.minted(), [login_token(&credential)]);
    assert_eq!(telnyx.requests("list"), 2, "A's, hung, then B's");
}

#[tokio::test]
async fn a_frozen_redis_costs_a_few_requests_one_timeout_each_then_none() {
    let redis = RedisServer::start().await;
    let app = TestApp::spawn_with(Options {
        env: env(&redis, &[("REDIS_COMMAND_TIMEOUT_MS", "50")]),
        ..Options::default()
    })
    .await;
    let metrics = || async { app.get("/metrics").await.text().await.unwrap() };
    let before = metrics().await;

    redis.pause();
    for user in 0..6 {
        let token = token(&app.issuer(), &format!("frozen-{user}"));
        assert_eq!(app.status_for(&token).await, 200, "request {user}");
    }
    let during = metrics().await;
    let timeouts = redis_commands(&during, "timeout") - redis_commands(&before, "timeout");
    let skipped = redis_commands(&during, "skipped") - redis_commands(&before, "skipped");
    assert!(timeouts >= 3, "{during}");
    assert!(skipped >= 1, "the breaker opened: {during}");

    redis.resume();
    let ok_before = redis_commands(&during, "ok");
    for attempt in 0.. {
        assert!(attempt < 40, "Redis was not used again within 10 s");
        let token = token(&app.issuer(), &format!("thawed-{attempt}"));
        assert_eq!(app.status_for(&token).await, 200);
        if redis_commands(&metrics().await, "ok") > ok_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn redis_holds_no_secret_or_identifier_in_clear_and_every_key_expires() {
    let redis = RedisServer::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let telnyx = FakeTelnyx::start().await;
    let everything = [
        ("SUPABASE_VERIFY_SESSION", "true"),
        ("SUPABASE_ANON_KEY", ANON_KEY),
        ("RATE_LIMIT_PER_IP", "100/min"),
        ("RATE_LIMIT_PER_USER", "100/min"),
    ];
    let a = replica(&supabase, per_user_env(&redis, &telnyx, &everything)).await;
    let b = replica(&supabase, per_user_env(&redis, &telnyx, &everything)).await;
    let ada = "8d2f54a0-6c3b-4a8e-9f1d-2b7c0e5a9d41";
    let ada_token = token(&supabase.issuer(), ada);
    let grace = "2c5ea4c0-4067-11e9-8bad-9b1deb4d3b7d";
    let grace_token = token(&supabase.issuer(), grace);
    let katherine = "5b8a1c3e-9d2f-4e6a-8b7c-1d0e2f3a4b5c";
    let katherine_token = token(&supabase.issuer(), katherine);
    for app in [&a, &b] {
        assert_eq!(app.status_for(&ada_token).await, 200);
        assert_eq!(app.status_for(&katherine_token).await, 200);
    }
    // A revoked credential, and a new one after it: a generation moved on.
    assert_eq!(b.delete_credentials(&katherine_token).await.status(), 204);
    assert_eq!(a.status_for(&katherine_token).await, 200);
    supabase.revoke_session(&format!("session-of-{grace}"));
    assert_eq!(b.status_for(&grace_token).await, 401);

    let stored = redis.contents().await;
    let kinds = [
        "twc:v1:rate:user:",
        "twc:v1:rate:ip:",
        "twc:v1:session:",
        "twc:v1:gen:",
        "twc:v1:token:",
        "twc:v1:credential:",
    ];
    for kind in kinds {
        assert!(
            stored.iter().any(|entry| entry.key.starts_with(kind)),
            "no {kind} key: {stored:?}"
        );
    }
    assert_eq!(
        stored
            .iter()
            .filter(|entry| entry.key.starts_with("twc:v1:token:"))
            .count(),
        2,
        "ada's and katherine's: {stored:?}"
    );
    assert!(
        stored
            .iter()
            .any(|entry| entry.value == "revoked session_not_found"),
        "{stored:?}"
    );
    let mut never_in_redis = vec![
        ada.to_owned(),
        grace.to_owned(),
        katherine.to_owned(),
        format!("session-of-{ada}"),
        "ada@example.com".to_owned(),
        "127.0.0.1".to_owned(),
        JWT_SECRET.to_owned(),
        ANON_KEY.to_owned(),
        TELNYX_API_KEY.to_owned(),
        SIP_PASSWORD.to_owned(),
        "supabase:".to_owned(),
    ];
    for token in [&ada_token, &grace_token, &katherine_token] {
        never_in_redis.extend(token.split('.').map(str::to_owned));
    }
    let minted = telnyx.minted();
    assert_eq!(minted.len(), 3, "ada's, katherine's before and after");
    for login_token in &minted {
        never_in_redis.push(login_token.clone());
        never_in_redis.extend(login_token.split('.').map(str::to_owned));
    }
    for credential in telnyx.credentials() {
        never_in_redis.extend([
            credential.id,
            credential.sip_username,
            credential.sip_password,
        ]);
    }
    for entry in &stored {
        assert!(entry.key.starts_with("twc:v1:"), "{entry:?}");
        assert!(entry.ttl_ms > 0, "every key expires: {entry:?}");
        for secret in &never_in_redis {
            assert!(!entry.holds(secret), "{secret} is in {entry:?}");
        }
    }
}

/// Telnyx's dates say the opposite of how the devices were used: only the record replica A
/// shares tells replica B which of them to evict.
#[tokio::test]
async fn a_device_issued_on_one_replica_is_known_to_the_other_as_recently_used() {
    let redis = RedisServer::start().await;
    let telnyx = FakeTelnyx::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let user = "5a7f1f0e-2b7c-4c1e-8d41-0c6f3b9e2a17";
    let tag = telnyx_webrtc_credentials::credentials::Holder::supabase_user(user).tag();
    let at = |days_from_now: i64| {
        let now = std::time::SystemTime::now();
        let offset = Duration::from_secs(days_from_now.unsigned_abs() * 86_400);
        let time = if days_from_now < 0 {
            now - offset
        } else {
            now + offset
        };
        humantime::format_rfc3339_seconds(time).to_string()
    };
    // Both made a while ago, both with weeks left (no extension moves updated_at).
    let used = telnyx.insert_tagged(&format!("supabase:{user}:used"), &tag, &at(-60));
    let unused = telnyx.insert_tagged(&format!("supabase:{user}:unused"), &tag, &at(-30));
    for credential in [&used, &unused] {
        telnyx.set_expires_at(&credential.id, Some(&at(20)));
    }
    let mut env = env(
        &redis,
        &[
            ("MAX_DEVICES_PER_USER", "2"),
            ("RATE_LIMIT_PER_USER", "off"),
        ],
    );
    env.extend(telnyx.env());
    let a = replica(&supabase, env.clone()).await;
    let b = replica(&supabase, env).await;
    let token = token(&supabase.issuer(), user);

    a.device_credential(&token, "used").await;
    let devices = b.devices(&token).await;
    let last_issued = |devices: &[Value], id: &str| {
        devices
            .iter()
            .find(|device| device["device_id"] == id)
            .map(|device| device["last_issued_at"].clone())
            .unwrap()
    };
    let shared = last_issued(&devices, "used");
    assert!(shared.is_u64(), "B sees A's issue: {devices:?}");
    assert_eq!(last_issued(&a.devices(&token).await, "used"), shared);
    assert_eq!(last_issued(&devices, "unused"), Value::Null);

    b.device_credential(&token, "third").await;
    let mut names: Vec<String> = telnyx.credentials().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("supabase:{user}:third"),
            format!("supabase:{user}:used")
        ],
        "the device A used stays; the one nobody used went"
    );

    let stored = redis.contents().await;
    let devices: Vec<_> = stored
        .iter()
        .filter(|entry| entry.key.starts_with("twc:v1:devices:"))
        .collect();
    assert_eq!(devices.len(), 1, "one hash per user: {stored:?}");
    let idle = 30 * 86_400 * 1000;
    assert!(
        devices[0].ttl_ms > idle - 60_000 && devices[0].ttl_ms <= idle,
        "{:?}",
        devices[0]
    );
    assert_eq!(
        devices[0].value.lines().count(),
        2,
        "used and third: {:?}",
        devices[0]
    );
    for entry in &stored {
        assert!(entry.ttl_ms > 0, "every key expires: {entry:?}");
        for clear in [user, "used", "third", "unused"] {
            assert!(
                !entry.key.contains(clear) && !entry.value.contains(clear),
                "{clear} is in {entry:?}"
            );
        }
    }
}

#[tokio::test]
async fn managed_redis_over_tls_with_a_password_and_what_a_wrong_setting_looks_like() {
    let redis = RedisServer::start_with_tls("s3cr3t-redis-pa55").await;
    let tls = redis.tls();
    let supabase = FakeSupabase::start(&[]).await;
    let start = |url: String, trust_test_ca: bool| {
        let mut env = test_env(&supabase.url);
        env.extend([
            ("REDIS_URL", url),
            ("LOG_FORMAT", "json".to_owned()),
            // The Redis client's own lines too: none may carry the password.
            ("RUST_LOG", "trace".to_owned()),
        ]);
        if trust_test_ca {
            // rustls-native-certs reads the trusted roots from here instead of the system's.
            env.push(("SSL_CERT_FILE", tls.ca_file.display().to_string()));
        }
        Process::start(&["serve"], &env)
    };
    let right = format!("rediss://:{}@127.0.0.1:{}", tls.password, tls.port);
    let wrong_password = format!("rediss://:not-the-password@localhost:{}", tls.port);
    let untrusted = right.clone();
    let replicas = [
        start(right, true),
        start(wrong_password, true),
        start(untrusted, false),
    ];
    let client = reqwest::Client::new();
    let mut said = Vec::new();
    for replica in &replicas {
        let address = replica.address().await;
        let first_word = replica
            .wait_for("a line about Redis", |line| {
                let event: Value = serde_json::from_str(line).ok()?;
                let message = event["message"].as_str()?;
                (message.starts_with("connected to Redis") || message.starts_with(WENT_AWAY)).then(
                    || {
                        (
                            message.to_owned(),
                            event["cause"].as_str().unwrap_or("").to_owned(),
                        )
                    },
                )
            })
            .await;
        let ada = token(&supabase.issuer(), "ada");
        let response = client
            .get(format!("{address}/credentials"))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "served with or without Redis");
        assert!(
            !replica.text().contains("s3cr3t-redis-pa55"),
            "{}",
            replica.text()
        );
        said.push(first_word);
    }
    assert!(said[0].0.starts_with("connected to Redis"), "{said:?}");
    assert!(said[1].0.starts_with(WENT_AWAY), "{said:?}");
    assert!(said[1].1.to_ascii_lowercase().contains("pass"), "{said:?}");
    assert!(said[2].0.starts_with(WENT_AWAY), "{said:?}");
    assert!(
        said[2].1.to_ascii_lowercase().contains("certificate"),
        "{said:?}"
    );
    let stored = redis.contents().await;
    assert_eq!(
        stored.len(),
        1,
        "the one replica that connected counted: {stored:?}"
    );
    assert!(stored[0].key.starts_with("twc:v1:rate:user:"));
}

#[tokio::test]
async fn check_config_shows_redis_url_without_its_password_and_refuses_a_bad_one() {
    let env = |url: &str| {
        let mut env = test_env("https://project-ref.supabase.co");
        env.push(("REDIS_URL", url.to_owned()));
        env
    };
    let (code, stdout, stderr) = process::run(
        &["check-config"],
        &env("rediss://default:s3cr3t-redis-pa55@cache.example.com:6380/1"),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("REDIS_URL              = rediss://default:***@cache.example.com:6380/1"),
        "{stdout}"
    );
    assert!(stdout.contains("REDIS_COMMAND_TIMEOUT_MS = 50"), "{stdout}");

    for bad in [
        "cache.example.com:6379",
        "https://:s3cr3t-redis-pa55@cache.example.com",
        "rediss://:s3cr3t-redis-pa55@cache.example.com/#insecure",
    ] {
        let (code, stdout, stderr) = process::run(&["check-config"], &env(bad)).await;
        assert_eq!(code, 2, "{bad}: {stdout}");
        assert!(stderr.contains("REDIS_URL"), "{bad}: {stderr}");
        assert!(stderr.contains("set it to redis://"), "{bad}: {stderr}");
        assert!(!stderr.contains("s3cr3t-redis-pa55"), "{bad}: {stderr}");
    }
    let (_, stdout, _) = process::run(
        &["check-config"],
        &test_env("https://project-ref.supabase.co"),
    )
    .await;
    assert!(
        stdout.contains("REDIS_URL              = not set"),
        "{stdout}"
    );
}
