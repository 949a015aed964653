//! The HTTP layer's one error type and the JSON body every error response carries:
//! `{"success": false, "error": "<what to do>", "code": "<stable snake_case code>"}`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ADMIN_DEVICES_PATH, CREDENTIALS_PATH, DEVICES_PATH};
use crate::auth::{PolicyRefusal, SessionRefusal, TokenRejection};
use crate::credentials::CredentialError;
use crate::metrics;
use crate::ratelimit::RateLimited;

/// Every way a request can fail. How each is answered (status, code, sentence, and whether it
/// counts as a refusal) is its row in the error table below.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` token came with the request.
    #[error("no bearer token")]
    MissingToken,
    /// A token came but was refused; the reason is logged at debug, never returned.
    #[error("token rejected: {0}")]
    InvalidToken(TokenRejection),
    /// The token is valid but its user may not have phone credentials.
    #[error("user refused: {0}")]
    Forbidden(PolicyRefusal),
    /// Supabase says the token's session was signed out or its user deleted.
    #[error("session revoked: {0}")]
    SessionRevoked(String),
    /// Over `RATE_LIMIT_PER_USER` or `RATE_LIMIT_PER_IP`; `Retry-After` says when to retry.
    #[error("rate limited")]
    RateLimited(RateLimited),
    /// A `device_id` query parameter outside its contract (1-64 of `[A-Za-z0-9_-]`).
    #[error("invalid device_id")]
    InvalidDeviceId,
    /// `/admin/…` without the `ADMIN_API_TOKEN`, or with another token (a user's included).
    #[error("invalid admin token")]
    InvalidAdminToken,
    /// `/admin/users/{sub}/…` whose `sub` cannot be a user id.
    #[error("invalid user id")]
    InvalidUserId,
    /// `GET /devices` in static mode, where every browser shares one identity.
    #[error("no devices in static mode")]
    NoDevicesInStaticMode,
    /// The body is over `MAX_REQUEST_BODY_BYTES`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The headers are over `MAX_REQUEST_HEADER_BYTES`.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// `MAX_CONCURRENT_REQUESTS` are already in flight; refused at once, never queued.
    #[error("overloaded")]
    Overloaded,
    /// The remote session check could not get an answer; never an accept. The cause is
    /// logged where it arose.
    #[error("session check unavailable: {0}")]
    SessionCheckUnavailable(String),
    /// No such route.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method. The sentence names the methods of
    /// `/credentials`, which has `DELETE` too when its credentials are `revocable` (per_user
    /// mode).
    #[error("method not allowed")]
    MethodNotAllowed { revocable: bool },
    /// A method other than `GET` on a route that answers `GET` only (`/devices`, `/admin/…`).
    #[error("method not allowed")]
    GetOnly,
    /// The request outlived `REQUEST_TIMEOUT_SECS`.
    #[error("request timed out")]
    Timeout,
    /// Telnyx cannot be reached or keeps failing: the answer carries `Retry-After`, and the
    /// cause is logged.
    #[error("Telnyx unavailable: {cause}")]
    TelnyxUnavailable {
        cause: String,
        retry_after: Duration,
    },
    /// Telnyx refuses this service's API key or requests; the operator must act, and the
    /// log says how.
    #[error("Telnyx misconfigured: {0}")]
    TelnyxMisconfigured(String),
    /// Telnyx answered in a shape its API reference does not describe.
    #[error("bad answer from Telnyx: {0}")]
    TelnyxBadResponse(String),
    /// Anything else; the body stays generic and the cause goes to the log.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    success: bool,
    /// A sentence the person in front of the app can act on.
    error: &'static str,
    /// A stable code to switch on.
    code: &'static str,
}

/// Marks a response as a refused request, for the audit trail; carries the error code.
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub &'static str);

/// How the API answers one kind of error: a row of the error table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Description {
    pub status: StatusCode,
    /// The stable, machine-readable code clients switch on.
    pub code: &'static str,
    /// Whether the request was turned away on purpose (as opposed to a missing route, a slow
    /// request or a bug): its log line is a `warn` with `audit=request_refused`, and it is
    /// counted in `requests_refused_total`.
    pub refusal: bool,
    /// A sentence the person in front of the app can act on. Never carries request data.
    pub message: &'static str,
}

