//! Property tests at the router (in process, `Router::oneshot`): arbitrary bytes, arbitrary
//! headers and structurally valid but wrong tokens (Supabase's, and a third-party issuer's) never
//! panic the service, never get a 5xx and never get a credential.

mod common;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Value, json};
use telnyx_webrtc_credentials::config::{Config, lookup_from};
use telnyx_webrtc_credentials::{AppState, app};
use tower::ServiceExt;

/// One runtime, one fake Supabase and one router for every case: building them per case would
/// make each case cost milliseconds instead of microseconds.
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    issuer: String,
    /// A Clerk-shaped third-party issuer (ES256, by discovery).
    third_party: issuer::FakeIssuer,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let keys = keys();
        let supabase = runtime.block_on(FakeSupabase::start(&[
            &keys.es256,
            &keys.rs256,
            &keys.eddsa,
        ]));
        let third_party = runtime.block_on(issuer::FakeIssuer::start(
            issuer::Shape::Clerk,
            &[&issuer::issuer_keys().clerk],
        ));
        let mut env = test_env(&supabase.url);
        env.push(("THIRD_PARTY_ISSUERS", third_party.entry()));
        let config =
            Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
        let router = runtime.block_on(async { app(AppState::from_config(&config).unwrap()) });
        Harness {
            runtime,
            router,
            issuer: supabase.issuer(),
            third_party,
        }
    })
}

/// Sends one request through the whole router and returns the status and body.
fn send(request: Request<Body>) -> (u16, Vec<u8>) {
    let harness = harness();
    harness.runtime.block_on(async {
        let response = harness.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, body.to_vec())
    })
}

fn credentials_request(authorization: HeaderValue) -> Request<Body> {
    Request::get("/credentials")
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .unwrap()
}

/// A refusal: a 4xx in the JSON error shape, never a 2xx and never a 5xx.
fn assert_refused(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!((400..500).contains(&status), "status {status}");
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| TestCaseError::fail(format!("not JSON ({error}): {body:?}")))?;
    prop_assert_eq!(&body["success"], &json!(false));
    prop_assert!(body["code"].is_string());
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_authorization_bytes_are_refused(
        bearer in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut value = if bearer { b"Bearer ".to_vec() } else { Vec::new() };
        value.extend_from_slice(&bytes);
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            return Ok(()); // not sendable over HTTP at all
        };
        let (status, body) = send(credentials_request(value));
        assert_refused(status, &body)?;
    }

    #[test]
    fn arbitrary_methods_paths_headers_and_bodies_never_get_a_5xx(
        method in prop_oneof![
            Just(Method::GET), Just(Method::POST), Just(Method::DELETE), Just(Method::PUT),
            Just(Method::HEAD), Just(Method::OPTIONS), Just(Method::PATCH),
            "[A-Z]{1,10}".prop_map(|name| Method::from_bytes(name.as_bytes()).unwrap()),
        ],
        path in prop_oneof![
            Just("/credentials".to_owned()),
            "(/[A-Za-z0-9%._~-]{0,12}){1,4}",
        ],
        headers in prop::collection::vec(
            (
                prop_oneof![
                    Just("authorization".to_owned()), Just("origin".to_owned()),
                    Just("content-type".to_owned()), Just("content-length".to_owned()),
                    Just("x-forwarded-for".to_owned()), Just("x-request-id".to_owned()),
                    Just("access-control-request-method".to_owned()),
                    "[a-z][a-z0-9-]{0,24}",
                ],
                prop::collection::vec(any::<u8>(), 0..256),
            ),
            0..8,
        ),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut request = Request::builder().method(method.clone()).uri(&path);
        for (name, value) in &headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value))
            {
                request = request.header(name, value);
            }
        }
        let Ok(request) = request.body(Body::from(body)) else {
            return Ok(()); // an URI or header the HTTP types refuse never reaches us
        };
        let (status, _) = send(request);
        prop_assert!(status < 500, "{method} {path}: {status}");
        let probe = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
        if !probe && method != Method::OPTIONS {
            prop_assert!(status >= 400, "{method} {path}: {status}");
        }
    }

    #[test]
    fn structurally_valid_but_wrong_tokens_are_refused(token in wrong_token()) {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let (status, body) = send(credentials_request(value));
        assert_refused(status, &body)?;
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| json!(number)),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

const CLAIMS: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "role",
    "email",
    "aal",
    "session_id",
    "is_anonymous",
    "app_metadata",
    "user_metadata",
];

/// A user's claims with a few claims replaced by any JSON or removed: perhaps still valid.
fn any_claims() -> impl Strategy<Value = Value> {
    claims_changed_from(|| user_claims(&harness().issuer))
}

/// A third-party user's claims, changed the same way.
fn any_third_party_claims() -> impl Strategy<Value = Value> {
    claims_changed_from(|| harness().third_party.claims("user_2kX9b7TfQmV3pLr8"))
}

fn claims_changed_from(base: fn() -> Value) -> impl Strategy<Value = Value> {
    let change = (
        prop::sample::select(&CLAIMS[..]),
        prop::option::of(any_json()),
    );
    prop::collection::vec(change, 0..4).prop_map(move |changes| {
        let mut claims = base();
        for (claim, value) in changes {
            match value {
                Some(value) => claims[claim] = value,
                None => {
                    claims.as_object_mut().unwrap().remove(claim);
                }
            }
        }
        claims
    })
}

