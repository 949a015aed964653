//! Test harness: the real service on 127.0.0.1:0, a local stand-in for Supabase's JWKS and
//! `/auth/v1/user` endpoints, and signing keys and tokens shaped like Supabase's.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use telnyx_webrtc_credentials::config::{Config, JwksTiming, lookup_from};
use telnyx_webrtc_credentials::server::Server;
use tokio::sync::oneshot;

pub mod process;
pub mod redis;
pub mod telnyx;

pub const JWT_SECRET: &str = "test-only-legacy-jwt-secret-0123456789abcdef";
pub const SIP_USERNAME: &str = "gencredTestUser";
pub const SIP_PASSWORD: &str = "test-sip-password-8d1f";
pub const ALLOWED_ORIGIN: &str = "https://app.example.com";
/// The anon key the fake Supabase's gateway accepts as `apikey`.
pub const ANON_KEY: &str = "test-anon-key-5b0f2c9e";
/// The project's secret key, as `prune` sends it to the admin API.
pub const SERVICE_ROLE_KEY: &str = "sb_secret_test_service_role_1f3a9c";

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private signing key and the public JWK Supabase would publish for it.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub public_jwk: Value,
    /// The public key as PEM (SubjectPublicKeyInfo), for algorithm-confusion attacks.
    pub public_pem: String,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let spki = pair.public_key().as_der().unwrap();
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_ref()),
            spki.as_ref(),
        )
    }

    pub fn rs256(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref());
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_der(pkcs1),
            spki.as_ref(),
        )
    }

    pub fn eddsa(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let spki = pair.public_key().as_der().unwrap();
        Self::new(
            kid,
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(der.as_ref()),
            spki.as_ref(),
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey, spki: &[u8]) -> Self {
        let mut public_jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        public_jwk["kid"] = json!(kid);
        public_jwk["use"] = json!("sig");
        public_jwk["key_ops"] = json!(["verify"]);
        let body = STANDARD.encode(spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            public_jwk,
            public_pem,
        }
    }

    /// Signs `claims` the way Supabase does: `alg`, `kid` and `typ` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(header, claims)
    }

    pub fn sign_with_header(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// PKCS#8 wraps an RSA key's PKCS#1 `RSAPrivateKey` in a fixed 26-byte prefix for 2048-bit keys.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> &[u8] {
    const RSA_ALGORITHM_ID: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    assert_eq!(&pkcs8[4..7], &[0x02, 0x01, 0x00], "PKCS#8 version");
    assert_eq!(&pkcs8[7..22], &RSA_ALGORITHM_ID, "rsaEncryption");
    assert_eq!(&pkcs8[22..24], &[0x04, 0x82], "OCTET STRING");
    &pkcs8[26..]
}

/// The project's keys (made once per test binary: RSA key generation is slow), plus an
/// attacker's key the JWKS never lists.
pub struct Keys {
    pub es256: TestKey,
    pub rs256: TestKey,
    pub eddsa: TestKey,
    pub attacker: TestKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        es256: TestKey::es256("es256-key-1"),
        rs256: TestKey::rs256("rs256-key-1"),
        eddsa: TestKey::eddsa("ed25519-key-1"),
        attacker: TestKey::es256("es256-key-1"),
    })
}

/// A UUID that stands for `name` (`ada` → always the same id): Supabase ids users and sessions
/// by UUID, and its `/auth/v1/user` refuses a token whose `sub` is not one.
pub fn uuid_for(name: &str) -> String {
    // FNV-1a: stable across runs, which is all that is needed here.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        hash >> 32,
        (hash >> 16) & 0xffff,
        hash & 0xffff_ffff_ffff
    )
}

/// Signs with the legacy shared secret, with the `kid` Supabase gives it.
pub fn sign_hs256(claims: &Value) -> String {
    sign_hs256_with(JWT_SECRET.as_bytes(), claims)
}

pub fn sign_hs256_with(secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("legacy-hs256".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A token assembled by hand from raw JSON and signature bytes, for shapes no library makes.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(claims.to_string()),
        b64(signature)
    )
}