/// Writes the error table as [`ApiError::describe`] and [`ApiError::every_kind`]. Each row is
/// `pattern = example => description`: the variants the row describes, one value of them for
/// the OpenAPI document, and how the API answers them. `describe` is a `match` without a
/// wildcard arm, so a new variant does not compile until it has a row, and every row's example
/// is listed, so the document names every code with its sentence.
macro_rules! error_table {
    ($($pattern:pat = $example:expr => $description:expr;)+) => {
        impl ApiError {
            /// This error's row of the table.
            pub fn describe(&self) -> Description {
                match self {
                    $($pattern => $description,)+
                }
            }

            /// One error of every row, in the table's order.
            pub fn every_kind() -> Vec<ApiError> {
                vec![$($example),+]
            }
        }
    };
}

error_table! {
    ApiError::MissingToken = ApiError::MissingToken => Description {
        status: StatusCode::UNAUTHORIZED, code: "missing_token", refusal: true,
        message: "Sign in first: send your Supabase access token as 'Authorization: Bearer <token>'.",
    };
    ApiError::InvalidToken(TokenRejection::Expired) =
        ApiError::InvalidToken(TokenRejection::Expired) => Description {
        status: StatusCode::UNAUTHORIZED, code: "token_expired", refusal: true,
        message: "Your session has expired: refresh it (supabase.auth.getSession()) and try again.",
    };
    ApiError::InvalidToken(_) = ApiError::InvalidToken(TokenRejection::Malformed) => Description {
        status: StatusCode::UNAUTHORIZED, code: "invalid_token", refusal: true,
        message: "The access token was not accepted: sign in again and send the new session's access_token.",
    };
    ApiError::Forbidden(policy @ PolicyRefusal::AnonymousUser) =
        ApiError::Forbidden(PolicyRefusal::AnonymousUser) => Description {
        status: StatusCode::FORBIDDEN, code: policy.code(), refusal: true,
        message: "Guest (anonymous) sessions cannot get phone credentials: sign in with an account.",
    };
    ApiError::Forbidden(policy @ PolicyRefusal::RoleNotAllowed(_)) =
        ApiError::Forbidden(PolicyRefusal::RoleNotAllowed(String::new())) => Description {
        status: StatusCode::FORBIDDEN, code: policy.code(), refusal: true,
        message: "Only a signed-in user's access token can get phone credentials; project API keys (anon, service_role) cannot.",
    };
    ApiError::Forbidden(policy @ PolicyRefusal::Aal2Required) =
        ApiError::Forbidden(PolicyRefusal::Aal2Required) => Description {
        status: StatusCode::FORBIDDEN, code: policy.code(), refusal: true,
        message: "Phone credentials need a multi-factor session: verify your second factor (supabase.auth.mfa) and try again.",
    };
    ApiError::Forbidden(policy @ PolicyRefusal::EmailDomainNotAllowed) =
        ApiError::Forbidden(PolicyRefusal::EmailDomainNotAllowed) => Description {
        status: StatusCode::FORBIDDEN, code: policy.code(), refusal: true,
        message: "Phone credentials are only for accounts with an approved email domain: sign in with your work account.",
    };
    ApiError::Forbidden(policy @ PolicyRefusal::ClaimRequirementNotMet(_)) =
        ApiError::Forbidden(PolicyRefusal::ClaimRequirementNotMet(String::new())) => Description {
        status: StatusCode::FORBIDDEN, code: policy.code(), refusal: true,
        message: "Your account is not enabled for calling: ask an administrator to enable it, then sign in again.",
    };
    ApiError::SessionRevoked(_) = ApiError::SessionRevoked(String::new()) => Description {
        status: StatusCode::UNAUTHORIZED, code: "session_revoked", refusal: true,
        message: "Your session has ended (signed out, or the account was removed): sign in again.",
    };
    ApiError::RateLimited(_) =
        ApiError::RateLimited(RateLimited { retry_after: Duration::ZERO }) => Description {
        status: StatusCode::TOO_MANY_REQUESTS, code: "rate_limited", refusal: true,
        message: "Too many credential requests: wait the number of seconds in the Retry-After header, then try again.",
    };
    ApiError::InvalidDeviceId = ApiError::InvalidDeviceId => Description {
        status: StatusCode::BAD_REQUEST, code: "invalid_device_id", refusal: true,
        message: "The device_id parameter is not valid: send 1 to 64 characters of A-Z, a-z, 0-9, _ and - (a crypto.randomUUID() will do), or leave it out.",
    };
    ApiError::InvalidAdminToken = ApiError::InvalidAdminToken => Description {
        status: StatusCode::UNAUTHORIZED, code: "invalid_admin_token", refusal: true,
        message: "This route is for the app's backend: send the service's ADMIN_API_TOKEN as 'Authorization: Bearer <token>'.",
    };
    ApiError::InvalidUserId = ApiError::InvalidUserId => Description {
        status: StatusCode::BAD_REQUEST, code: "invalid_user_id", refusal: true,
        message: "The path does not name a user: put the Supabase user's id (the sub of their access tokens) in /admin/users/{sub}/devices.",
    };
    ApiError::NoDevicesInStaticMode = ApiError::NoDevicesInStaticMode => Description {
        status: StatusCode::METHOD_NOT_ALLOWED, code: "no_devices_in_static_mode", refusal: false,
        message: "There are no devices in static mode: every browser shares one SIP identity, so there is none to list or sign out one by one (CREDENTIAL_MODE=per_user gives each device its own).",
    };
    ApiError::PayloadTooLarge = ApiError::PayloadTooLarge => Description {
        status: StatusCode::PAYLOAD_TOO_LARGE, code: "payload_too_large", refusal: true,
        message: "The request body is too large: /credentials needs no body.",
    };
    ApiError::HeadersTooLarge = ApiError::HeadersTooLarge => Description {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, code: "headers_too_large", refusal: true,
        message: "The request headers are too large: send the Authorization header and the usual browser headers only.",
    };
    ApiError::Overloaded = ApiError::Overloaded => Description {
        status: StatusCode::SERVICE_UNAVAILABLE, code: "overloaded", refusal: true,
        message: "The service is busy: try again in a moment.",
    };
    ApiError::SessionCheckUnavailable(_) =
        ApiError::SessionCheckUnavailable(String::new()) => Description {
        status: StatusCode::SERVICE_UNAVAILABLE, code: "session_check_unavailable", refusal: true,
        message: "Your session could not be confirmed with the sign-in service: try again in a moment.",
    };
    ApiError::NotFound = ApiError::NotFound => Description {
        status: StatusCode::NOT_FOUND, code: "not_found", refusal: false,
        message: "There is nothing here: the credentials are at /credentials.",
    };
    ApiError::MethodNotAllowed { revocable: false } =
        ApiError::MethodNotAllowed { revocable: false } => Description {
        status: StatusCode::METHOD_NOT_ALLOWED, code: "method_not_allowed", refusal: false,
        message: "This method is not allowed here: use GET or POST on /credentials.",
    };
    ApiError::MethodNotAllowed { revocable: true } =
        ApiError::MethodNotAllowed { revocable: true } => Description {
        status: StatusCode::METHOD_NOT_ALLOWED, code: "method_not_allowed", refusal: false,
        message: "This method is not allowed here: use GET, POST or DELETE on /credentials.",
    };
    ApiError::GetOnly = ApiError::GetOnly => Description {
        status: StatusCode::METHOD_NOT_ALLOWED, code: "method_not_allowed", refusal: false,
        message: "This method is not allowed here: this route answers GET only.",
    };
    ApiError::Timeout = ApiError::Timeout => Description {
        status: StatusCode::SERVICE_UNAVAILABLE, code: "timeout", refusal: false,
        message: "The request took too long: try again in a moment.",
    };
    ApiError::TelnyxUnavailable { .. } = ApiError::TelnyxUnavailable {
        cause: String::new(),
        retry_after: Duration::ZERO,
    } => Description {
        status: StatusCode::SERVICE_UNAVAILABLE, code: "telnyx_unavailable", refusal: false,
        message: "The phone service (Telnyx) is not answering right now: try again in a minute.",
    };
    ApiError::TelnyxMisconfigured(_) = ApiError::TelnyxMisconfigured(String::new()) => Description {
        status: StatusCode::INTERNAL_SERVER_ERROR, code: "telnyx_misconfigured", refusal: false,
        message: "Phone credentials cannot be issued because this service's Telnyx settings are wrong: please tell the site's operator.",
    };
    ApiError::TelnyxBadResponse(_) = ApiError::TelnyxBadResponse(String::new()) => Description {
        status: StatusCode::BAD_GATEWAY, code: "telnyx_bad_response", refusal: false,
        message: "The phone service (Telnyx) sent an answer we could not use: try again, and contact support if it keeps happening.",
    };
    ApiError::Internal(_) = ApiError::Internal(String::new()) => Description {
        status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal_error", refusal: false,
        message: "Something went wrong on our side: try again, and contact support if it keeps happening.",
    };
}

