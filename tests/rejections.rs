//! Every way a request without a good Supabase access token is refused, and how.

mod common;

use base64::Engine;
use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

/// Expects a 401 with an `invalid_token` challenge and the given code.
async fn assert_rejected(app: &TestApp, token: &str, code: &str, case: &str) {
    let response = app.get_credentials(token).await;
    assert_eq!(response.status(), 401, "{case}");
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#,
        "{case}"
    );
    let (_, body) = error_body(response).await;
    assert_eq!(body["code"], code, "{case}: {body}");
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap()
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn requests_without_a_bearer_token_get_a_bare_challenge() {
    let app = TestApp::spawn().await;
    let token = keys().es256.sign(&app.claims());
    for authorization in [
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Basic {token}")),
        Some(format!("Token {token}")),
        Some(token.clone()),
    ] {
        let response = app
            .credentials_with_header(Method::GET, authorization.as_deref())
            .await;
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer",
            "{authorization:?}"
        );
        let (status, body) = error_body(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("missing_token")),
            "{authorization:?}"
        );
    }
}

#[tokio::test]
async fn malformed_tokens_are_rejected() {
    let app = TestApp::spawn().await;
    let valid = keys().es256.sign(&app.claims());
    let p = parts(&valid);
    let jwe_shaped = format!(
        "{}.{}.{}.{}.{}",
        b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
        b64("k"),
        b64("iv"),
        b64("ct"),
        b64("tag")
    );
    for (case, token) in [
        ("garbage", "garbage".to_owned()),
        ("two parts", format!("{}.{}", p[0], p[1])),
        ("four parts", format!("{valid}.{}", p[2])),
        ("JWE-shaped", jwe_shaped),
        ("stripped signature", format!("{}.{}.", p[0], p[1])),
        ("header not base64", format!("!!!.{}.{}", p[1], p[2])),
        (
            "header not JSON",
            format!("{}.{}.{}", b64("not json"), p[1], p[2]),
        ),
        (
            "unsupported alg",
            raw_token(
                &json!({"alg": "ES512", "kid": "es256-key-1"}),
                &app.claims(),
                &[1; 132],
            ),
        ),
    ] {
        assert_rejected(&app, &token, "invalid_token", case).await;
    }
}

#[tokio::test]
async fn alg_none_is_rejected_in_any_spelling() {
    let app = TestApp::spawn().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        for signature in [&b""[..], b"x"] {
            let header = json!({"alg": alg, "typ": "JWT"});
            let token = raw_token(&header, &app.claims(), signature);
            let token = if signature.is_empty() {
                token.trim_end_matches('.').to_owned() + "."
            } else {
                token
            };
            assert_rejected(&app, &token, "invalid_token", alg).await;
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let app = TestApp::spawn().await;
    let keys = keys();
    let claims = app.claims();
    // The classic algorithm confusion: the verifier's public key used as an HMAC secret,
    // in each form an attacker can obtain it, with and without the key's own kid.
    for key in [&keys.rs256, &keys.es256] {
        let jwk_text = serde_json::to_string(&key.public_jwk).unwrap();
        for secret in [key.public_pem.as_bytes(), jwk_text.as_bytes()] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(key.kid.clone());
            let with_kid =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
            assert_rejected(
                &app,
                &with_kid,
                "invalid_token",
                "HS256 with the public key and its kid",
            )
            .await;
            let without_kid = sign_hs256_with(secret, &claims);
            assert_rejected(
                &app,
                &without_kid,
                "invalid_token",
                "HS256 with the public key",
            )
            .await;
        }
    }
}

#[tokio::test]
async fn hs256_is_refused_when_no_shared_secret_is_configured() {
    let app = TestApp::spawn_with(Options {
        env: vec![("SUPABASE_JWT_SECRET", String::new())],
        ..Options::default()
    })
    .await;
    assert_rejected(
        &app,
        &sign_hs256(&app.claims()),
        "invalid_token",
        "HS256 without a secret",
    )
    .await;
    // Asymmetric tokens still work.
    assert_eq!(app.status_for(&keys().es256.sign(&app.claims())).await, 200);
}