/// The claims of a signed-in user's access token, as Supabase Auth issues them.
pub fn user_claims(issuer: &str) -> Value {
    let now = now_secs();
    json!({
        "iss": issuer,
        "sub": "8d2f54a0-6c3b-4a8e-9f1d-2b7c0e5a9d41",
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": "ada@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email_verified": true},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": "4f1c2b7e-3a9d-4e6f-8b0c-1d2e3f4a5b6c",
        "is_anonymous": false,
    })
}

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

/// The environment a test deployment runs with.
pub fn test_env(supabase_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BIND_ADDR", "127.0.0.1:0".into()),
        ("SUPABASE_URL", supabase_url.into()),
        ("SUPABASE_JWT_SECRET", JWT_SECRET.into()),
        ("TELNYX_WEBRTC_USERNAME", SIP_USERNAME.into()),
        ("TELNYX_WEBRTC_PASSWORD", SIP_PASSWORD.into()),
        ("CORS_ALLOWED_ORIGINS", ALLOWED_ORIGIN.into()),
    ]
}

/// An address on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// The real service, serving on 127.0.0.1 with a fake Supabase behind it.
pub struct TestApp {
    /// `METRICS_BIND_ADDR`'s address, when the test set it.
    pub metrics_address: Option<String>,
    pub address: String,
    pub client: reqwest::Client,
    pub supabase: FakeSupabase,
    shutdown: Option<oneshot::Sender<()>>,
}

pub struct Options {
    pub env: Vec<(&'static str, String)>,
    pub timing: JwksTiming,
    /// Wait for the first JWKS fetch before returning.
    pub wait_until_ready: bool,
    pub supabase: Option<FakeSupabase>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            timing: JwksTiming::default(),
            wait_until_ready: true,
            supabase: None,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let keys = keys();
        let supabase = match options.supabase {
            Some(supabase) => supabase,
            None => FakeSupabase::start(&[&keys.es256, &keys.rs256, &keys.eddsa]).await,
        };
        let mut env = test_env(&supabase.url);
        env.retain(|(name, _)| !options.env.iter().any(|(other, _)| other == name));
        env.extend(options.env);
        let mut config =
            Config::from_lookup(lookup_from(env.iter().map(|(k, v)| (*k, v.as_str())))).unwrap();
        config.auth.jwks = options.timing;
        let server = Server::bind(&config).await.unwrap();
        let address = format!("http://{}", server.local_addr());
        let metrics_address = server
            .metrics_addr()
            .map(|address| format!("http://{address}"));
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(server.serve_until(async move {
            let _ = stop.await;
        }));
        let app = Self {
            address,
            metrics_address,
            client: reqwest::Client::new(),
            supabase,
            shutdown: Some(shutdown),
        };
        if options.wait_until_ready {
            app.wait_until_ready().await;
        }
        app
    }

    pub async fn with_timing(timing: JwksTiming) -> Self {
        Self::spawn_with(Options {
            timing,
            ..Options::default()
        })
        .await
    }

    pub async fn wait_until_ready(&self) {
        for _ in 0..250 {
            if self.get("/readyz").await.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the service did not become ready");
    }

    pub fn issuer(&self) -> String {
        self.supabase.issuer()
    }

    pub fn claims(&self) -> Value {
        user_claims(&self.issuer())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// `GET /credentials` with `Authorization: Bearer <token>`.
    pub async fn get_credentials(&self, token: &str) -> reqwest::Response {
        self.credentials_with_header(reqwest::Method::GET, Some(&format!("Bearer {token}")))
            .await
    }

    /// The status of `GET /credentials` with this bearer token.
    pub async fn status_for(&self, token: &str) -> u16 {
        self.get_credentials(token).await.status().as_u16()
    }

    /// `/credentials` with any method and any `Authorization` header (or none).
    pub async fn credentials_with_header(
        &self,
        method: reqwest::Method,
        authorization: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}/credentials", self.address));
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.send().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Reads an error response and checks the shape every error shares.
pub async fn error_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], json!(false), "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|message| message.len() > 10),
        "{body}"
    );
    assert!(body["code"].as_str().is_some(), "{body}");
    (status, body)
}

/// The status and `code` of an error response, after checking the shape every error shares.
pub async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let (status, body) = error_body(response).await;
    (status, body["code"].as_str().unwrap().to_owned())
}
