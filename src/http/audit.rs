//! The access log, which is also the audit trail: exactly one line per request, `finished
//! processing request`, with `status` and `latency_ms` (a number, fractional milliseconds). A request that issued or revoked a
//! credential adds the audit fields to its line (`audit=credential_issued` with `email`, `mode`,
//! `sip_username`, `expires_at`; `audit=credential_revoked`), and a refused request's line is a
//! `warn` with `audit=request_refused`, `code`.
//!
//! Every line is written inside the request's span, which contributes `request_id`,
//! `client_addr`, `method`, `path` and, once the token has verified, `user_id` (top-level fields
//! with `LOG_FORMAT=json`, the line's prefix otherwise). Never a secret: the credential's
//! password and login token are not read.
//!
//! The handlers leave an [`Audit`] record on the response instead of logging: one line per
//! request instead of two halves the cost of logging a credential issued, which was the largest
//! single cost of a cached `GET /credentials` after the network.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Response;
use tower_http::trace::OnResponse;

use super::error::Refusal;
use crate::auth::SupabaseClaims;
use crate::credentials::SipIdentity;

/// What a handler did that the audit trail records, carried on its response.
#[derive(Clone)]
pub enum Audit {
    /// A credential was handed to the user the claims describe. `mode` is the credential
    /// source's (`static`, `per_user`).
    CredentialIssued {
        claims: Arc<SupabaseClaims>,
        mode: &'static str,
        identity: Arc<SipIdentity>,
        expires_at: u64,
    },
    /// `DELETE /credentials`: the user's telephony credential is gone at Telnyx.
    CredentialRevoked {
        claims: Arc<SupabaseClaims>,
        mode: &'static str,
    },
}

/// `TraceLayer`'s response callback: the request's one line.
#[derive(Clone, Copy)]
pub struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, response: &Response<B>, latency: Duration, _: &tracing::Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let extensions = response.extensions();
        match (extensions.get::<Audit>(), extensions.get::<Refusal>()) {
            (
                Some(Audit::CredentialIssued {
                    claims,
                    mode,
                    identity,
                    expires_at,
                }),
                _,
            ) => tracing::info!(
                status,
                latency_ms,
                audit = "credential_issued",
                email = claims.email.as_deref(),
                mode,
                sip_username = identity.username.as_str(),
                expires_at,
                "finished processing request"
            ),
            (Some(Audit::CredentialRevoked { claims, mode }), _) => tracing::info!(
                status,
                latency_ms,
                audit = "credential_revoked",
                email = claims.email.as_deref(),
                mode,
                "finished processing request"
            ),
            (None, Some(Refusal(code))) => tracing::warn!(
                status,
                latency_ms,
                audit = "request_refused",
                code,
                "finished processing request"
            ),
            (None, None) => tracing::info!(status, latency_ms, "finished processing request"),
        }
    }
}