#[tokio::test]
async fn time_claims_are_enforced_with_leeway() {
    let app = TestApp::spawn().await;
    let now = now_secs();
    let key = &keys().es256;
    let with = |patch: Value| {
        let mut claims = app.claims();
        for (name, value) in patch.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    assert_rejected(
        &app,
        &key.sign(&with(json!({"exp": now - 120}))),
        "token_expired",
        "expired",
    )
    .await;
    assert_rejected(
        &app,
        &sign_hs256(&with(json!({"exp": now - 120}))),
        "token_expired",
        "expired HS256",
    )
    .await;
    assert_rejected(
        &app,
        &key.sign(&with(json!({"exp": (now + 3600).to_string()}))),
        "invalid_token",
        "exp as a string",
    )
    .await;
    assert_rejected(
        &app,
        &key.sign(&with(json!({"nbf": now + 600}))),
        "invalid_token",
        "nbf in the future",
    )
    .await;
    assert_rejected(
        &app,
        &key.sign(&with(json!({"nbf": "0"}))),
        "invalid_token",
        "nbf as a string",
    )
    .await;
    let mut no_exp = app.claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_rejected(&app, &key.sign(&no_exp), "invalid_token", "missing exp").await;

    // Within the 30 s leeway both ways.
    assert_eq!(
        app.get_credentials(&key.sign(&with(json!({"exp": now - 10}))))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_credentials(&key.sign(&with(json!({"nbf": now + 10}))))
            .await
            .status(),
        200
    );
}

type ClaimsEdit = fn(&mut Value);

#[tokio::test]
async fn issuer_audience_and_subject_are_enforced() {
    let app = TestApp::spawn().await;
    let key = &keys().es256;
    let cases: [(&str, ClaimsEdit); 9] = [
        ("wrong aud", |c| c["aud"] = json!("anon")),
        ("aud array without ours", |c| {
            c["aud"] = json!(["anon", "other"])
        }),
        ("missing aud", |c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
        ("wrong iss", |c| {
            c["iss"] = json!("https://other-project.supabase.co/auth/v1")
        }),
        ("missing iss", |c| {
            c.as_object_mut().unwrap().remove("iss");
        }),
        ("missing sub", |c| {
            c.as_object_mut().unwrap().remove("sub");
        }),
        ("empty sub", |c| c["sub"] = json!("")),
        ("sub not a string", |c| c["sub"] = json!(42)),
        ("is_anonymous not a bool", |c| {
            c["is_anonymous"] = json!("false")
        }),
    ];
    for (case, patch) in cases {
        let mut claims = app.claims();
        patch(&mut claims);
        assert_rejected(&app, &key.sign(&claims), "invalid_token", case).await;
        assert_rejected(&app, &sign_hs256(&claims), "invalid_token", case).await;
    }
}

#[tokio::test]
async fn forged_and_tampered_tokens_are_rejected() {
    let app = TestApp::spawn().await;
    let keys = keys();
    let claims = app.claims();

    // Signed by an attacker's key that claims a known kid.
    assert_rejected(
        &app,
        &keys.attacker.sign(&claims),
        "invalid_token",
        "forged signature, known kid",
    )
    .await;
    // Signed by the attacker with a kid the JWKS does not have.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("attacker-kid".into());
    assert_rejected(
        &app,
        &keys.attacker.sign_with_header(header, &claims),
        "invalid_token",
        "unknown kid",
    )
    .await;
    // No kid at all on an asymmetric token.
    assert_rejected(
        &app,
        &keys
            .es256
            .sign_with_header(Header::new(Algorithm::ES256), &claims),
        "invalid_token",
        "no kid",
    )
    .await;

    // A real token whose payload was edited after signing.
    let genuine = keys.es256.sign(&claims);
    let p = parts(&genuine);
    let mut elevated = claims.clone();
    elevated["sub"] = json!("someone-else");
    let tampered = format!("{}.{}.{}", p[0], b64(elevated.to_string()), p[2]);
    assert_rejected(&app, &tampered, "invalid_token", "tampered payload").await;
    let genuine_hs = sign_hs256(&claims);
    let q = parts(&genuine_hs);
    assert_rejected(
        &app,
        &format!("{}.{}.{}", q[0], b64(elevated.to_string()), q[2]),
        "invalid_token",
        "tampered HS256 payload",
    )
    .await;

    // An ES256 signature of all zeros (r = s = 0: "psychic signatures", CVE-2022-21449).
    let zero = format!("{}.{}.{}", p[0], p[1], b64([0u8; 64]));
    assert_rejected(&app, &zero, "invalid_token", "all-zero ES256 signature").await;
    // The ES256 signature moved onto an RS256 kid.
    let mut moved = header_of(&genuine);
    moved["kid"] = json!(keys.rs256.kid);
    assert_rejected(
        &app,
        &format!("{}.{}.{}", b64(moved.to_string()), p[1], p[2]),
        "invalid_token",
        "header kid swapped",
    )
    .await;
}

#[tokio::test]
async fn headers_that_carry_their_own_key_are_never_trusted() {
    let app = TestApp::spawn().await;
    let keys = keys();
    let claims = app.claims();
    let attacker_jwk: Jwk = serde_json::from_value(keys.attacker.public_jwk.clone()).unwrap();

    let mut embedded = Header::new(Algorithm::ES256);
    embedded.jwk = Some(attacker_jwk.clone());
    assert_rejected(
        &app,
        &keys.attacker.sign_with_header(embedded, &claims),
        "invalid_token",
        "embedded jwk",
    )
    .await;

    let mut remote = Header::new(Algorithm::ES256);
    remote.kid = Some("attacker-kid".into());
    remote.jku = Some(format!("{}/attacker/jwks.json", app.supabase.url));
    assert_rejected(
        &app,
        &keys.attacker.sign_with_header(remote, &claims),
        "invalid_token",
        "jku",
    )
    .await;

    let mut x5u = Header::new(Algorithm::ES256);
    x5u.x5u = Some("https://attacker.example/cert.pem".into());
    assert_rejected(
        &app,
        &keys.attacker.sign_with_header(x5u, &claims),
        "invalid_token",
        "x5u",
    )
    .await;

    // Even a genuinely signed token is refused when it points elsewhere for its key.
    let mut jku_on_genuine = Header::new(Algorithm::ES256);
    jku_on_genuine.kid = Some(keys.es256.kid.clone());
    jku_on_genuine.jku = Some("https://attacker.example/jwks.json".into());
    assert_rejected(
        &app,
        &keys.es256.sign_with_header(jku_on_genuine, &claims),
        "invalid_token",
        "jku on a genuine key",
    )
    .await;
}

#[tokio::test]
async fn oversized_tokens_are_rejected_before_decoding() {
    let app = TestApp::spawn().await;
    let mut claims = app.claims();
    claims["user_metadata"] = json!({"padding": "x".repeat(9 * 1024)});
    let token = keys().es256.sign(&claims);
    assert!(token.len() > 8 * 1024);
    assert_rejected(&app, &token, "invalid_token", "oversized").await;
    // Just under the limit is still a normal token.
    claims["user_metadata"] = json!({"padding": "x".repeat(5 * 1024)});
    assert_eq!(app.status_for(&keys().es256.sign(&claims)).await, 200);
}

/// The HTTP answers above are uniform on purpose; this checks each case is refused by the check
/// meant for it, not by an earlier accident.
#[tokio::test]
async fn each_rejection_comes_from_the_intended_check() {
    use telnyx_webrtc_credentials::auth::{TokenRejection as R, TokenVerifier};
    use telnyx_webrtc_credentials::config::{Config, lookup_from};

    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256, &keys.rs256]).await;
    let env = test_env(&supabase.url);
    let config =
        Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
    let verifier = TokenVerifier::new(&config.auth);
    assert!(verifier.key_store().unwrap().refresh().await);
    let claims = user_claims(&supabase.issuer());
    let with = |patch: Value| {
        let mut patched = claims.clone();
        for (name, value) in patch.as_object().unwrap() {
            patched[name] = value.clone();
        }
        patched
    };
    let genuine = keys.es256.sign(&claims);
    let p = parts(&genuine);
    let mut hs_with_rsa_kid = Header::new(Algorithm::HS256);
    hs_with_rsa_kid.kid = Some(keys.rs256.kid.clone());
    let mut jku = Header::new(Algorithm::ES256);
    jku.kid = Some(keys.es256.kid.clone());
    jku.jku = Some("https://attacker.example/jwks.json".into());
    let mut unknown_kid = Header::new(Algorithm::ES256);
    unknown_kid.kid = Some("attacker-kid".into());
    let now = now_secs();

    let cases: Vec<(&str, String, R)> = vec![
        ("oversized", "a".repeat(8 * 1024 + 1), R::TooLarge),
        ("JWE-shaped", "a.b.c.d.e".into(), R::Malformed),
        (
            "stripped signature",
            format!("{}.{}.", p[0], p[1]),
            R::Malformed,
        ),
        (
            "alg none",
            raw_token(&json!({"alg": "none"}), &claims, b"x"),
            R::Malformed,
        ),
        (
            "jku",
            keys.es256.sign_with_header(jku, &claims),
            R::UntrustedHeader("jku"),
        ),
        (
            "HS256 keyed with the RSA public key, naming its kid",
            jsonwebtoken::encode(
                &hs_with_rsa_kid,
                &claims,
                &EncodingKey::from_secret(keys.rs256.public_pem.as_bytes()),
            )
            .unwrap(),
            R::AlgorithmMismatch,
        ),
        (
            "HS256 keyed with the RSA public key",
            sign_hs256_with(keys.rs256.public_pem.as_bytes(), &claims),
            R::BadSignature,
        ),
        (
            "forged with a known kid",
            keys.attacker.sign(&claims),
            R::BadSignature,
        ),
        (
            "all-zero signature",
            format!("{}.{}.{}", p[0], p[1], b64([0u8; 64])),
            R::BadSignature,
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                p[0],
                b64(with(json!({"sub": "x"})).to_string()),
                p[2]
            ),
            R::BadSignature,
        ),
        (
            "unknown kid",
            keys.attacker.sign_with_header(unknown_kid, &claims),
            R::UnknownKeyId,
        ),
        (
            "no kid",
            keys.es256
                .sign_with_header(Header::new(Algorithm::ES256), &claims),
            R::MissingKeyId(Algorithm::ES256),
        ),
        (
            "expired",
            keys.es256.sign(&with(json!({"exp": now - 120}))),
            R::Expired,
        ),
        (
            "not yet valid",
            keys.es256.sign(&with(json!({"nbf": now + 600}))),
            R::NotYetValid,
        ),
        (
            "wrong iss",
            keys.es256
                .sign(&with(json!({"iss": "https://x.supabase.co/auth/v1"}))),
            R::WrongIssuer,
        ),
        (
            "wrong aud",
            keys.es256.sign(&with(json!({"aud": "anon"}))),
            R::WrongAudience,
        ),
        (
            "empty sub",
            keys.es256.sign(&with(json!({"sub": ""}))),
            R::MissingClaim("sub".into()),
        ),
    ];
    for (case, token, expected) in cases {
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            expected,
            "{case}"
        );
    }
    for (case, patch) in [
        ("exp as a string", json!({"exp": (now + 60).to_string()})),
        ("nbf as a string", json!({"nbf": "0"})),
    ] {
        let rejection = verifier
            .verify(&keys.es256.sign(&with(patch)))
            .await
            .unwrap_err();
        assert!(
            matches!(rejection, R::InvalidClaims(_) | R::MissingClaim(_)),
            "{case}: {rejection:?}"
        );
    }
    assert!(verifier.verify(&genuine).await.is_ok());
}

