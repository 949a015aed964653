//! A local stand-in for the Telnyx API's telephony credential endpoints, shaped after Telnyx's
//! API reference (developers.telnyx.com, team-telnyx/openapi `spec3.yml`): bearer API key,
//! `{"data": …}` bodies with `meta` pagination (`page[number]`, `page[size]` at most 250),
//! credentials with `expires_at` that expire by themselves, a `tag` given at create (or `PATCH`)
//! and filtered on with `filter[tag]` but, as in the spec's `TelephonyCredential`, never sent
//! back, `PATCH` to move `expires_at` (and `updated_at` with it), the login token as `text/plain`, and errors both as `{"errors": [{"code", "title", "detail"}]}`
//! and as `{"errors": {…}}`, one object. It counts every call, records what was asked, and can
//! fail on demand, including after it has done what was asked, or hold an answer until the test
//! lets it go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use super::now_secs;

pub const TELNYX_API_KEY: &str = "KEY0192TEST_telnyx_api_key_3c9e1f";
pub const CONNECTION_ID: &str = "1684641123236054244";
/// The SIP password of the credential connection itself, which no output may show.
pub const CONNECTION_PASSWORD: &str = "connection-sip-password-77ac1e";

/// The spec's `PageSize`: `maximum: 250`.
const MAX_PAGE_SIZE: usize = 250;

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
    /// Like `Fail`, for the next `times` requests to `endpoint` only.
    FailOn {
        endpoint: &'static str,
        status: u16,
        retry_after: Option<String>,
        times: usize,
    },
    /// Do what the next `times` requests to `endpoint` ask, then answer `status` instead of the
    /// result, as when the answer is lost on the way back.
    FailAfterDoing {
        endpoint: &'static str,
        status: u16,
        times: usize,
    },
    /// Do what the next `times` requests to `endpoint` ask, then hold the answer until the
    /// [`Gate`] that [`FakeTelnyx::hold_answers`] returned is opened: a slow answer that the
    /// test decides the end of.
    HoldAnswer {
        endpoint: &'static str,
        times: usize,
        open: watch::Receiver<bool>,
    },
    /// Like `HoldAnswer`, but holds the next `times` requests to `endpoint` before doing what
    /// they ask (see [`FakeTelnyx::hold_requests`]).
    HoldRequest {
        endpoint: &'static str,
        times: usize,
        open: watch::Receiver<bool>,
    },
    /// Never answer.
    Hang,
}

/// Opens the answers a [`Behaviour::HoldAnswer`] holds.
pub struct Gate(watch::Sender<bool>);

impl Gate {
    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub id: String,
    pub name: String,
    pub sip_username: String,
    pub sip_password: String,
    pub resource_id: String,
    /// `tag` as the create (or a `PATCH`) gave it; `None` for one made without.
    pub tag: Option<String>,
    /// Set by hand ([`FakeTelnyx::expire`]); a past `expires_at` expires a credential as well.
    pub expired: bool,
    pub created_at: String,
    /// `created_at` until a `PATCH` moves it.
    pub updated_at: String,
    /// As the client sent it, `None` when created without one.
    pub expires_at: Option<String>,
}

impl StoredCredential {
    pub fn is_expired(&self) -> bool {
        self.expired
            || self
                .expires_at
                .as_deref()
                .and_then(|at| humantime::parse_rfc3339_weak(at).ok())
                .is_some_and(|at| at <= SystemTime::now())
    }

    pub fn expires_at_secs(&self) -> Option<u64> {
        let at = humantime::parse_rfc3339_weak(self.expires_at.as_deref()?).ok()?;
        Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs())
    }
}

/// One request as it reached the stand-in.
#[derive(Debug, Clone)]
pub struct Seen {
    pub endpoint: &'static str,
    pub query: HashMap<String, String>,
    pub body: Value,
    pub at: Instant,
}

