//! Local stand-ins for the third-party identity providers Supabase's third-party auth accepts
//! (supabase.com/docs/guides/auth/third-party/*), each shaped after the provider's published
//! documents: the OIDC discovery document, the JWKS and the claims of the token the browser
//! holds. They count every fetch and can fail on demand.
//!
//! - [`Shape::Clerk`]: issuer `https://<instance>.clerk.accounts.dev` (no path, no trailing
//!   slash), discovery and `/.well-known/jwks.json`; a session token with `azp`, `sid`, `fva`,
//!   `v` and no `aud` (clerk.com/docs/backend-requests/resources/session-tokens), plus the `role`
//!   claim Supabase asks to add. Clerk signs with RS256 today; this stand-in holds an ES256
//!   key, so that both key families are exercised across the two discovery-found issuers.
//! - [`Shape::Auth0`]: issuer `https://<tenant>.<region>.auth0.com/`, trailing slash included as
//!   Auth0 writes it in `iss`; a discovery document that lists HS256 among its ID token
//!   algorithms (which a verifier here must still never accept); JWKS entries with `x5t` and
//!   `x5c` beside `n` and `e` (auth0.com/docs/secure/tokens/json-web-tokens/json-web-key-sets);
//!   an ID token whose `aud` is the application's client ID.
//! - [`Shape::Firebase`]: issuer `https://securetoken.google.com/<project>`, no discovery here,
//!   the JWKS at Google's `/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com`
//!   (firebase.google.com/docs/auth/admin/verify-id-tokens); an ID token with `aud` the project
//!   ID, `user_id`, `auth_time` and the `firebase` claim.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::{TestApp, TestKey, now_secs};

/// Google's path for the Firebase Auth JWKS.
pub const FIREBASE_JWKS_PATH: &str =
    "/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com";
/// The Auth0 application's client ID: the `aud` of its ID tokens.
pub const AUTH0_CLIENT_ID: &str = "8hJ3kPq2ZtVx9NcYb4LmWd7sRfA1uEoG";
/// The Firebase project ID: its tokens' `aud`, and the last part of its issuer.
pub const FIREBASE_PROJECT: &str = "telnyx-phone-test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Clerk,
    Auth0,
    Firebase,
}

/// The keys the stand-ins sign with, made once per test binary (RSA key generation is slow).
pub struct IssuerKeys {
    /// Clerk names its keys `ins_…` after the instance.
    pub clerk: TestKey,
    pub auth0: TestKey,
    pub firebase: TestKey,
}

pub fn issuer_keys() -> &'static IssuerKeys {
    static KEYS: OnceLock<IssuerKeys> = OnceLock::new();
    KEYS.get_or_init(|| IssuerKeys {
        clerk: TestKey::es256("ins_2kX9b7TfQmV3pLr8sN1aWcYdE4h"),
        auth0: TestKey::rs256("QzY0NkU2RkE1QTc4QjE3OTA4RTdENzY5"),
        firebase: TestKey::rs256("a3c1f2e49b0d7c6e5f8a1b2c3d4e5f6a7b8c9d0e"),
    })
}

#[derive(Clone)]
pub struct FakeIssuer {
    pub shape: Shape,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    state: Arc<IssuerState>,
}

struct IssuerState {
    shape: Shape,
    issuer: String,
    jwks_uri: String,
    jwks: Mutex<Value>,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
    discovery_failing: AtomicBool,
    jwks_failing: AtomicBool,
}

impl FakeIssuer {
    pub async fn start(shape: Shape, keys: &[&TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (issuer, jwks_uri) = match shape {
            Shape::Clerk => (url.clone(), format!("{url}/.well-known/jwks.json")),
            Shape::Auth0 => (format!("{url}/"), format!("{url}/.well-known/jwks.json")),
            Shape::Firebase => (
                format!("{url}/{FIREBASE_PROJECT}"),
                format!("{url}{FIREBASE_JWKS_PATH}"),
            ),
        };
        let state = Arc::new(IssuerState {
            shape,
            issuer: issuer.clone(),
            jwks_uri,
            jwks: Mutex::new(jwks_of(shape, keys)),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            discovery_failing: AtomicBool::new(false),
            jwks_failing: AtomicBool::new(false),
        });
        let mut app = axum::Router::new();
        app = match shape {
            Shape::Clerk | Shape::Auth0 => app
                .route("/.well-known/openid-configuration", get(serve_discovery))
                .route("/.well-known/jwks.json", get(serve_jwks)),
            Shape::Firebase => app.route(FIREBASE_JWKS_PATH, get(serve_jwks)),
        };
        let app = app.with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            shape,
            url,
            issuer,
            state,
        }
    }

    /// Its entry in `THIRD_PARTY_ISSUERS`, as the docs' table writes it for this provider.
    pub fn entry(&self) -> String {
        match self.shape {
            Shape::Clerk => self.issuer.clone(),
            Shape::Auth0 => format!("{}|aud={AUTH0_CLIENT_ID}", self.issuer),
            Shape::Firebase => format!(
                "{}={}|aud={FIREBASE_PROJECT}",
                self.issuer, self.state.jwks_uri
            ),
        }
    }

