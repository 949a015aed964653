//! Fuzzes the token path: JWT header parsing, base64url, signature checking and the strict
//! claims JSON, then the access policy on whatever verifies.
//!
//! The first byte picks what the rest of the input is:
//! - a whole token, verified as sent: it must never verify (nobody can forge HS256);
//! - the claims JSON of a token signed with the real secret: whatever verifies must carry the
//!   configured issuer and audience, a non-empty `sub`, and an `exp` not long past;
//! - the header JSON of a token with valid claims signed with the real secret: whatever
//!   verifies must be HS256 with none of the key-carrying header fields.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

use telnyx_webrtc_credentials::auth::{AccessPolicy, SupabaseClaims, TokenVerifier};
use telnyx_webrtc_credentials::config::{AuthConfig, Config, lookup_from};

const SECRET: &str = "fuzz-only-legacy-jwt-secret-0123456789abcdef";
const ISSUER: &str = "https://abcd.supabase.co/auth/v1";

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifier: TokenVerifier,
    policy: AccessPolicy,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let config = Config::from_lookup(lookup_from([
            ("SUPABASE_URL", "https://abcd.supabase.co"),
            ("SUPABASE_JWT_SECRET", SECRET),
            ("TELNYX_WEBRTC_USERNAME", "fuzz"),
            ("TELNYX_WEBRTC_PASSWORD", "fuzz"),
            (
                "REQUIRE_CLAIMS",
                r#"app_metadata.phone_enabled=true,app_metadata.plan.tier="pro",aal="aal2""#,
            ),
            ("ALLOWED_EMAIL_DOMAINS", "example.com"),
        ]))
        .expect("the fuzz configuration is valid");
        // HS256 only: no JWKS, so nothing reaches the network and every run is deterministic.
        let auth = AuthConfig {
            jwks_url: None,
            ..config.auth
        };
        Harness {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            verifier: TokenVerifier::new(&auth),
            policy: AccessPolicy::new(&auth),
        }
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(tag.as_ref()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn verify(token: &str) -> Option<Arc<SupabaseClaims>> {
    let harness = harness();
    let verified = harness
        .runtime
        .block_on(harness.verifier.verify(token))
        .ok()?;
    // Whatever verifies goes on to the access policy, which must not panic either.
    let _ = harness.policy.check(&verified.claims);
    Some(verified.claims)
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            assert!(
                verify(&token).is_none(),
                "a token verified without the secret"
            );
        }
        1 => {
            let header = br#"{"alg":"HS256","typ":"JWT","kid":"legacy-hs256"}"#;
            if let Some(claims) = verify(&sign(header, rest)) {
                assert_eq!(claims.iss, ISSUER);
                assert!(
                    claims
                        .aud
                        .as_ref()
                        .is_some_and(|aud| aud.contains("authenticated"))
                );
                assert!(!claims.sub.trim().is_empty());
                assert!(
                    claims.exp.saturating_add(60) >= now(),
                    "an expired token verified"
                );
            }
        }
        _ => {
            let claims = json!({
                "iss": ISSUER, "sub": "fuzz-user", "aud": "authenticated",
                "exp": now() + 3600, "role": "authenticated",
            });
            if verify(&sign(rest, claims.to_string().as_bytes())).is_some() {
                let header: Value =
                    serde_json::from_slice(rest).expect("a verified header is JSON");
                assert_eq!(header["alg"], "HS256");
                for field in ["jwk", "jku", "x5u", "x5c", "crit"] {
                    assert!(header.get(field).is_none(), "{field} was accepted");
                }
            }
        }
    }
});
