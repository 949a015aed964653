//! Test harness: the real service on 127.0.0.1:0 as `TestApp`, with one helper per endpoint.
//! Keys and tokens are in `keys`, the fake Supabase in `supabase`, the fake third-party identity
//! providers in `issuer`, the fake Telnyx in `telnyx`.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::time::Duration;

use axum::http::header;
use serde_json::{Value, json};
use telnyx_webrtc_credentials::config::{Config, JwksTiming, lookup_from};
use telnyx_webrtc_credentials::server::Server;
use tokio::sync::oneshot;

pub mod issuer;
pub mod keys;
pub mod process;
pub mod redis;
pub mod supabase;
pub mod telnyx;

pub use keys::*;
pub use supabase::*;

pub const JWT_SECRET: &str = "test-only-legacy-jwt-secret-0123456789abcdef";
pub const SIP_USERNAME: &str = "gencredTestUser";
pub const SIP_PASSWORD: &str = "test-sip-password-8d1f";
pub const ALLOWED_ORIGIN: &str = "https://app.example.com";
/// The anon key the fake Supabase's gateway accepts as `apikey`.
pub const ANON_KEY: &str = "test-anon-key-5b0f2c9e";
/// The project's secret key, as `prune` sends it to the admin API.
pub const SERVICE_ROLE_KEY: &str = "sb_secret_test_service_role_1f3a9c";

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

/// An address on 127.0.0.1 that is free right now (bound, then released), for the service to
/// bind. Another test may take it in between, so it is no proof that nothing listens there:
/// use [`ClosedPort`] for that.
pub fn free_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// An address on 127.0.0.1 where connections are refused for as long as this lives: the port
/// is bound, so nothing else can take it, but never listened on.
pub struct ClosedPort {
    pub url: String,
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        Self {
            url,
            _socket: socket,
        }
    }
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

    /// The service in per_user mode against `telnyx`, with `extra` set over its variables and
    /// no per-user rate limit: these tests send many requests per user (limits.rs tests it).
    pub async fn per_user(telnyx: &telnyx::FakeTelnyx, extra: &[(&'static str, &str)]) -> Self {
        let mut env = telnyx.env();
        env.push(("RATE_LIMIT_PER_USER", "off".into()));
        for (name, value) in extra {
            env.retain(|(existing, _)| existing != name);
            env.push((name, (*value).to_owned()));
        }
        Self::spawn_with(Options {
            env,
            ..Options::default()
        })
        .await
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

    /// An HS256 access token of this app's issuer for the user `user_id`.
    pub fn token_for(&self, user_id: &str) -> String {
        let mut claims = self.claims();
        claims["sub"] = json!(user_id);
        sign_hs256(&claims)
    }

    /// The credential of a `GET /credentials` that must succeed.
    pub async fn credential(&self, token: &str) -> Value {
        let response = self.get_credentials(token).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], true);
        body["credential"].clone()
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

    /// `DELETE /credentials` with `Authorization: Bearer <token>`.
    pub async fn delete_credentials(&self, token: &str) -> reqwest::Response {
        self.credentials_with_header(reqwest::Method::DELETE, Some(&format!("Bearer {token}")))
            .await
    }

    /// The status of `GET /credentials` with this bearer token.
    pub async fn status_for(&self, token: &str) -> u16 {
        self.get_credentials(token).await.status().as_u16()
    }

    /// `method` on `path` (query included), with `Authorization: Bearer <token>` when given.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The credential of a `GET /credentials?device_id=<device>` that must succeed.
    pub async fn device_credential(&self, token: &str, device: &str) -> Value {
        let path = format!("/credentials?device_id={device}");
        let response = self.request(reqwest::Method::GET, &path, Some(token)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], true);
        body["credential"].clone()
    }

    /// `DELETE /credentials?device_id=<device>`, which must succeed.
    pub async fn delete_device(&self, token: &str, device: &str) {
        let path = format!("/credentials?device_id={device}");
        let response = self
            .request(reqwest::Method::DELETE, &path, Some(token))
            .await;
        assert_eq!(response.status(), 204, "DELETE {path}");
    }

    /// The `devices` of a `GET /devices` that must succeed.
    pub async fn devices(&self, token: &str) -> Vec<Value> {
        let response = self
            .request(reqwest::Method::GET, "/devices", Some(token))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["devices"].as_array().unwrap().clone()
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

/// The binary (`serve`) with JSON logs in per_user mode against `telnyx`, its address, and a
/// token for `user_id`.
pub async fn serve_with_json_logs(
    telnyx: &telnyx::FakeTelnyx,
    extra: &[(&'static str, &str)],
    user_id: &str,
) -> (process::Process, String, String) {
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let mut env = test_env(&supabase.url);
    env.extend(telnyx.env());
    env.push(("LOG_FORMAT", "json".into()));
    env.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    let service = process::Process::start(&["serve"], &env);
    let address = service.address().await;
    let mut claims = user_claims(&supabase.issuer());
    claims["sub"] = json!(user_id);
    (service, address, sign_hs256(&claims))
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