struct TelnyxState {
    credentials: Mutex<Vec<StoredCredential>>,
    behaviour: Mutex<Behaviour>,
    token_lifetime: Mutex<Duration>,
    /// Serve pages of at most this many, whatever `page[size]` asks (to reach page 2 cheaply).
    page_cap: Mutex<usize>,
    seen: Mutex<Vec<Seen>>,
    /// When each credential was created, by id, on this process's clock.
    created: Mutex<HashMap<String, Instant>>,
    /// Each token, the name of the credential it was minted for, and when.
    minted: Mutex<Vec<(String, String, Instant)>>,
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
            page_cap: Mutex::new(MAX_PAGE_SIZE),
            seen: Mutex::new(Vec::new()),
            created: Mutex::new(HashMap::new()),
            minted: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(1),
        });
        let api = axum::Router::new()
            .route(
                "/v2/telephony_credentials",
                get(list_credentials).post(create_credential),
            )
            .route("/v2/telephony_credentials/{id}/token", post(create_token))
            .route(
                "/v2/telephony_credentials/{id}",
                axum::routing::delete(delete_credential).patch(update_credential),
            )
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

    /// The variables that point a service in per_user mode at this stand-in. The propagation
    /// wait is off: the tests that are about it set it themselves.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CREDENTIAL_MODE", "per_user".into()),
            ("TELNYX_API_KEY", TELNYX_API_KEY.into()),
            ("TELNYX_WEBRTC_CONNECTION_ID", CONNECTION_ID.into()),
            ("TELNYX_API_BASE_URL", self.url.clone()),
            ("TELNYX_CREDENTIAL_PROPAGATION_SECS", "0".into()),
        ]
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Holds the answers of the next `times` requests to `endpoint` (done, not yet answered)
    /// until the gate is opened.
    pub fn hold_answers(&self, endpoint: &'static str, times: usize) -> Gate {
        let (gate, open) = watch::channel(false);
        self.set_behaviour(Behaviour::HoldAnswer {
            endpoint,
            times,
            open,
        });
        Gate(gate)
    }

    /// Holds the next `times` requests to `endpoint`, not yet done, until the gate is opened.
    pub fn hold_requests(&self, endpoint: &'static str, times: usize) -> Gate {
        let (gate, open) = watch::channel(false);
        self.set_behaviour(Behaviour::HoldRequest {
            endpoint,
            times,
            open,
        });
        Gate(gate)
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self.state.token_lifetime.lock().unwrap() = lifetime;
    }

    /// Pages of at most `size` credentials from now on.
    pub fn set_page_cap(&self, size: usize) {
        *self.state.page_cap.lock().unwrap() = size;
    }

    /// Requests that reached an endpoint (`list`, `create`, `update`, `token`, `delete`),
    /// failed ones too.
    pub fn requests(&self, endpoint: &str) -> usize {
        self.seen()
            .iter()
            .filter(|seen| seen.endpoint == endpoint)
            .count()
    }

    pub fn total_requests(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn request_times(&self) -> Vec<Instant> {
        self.seen().into_iter().map(|seen| seen.at).collect()
    }

    /// Every login token minted so far, in order.
    pub fn minted(&self) -> Vec<String> {
        let minted = self.state.minted.lock().unwrap();
        minted.iter().map(|(token, _, _)| token.clone()).collect()
    }

    /// The login tokens minted for credentials named `name`, in order.
    pub fn minted_for(&self, name: &str) -> Vec<String> {
        let minted = self.state.minted.lock().unwrap();
        minted
            .iter()
            .filter(|(_, named, _)| named == name)
            .map(|(token, _, _)| token.clone())
            .collect()
    }

    /// When the credential with this id was created, on this process's clock.
    pub fn created_at(&self, id: &str) -> Option<Instant> {
        self.state.created.lock().unwrap().get(id).copied()
    }

    pub fn credentials(&self) -> Vec<StoredCredential> {
        self.state.credentials.lock().unwrap().clone()
    }

    /// Adds a credential as if someone (another replica, the portal) had created it.
    pub fn insert(&self, name: &str, created_at: &str) -> StoredCredential {
        self.insert_with(name, CONNECTION_ID, created_at, None)
    }

    /// Adds a credential with a tag, as if another replica had created it.
    pub fn insert_tagged(&self, name: &str, tag: &str, created_at: &str) -> StoredCredential {
        let mut credential = new_credential(&self.state, name, CONNECTION_ID, Some(created_at));
        credential.tag = Some(tag.to_owned());
        self.state
            .credentials
            .lock()
            .unwrap()
            .push(credential.clone());
        credential
    }

    /// The credentials with this tag.
    pub fn tagged(&self, tag: &str) -> Vec<StoredCredential> {
        self.credentials()
            .into_iter()
            .filter(|credential| credential.tag.as_deref() == Some(tag))
            .collect()
    }

    /// The credential so named, if there is exactly one.
    pub fn named(&self, name: &str) -> Option<StoredCredential> {
        let mut found: Vec<StoredCredential> = self
            .credentials()
            .into_iter()
            .filter(|credential| credential.name == name)
            .collect();
        (found.len() == 1).then(|| found.remove(0))
    }

    /// Adds a credential on any connection, with any `expires_at`.
    pub fn insert_with(
        &self,
        name: &str,
        connection_id: &str,
        created_at: &str,
        expires_at: Option<&str>,
    ) -> StoredCredential {
        let mut credential = new_credential(&self.state, name, connection_id, Some(created_at));
        credential.expires_at = expires_at.map(str::to_owned);
        self.state
            .credentials
            .lock()
            .unwrap()
            .push(credential.clone());
        credential
    }

    /// Marks a credential expired, as Telnyx does when its `expires_at` passes.
    pub fn expire(&self, id: &str) {
        self.edit(id, |credential| credential.expired = true);
    }

    /// Sets a credential's `expires_at` behind the service's back.
    pub fn set_expires_at(&self, id: &str, expires_at: Option<&str>) {
        self.edit(id, |credential| {
            credential.expires_at = expires_at.map(str::to_owned);
        });
    }

    fn edit(&self, id: &str, change: impl Fn(&mut StoredCredential)) {
        for credential in self.state.credentials.lock().unwrap().iter_mut() {
            if credential.id == id {
                change(credential);
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
    // Telnyx's format (the spec's example: `2020-06-18T21:32:38`); later creations sort later.
    let created_at = created_at.map_or_else(
        || humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        str::to_owned,
    );
    let id = format!("c215ade3-0d39-418e-94be-{n:012}");
    let created_at = created_at.trim_end_matches('Z').to_owned();
    state
        .created
        .lock()
        .unwrap()
        .insert(id.clone(), Instant::now());
    StoredCredential {
        id,
        name: name.to_owned(),
        sip_username: format!("gencred{n:04}TestUser"),
        sip_password: format!("sip-pass-{n:04}-a92dbcfb60184a8c"),
        resource_id: format!("connection:{connection_id}"),
        tag: None,
        expired: false,
        updated_at: created_at.clone(),
        created_at,
        expires_at: None,
    }
}

/// The record as Telnyx returns it, `sip_password` included and `tag` left out (the spec's
/// `TelephonyCredential` has none); `expired` as a boolean or, as the spec's own example has it,
/// a string.
fn record(credential: &StoredCredential, expired_as_string: bool) -> Value {
    let expired = credential.is_expired();
    let expired = if expired_as_string {
        json!(expired.to_string())
    } else {
        json!(expired)
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
        "expires_at": credential.expires_at,
        "updated_at": credential.updated_at,
    })
}

/// The spec's `Errors` shape: an array of `{code, title, detail}`.
fn errors(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "code": code, "title": title, "detail": detail }] })),
    )
        .into_response()
}

