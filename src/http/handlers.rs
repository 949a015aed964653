//! The route handlers: credentials for a verified user, and the health probes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use serde_json::json;

use super::audit;
use super::error::ApiError;
use super::extractor::AuthenticatedUser;
use crate::auth::TokenVerifier;
use crate::auth::jwks::KeyStoreStatus;
use crate::credentials::{CredentialSource, Recipient, WebRTCCredential};
use crate::metrics;

#[derive(Serialize)]
pub struct CredentialResponse {
    success: bool,
    credential: WebRTCCredential,
}

/// `GET` and `POST /credentials`.
pub async fn issue_credential(
    State(source): State<Arc<CredentialSource>>,
    user: AuthenticatedUser,
) -> Result<Json<CredentialResponse>, ApiError> {
    let recipient = Recipient {
        user_id: user.claims.sub.clone(),
    };
    let credential = source.issue(&recipient).await?;
    metrics::credential_issued(source.mode());
    audit::credential_issued(&user, source.mode(), &credential);
    Ok(Json(CredentialResponse {
        success: true,
        credential,
    }))
}

/// `DELETE /credentials` (per_user mode only): deletes the user's telephony credential at
/// Telnyx, signing them out of every phone at once.
pub async fn revoke_credential(
    State(source): State<Arc<CredentialSource>>,
    user: AuthenticatedUser,
) -> Result<StatusCode, ApiError> {
    let recipient = Recipient {
        user_id: user.claims.sub.clone(),
    };
    source.revoke(&recipient).await?;
    metrics::credential_revoked();
    audit::credential_revoked(&user, source.mode());
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(
    State(handle): State<PrometheusHandle>,
    State(verifier): State<Arc<TokenVerifier>>,
) -> Response {
    if let Some(KeyStoreStatus::Fetched { age, keys }) =
        verifier.key_store().map(|store| store.status())
    {
        metrics::jwks_state(age, keys);
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

/// `GET /healthz`: the process is up and serving.
pub async fn liveness() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the configuration is loaded (it is, or we would not be serving) and, where
/// asymmetric keys are in use, the JWKS has been fetched at least once.
pub async fn readiness(State(verifier): State<Arc<TokenVerifier>>) -> Response {
    let Some(store) = verifier.key_store() else {
        return Json(json!({ "status": "ready" })).into_response();
    };
    match store.status() {
        KeyStoreStatus::Fetched { age, keys } => Json(json!({
            "status": "ready",
            "jwks": { "keys": keys, "age_secs": age.as_secs() },
        }))
        .into_response(),
        KeyStoreStatus::NeverFetched => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "reason": format!(
                    "the Supabase signing keys have not been fetched yet from {}: check that SUPABASE_URL is right and reachable",
                    store.url()
                ),
            })),
        )
            .into_response(),
    }
}
