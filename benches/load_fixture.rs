//! The Supabase side of `bench/run.sh`: a fresh ES256 signing key and HS256 secret, the JWKS
//! served on loopback, and the token files and server environment the benchmark reads.
//!
//! Usage: `load_fixture <out-dir> [users]` (bench/run.sh finds and starts it; a plain
//! `cargo bench` runs it without arguments, and it then does nothing). Writes into `<out-dir>`:
//! - `server.env`: the variables the service under test runs with (`NAME=value` lines),
//! - `hs256-users.txt`, `es256-users.txt`: one token per line, one per distinct user,
//! - `es256-one.txt`: a single ES256 token (one browser calling again and again),
//! - `per-user.env`: what turns the service to per_user mode against the Telnyx stand-in here,
//! - `mixed.txt`, for the soak: in every ten tokens six valid ones of distinct users, one
//!   expired, one with a bad signature, one of an anonymous sign-in and one that is no JWT,
//! - `ready`: written last, once the JWKS (and the Telnyx stand-in) are being served.
//!
//! Then serves the JWKS and the Telnyx API until it is killed. Not part of the shipped binary: it reuses the test
//! harness's keys and Supabase stand-in.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use common::telnyx::FakeTelnyx;
use common::{FakeSupabase, TestKey, now_secs, sign_hs256_with, user_claims};
use serde_json::{Value, json};

/// How long the tokens stay valid: far longer than any benchmark run.
const TOKEN_LIFETIME_SECS: u64 = 6 * 3600;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|arg| arg != "--bench");
    let Some(out) = args.next().map(PathBuf::from) else {
        println!("load_fixture: bench/run.sh's Supabase stand-in; run bench/run.sh");
        return;
    };
    let users: usize = args
        .next()
        .map_or(1000, |n| n.parse().expect("users is a whole number"));
    std::fs::create_dir_all(&out).expect("the output directory can be created");

    let es256 = TestKey::es256("bench-es256");
    let supabase = FakeSupabase::start(&[&es256]).await;
    let telnyx = FakeTelnyx::start().await;
    let secret = random_secret();

    let claims_of = |user: usize| -> Value {
        let mut claims = user_claims(&supabase.issuer());
        claims["sub"] = json!(format!("00000000-0000-4000-8000-{user:012}"));
        claims["email"] = json!(format!("user{user}@example.com"));
        claims["session_id"] = json!(format!("10000000-0000-4000-8000-{user:012}"));
        claims["exp"] = json!(now_secs() + TOKEN_LIFETIME_SECS);
        claims
    };
    let hs256: Vec<String> = (0..users)
        .map(|user| sign_hs256_with(secret.as_bytes(), &claims_of(user)))
        .collect();
    let es256_tokens: Vec<String> = (0..users)
        .map(|user| es256.sign(&claims_of(user)))
        .collect();
    let one = es256.sign(&claims_of(users));

    write_lines(&out, "hs256-users.txt", &hs256);
    write_lines(&out, "es256-users.txt", &es256_tokens);
    write_lines(&out, "es256-one.txt", &[one]);
    let sign = |claims: &Value| sign_hs256_with(secret.as_bytes(), claims);
    let mixed: Vec<String> = (0..users)
        .flat_map(|user| {
            let mut expired = claims_of(user);
            expired["exp"] = json!(now_secs() - 60);
            let mut anonymous = claims_of(user);
            anonymous["is_anonymous"] = json!(true);
            let forged =
                sign_hs256_with(b"not-the-project-secret-0123456789abcdef", &claims_of(user));
            [
                hs256[user].clone(),
                hs256[(user + 1) % users].clone(),
                hs256[(user + 2) % users].clone(),
                hs256[(user + 3) % users].clone(),
                hs256[(user + 4) % users].clone(),
                hs256[(user + 5) % users].clone(),
                sign(&expired),
                forged,
                sign(&anonymous),
                format!("not-a-jwt-{user}"),
            ]
        })
        .collect();
    write_lines(&out, "mixed.txt", &mixed);
    let per_user: Vec<String> = telnyx
        .env()
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    write_lines(&out, "per-user.env", &per_user);
    let mut env = String::new();
    for (name, value) in [
        ("SUPABASE_URL", supabase.url.as_str()),
        ("SUPABASE_JWT_SECRET", secret.as_str()),
        ("TELNYX_WEBRTC_USERNAME", "gencredBench"),
        ("TELNYX_WEBRTC_PASSWORD", "bench-sip-password"),
        // The default 20/min per user would answer the load with 429s: the benchmark measures
        // the path to a credential, not the limiter.
        ("RATE_LIMIT_PER_USER", "off"),
    ] {
        writeln!(env, "{name}={value}").unwrap();
    }
    std::fs::write(out.join("server.env"), env).expect("server.env can be written");
    std::fs::write(out.join("ready"), &supabase.url).expect("ready can be written");

    std::future::pending::<()>().await;
}

fn write_lines(out: &std::path::Path, name: &str, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(out.join(name), text).unwrap_or_else(|error| panic!("{name}: {error}"));
}

/// A throwaway HS256 secret for this run only.
fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