/// The other shape Telnyx answers with: `errors` as one object.
fn error_object(status: StatusCode, errors: Value) -> Response {
    (status, Json(json!({ "errors": errors }))).into_response()
}

fn endpoint_of(method: &Method, path: &str) -> &'static str {
    match *method {
        Method::GET if path.starts_with("/v2/credential_connections/") => "connection",
        Method::GET => "list",
        Method::DELETE => "delete",
        Method::PATCH => "update",
        _ if path.ends_with("/token") => "token",
        _ => "create",
    }
}

/// Records the call, checks the API key, then fails, hangs or passes it on.
async fn gatekeeper(
    State(state): State<Arc<TelnyxState>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = endpoint_of(request.method(), request.uri().path());
    let query = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .map(|Query(query)| query)
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body_json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    state.seen.lock().unwrap().push(Seen {
        endpoint,
        query,
        body: body_json,
        at: Instant::now(),
    });
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));

    let behaviour = {
        let mut behaviour = state.behaviour.lock().unwrap();
        let current = behaviour.clone();
        match &mut *behaviour {
            Behaviour::Fail { times, .. } => {
                *times -= 1;
                if *times == 0 {
                    *behaviour = Behaviour::Normal;
                }
            }
            Behaviour::FailAfterDoing {
                endpoint: failing,
                times,
                ..
            }
            | Behaviour::FailOn {
                endpoint: failing,
                times,
                ..
            }
            | Behaviour::HoldAnswer {
                endpoint: failing,
                times,
                ..
            }
            | Behaviour::HoldRequest {
                endpoint: failing,
                times,
                ..
            } if *failing == endpoint => {
                *times -= 1;
                if *times == 0 {
                    *behaviour = Behaviour::Normal;
                }
            }
            _ => {}
        }
        current
    };
    let mut fail_after = None;
    let mut hold = None;
    let injected = match behaviour {
        Behaviour::Normal => None,
        Behaviour::HoldAnswer {
            endpoint: holding,
            open,
            ..
        } => {
            if holding == endpoint {
                hold = Some(open);
            }
            None
        }
        Behaviour::HoldRequest {
            endpoint: holding,
            mut open,
            ..
        } => {
            if holding == endpoint {
                let _ = open.wait_for(|open| *open).await;
            }
            None
        }
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Fail {
            status,
            retry_after,
            ..
        } => Some((status, retry_after)),
        Behaviour::FailOn {
            endpoint: failing,
            status,
            retry_after,
            ..
        } => (failing == endpoint).then_some((status, retry_after)),
        Behaviour::FailAfterDoing {
            endpoint: failing,
            status,
            ..
        } => {
            if failing == endpoint {
                fail_after = Some(StatusCode::from_u16(status).unwrap());
            }
            None
        }
    };
    if let Some((status, retry_after)) = injected {
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
    let response = next.run(request).await;
    if let Some(mut open) = hold {
        let _ = open.wait_for(|open| *open).await;
    }
    match fail_after {
        Some(status) => (
            status,
            "upstream connect error or disconnect/reset before headers",
        )
            .into_response(),
        None => response,
    }
}

