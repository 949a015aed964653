//! The route handlers: credentials and devices for a verified user, and the health probes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use utoipa::ToSchema;

use super::audit::Audit;
use super::error::{ApiError, ErrorBody};
use super::extractor::AuthenticatedUser;
use super::openapi::{HEALTH_TAG, OPERATIONS_TAG};
use super::params::{DeviceQuery, RequestedDevice};
use crate::auth::jwks::KeyStoreStatus;
use crate::auth::{ThirdPartyKeys, TokenVerifier};
use crate::credentials::{CredentialSource, Device, WebRTCCredential};
use crate::metrics;

#[derive(Serialize, ToSchema)]
pub struct CredentialResponse {
    /// Always `true` here; error bodies carry `false`.
    success: bool,
    credential: WebRTCCredential,
}

/// A user's credentials, one per device, as `GET /devices` and the admin route list them.
#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    /// Oldest first; the default credential (requests without a `device_id`) has a `null`
    /// `device_id`.
    pub devices: Vec<Device>,
}

/// The error responses of every `/credentials` and `/devices` method, declared once. Never
/// built: [`ApiError`] makes the responses, and the document lists each status's codes from it.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum CredentialErrors {
    /// No token, a token that was refused, or a session that has ended
    #[response(status = UNAUTHORIZED, headers(("WWW-Authenticate" = String,
        description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused")))]
    Unauthorized(ErrorBody),
    /// A valid token whose user may not have phone credentials
    #[response(status = FORBIDDEN)]
    Forbidden(ErrorBody),
    /// Over `RATE_LIMIT_PER_USER` or `RATE_LIMIT_PER_IP`
    #[response(status = TOO_MANY_REQUESTS, headers(("Retry-After" = u64,
        description = "Seconds to wait before trying again")))]
    RateLimited(ErrorBody),
    /// A fault on this side, or Telnyx settings the operator must fix (per_user mode)
    #[response(status = INTERNAL_SERVER_ERROR)]
    Internal(ErrorBody),
    /// Telnyx answered something unusable (per_user mode)
    #[response(status = BAD_GATEWAY)]
    BadGateway(ErrorBody),
    /// Busy, Telnyx or the session check not answering, or the request took too long
    #[response(status = SERVICE_UNAVAILABLE, headers(("Retry-After" = u64,
        description = "Seconds to wait, when Telnyx is unavailable")))]
    Unavailable(ErrorBody),
}

/// `GET` and `POST /credentials`.
#[utoipa::path(
    method(get, post),
    path = "/credentials",
    summary = "The signed-in user's Telnyx WebRTC credential",
    description = "Verifies the Supabase access token and answers with what `new TelnyxRTC(...)` \
        needs: `password` in static mode, `login_token` in per_user mode. `POST` is the same as \
        `GET` and takes no body. In per_user mode each `device_id` gets a credential (a SIP \
        username) of its own, under the same user; a new device past `MAX_DEVICES_PER_USER` \
        signs out the user's device least recently issued a credential.",
    params(DeviceQuery),
    security(("supabase_access_token" = [])),
    responses(
        (status = OK, body = CredentialResponse, description = "The credential"),
        (status = BAD_REQUEST, body = ErrorBody, description = "A `device_id` that is not one"),
        CredentialErrors,
    ),
)]
pub async fn issue_credential(
    State(source): State<Arc<CredentialSource>>,
    user: AuthenticatedUser,
    RequestedDevice(device): RequestedDevice,
) -> Result<(Extension<Audit>, Json<CredentialResponse>), ApiError> {
    let holder = user.holder().with_device(device);
    let credential = source.issue(&holder).await?;
    metrics::credential_issued(source.mode(), user.issuer.tag());
    let audit = Audit::CredentialIssued {
        claims: user.claims,
        mode: source.mode(),
        identity: credential.identity.clone(),
        expires_at: credential.expires_at,
        // Static mode ignores the device: one identity for every browser.
        device: source.devices().and(holder.device().cloned()),
    };
    Ok((
        Extension(audit),
        Json(CredentialResponse {
            success: true,
            credential,
        }),
    ))
}

