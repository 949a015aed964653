//! The access log, which is also the audit trail: exactly one line per request, `finished
//! processing request`, with `status` and `latency_ms` (a number, fractional milliseconds). A
//! request that issued or revoked a credential adds the audit fields to its line
//! (`audit=credential_issued` with `email`, `mode`, `sip_username`, `expires_at` and, for a device,
//! `device_id`; `audit=credential_revoked`, with `device_id` when one device was signed out), an
//! admin lookup adds `audit=admin_devices_listed` with `subject_user_id` and `devices`, and a
//! refused request's line is a `warn` with `audit=request_refused`, `code`. A device evicted to
//! make room for a new one is the one exception to one line a request: its own
//! `audit=device_evicted` line, in the same span ([`crate::credentials::Devices`]).
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
use crate::credentials::{DeviceId, SipIdentity};

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
        /// The device it was for; `None` for the user's default credential (and static mode).
        device: Option<DeviceId>,
    },
    /// `DELETE /credentials`: the device's telephony credential (without a device: every one
    /// of the user's) is gone at Telnyx.
    CredentialRevoked {
        claims: Arc<SupabaseClaims>,
        mode: &'static str,
        device: Option<DeviceId>,
    },
    /// `GET /admin/users/{sub}/devices`: the app's backend looked a user's devices up.
    AdminDevicesListed { user_id: String, devices: usize },
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
                    device,
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
                device_id = device.as_ref().map(DeviceId::as_str),
                "finished processing request"
            ),
            (
                Some(Audit::CredentialRevoked {
                    claims,
                    mode,
                    device,
                }),
                _,
            ) => tracing::info!(
                status,
                latency_ms,
                audit = "credential_revoked",
                email = claims.email.as_deref(),
                mode,
                device_id = device.as_ref().map(DeviceId::as_str),
                "finished processing request"
            ),
            (Some(Audit::AdminDevicesListed { user_id, devices }), _) => tracing::info!(
                status,
                latency_ms,
                audit = "admin_devices_listed",
                subject_user_id = user_id.as_str(),
                devices,
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
