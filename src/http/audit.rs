//! The audit trail: one `info` line per credential issued or revoked and one `warn` line per
//! refused request, each with the fields a log pipeline filters on (`audit` is
//! `credential_issued`, `credential_revoked` or `request_refused`). Every line is written inside
//! the request's span, which contributes `request_id`, `client_addr`, `method`, `path` and, once
//! the token has verified, `user_id` (top-level fields with `LOG_FORMAT=json`, the line's prefix
//! otherwise); the events do not repeat them. Never a secret: the credential's password and
//! login token are not read.

use axum::http::{Request, Response};

use super::around::Around;
use super::error::Refusal;
use super::extractor::AuthenticatedUser;
use crate::credentials::WebRTCCredential;

/// Records a credential handed to `user`. `mode` is the credential source's (`static`,
/// `per_user`); the rest comes from the verified token and the credential itself.
pub fn credential_issued(user: &AuthenticatedUser, mode: &str, credential: &WebRTCCredential) {
    tracing::info!(
        audit = "credential_issued",
        email = user.claims.email.as_deref(),
        mode,
        sip_username = credential.identity.username.as_str(),
        expires_at = credential.expires_at,
        "credential issued"
    );
}

/// Records `DELETE /credentials`: the user's telephony credential is gone at Telnyx.
pub fn credential_revoked(user: &AuthenticatedUser, mode: &str) {
    tracing::info!(
        audit = "credential_revoked",
        email = user.claims.email.as_deref(),
        mode,
        "credential revoked"
    );
}

/// Middleware: a `warn` line for every response an [`ApiError`](super::error::ApiError) marked
/// as a refusal, with its code. Runs inside the request span, which adds the user id once the
/// token has verified.
#[derive(Clone, Copy)]
pub struct LogRefusals;

impl Around for LogRefusals {
    type Noted = ();

    fn request<B>(&self, _: &mut Request<B>) {}

    fn response<B>((): (), response: &mut Response<B>) {
        if let Some(Refusal(code)) = response.extensions().get::<Refusal>() {
            tracing::warn!(
                audit = "request_refused",
                code,
                status = response.status().as_u16(),
                "request refused"
            );
        }
    }
}