/// `DELETE /credentials` (per_user mode only): deletes the device's telephony credential at
/// Telnyx, or without a `device_id` every one of the user's, signing them out of every phone at
/// once. Only a delete that deleted something is counted and audited.
#[utoipa::path(
    delete,
    path = "/credentials",
    summary = "Revoke the signed-in user's Telnyx credentials (per_user mode only)",
    description = "With `device_id`, deletes that device's telephony credential at Telnyx \
        (signing that phone out, the user's others keep working); without, deletes every \
        credential of the user, the default one included. Every login token minted for a \
        deleted credential stops working; the next `GET` creates a new one. Served only in \
        per_user mode: a shared static identity cannot be revoked for one user.",
    params(DeviceQuery),
    security(("supabase_access_token" = [])),
    responses(
        (status = NO_CONTENT, description = "Revoked (or there was nothing to revoke)"),
        (status = BAD_REQUEST, body = ErrorBody, description = "A `device_id` that is not one"),
        CredentialErrors,
    ),
)]
pub async fn revoke_credential(
    State(source): State<Arc<CredentialSource>>,
    user: AuthenticatedUser,
    RequestedDevice(device): RequestedDevice,
) -> Result<(Option<Extension<Audit>>, StatusCode), ApiError> {
    let holder = user.holder().with_device(device);
    if !source.revoke(&holder).await? {
        return Ok((None, StatusCode::NO_CONTENT));
    }
    metrics::credential_revoked(user.issuer.tag());
    let audit = Audit::CredentialRevoked {
        claims: user.claims,
        mode: source.mode(),
        device: holder.device().cloned(),
    };
    Ok((Some(Extension(audit)), StatusCode::NO_CONTENT))
}

/// `GET /devices` (per_user mode; static mode answers 405 without this handler): the signed-in
/// user's credentials, one per device, never a secret.
#[utoipa::path(
    get,
    path = "/devices",
    summary = "The signed-in user's devices (per_user mode only)",
    description = "Lists the user's Telnyx credentials, one per device (`device_id`), the \
        default one (`device_id: null`) included: the SIP username each registers as, when it \
        was created, when it expires unless used, and when it was last issued a credential. \
        No token or password. Sign one device out with `DELETE /credentials?device_id=...`.",
    security(("supabase_access_token" = [])),
    responses(
        (status = OK, body = DeviceList, description = "The user's devices"),
        CredentialErrors,
    ),
)]
pub async fn list_devices(
    State(source): State<Arc<CredentialSource>>,
    user: AuthenticatedUser,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = source.devices().ok_or(ApiError::NoDevicesInStaticMode)?;
    let devices = devices.list(&user.holder()).await?;
    Ok(Json(DeviceList { devices }))
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = OPERATIONS_TAG,
    summary = "Prometheus metrics",
    description = "Served here unless `METRICS_BIND_ADDR` puts it on a port of its own.",
    responses((status = OK, body = String, content_type = "text/plain; version=0.0.4; charset=utf-8",
        description = "The metrics in Prometheus text format")),
)]
pub async fn metrics(
    State(handle): State<PrometheusHandle>,
    State(verifier): State<Arc<TokenVerifier>>,
) -> Response {
    for store in verifier.key_stores() {
        if let KeyStoreStatus::Fetched { age, keys } = store.status() {
            metrics::jwks_state(store.issuer(), age, keys);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&handle),
    )
        .into_response()
}

/// The process is serving.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = HEALTH_TAG,
    summary = "Liveness probe",
    responses((status = OK, body = Liveness, description = "The process is serving")),
)]
pub async fn liveness() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Whether the service can verify every kind of Supabase token it accepts, and the state of
/// each third-party issuer's keys.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    status: ReadinessStatus,
    /// The Supabase signing keys, once fetched; absent when only HS256 is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<JwksReadiness>,
    /// Each `THIRD_PARTY_ISSUERS` issuer and its signing keys; absent when none is configured.
    /// They do not decide `status`: an issuer whose keys are missing has its own tokens refused
    /// while every other issuer's are served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    issuers: Vec<IssuerReadiness>,
    /// Why the service is not ready, and what to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessStatus {
    Ready,
    NotReady,
}

