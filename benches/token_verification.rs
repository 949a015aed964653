//! Token verification for each algorithm Supabase signs with, in full and from the cache, and
//! the bare ES256 signature check that the load benchmark's ES256 line is measured against.
//!
//! `cargo bench --bench token_verification`. Every benchmark runs on one thread, except
//! `es256_signature/all_cores`, which verifies on as many threads as the machine has cores and
//! reports the time per verification of the whole process.

#[path = "../tests/common/mod.rs"]
mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{FakeSupabase, TestKey, sign_hs256, test_env, user_claims};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use telnyx_webrtc_credentials::auth::TokenVerifier;
use telnyx_webrtc_credentials::config::{Config, lookup_from};

struct Fixture {
    uncached: TokenVerifier,
    cached: TokenVerifier,
    tokens: Vec<(&'static str, String)>,
    es256_public_key: Vec<u8>,
    es256_token: String,
    /// Keeps the JWKS server's runtime alive.
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let es256 = TestKey::es256("bench-es256");
    let rs256 = TestKey::rs256("bench-rs256");
    let supabase = runtime.block_on(FakeSupabase::start(&[&es256, &rs256]));
    let verifier = |cache_entries: &str| {
        let mut env = test_env(&supabase.url);
        env.push(("ACCESS_TOKEN_CACHE_ENTRIES", cache_entries.to_owned()));
        let config =
            Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
        let verifier = TokenVerifier::new(&config.auth);
        let store = verifier.key_store().unwrap().clone();
        assert!(runtime.block_on(store.refresh()), "the JWKS was fetched");
        verifier
    };
    let claims = user_claims(&supabase.issuer());
    let es256_token = es256.sign(&claims);
    let es256_public_key = {
        let coordinate = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(es256.public_jwk[name].as_str().unwrap())
                .unwrap()
        };
        [vec![0x04], coordinate("x"), coordinate("y")].concat()
    };
    Fixture {
        uncached: verifier("0"),
        cached: verifier("1000"),
        tokens: vec![
            ("HS256", sign_hs256(&claims)),
            ("ES256", es256_token.clone()),
            ("RS256", rs256.sign(&claims)),
        ],
        es256_public_key,
        es256_token,
        _runtime: runtime,
    }
}

/// Runs a future that must not wait: verifying against a known key does no I/O.
fn now_or_never<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("verification waited for I/O"),
    }
}

fn verification(c: &mut Criterion) {
    let fixture = fixture();
    for (name, verifier) in [
        ("verify_uncached", &fixture.uncached),
        ("verify_cached", &fixture.cached),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        for (algorithm, token) in &fixture.tokens {
            let first = now_or_never(verifier.verify(token));
            assert!(first.is_ok(), "{algorithm}: {first:?}");
            if let Some(cache) = verifier.token_cache() {
                let hits = cache.hits();
                now_or_never(verifier.verify(token)).unwrap();
                assert_eq!(
                    cache.hits(),
                    hits + 1,
                    "{algorithm}: the cache serves a repeat"
                );
            }
            group.bench_with_input(BenchmarkId::from_parameter(algorithm), token, |b, token| {
                b.iter(|| now_or_never(verifier.verify(std::hint::black_box(token))).unwrap());
            });
        }
        group.finish();
    }

    // The yardstick: aws-lc's P-256 signature check alone, as jsonwebtoken calls it.
    let (message, signature) = fixture.es256_token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let public_key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &fixture.es256_public_key);
    let verify_once = || {
        public_key
            .verify(message.as_bytes(), std::hint::black_box(&signature))
            .unwrap();
    };
    let mut group = c.benchmark_group("es256_signature");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_thread", |b| b.iter(verify_once));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    group.bench_function(format!("all_cores ({threads} threads)"), |b| {
        b.iter_custom(|iterations| {
            let per_thread = iterations.div_ceil(threads as u64);
            let started = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| (0..per_thread).for_each(|_| verify_once()));
                }
            });
            // Time per verification of the whole process: wall time over all verifications.
            started
                .elapsed()
                .mul_f64(iterations as f64 / (per_thread * threads as u64) as f64)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = verification
}
criterion_main!(benches);