    /// The token a signed-in user's browser holds, with `role: authenticated`.
    pub fn claims(&self, sub: &str) -> Value {
        let now = now_secs();
        match self.shape {
            Shape::Clerk => json!({
                "azp": "https://app.example.com",
                "exp": now + 60,
                "fva": [0, -1],
                "iat": now,
                "iss": self.issuer,
                "nbf": now - 10,
                "sid": "sess_2kXA0oJ3vD8cWm5Lq1rT9yBn6Ue",
                "sub": sub,
                "v": 2,
                "role": "authenticated",
            }),
            Shape::Auth0 => json!({
                "nickname": "ada",
                "name": "ada@example.com",
                "picture": "https://s.gravatar.com/avatar/0?s=480",
                "updated_at": "2026-11-24T08:00:00.000Z",
                "email": "ada@example.com",
                "email_verified": true,
                "iss": self.issuer,
                "aud": AUTH0_CLIENT_ID,
                "sub": sub,
                "iat": now,
                "exp": now + 36_000,
                "sid": "Xb1nT0kQ3rVw8mZc5yH2pLd9sG4fJa7E",
                "nonce": "bm9uY2UtZm9yLXRlc3Rz",
                "role": "authenticated",
            }),
            Shape::Firebase => json!({
                "role": "authenticated",
                "iss": self.issuer,
                "aud": FIREBASE_PROJECT,
                "auth_time": now,
                "user_id": sub,
                "sub": sub,
                "iat": now,
                "exp": now + 3600,
                "email": "ada@example.com",
                "email_verified": true,
                "firebase": {
                    "identities": {"email": ["ada@example.com"]},
                    "sign_in_provider": "password",
                },
            }),
        }
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().unwrap() = jwks_of(self.shape, keys);
    }

    /// While on, the discovery document answers 500.
    pub fn set_discovery_failing(&self, failing: bool) {
        self.state
            .discovery_failing
            .store(failing, Ordering::SeqCst);
    }

    /// While on, the JWKS answers 500.
    pub fn set_jwks_failing(&self, failing: bool) {
        self.state.jwks_failing.store(failing, Ordering::SeqCst);
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn jwks_uri(&self) -> &str {
        &self.state.jwks_uri
    }
}

/// A key as this provider publishes it.
fn jwk_of(shape: Shape, key: &TestKey) -> Value {
    let mut jwk = key.public_jwk.clone();
    let object = jwk.as_object_mut().unwrap();
    object.remove("key_ops");
    object.insert("alg".into(), json!(format!("{:?}", key.alg)));
    if shape == Shape::Auth0 {
        // Auth0 adds the signing certificate; the service reads neither field. The stand-in
        // fills them with the key's own DER, for their shape only.
        let der = key
            .public_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect::<String>();
        object.insert("x5t".into(), json!(super::b64(&der.as_bytes()[..20])));
        object.insert("x5c".into(), json!([der]));
    }
    jwk
}

fn jwks_of(shape: Shape, keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| jwk_of(shape, key)).collect::<Vec<_>>() })
}

async fn serve_discovery(State(state): State<Arc<IssuerState>>) -> Response {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if state.discovery_failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
    }
    let issuer = &state.issuer;
    let base = issuer.trim_end_matches('/');
    let document = match state.shape {
        Shape::Clerk => json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "revocation_endpoint": format!("{base}/oauth/token/revoke"),
            "userinfo_endpoint": format!("{base}/oauth/userinfo"),
            "jwks_uri": state.jwks_uri,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "public_metadata", "private_metadata"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none", "client_secret_post"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "email_verified", "name"],
            "code_challenge_methods_supported": ["S256"],
            "backchannel_logout_supported": false,
            "frontchannel_logout_supported": false,
        }),
        Shape::Auth0 => json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "device_authorization_endpoint": format!("{base}/oauth/device/code"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "mfa_challenge_endpoint": format!("{base}/mfa/challenge"),
            "jwks_uri": state.jwks_uri,
            "registration_endpoint": format!("{base}/oidc/register"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "scopes_supported": ["openid", "profile", "offline_access", "name", "email", "email_verified"],
            "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name", "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number", "picture", "sub"],
            "request_uri_parameter_supported": false,
            "request_parameter_supported": false,
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "PS256"],
            "end_session_endpoint": format!("{base}/oidc/logout"),
        }),
        Shape::Firebase => unreachable!("served only for Clerk and Auth0"),
    };
    Json(document).into_response()
}

async fn serve_jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if state.jwks_failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
    }
    let cache_control = match state.shape {
        Shape::Clerk => "public, max-age=3600",
        Shape::Auth0 => "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400",
        Shape::Firebase => "public, max-age=22981, must-revalidate, no-transform",
    };
    let document = state.jwks.lock().unwrap().clone();
    ([(header::CACHE_CONTROL, cache_control)], Json(document)).into_response()
}

/// Waits until `/readyz` reports every third-party issuer ready.
pub async fn wait_until_issuers_ready(app: &TestApp) {
    for _ in 0..250 {
        let body: Value = app.get("/readyz").await.json().await.unwrap();
        let issuers = body["issuers"].as_array().cloned().unwrap_or_default();
        if !issuers.is_empty() && issuers.iter().all(|issuer| issuer["status"] == "ready") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the third-party issuers did not become ready");
}
