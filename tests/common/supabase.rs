//! A local stand-in for Supabase: its JWKS, `/auth/v1/user`, `/auth/v1/settings` and the admin
//! user endpoint, with its API gateway's `apikey` check in front.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ANON_KEY, SERVICE_ROLE_KEY, TestKey};

/// A stand-in for Supabase's `GET /auth/v1/.well-known/jwks.json`, counting fetches and able
/// to fail or stall on demand, and for `GET /auth/v1/user`, which knows which sessions were
/// signed out and which users deleted.
#[derive(Clone)]
pub struct FakeSupabase {
    pub url: String,
    state: Arc<FakeState>,
}

struct FakeState {
    jwks: Mutex<Value>,
    fetches: AtomicUsize,
    failing: AtomicBool,
    delay: Mutex<Duration>,
    user: UserEndpoint,
}

/// The state behind the fake `/auth/v1/user`.
struct UserEndpoint {
    calls: AtomicUsize,
    failing: AtomicBool,
    /// While false, requests wait (after being counted) until it turns true.
    open: tokio::sync::watch::Sender<bool>,
    revoked_sessions: Mutex<HashSet<String>>,
    deleted_users: Mutex<HashSet<String>>,
    /// While on, the admin users endpoint answers 500.
    admin_failing: AtomicBool,
    admin_calls: AtomicUsize,
}

impl FakeSupabase {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = Arc::new(FakeState {
            jwks: Mutex::new(jwks_of(keys)),
            fetches: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
            user: UserEndpoint {
                calls: AtomicUsize::new(0),
                failing: AtomicBool::new(false),
                open: tokio::sync::watch::Sender::new(true),
                revoked_sessions: Mutex::default(),
                deleted_users: Mutex::default(),
                admin_failing: AtomicBool::new(false),
                admin_calls: AtomicUsize::new(0),
            },
        });
        let app = axum::Router::new()
            .route("/auth/v1/.well-known/jwks.json", get(serve_jwks))
            .route("/auth/v1/user", get(serve_user))
            .route("/auth/v1/settings", get(serve_settings))
            .route("/auth/v1/admin/users/{id}", get(serve_admin_user))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    pub fn issuer(&self) -> String {
        format!("{}/auth/v1", self.url)
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        *self.state.jwks.lock().unwrap() = jwks_of(keys);
    }

    pub fn set_document(&self, document: Value) {
        *self.state.jwks.lock().unwrap() = document;
    }

    /// While on, every fetch gets a 500.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// How many requests `/auth/v1/user` has received (including held ones).
    pub fn user_calls(&self) -> usize {
        self.state.user.calls.load(Ordering::SeqCst)
    }

    /// Signs a session out, as `supabase.auth.signOut()` would.
    pub fn revoke_session(&self, session_id: &str) {
        let mut revoked = self.state.user.revoked_sessions.lock().unwrap();
        revoked.insert(session_id.to_owned());
    }

    /// Deletes a user, as `supabase.auth.admin.deleteUser()` would.
    pub fn delete_user(&self, user_id: &str) {
        let mut deleted = self.state.user.deleted_users.lock().unwrap();
        deleted.insert(user_id.to_owned());
    }

    /// While on, `/auth/v1/admin/users/{id}` answers 500.
    pub fn set_admin_failing(&self, failing: bool) {
        self.state
            .user
            .admin_failing
            .store(failing, Ordering::SeqCst);
    }

    /// How many requests `/auth/v1/admin/users/{id}` has received.
    pub fn admin_calls(&self) -> usize {
        self.state.user.admin_calls.load(Ordering::SeqCst)
    }

    /// While on, `/auth/v1/user` answers 500.
    pub fn set_user_endpoint_failing(&self, failing: bool) {
        self.state.user.failing.store(failing, Ordering::SeqCst);
    }

    /// Holds every `/auth/v1/user` request in flight until [`Self::release_user_requests`].
    pub fn hold_user_requests(&self) {
        self.state.user.open.send_replace(false);
    }

    pub fn release_user_requests(&self) {
        self.state.user.open.send_replace(true);
    }

    /// Waits until `/auth/v1/user` has received `count` requests.
    pub async fn wait_for_user_calls(&self, count: usize) {
        for _ in 0..1000 {
            if self.user_calls() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "/auth/v1/user received {} calls, not {count}",
            self.user_calls()
        );
    }
}

fn jwks_of(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.public_jwk.clone()).collect::<Vec<_>>() })
}

async fn serve_jwks(State(state): State<Arc<FakeState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    if state.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
    }
    let document = state.jwks.lock().unwrap().clone();
    (
        [(header::CACHE_CONTROL, "public, max-age=600")],
        Json(document),
    )
        .into_response()
}

/// Supabase Auth's error body (`HTTPError` in supabase/auth), with its `x-sb-error-code` header.
fn auth_error(status: StatusCode, error_code: &str, msg: &str) -> Response {
    (
        status,
        [("x-sb-error-code", error_code.to_owned())],
        Json(json!({ "code": status.as_u16(), "error_code": error_code, "msg": msg })),
    )
        .into_response()
}

