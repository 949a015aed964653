//! The verified-token cache serves repeated tokens and never changes an answer: expiry, key
//! revocation and rotation, and refusals all behave as without it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use serde_json::{Value, json};
use telnyx_webrtc_credentials::auth::{TokenRejection, TokenVerifier};
use telnyx_webrtc_credentials::config::{Config, lookup_from};

/// A verifier as the service builds it, against `supabase`, with the keys fetched.
async fn verifier(supabase: &FakeSupabase, extra: &[(&'static str, &str)]) -> TokenVerifier {
    let mut env = test_env(&supabase.url);
    env.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
    env.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    let config =
        Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
    let verifier = TokenVerifier::new(&config.auth);
    assert!(verifier.key_store().unwrap().refresh().await);
    verifier
}

/// A signed-in user's ES256 token, with claim `name` set to `value`.
fn es256_token_with(supabase: &FakeSupabase, name: &str, value: Value) -> String {
    let mut claims = user_claims(&supabase.issuer());
    claims[name] = value;
    keys().es256.sign(&claims)
}

fn hits(verifier: &TokenVerifier) -> u64 {
    verifier.token_cache().unwrap().hits()
}

/// Waits until the wall clock (whole seconds, as JWTs count) has reached `at`.
async fn wait_until(at: u64) {
    while now_secs() < at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_repeated_token_is_answered_from_the_cache() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let verifier = verifier(&supabase, &[]).await;
    for token in [
        keys.es256.sign(&user_claims(&supabase.issuer())),
        sign_hs256(&user_claims(&supabase.issuer())),
    ] {
        let before = hits(&verifier);
        let first = verifier.verify(&token).await.unwrap();
        assert_eq!(hits(&verifier), before, "the first time is checked in full");
        let second = verifier.verify(&token).await.unwrap();
        assert_eq!(hits(&verifier), before + 1);
        assert!(
            Arc::ptr_eq(&first.claims, &second.claims),
            "the same verified claims"
        );
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_exp_passes() {
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let verifier = verifier(&supabase, &[("JWT_LEEWAY_SECS", "0")]).await;
    let exp = now_secs() + 1;
    let token = es256_token_with(&supabase, "exp", json!(exp));
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(hits(&verifier), 1, "cached while valid");
    wait_until(exp + 1).await;
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        TokenRejection::Expired
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_leaves_the_jwks() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256, &keys.rs256]).await;
    let verifier = verifier(&supabase, &[]).await;
    let revoked = keys.es256.sign(&user_claims(&supabase.issuer()));
    let kept = keys.rs256.sign(&user_claims(&supabase.issuer()));
    for token in [&revoked, &revoked, &kept, &kept] {
        verifier.verify(token).await.unwrap();
    }
    assert_eq!(hits(&verifier), 2, "both cached");

    supabase.set_keys(&[&keys.rs256]);
    assert!(verifier.key_store().unwrap().refresh().await);
    assert_eq!(
        verifier.verify(&revoked).await.unwrap_err(),
        TokenRejection::UnknownKeyId
    );
    verifier.verify(&kept).await.unwrap();
    verifier.verify(&kept).await.unwrap();
    assert_eq!(
        hits(&verifier),
        3,
        "the kept key's token was checked in full once after the refresh, then cached again"
    );
}

#[tokio::test]
async fn a_cached_hs256_token_is_refused_once_a_jwks_key_takes_its_kid() {
    // The full check prefers a JWKS key with the token's kid, whose algorithm then decides: a
    // cached answer from before that key existed must not outlive it.
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let verifier = verifier(&supabase, &[]).await;
    let token = sign_hs256(&user_claims(&supabase.issuer())); // kid "legacy-hs256"
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(hits(&verifier), 1);

    let squatter = TestKey::es256("legacy-hs256");
    supabase.set_keys(&[&keys.es256, &squatter]);
    assert!(verifier.key_store().unwrap().refresh().await);
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        TokenRejection::AlgorithmMismatch
    );
}

#[tokio::test]
async fn a_refusal_is_not_remembered() {
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let verifier = verifier(&supabase, &[("JWT_LEEWAY_SECS", "0")]).await;
    let nbf = now_secs() + 1;
    let token = es256_token_with(&supabase, "nbf", json!(nbf));
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        TokenRejection::NotYetValid
    );
    wait_until(nbf).await;
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn the_cache_holds_at_most_its_configured_size() {
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let verifier = verifier(&supabase, &[("ACCESS_TOKEN_CACHE_ENTRIES", "100")]).await;
    let cache = verifier.token_cache().unwrap();
    let bound = cache.capacity();
    assert!((100..100 + 64).contains(&bound), "{bound}");
    for user in 0..400 {
        let mut claims = user_claims(&supabase.issuer());
        claims["sub"] = json!(format!("user-{user}"));
        verifier.verify(&sign_hs256(&claims)).await.unwrap();
        assert!(cache.len() as u64 <= bound, "{} entries", cache.len());
    }
}

#[tokio::test]
async fn with_the_cache_off_every_token_is_checked_in_full() {
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let verifier = verifier(&supabase, &[("ACCESS_TOKEN_CACHE_ENTRIES", "0")]).await;
    assert!(verifier.token_cache().is_none());
    let token = keys().es256.sign(&user_claims(&supabase.issuer()));
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_the_cache_safely() {
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let verifier = Arc::new(verifier(&supabase, &[]).await);
    let tokens: Vec<String> = (0..8)
        .map(|user| es256_token_with(&supabase, "sub", json!(format!("user-{user}"))))
        .collect();
    let tasks = (0..200).map(|n| {
        let verifier = verifier.clone();
        let token = tokens[n % tokens.len()].clone();
        tokio::spawn(async move {
            verifier
                .verify(&token)
                .await
                .map(|verified| verified.claims.sub.clone())
        })
    });
    let subs: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    for (n, sub) in subs.iter().enumerate() {
        assert_eq!(
            sub,
            &format!("user-{}", n % tokens.len()),
            "each answer is its own token's"
        );
    }
    assert!(
        hits(&verifier) >= 200 - 2 * tokens.len() as u64,
        "{}",
        hits(&verifier)
    );
}

#[tokio::test]
async fn a_refused_user_stays_refused_when_their_token_comes_from_the_cache() {
    let app = TestApp::spawn().await;
    let mut claims = app.claims();
    claims["role"] = json!("anon");
    let token = keys().es256.sign(&claims);
    for _ in 0..3 {
        let (status, body) = error_body(app.get_credentials(&token).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("role_not_allowed"))
        );
    }
}

#[tokio::test]
async fn cache_lookups_are_counted_in_the_metrics() {
    let app = TestApp::spawn().await;
    let lookups = |text: &str, result: &str| -> f64 {
        let series = format!(r#"cache_lookups_total{{cache="access_tokens",result="{result}"}}"#);
        text.lines()
            .filter_map(|line| line.strip_prefix(series.as_str()))
            .map(|value| value.trim().parse::<f64>().unwrap())
            .sum()
    };
    let before = app.get("/metrics").await.text().await.unwrap();
    let token = keys().es256.sign(&app.claims());
    for _ in 0..3 {
        assert_eq!(app.status_for(&token).await, 200);
    }
    let after = app.get("/metrics").await.text().await.unwrap();
    // Other tests in this binary share the recorder: they can only add to the counts.
    assert!(
        lookups(&after, "miss") - lookups(&before, "miss") >= 1.0,
        "{after}"
    );
    assert!(
        lookups(&after, "hit") - lookups(&before, "hit") >= 2.0,
        "{after}"
    );
}
