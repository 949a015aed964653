//! A local stand-in for the Telnyx API's telephony credential endpoints, shaped after Telnyx's
//! API reference (developers.telnyx.com, team-telnyx/openapi): bearer API key, `{"data": …}`
//! bodies, `{"errors": [{"code", "title", "detail"}]}` errors, the login token as `text/plain`.
//! It counts every call and can fail on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::now_secs;

pub const TELNYX_API_KEY: &str = "KEY0192TEST_telnyx_api_key_3c9e1f";
pub const CONNECTION_ID: &str = "1684641123236054244";
/// The SIP password of the credential connection itself, which no output may show.
pub const CONNECTION_PASSWORD: &str = "connection-sip-password-77ac1e";

/// What the stand-in does with the next requests.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Normal,
    /// Answer `status` (with `Retry-After` when given) to the next `times` requests.
    Fail {
        status: u16,
        retry_after: Option<String>,
        times: usize,
    },
    /// Never answer.
    Hang,
}

#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub id: String,
    pub name: String,
    pub sip_username: String,
    pub sip_password: String,
    pub resource_id: String,
    pub expired: bool,
    pub created_at: String,
}

struct TelnyxState {
    credentials: Mutex<Vec<StoredCredential>>,
    behaviour: Mutex<Behaviour>,
    token_lifetime: Mutex<Duration>,
    /// Every request that reached the stand-in, by endpoint: list, create, token, delete.
    requests: Mutex<HashMap<&'static str, usize>>,
    request_times: Mutex<Vec<Instant>>,
    minted: Mutex<Vec<String>>,
    next_id: AtomicUsize,
}

pub struct FakeTelnyx {
    /// The API base, `http://127.0.0.1:<port>/v2`, for `TELNYX_API_BASE_URL`.
    pub url: String,
    state: Arc<TelnyxState>,
    _shutdown: oneshot::Sender<()>,
}

impl FakeTelnyx {
    pub async fn start() -> Self {
        let state = Arc::new(TelnyxState {
            credentials: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour::Normal),
            token_lifetime: Mutex::new(Duration::from_secs(86_400)),
            requests: Mutex::new(HashMap::new()),
            request_times: Mutex::new(Vec::new()),
            minted: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(1),
        });
        let api = axum::Router::new()
            .route(
                "/v2/telephony_credentials",
                get(list_credentials).post(create_credential),
            )
            .route("/v2/telephony_credentials/{id}/token", post(create_token))
            .route("/v2/telephony_credentials/{id}", delete(delete_credential))
            .route("/v2/credential_connections/{id}", get(get_connection))
            .layer(middleware::from_fn_with_state(state.clone(), gatekeeper))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, api)
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            state,
            _shutdown: shutdown,
        }
    }

    /// The variables that point a service in per_user mode at this stand-in.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CREDENTIAL_MODE", "per_user".into()),
            ("TELNYX_API_KEY", TELNYX_API_KEY.into()),
            ("TELNYX_WEBRTC_CONNECTION_ID", CONNECTION_ID.into()),
            ("TELNYX_API_BASE_URL", self.url.clone()),
        ]
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self.state.token_lifetime.lock().unwrap() = lifetime;
    }

    /// Requests that reached an endpoint (`list`, `create`, `token`, `delete`), failed ones too.
    pub fn requests(&self, endpoint: &str) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_requests(&self) -> usize {
        self.state.requests.lock().unwrap().values().sum()
    }

    pub fn request_times(&self) -> Vec<Instant> {
        self.state.request_times.lock().unwrap().clone()
    }

    /// Every login token minted so far, in order.
    pub fn minted(&self) -> Vec<String> {
        self.state.minted.lock().unwrap().clone()
    }

    pub fn credentials(&self) -> Vec<StoredCredential> {
        self.state.credentials.lock().unwrap().clone()
    }

    /// Adds a credential as if someone (another replica, the portal) had created it.
    pub fn insert(&self, name: &str, created_at: &str) -> StoredCredential {
        let credential = new_credential(&self.state, name, CONNECTION_ID, Some(created_at));
        self.state
            .credentials
            .lock()
            .unwrap()
            .push(credential.clone());
        credential
    }

    /// Marks a credential expired, as Telnyx does when its `expires_at` passes.
    pub fn expire(&self, id: &str) {
        for credential in self.state.credentials.lock().unwrap().iter_mut() {
            if credential.id == id {
                credential.expired = true;
            }
        }
    }

    /// Deletes a credential behind the service's back (in the portal, say).
    pub fn remove(&self, id: &str) {
        self.state
            .credentials
            .lock()
            .unwrap()
            .retain(|credential| credential.id != id);
    }
}