impl ApiError {
    /// The routes that can answer with this error, where that is not every route declaring its
    /// status: the OpenAPI document explains each code only where it can occur.
    pub fn only_on(&self) -> Option<&'static [&'static str]> {
        match self {
            ApiError::MissingToken
            | ApiError::InvalidToken(_)
            | ApiError::Forbidden(_)
            | ApiError::SessionRevoked(_)
            | ApiError::SessionCheckUnavailable(_)
            | ApiError::RateLimited(_) => Some(&[CREDENTIALS_PATH, DEVICES_PATH]),
            ApiError::InvalidDeviceId => Some(&[CREDENTIALS_PATH]),
            ApiError::NoDevicesInStaticMode => Some(&[DEVICES_PATH]),
            ApiError::InvalidAdminToken | ApiError::InvalidUserId => Some(&[ADMIN_DEVICES_PATH]),
            _ => None,
        }
    }
}

impl From<RateLimited> for ApiError {
    fn from(limited: RateLimited) -> Self {
        ApiError::RateLimited(limited)
    }
}

impl From<SessionRefusal> for ApiError {
    fn from(refusal: SessionRefusal) -> Self {
        match refusal {
            SessionRefusal::Revoked(reason) => ApiError::SessionRevoked(reason),
            SessionRefusal::Unavailable(cause) => ApiError::SessionCheckUnavailable(cause),
        }
    }
}