/// The API gateway's refusal of a missing or unknown `apikey`, before Auth sees the request.
fn gateway_refusal(headers: &HeaderMap) -> Option<Response> {
    let message = match headers.get("apikey").map(|key| key.as_bytes()) {
        None => "No API key found in request",
        Some(key) if key != ANON_KEY.as_bytes() => "Invalid API key",
        Some(_) => return None,
    };
    Some(
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": message })),
        )
            .into_response(),
    )
}

/// `GET /auth/v1/settings`: Auth answers anyone; the gateway wants the `apikey`.
async fn serve_settings(headers: HeaderMap) -> Response {
    if let Some(refusal) = gateway_refusal(&headers) {
        return refusal;
    }
    Json(json!({
        "external": { "email": true, "phone": false, "anonymous_users": false },
        "disable_signup": false,
        "mailer_autoconfirm": false,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
    }))
    .into_response()
}

/// `GET /auth/v1/user` as Supabase serves it: the API gateway checks `apikey` first, then Auth
/// reads the bearer token (signature checking is left to the service under test) and answers
/// with the user, or 403 when the user or the session no longer exists. Its claim checks are
/// supabase/auth's: `sub` must be a UUID (400 `bad_jwt`, `maybeLoadUserOrSession` in
/// internal/api/auth.go), and the token's first `aud` must be the request's audience (400
/// `validation_failed`, `UserGet` in internal/api/user.go), which is the `X-JWT-AUD` header, else
/// the token's own first `aud`, else the project's default (`requestAud` in helpers.go).
async fn serve_user(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let endpoint = &state.user;
    endpoint.calls.fetch_add(1, Ordering::SeqCst);
    let _ = endpoint.open.subscribe().wait_for(|open| *open).await;
    if endpoint.failing.load(Ordering::SeqCst) {
        return auth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure",
        );
    }
    if let Some(refusal) = gateway_refusal(&headers) {
        return refusal;
    }
    let claims = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| token.split('.').nth(1))
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok());
    let Some(claims) = claims else {
        return auth_error(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a Bearer token",
        );
    };
    let sub = claims["sub"].as_str().unwrap_or_default();
    let session_id = claims["session_id"].as_str().unwrap_or_default();
    if !is_uuid(sub) {
        return auth_error(
            StatusCode::BAD_REQUEST,
            "bad_jwt",
            "invalid claim: sub claim must be a UUID",
        );
    }
    let token_audiences: Vec<&str> = match &claims["aud"] {
        Value::String(aud) => vec![aud.as_str()],
        Value::Array(auds) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let request_audience = headers
        .get("x-jwt-aud")
        .and_then(|value| value.to_str().ok())
        .filter(|aud| !aud.is_empty())
        .or_else(|| {
            token_audiences
                .first()
                .copied()
                .filter(|aud| !aud.is_empty())
        })
        .unwrap_or("authenticated");
    if token_audiences.first() != Some(&request_audience) {
        return auth_error(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Token audience doesn't match request audience",
        );
    }
    if endpoint.deleted_users.lock().unwrap().contains(sub) {
        return auth_error(
            StatusCode::FORBIDDEN,
            "user_not_found",
            "User from sub claim in JWT does not exist",
        );
    }
    if endpoint
        .revoked_sessions
        .lock()
        .unwrap()
        .contains(session_id)
    {
        return auth_error(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session from session_id claim in JWT does not exist",
        );
    }
    Json(json!({
        "id": sub,
        "aud": "authenticated",
        "role": "authenticated",
        "email": claims["email"],
        "app_metadata": claims["app_metadata"],
        "user_metadata": claims["user_metadata"],
        "identities": [],
        "created_at": "2026-01-01T00:00:00Z",
        "is_anonymous": false,
    }))
    .into_response()
}

/// `GET /auth/v1/admin/users/{id}` as Supabase serves it (supabase/auth internal/api/admin.go):
/// the gateway wants the secret key as `apikey`, Auth wants it as the bearer
/// (`requireAdminCredentials`), then `loadUser` answers 404 `validation_failed` for an id that is
/// not a UUID and 404 `user_not_found` for a user that does not exist. Every UUID is a user
/// here until [`FakeSupabase::delete_user`].
async fn serve_admin_user(
    State(state): State<Arc<FakeState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let endpoint = &state.user;
    endpoint.admin_calls.fetch_add(1, Ordering::SeqCst);
    if endpoint.admin_failing.load(Ordering::SeqCst) {
        return auth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure",
        );
    }
    if headers.get("apikey").map(|key| key.as_bytes()) != Some(SERVICE_ROLE_KEY.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Invalid API key"})),
        )
            .into_response();
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if bearer != Some(format!("Bearer {SERVICE_ROLE_KEY}").as_str()) {
        return auth_error(StatusCode::FORBIDDEN, "not_admin", "User not allowed");
    }
    if !is_uuid(&id) {
        return auth_error(
            StatusCode::NOT_FOUND,
            "validation_failed",
            "user_id must be an UUID",
        );
    }
    if endpoint.deleted_users.lock().unwrap().contains(&id) {
        return auth_error(StatusCode::NOT_FOUND, "user_not_found", "User not found");
    }
    Json(json!({ "id": id, "aud": "authenticated", "role": "authenticated" })).into_response()
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|group| group.chars().all(|c| c.is_ascii_hexdigit()))
}