fn new_credential(
    state: &TelnyxState,
    name: &str,
    connection_id: &str,
    created_at: Option<&str>,
) -> StoredCredential {
    let n = state.next_id.fetch_add(1, Ordering::SeqCst);
    // Telnyx's format; later creations sort later.
    let created_at = created_at.map_or_else(
        || format!("2026-11-24T12:{:02}:{:02}", (n / 60) % 60, n % 60),
        str::to_owned,
    );
    StoredCredential {
        id: format!("c215ade3-0d39-418e-94be-{n:012}"),
        name: name.to_owned(),
        sip_username: format!("gencred{n:04}TestUser"),
        sip_password: format!("sip-pass-{n:04}-a92dbcfb60184a8c"),
        resource_id: format!("connection:{connection_id}"),
        expired: false,
        created_at,
    }
}

/// The record as Telnyx returns it, `sip_password` included; `expired` as a boolean or, as some
/// answers have it, a string.
fn record(credential: &StoredCredential, expired_as_string: bool) -> Value {
    let expired = if expired_as_string {
        json!(credential.expired.to_string())
    } else {
        json!(credential.expired)
    };
    json!({
        "id": credential.id,
        "record_type": "credential",
        "name": credential.name,
        "expired": expired,
        "user_id": "user-id",
        "resource_id": credential.resource_id,
        "sip_password": credential.sip_password,
        "sip_username": credential.sip_username,
        "created_at": credential.created_at,
        "expires_at": null,
        "updated_at": credential.created_at,
    })
}

fn errors(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "code": code, "title": title, "detail": detail }] })),
    )
        .into_response()
}

/// Counts the call, checks the API key, then fails, hangs or passes it on.
async fn gatekeeper(
    State(state): State<Arc<TelnyxState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let endpoint = match *request.method() {
        axum::http::Method::GET if path.starts_with("/v2/credential_connections/") => "connection",
        axum::http::Method::GET => "list",
        axum::http::Method::DELETE => "delete",
        _ if path.ends_with("/token") => "token",
        _ => "create",
    };
    *state.requests.lock().unwrap().entry(endpoint).or_default() += 1;
    state.request_times.lock().unwrap().push(Instant::now());

    let behaviour = {
        let mut behaviour = state.behaviour.lock().unwrap();
        let current = behaviour.clone();
        if let Behaviour::Fail { times, .. } = &mut *behaviour {
            *times -= 1;
            if *times == 0 {
                *behaviour = Behaviour::Normal;
            }
        }
        current
    };
    match behaviour {
        Behaviour::Normal => {}
        Behaviour::Hang => std::future::pending::<()>().await,
        Behaviour::Fail {
            status,
            retry_after,
            ..
        } => {
            let status = StatusCode::from_u16(status).unwrap();
            let mut response = errors(status, "10011", "Injected failure", "the test asked for it");
            if let Some(retry_after) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&retry_after).unwrap(),
                );
            }
            return response;
        }
    }

    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {TELNYX_API_KEY}").as_str());
    if !authorized {
        return errors(
            StatusCode::UNAUTHORIZED,
            "10009",
            "Authentication failed",
            "The API key provided is invalid or has been revoked.",
        );
    }
    next.run(request).await
}

