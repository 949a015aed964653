//! The admin route, `GET /admin/users/{sub}/devices`: the user-to-devices lookup an app's
//! backend needs so that its inbound-call webhook can ring each of a user's devices. Routed only
//! while `ADMIN_API_TOKEN` is set (and in per_user mode), authorized by that token alone,
//! compared in constant time: a user's Supabase access token never opens it. Each lookup is one
//! audit line. It is in `/openapi.json` when served, under its own bearer scheme: the document
//! lists what the instance answers, and knowing the path gains nothing without the token.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::{Extension, Json};
use secrecy::{ExposeSecret, SecretString};

use super::AppState;
use super::audit::Audit;
use super::error::{ApiError, ErrorBody};
use super::extractor::bearer_token;
use super::handlers::DeviceList;
use super::openapi::ADMIN_TAG;
use crate::credentials::{CredentialSource, Holder};

/// The longest user id the route takes; a Supabase `sub` is a 36-character UUID.
const MAX_USER_ID_LEN: usize = 255;

/// `ADMIN_API_TOKEN`, kept as its SHA-256: two equal-length digests are compared, so the
/// comparison's time says nothing about the token or its length.
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &SecretString) -> Self {
        Self {
            digest: sha256(token.expose_secret()),
        }
    }

    fn admits(&self, presented: &str) -> bool {
        verify_slices_are_equal(&sha256(presented), &self.digest).is_ok()
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let hash = digest(&SHA256, text.as_bytes());
    hash.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// A request that carried the admin token. No rate limit applies: the backend may look users
/// up on every inbound call, and a token of 32 characters or more is not guessed in any number
/// of requests.
pub struct AdminCaller;

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Not routed without a token; should that change, nothing gets through.
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::InvalidAdminToken);
        };
        let presented = bearer_token(parts).map_err(|_| {
            tracing::debug!("refused: no bearer token on the admin route");
            ApiError::InvalidAdminToken
        })?;
        if !expected.admits(presented) {
            tracing::debug!("refused: a bearer token that is not ADMIN_API_TOKEN");
            return Err(ApiError::InvalidAdminToken);
        }
        Ok(AdminCaller)
    }
}

/// The error responses of the admin route. Never built: [`ApiError`] makes the responses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum AdminErrors {
    /// The path does not name a user
    #[response(status = BAD_REQUEST)]
    BadRequest(ErrorBody),
    /// No token, or not `ADMIN_API_TOKEN`
    #[response(status = UNAUTHORIZED, headers(("WWW-Authenticate" = String,
        description = "`Bearer`")))]
    Unauthorized(ErrorBody),
    /// A fault on this side, or Telnyx settings the operator must fix
    #[response(status = INTERNAL_SERVER_ERROR)]
    Internal(ErrorBody),
    /// Telnyx answered something unusable
    #[response(status = BAD_GATEWAY)]
    BadGateway(ErrorBody),
    /// Busy, Telnyx not answering, or the request took too long
    #[response(status = SERVICE_UNAVAILABLE, headers(("Retry-After" = u64,
        description = "Seconds to wait, when Telnyx is unavailable")))]
    Unavailable(ErrorBody),
}

/// `GET /admin/users/{sub}/devices`.
#[utoipa::path(
    get,
    path = "/admin/users/{sub}/devices",
    tag = ADMIN_TAG,
    summary = "A user's devices, for the app's backend (ADMIN_API_TOKEN)",
    description = "The same list as the user's own `GET /devices`, for the backend that answers \\
        inbound calls: dial `sip:<sip_username>@sip.telnyx.com` for each device. Served only \\
        while `ADMIN_API_TOKEN` is set, and only to that token.",
    params(("sub" = String, Path, description = "The Supabase user's id: the `sub` of their access tokens",
        min_length = 1, max_length = 255, pattern = "^[^:\\s]+$")),
    security(("admin_api_token" = [])),
    responses(
        (status = OK, body = DeviceList, description = "The user's devices (none for an unknown user)"),
        AdminErrors,
    ),
)]
pub async fn user_devices(
    State(source): State<Arc<CredentialSource>>,
    _: AdminCaller,
    sub: Result<Path<String>, PathRejection>,
) -> Result<(Extension<Audit>, Json<DeviceList>), ApiError> {
    let Path(sub) = sub.map_err(|_| ApiError::InvalidUserId)?;
    // A colon would read as a device in a credential name (`supabase:<sub>:<device_id>`).
    let valid = (1..=MAX_USER_ID_LEN).contains(&sub.len())
        && !sub
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control());
    if !valid {
        return Err(ApiError::InvalidUserId);
    }
    let devices = source.devices().ok_or(ApiError::NoDevicesInStaticMode)?;
    let devices = devices.list(&Holder::supabase_user(&sub)).await?;
    let audit = Audit::AdminDevicesListed {
        user_id: sub,
        devices: devices.len(),
    };
    Ok((Extension(audit), Json(DeviceList { devices })))
}