impl From<CredentialError> for ApiError {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::TelnyxUnavailable { cause, retry_after } => {
                ApiError::TelnyxUnavailable { cause, retry_after }
            }
            CredentialError::TelnyxMisconfigured(cause) => ApiError::TelnyxMisconfigured(cause),
            CredentialError::TelnyxBadResponse(cause) => ApiError::TelnyxBadResponse(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // One line per failed request, with the cause and never a secret (causes are built
        // from status codes and Telnyx's error text, scrubbed of the API key).
        match &self {
            ApiError::Internal(cause)
            | ApiError::TelnyxMisconfigured(cause)
            | ApiError::TelnyxBadResponse(cause) => tracing::error!(cause, "request failed"),
            ApiError::TelnyxUnavailable { cause, .. } => {
                tracing::warn!(cause, "request failed: Telnyx is unavailable");
            }
            _ => {}
        }
        let described = self.describe();
        if described.refusal {
            metrics::request_refused(match &self {
                ApiError::InvalidToken(rejection) => rejection.reason(),
                _ => described.code,
            });
        }
        let body = ErrorBody {
            success: false,
            error: described.message,
            code: described.code,
        };
        let mut response = (described.status, Json(body)).into_response();
        // RFC 6750 §3: a challenge on every 401, with invalid_token when a token was refused.
        let challenge = match self {
            ApiError::MissingToken | ApiError::InvalidAdminToken => Some("Bearer"),
            ApiError::InvalidToken(_) | ApiError::SessionRevoked(_) => {
                Some(r#"Bearer error="invalid_token""#)
            }
            _ => None,
        };
        let retry_after = match &self {
            ApiError::TelnyxUnavailable { retry_after, .. } => Some(*retry_after),
            ApiError::RateLimited(limited) => Some(limited.retry_after),
            _ => None,
        };
        if let Some(wait) = retry_after {
            // Whole seconds, rounded up, so a client that waits exactly this long gets through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if described.refusal {
            response.extensions_mut().insert(Refusal(described.code));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Each row's example lands on its own row: as many distinct descriptions as rows, so the
    /// OpenAPI document, which lists the examples, names every code and sentence.
    #[test]
    fn every_row_of_the_error_table_is_listed_once() {
        let examples = ApiError::every_kind();
        let described: HashSet<Description> = examples.iter().map(ApiError::describe).collect();
        assert_eq!(described.len(), examples.len());
    }
}