/// A user's claims with one change that must make the service refuse them.
fn refusable_claims() -> impl Strategy<Value = Value> {
    refusable_changes_of(|| user_claims(&harness().issuer), true)
}

/// The same, for a third-party user.
fn refusable_third_party_claims() -> impl Strategy<Value = Value> {
    // Its entry names no audience, so its `aud` is not checked.
    refusable_changes_of(
        || harness().third_party.claims("user_2kX9b7TfQmV3pLr8"),
        false,
    )
}

/// `base` with one refusable change; `aud_checked`: whether another `aud` is one (where it is
/// not, that change is made to `role` instead, which is always checked).
fn refusable_changes_of(base: fn() -> Value, aud_checked: bool) -> impl Strategy<Value = Value> {
    let issuer = base()["iss"].as_str().unwrap().to_owned();
    let now = now_secs();
    prop_oneof![
        (0..now - 60).prop_map(|exp| ("exp", json!(exp))),
        ".{0,40}"
            .prop_filter("another issuer", move |iss| *iss != issuer)
            .prop_map(|iss| ("iss", json!(iss))),
        "[a-z_]{0,16}"
            .prop_filter("another audience", |aud| aud != "authenticated")
            .prop_map(|aud| ("aud", json!(aud))),
        "[a-z_]{0,16}"
            .prop_filter("another role", |role| role != "authenticated")
            .prop_map(|role| ("role", json!(role))),
        (now + 3600..now + 100_000_000).prop_map(|nbf| ("nbf", json!(nbf))),
        Just(("is_anonymous", json!(true))),
        Just(("sub", json!(""))),
        any_json()
            .prop_filter("not a string", |sub| !sub.is_string())
            .prop_map(|sub| ("sub", sub)),
        any_json()
            .prop_filter("not a whole number", |exp| !exp.is_u64())
            .prop_map(|exp| ("exp", exp)),
    ]
    .prop_map(move |(claim, value)| {
        let mut claims = base();
        let claim = if claim == "aud" && !aud_checked {
            "role"
        } else {
            claim
        };
        claims[claim] = value;
        claims
    })
}

fn any_header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        prop::sample::select(
            &[
                "HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA",
                "none", "None", "NONE", "",
            ][..]
        )
        .prop_map(str::to_owned),
        "[A-Za-z0-9]{0,8}",
    ];
    let kid = prop::option::of(prop_oneof![
        prop::sample::select(
            &[
                "es256-key-1",
                "rs256-key-1",
                "ed25519-key-1",
                "legacy-hs256"
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z0-9-]{0,16}",
    ]);
    let extra = prop::option::of(prop::sample::select(
        &["jwk", "jku", "x5u", "x5c", "crit"][..],
    ));
    (alg, kid, extra, prop::option::of(any_json())).prop_map(|(alg, kid, extra, typ)| {
        let mut header = json!({ "alg": alg });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        if let Some(field) = extra {
            header[field] = json!(["https://attacker.example/key"]);
        }
        if let Some(typ) = typ {
            header["typ"] = typ;
        }
        header
    })
}

/// Tokens in compact JWS form that must all be refused.
fn wrong_token() -> impl Strategy<Value = String> {
    prop_oneof![
        // Any header and claims, a made-up signature.
        (
            any_header(),
            any_claims(),
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(header, claims, signature)| raw_token(&header, &claims, &signature)),
        // Any header and claims, a real HS256 signature under another secret.
        (any_header(), any_claims(), "[ -~]{32,48}").prop_map(|(header, claims, secret)| {
            let signing_input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
            let tag = aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
                signing_input.as_bytes(),
            );
            format!("{signing_input}.{}", b64(tag.as_ref()))
        }),
        // Signed with the project's own secret, but with claims it must refuse.
        refusable_claims().prop_map(|claims| sign_hs256(&claims)),
        // An attacker's ES256 key under the project's kid.
        any_claims().prop_map(|claims| keys().attacker.sign(&claims)),
        // Valid claims, correct secret, but an algorithm the secret does not pin.
        any_claims().prop_map(|claims| {
            let header = Header::new(Algorithm::HS512);
            let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        }),
        // Signed with the third-party issuer's own key, but with claims it must refuse.
        refusable_third_party_claims().prop_map(|claims| issuer::issuer_keys().clerk.sign(&claims)),
        // An attacker's key under the third-party issuer's kid.
        any_third_party_claims().prop_map(|claims| {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(issuer::issuer_keys().clerk.kid.clone());
            keys().attacker.sign_with_header(header, &claims)
        }),
        // The third-party issuer's public key (or Supabase's secret) as an HMAC secret, under
        // any HMAC algorithm, with or without its kid.
        (
            any_third_party_claims(),
            prop::sample::select(&[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][..]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(claims, alg, with_kid, public_key)| {
                let clerk = &issuer::issuer_keys().clerk;
                let mut header = Header::new(alg);
                if with_kid {
                    header.kid = Some(clerk.kid.clone());
                }
                let secret = if public_key {
                    clerk.public_pem.as_bytes()
                } else {
                    JWT_SECRET.as_bytes()
                };
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
            }),
    ]
}