async fn list_credentials(
    State(state): State<Arc<TelnyxState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let matches = |credential: &StoredCredential| {
        query
            .get("filter[name]")
            .is_none_or(|name| &credential.name == name)
            && query
                .get("filter[resource_id]")
                .is_none_or(|resource| &credential.resource_id == resource)
            && query
                .get("filter[status]")
                .is_none_or(|status| match status.as_str() {
                    "active" => !credential.expired,
                    "expired" => credential.expired,
                    _ => true,
                })
    };
    let data: Vec<Value> = state
        .credentials
        .lock()
        .unwrap()
        .iter()
        .filter(|credential| matches(credential))
        .map(|credential| record(credential, true))
        .collect();
    let total = data.len();
    Json(json!({
        "data": data,
        "meta": { "total_pages": 1, "total_results": total, "page_number": 1, "page_size": 250 },
    }))
    .into_response()
}

/// `GET /credential_connections/{id}` (`RetrieveCredentialConnection`), with the connection's own
/// SIP user name and password in it, as Telnyx sends them.
async fn get_connection(Path(id): Path<String>) -> Response {
    if id != CONNECTION_ID {
        return errors(
            StatusCode::NOT_FOUND,
            "10005",
            "Resource not found",
            "The requested resource or URL could not be found.",
        );
    }
    Json(json!({ "data": {
        "id": CONNECTION_ID,
        "record_type": "credential_connection",
        "active": true,
        "user_name": "connectionuser123",
        "password": CONNECTION_PASSWORD,
        "connection_name": "WebRTC users",
        "created_at": "2026-01-05T10:00:00.000Z",
        "updated_at": "2026-01-05T10:00:00.000Z",
        "sip_uri_calling_preference": "disabled",
        "webhook_event_url": null,
        "tags": [],
    }}))
    .into_response()
}

async fn create_credential(State(state): State<Arc<TelnyxState>>, body: String) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "10015",
            "Bad Request",
            "The request body is not JSON.",
        );
    };
    let connection_id = body["connection_id"].as_str().unwrap_or_default();
    if connection_id != CONNECTION_ID {
        return errors(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10015",
            "Invalid value for connection_id",
            "The connection does not exist or is not a credential connection.",
        );
    }
    let name = body["name"].as_str().unwrap_or_default();
    let credential = new_credential(&state, name, connection_id, None);
    state.credentials.lock().unwrap().push(credential.clone());
    (
        StatusCode::CREATED,
        Json(json!({ "data": record(&credential, false) })),
    )
        .into_response()
}

async fn create_token(State(state): State<Arc<TelnyxState>>, Path(id): Path<String>) -> Response {
    let credential = state
        .credentials
        .lock()
        .unwrap()
        .iter()
        .find(|credential| credential.id == id)
        .cloned();
    let Some(credential) = credential else {
        return errors(
            StatusCode::NOT_FOUND,
            "10005",
            "Resource not found",
            "Credential not found.",
        );
    };
    if credential.expired {
        return errors(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10015",
            "Credential expired",
            "Cannot create a token for an expired credential.",
        );
    }
    let lifetime = state.token_lifetime.lock().unwrap().as_secs();
    let now = now_secs();
    let claims = json!({
        "aud": "telnyx_telephony",
        "exp": now + lifetime,
        "iat": now,
        "iss": "telnyx_telephony",
        "jti": format!("jti-{}", state.next_id.fetch_add(1, Ordering::SeqCst)),
        "nbf": now - 1,
        "sub": credential.id,
        "typ": "access",
    });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(b"telnyx-side-secret-the-service-never-sees"),
    )
    .unwrap();
    state.minted.lock().unwrap().push(token.clone());
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "text/plain")],
        token,
    )
        .into_response()
}

async fn delete_credential(
    State(state): State<Arc<TelnyxState>>,
    Path(id): Path<String>,
) -> Response {
    let mut credentials = state.credentials.lock().unwrap();
    let Some(index) = credentials
        .iter()
        .position(|credential| credential.id == id)
    else {
        return errors(
            StatusCode::NOT_FOUND,
            "10005",
            "Resource not found",
            "Credential not found.",
        );
    };
    let removed = credentials.remove(index);
    Json(json!({ "data": record(&removed, false) })).into_response()
}