/// The same attacks aimed at third-party issuers: an app with a Clerk-shaped issuer (ES256,
/// no audience) and an Auth0-shaped one (RS256, `aud` required), each with its signing key.
async fn third_party_app() -> (TestApp, Vec<(issuer::FakeIssuer, &'static TestKey)>) {
    use issuer::{FakeIssuer, Shape, issuer_keys, wait_until_issuers_ready};
    let idp = issuer_keys();
    let clerk = FakeIssuer::start(Shape::Clerk, &[&idp.clerk]).await;
    let auth0 = FakeIssuer::start(Shape::Auth0, &[&idp.auth0]).await;
    let app = TestApp::spawn_with(Options {
        env: vec![(
            "THIRD_PARTY_ISSUERS",
            format!("{},{}", clerk.entry(), auth0.entry()),
        )],
        ..Options::default()
    })
    .await;
    wait_until_issuers_ready(&app).await;
    (app, vec![(clerk, &idp.clerk), (auth0, &idp.auth0)])
}

fn patched(mut claims: Value, patch: Value) -> Value {
    for (name, value) in patch.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

#[tokio::test]
async fn third_party_tokens_meet_the_same_attacks() {
    let (app, issuers) = third_party_app().await;
    let keys = keys();
    let now = now_secs();
    for (issuer, key) in &issuers {
        let claims = issuer.claims("user_2kX9b7TfQmV3pLr8");
        let case = |what: &str| format!("{:?}: {what}", issuer.shape);
        assert_eq!(
            app.status_for(&key.sign(&claims)).await,
            200,
            "{}",
            case("genuine")
        );

        for alg in ["none", "None", "NONE", "nOnE"] {
            let token = raw_token(&json!({"alg": alg, "kid": key.kid}), &claims, b"x");
            assert_rejected(&app, &token, "invalid_token", &case(alg)).await;
        }
        // The issuer's public key, in each form an attacker can obtain it, as an HMAC secret.
        let jwk_text = serde_json::to_string(&key.public_jwk).unwrap();
        for secret in [
            key.public_pem.as_bytes(),
            jwk_text.as_bytes(),
            JWT_SECRET.as_bytes(),
        ] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut header = Header::new(alg);
                header.kid = Some(key.kid.clone());
                let token =
                    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
                        .unwrap();
                assert_rejected(&app, &token, "invalid_token", &case("HMAC, own kid")).await;
                let token = sign_hs256_with(secret, &claims);
                assert_rejected(&app, &token, "invalid_token", &case("HMAC, no kid")).await;
            }
        }

        let time_cases = [
            ("expired", json!({"exp": now - 120}), "token_expired"),
            (
                "exp as a string",
                json!({"exp": (now + 3600).to_string()}),
                "invalid_token",
            ),
            (
                "nbf in the future",
                json!({"nbf": now + 600}),
                "invalid_token",
            ),
            ("nbf as a string", json!({"nbf": "0"}), "invalid_token"),
        ];
        for (what, patch, code) in time_cases {
            let token = key.sign(&patched(claims.clone(), patch));
            assert_rejected(&app, &token, code, &case(what)).await;
        }
        let leeway = key.sign(&patched(claims.clone(), json!({"exp": now - 10})));
        assert_eq!(
            app.status_for(&leeway).await,
            200,
            "{}",
            case("within the leeway")
        );

        let mut claim_cases: Vec<(&str, Value)> = vec![
            ("missing exp", json!({"exp": null})),
            ("empty sub", json!({"sub": ""})),
            ("sub not a string", json!({"sub": 42})),
            ("iss an array", json!({"iss": [issuer.issuer]})),
        ];
        if issuer.shape == issuer::Shape::Auth0 {
            claim_cases.extend([
                ("wrong aud", json!({"aud": "another-client"})),
                ("aud array without ours", json!({"aud": ["a", "b"]})),
                ("missing aud", json!({"aud": null})),
            ]);
        }
        for (what, patch) in claim_cases {
            let mut edited = patched(claims.clone(), patch);
            edited
                .as_object_mut()
                .unwrap()
                .retain(|_, value| !value.is_null());
            assert_rejected(&app, &key.sign(&edited), "invalid_token", &case(what)).await;
        }

        // Forged, tampered and pointed elsewhere.
        let mut attacker_header = Header::new(Algorithm::ES256);
        attacker_header.kid = Some(key.kid.clone());
        let forged = keys.attacker.sign_with_header(attacker_header, &claims);
        assert_rejected(&app, &forged, "invalid_token", &case("forged, known kid")).await;
        let mut unknown = Header::new(key.alg);
        unknown.kid = Some("attacker-kid".into());
        let token = key.sign_with_header(unknown, &claims);
        assert_rejected(&app, &token, "invalid_token", &case("unknown kid")).await;
        let token = key.sign_with_header(Header::new(key.alg), &claims);
        assert_rejected(&app, &token, "invalid_token", &case("no kid")).await;

        let genuine = key.sign(&claims);
        let p = parts(&genuine);
        let elevated = patched(claims.clone(), json!({"sub": "someone-else"}));
        let tampered = format!("{}.{}.{}", p[0], b64(elevated.to_string()), p[2]);
        assert_rejected(&app, &tampered, "invalid_token", &case("tampered payload")).await;
        let zero = format!("{}.{}.{}", p[0], p[1], b64([0u8; 64]));
        assert_rejected(&app, &zero, "invalid_token", &case("all-zero signature")).await;
        // The other issuer's kid on this issuer's token: this issuer has no such key.
        let other = issuers
            .iter()
            .find(|(i, _)| i.shape != issuer.shape)
            .unwrap();
        let mut moved = header_of(&genuine);
        moved["kid"] = json!(other.1.kid);
        let moved = format!("{}.{}.{}", b64(moved.to_string()), p[1], p[2]);
        assert_rejected(
            &app,
            &moved,
            "invalid_token",
            &case("kid of another issuer"),
        )
        .await;

        let attacker_jwk: Jwk = serde_json::from_value(keys.attacker.public_jwk.clone()).unwrap();
        let mut embedded = Header::new(Algorithm::ES256);
        embedded.jwk = Some(attacker_jwk);
        let token = keys.attacker.sign_with_header(embedded, &claims);
        assert_rejected(&app, &token, "invalid_token", &case("embedded jwk")).await;
        let mut jku = Header::new(key.alg);
        jku.kid = Some(key.kid.clone());
        jku.jku = Some(format!("{}/.well-known/jwks.json", issuer.url));
        let token = key.sign_with_header(jku, &claims);
        assert_rejected(&app, &token, "invalid_token", &case("jku on a genuine key")).await;

        let mut oversized = claims.clone();
        oversized["padding"] = json!("x".repeat(9 * 1024));
        let token = key.sign(&oversized);
        assert_rejected(&app, &token, "invalid_token", &case("oversized")).await;
    }
}