async fn list_credentials(
    State(state): State<Arc<TelnyxState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let number: usize = query
        .get("page[number]")
        .map_or(Ok(1), |n| n.parse())
        .unwrap_or(0);
    let size: usize = query
        .get("page[size]")
        .map_or(Ok(20), |n| n.parse())
        .unwrap_or(0);
    if number == 0 || size == 0 || size > MAX_PAGE_SIZE {
        return errors(
            StatusCode::BAD_REQUEST,
            "10015",
            "Bad Request",
            "page[size] must be between 1 and 250 and page[number] at least 1.",
        );
    }
    let size = size.min(*state.page_cap.lock().unwrap());
    // `filter[status]` has no documented values in the spec: it is not applied here.
    let matches = |credential: &StoredCredential| {
        query
            .get("filter[name]")
            .is_none_or(|name| &credential.name == name)
            && query
                .get("filter[tag]")
                .is_none_or(|tag| credential.tag.as_ref() == Some(tag))
            && query
                .get("filter[resource_id]")
                .is_none_or(|resource| &credential.resource_id == resource)
    };
    let all: Vec<Value> = state
        .credentials
        .lock()
        .unwrap()
        .iter()
        .filter(|credential| matches(credential))
        .map(|credential| record(credential, true))
        .collect();
    let total = all.len();
    let total_pages = total.div_ceil(size).max(1);
    let data: Vec<Value> = all
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    Json(json!({
        "data": data,
        "meta": {
            "total_pages": total_pages,
            "total_results": total,
            "page_number": number,
            "page_size": size,
        },
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

/// Telnyx's 400 for a request body that is not JSON.
fn not_json() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        "10015",
        "Bad Request",
        "The request body is not JSON.",
    )
}

async fn create_credential(State(state): State<Arc<TelnyxState>>, body: String) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return not_json();
    };
    let connection_id = body["connection_id"].as_str().unwrap_or_default();
    if connection_id != CONNECTION_ID {
        return error_object(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "connection_id": ["is not a credential connection you own"] }),
        );
    }
    let name = body["name"].as_str().unwrap_or_default();
    let mut credential = new_credential(&state, name, connection_id, None);
    credential.expires_at = body["expires_at"].as_str().map(str::to_owned);
    credential.tag = body["tag"].as_str().map(str::to_owned);
    state.credentials.lock().unwrap().push(credential.clone());
    (
        StatusCode::CREATED,
        Json(json!({ "data": record(&credential, false) })),
    )
        .into_response()
}

/// `PATCH /telephony_credentials/{id}`: `TelephonyCredentialUpdateRequest`. An expired
/// credential can only be deleted.
async fn update_credential(
    State(state): State<Arc<TelnyxState>>,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return not_json();
    };
    let mut credentials = state.credentials.lock().unwrap();
    let Some(credential) = credentials
        .iter_mut()
        .find(|credential| credential.id == id)
    else {
        return not_found();
    };
    if credential.is_expired() {
        return expired_error();
    }
    if let Some(expires_at) = body["expires_at"].as_str() {
        credential.expires_at = Some(expires_at.to_owned());
    }
    if let Some(tag) = body["tag"].as_str() {
        credential.tag = Some(tag.to_owned());
    }
    credential.updated_at = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .trim_end_matches('Z')
        .to_owned();
    Json(json!({ "data": record(credential, false) })).into_response()
}

fn not_found() -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "10005",
        "Resource not found",
        "Credential not found.",
    )
}

fn expired_error() -> Response {
    error_object(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "code": "10015",
            "title": "Credential expired",
            "detail": "An expired credential can only be deleted.",
        }),
    )
}

/// Mints a JWT that lives the token lifetime. Its `exp` is not cut to the credential's
/// `expires_at`: Telnyx stops honouring a token when its credential expires, and it is the
/// service's job to say so in its own `expires_at`.
async fn create_token(State(state): State<Arc<TelnyxState>>, Path(id): Path<String>) -> Response {
    let credential = state
        .credentials
        .lock()
        .unwrap()
        .iter()
        .find(|credential| credential.id == id)
        .cloned();
    let Some(credential) = credential else {
        return not_found();
    };
    if credential.is_expired() {
        return expired_error();
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
    state
        .minted
        .lock()
        .unwrap()
        .push((token.clone(), credential.name.clone(), Instant::now()));
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
        return not_found();
    };
    let removed = credentials.remove(index);
    Json(json!({ "data": record(&removed, false) })).into_response()
}
