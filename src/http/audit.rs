//! The audit trail: one `info` line per credential issued or revoked and one `warn` line per
//! refused request, each with the fields a log pipeline filters on (`audit` is
//! `credential_issued`, `credential_revoked` or `request_refused`). Never a secret: the
//! credential's password and login token are not read.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use super::REQUEST_ID;
use super::client_addr::ClientAddr;
use super::error::Refusal;
use super::extractor::AuthenticatedUser;
use crate::credentials::WebRTCCredential;

/// Records a credential handed to `user`. `mode` is the credential source's (`static`,
/// `per_user`); the rest comes from the verified token, the request and the credential itself.
pub fn credential_issued(user: &AuthenticatedUser, mode: &str, credential: &WebRTCCredential) {
    tracing::info!(
        audit = "credential_issued",
        user_id = user.claims.sub.as_str(),
        email = user.claims.email.as_deref(),
        mode,
        sip_username = credential.identity.username.as_str(),
        request_id = user.request_id.as_str(),
        client_addr = user.client_addr.to_field(),
        expires_at = credential.expires_at,
        "credential issued"
    );
}

/// Records `DELETE /credentials`: the user's telephony credential is gone at Telnyx.
pub fn credential_revoked(user: &AuthenticatedUser, mode: &str) {
    tracing::info!(
        audit = "credential_revoked",
        user_id = user.claims.sub.as_str(),
        email = user.claims.email.as_deref(),
        mode,
        request_id = user.request_id.as_str(),
        client_addr = user.client_addr.to_field(),
        "credential revoked"
    );
}

/// Middleware: a `warn` line for every response an [`ApiError`](super::error::ApiError) marked
/// as a refusal, with its code. Runs inside the request span, which adds the user id once the
/// token has verified.
pub async fn log_refusals(request: Request, next: Next) -> Response {
    let request_id = request_id(request.headers());
    let client_addr = ClientAddr::of(request.extensions());
    let response = next.run(request).await;
    if let Some(Refusal(code)) = response.extensions().get::<Refusal>() {
        tracing::warn!(
            audit = "request_refused",
            code,
            status = response.status().as_u16(),
            request_id,
            client_addr = client_addr.to_field(),
            "request refused"
        );
    }
    response
}

/// The request id that `SetRequestIdLayer` put on the request (the client's own, or a UUID).
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