/// As [`each_rejection_comes_from_the_intended_check`], for a third-party issuer.
#[tokio::test]
async fn each_third_party_rejection_comes_from_the_intended_check() {
    use issuer::{FakeIssuer, Shape, issuer_keys};
    use telnyx_webrtc_credentials::auth::{TokenIssuer, TokenRejection as R, TokenVerifier};
    use telnyx_webrtc_credentials::config::{Config, lookup_from};

    let idp = issuer_keys();
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let auth0 = FakeIssuer::start(Shape::Auth0, &[&idp.auth0]).await;
    let clerk = FakeIssuer::start(Shape::Clerk, &[&idp.clerk]).await;
    let mut env = test_env(&supabase.url);
    env.push((
        "THIRD_PARTY_ISSUERS",
        format!("{},{}", auth0.entry(), clerk.entry()),
    ));
    let config =
        Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
    let verifier = TokenVerifier::new(&config.auth);
    for store in verifier.key_stores() {
        assert!(store.refresh().await, "{}", store.issuer());
    }
    let claims = auth0.claims("auth0|64f1c2a9e5b7d3");
    let with = |patch: Value| patched(claims.clone(), patch);
    let key = &idp.auth0;
    let genuine = key.sign(&claims);
    let p = parts(&genuine);
    let mut hs_with_kid = Header::new(Algorithm::HS256);
    hs_with_kid.kid = Some(key.kid.clone());
    let mut unknown_kid = Header::new(Algorithm::RS256);
    unknown_kid.kid = Some("attacker-kid".into());
    let now = now_secs();

    let cases: Vec<(&str, String, R)> = vec![
        (
            "HS256 keyed with its public key, naming its kid",
            jsonwebtoken::encode(
                &hs_with_kid,
                &claims,
                &EncodingKey::from_secret(key.public_pem.as_bytes()),
            )
            .unwrap(),
            R::SymmetricFromThirdParty(Algorithm::HS256),
        ),
        (
            "HS256 with Supabase's secret",
            sign_hs256(&claims),
            R::SymmetricFromThirdParty(Algorithm::HS256),
        ),
        ("Clerk's key", idp.clerk.sign(&claims), R::UnknownKeyId),
        ("Supabase's key", keys.es256.sign(&claims), R::UnknownKeyId),
        (
            "forged with its kid",
            {
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(key.kid.clone());
                keys.attacker.sign_with_header(header, &claims)
            },
            R::AlgorithmMismatch,
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                p[0],
                b64(with(json!({"sub": "x"})).to_string()),
                p[2]
            ),
            R::BadSignature,
        ),
        (
            "unknown kid",
            key.sign_with_header(unknown_kid, &claims),
            R::UnknownKeyId,
        ),
        (
            "no kid",
            key.sign_with_header(Header::new(Algorithm::RS256), &claims),
            R::MissingKeyId(Algorithm::RS256),
        ),
        (
            "expired",
            key.sign(&with(json!({"exp": now - 120}))),
            R::Expired,
        ),
        (
            "not yet valid",
            key.sign(&with(json!({"nbf": now + 600}))),
            R::NotYetValid,
        ),
        (
            "wrong aud",
            key.sign(&with(json!({"aud": "another-client"}))),
            R::WrongAudience,
        ),
        (
            "empty sub",
            key.sign(&with(json!({"sub": ""}))),
            R::MissingClaim("sub".into()),
        ),
    ];
    for (case, token, expected) in cases {
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            expected,
            "{case}"
        );
    }
    let mut no_aud = claims.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        verifier.verify(&key.sign(&no_aud)).await.unwrap_err(),
        R::MissingClaim("aud".into())
    );
    // A token of Supabase's iss signed with a third-party key: Supabase's set has no such kid.
    assert_eq!(
        verifier
            .verify(&key.sign(&user_claims(&supabase.issuer())))
            .await
            .unwrap_err(),
        R::UnknownKeyId
    );

    let verified = verifier.verify(&genuine).await.unwrap();
    assert_eq!(
        verified.issuer,
        TokenIssuer::ThirdParty(verifier.third_party()[0].tag)
    );
    assert_eq!(verified.claims.sub, "auth0|64f1c2a9e5b7d3");
    // Clerk's tokens carry no aud, and need none.
    let clerk_token = idp.clerk.sign(&clerk.claims("user_2kX9"));
    let verified = verifier.verify(&clerk_token).await.unwrap();
    assert_eq!(
        verified.issuer,
        TokenIssuer::ThirdParty(verifier.third_party()[1].tag)
    );
    assert_eq!(verified.claims.aud, None);
}