#[derive(Serialize, ToSchema)]
pub struct JwksReadiness {
    /// Usable signing keys in the set.
    keys: usize,
    /// Seconds since the set was last fetched.
    age_secs: u64,
}

/// One third-party issuer's signing keys.
#[derive(Serialize, ToSchema)]
pub struct IssuerReadiness {
    /// The issuer, exactly as its tokens' `iss` has it.
    #[schema(example = "https://clerk.example.com")]
    issuer: String,
    /// Its users' credentials are named `<tag>:<sub>`; also the `issuer` label of the metrics.
    #[schema(example = "idp-3f9a1c2e7b")]
    tag: &'static str,
    /// `ready` once its keys have been fetched at least once: its tokens can be verified.
    status: ReadinessStatus,
    /// The JWKS in use: the one its entry names, or the `jwks_uri` its discovery document named.
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    /// Usable signing keys in the set, once fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<usize>,
    /// Seconds since the set was last fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    age_secs: Option<u64>,
    /// Why the last fetch failed, while fetches fail (the last good keys, if any, stay in use).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// `GET /readyz`: the configuration is loaded (it is, or we would not be serving) and, where
/// asymmetric keys are in use, the Supabase JWKS has been fetched at least once. Each
/// third-party issuer's keys are reported beside it.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = HEALTH_TAG,
    summary = "Readiness probe",
    responses(
        (status = OK, body = Readiness, description = "Ready: Supabase tokens of every configured kind can be verified (each third-party issuer's state is in `issuers`)"),
        (status = SERVICE_UNAVAILABLE, body = Readiness, description = "Not ready: the Supabase signing keys have not been fetched yet (HS256 tokens are still served)"),
    ),
)]
pub async fn readiness(
    State(verifier): State<Arc<TokenVerifier>>,
) -> (StatusCode, Json<Readiness>) {
    let issuers = verifier
        .third_party()
        .iter()
        .map(issuer_readiness)
        .collect();
    let Some(store) = verifier.key_store() else {
        return (StatusCode::OK, Json(Readiness::ready(None, issuers)));
    };
    match store.status() {
        KeyStoreStatus::Fetched { age, keys } => (
            StatusCode::OK,
            Json(Readiness::ready(
                Some(JwksReadiness {
                    keys,
                    age_secs: age.as_secs(),
                }),
                issuers,
            )),
        ),
        KeyStoreStatus::NeverFetched => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: ReadinessStatus::NotReady,
                jwks: None,
                issuers,
                reason: Some(format!(
                    "the Supabase signing keys have not been fetched yet from {}: check that SUPABASE_URL is right and reachable",
                    store.url()
                )),
            }),
        ),
    }
}

fn issuer_readiness(issuer: &ThirdPartyKeys) -> IssuerReadiness {
    let store = &issuer.key_store;
    let (status, keys, age_secs) = match store.status() {
        KeyStoreStatus::Fetched { age, keys } => {
            (ReadinessStatus::Ready, Some(keys), Some(age.as_secs()))
        }
        KeyStoreStatus::NeverFetched => (ReadinessStatus::NotReady, None, None),
    };
    IssuerReadiness {
        issuer: issuer.issuer.clone(),
        tag: issuer.tag,
        status,
        jwks_uri: store.jwks_url().map(String::from),
        keys,
        age_secs,
        last_error: store.last_error(),
    }
}

impl Readiness {
    fn ready(jwks: Option<JwksReadiness>, issuers: Vec<IssuerReadiness>) -> Self {
        Self {
            status: ReadinessStatus::Ready,
            jwks,
            issuers,
            reason: None,
        }
    }
}
