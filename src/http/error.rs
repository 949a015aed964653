//! The HTTP layer's one error type and the JSON body every error response carries:
//! `{"success": false, "error": "<what to do>", "code": "<stable snake_case code>"}`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{PolicyRefusal, SessionRefusal, TokenRejection};
use crate::credentials::CredentialError;
use crate::metrics;
use crate::ratelimit::RateLimited;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no `Authorization: Bearer` token came with the request.
    #[error("no bearer token")]
    MissingToken,
    /// 401: a token came but was refused; the reason is logged at debug, never returned.
    #[error("token rejected: {0}")]
    InvalidToken(TokenRejection),
    /// 403: the token is valid but its user may not have phone credentials.
    #[error("user refused: {0}")]
    Forbidden(PolicyRefusal),
    /// 401: Supabase says the token's session was signed out or its user deleted.
    #[error("session revoked: {0}")]
    SessionRevoked(String),
    /// 429: over `RATE_LIMIT_PER_USER` or `RATE_LIMIT_PER_IP`; `Retry-After` says when to retry.
    #[error("rate limited")]
    RateLimited(RateLimited),
    /// 413: the body is over `MAX_REQUEST_BODY_BYTES`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 431: the headers are over `MAX_REQUEST_HEADER_BYTES`.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// 503: `MAX_CONCURRENT_REQUESTS` are already in flight; refused at once, never queued.
    #[error("overloaded")]
    Overloaded,
    /// 503: the remote session check could not get an answer; never an accept. The cause is
    /// logged where it arose.
    #[error("session check unavailable: {0}")]
    SessionCheckUnavailable(String),
    /// 404: no such route.
    #[error("no such route")]
    NotFound,
    /// 405: the route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503: the request outlived `REQUEST_TIMEOUT_SECS`.
    #[error("request timed out")]
    Timeout,
    /// 503 with `Retry-After`: Telnyx cannot be reached or keeps failing; the cause is logged.
    #[error("Telnyx unavailable: {cause}")]
    TelnyxUnavailable {
        cause: String,
        retry_after: Duration,
    },
    /// 500: Telnyx refuses this service's API key or requests; the operator must act, and the
    /// log says how.
    #[error("Telnyx misconfigured: {0}")]
    TelnyxMisconfigured(String),
    /// 502: Telnyx answered in a shape its API reference does not describe.
    #[error("bad answer from Telnyx: {0}")]
    TelnyxBadResponse(String),
    /// 500: anything else; the body stays generic and the cause goes to the log.
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

impl ApiError {
    /// Whether the request was turned away on purpose (as opposed to a missing route, a slow
    /// request or a bug): their log line is a `warn` with `audit=request_refused`.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ApiError::MissingToken
                | ApiError::InvalidToken(_)
                | ApiError::Forbidden(_)
                | ApiError::SessionRevoked(_)
                | ApiError::RateLimited(_)
                | ApiError::PayloadTooLarge
                | ApiError::HeadersTooLarge
                | ApiError::Overloaded
                | ApiError::SessionCheckUnavailable(_)
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::SessionRevoked(_) => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Overloaded | ApiError::SessionCheckUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout | ApiError::TelnyxUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::TelnyxMisconfigured(_) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::TelnyxBadResponse(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The stable, machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "missing_token",
            ApiError::InvalidToken(TokenRejection::Expired) => "token_expired",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::Forbidden(refusal) => refusal.code(),
            ApiError::SessionRevoked(_) => "session_revoked",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::Overloaded => "overloaded",
            ApiError::SessionCheckUnavailable(_) => "session_check_unavailable",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Timeout => "timeout",
            ApiError::TelnyxUnavailable { .. } => "telnyx_unavailable",
            ApiError::TelnyxMisconfigured(_) => "telnyx_misconfigured",
            ApiError::TelnyxBadResponse(_) => "telnyx_bad_response",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// A sentence the person in front of the app can act on. Never carries request data.
    pub fn message(&self) -> &'static str {
        match self {
            ApiError::MissingToken => {
                "Sign in first: send your Supabase access token as 'Authorization: Bearer <token>'."
            }
            ApiError::InvalidToken(TokenRejection::Expired) => {
                "Your session has expired: refresh it (supabase.auth.getSession()) and try again."
            }
            ApiError::InvalidToken(_) => {
                "The access token was not accepted: sign in again and send the new session's access_token."
            }
            ApiError::Forbidden(PolicyRefusal::AnonymousUser) => {
                "Guest (anonymous) sessions cannot get phone credentials: sign in with an account."
            }
            ApiError::Forbidden(PolicyRefusal::RoleNotAllowed(_)) => {
                "Only a signed-in user's access token can get phone credentials; project API keys (anon, service_role) cannot."
            }
            ApiError::Forbidden(PolicyRefusal::Aal2Required) => {
                "Phone credentials need a multi-factor session: verify your second factor (supabase.auth.mfa) and try again."
            }
            ApiError::Forbidden(PolicyRefusal::EmailDomainNotAllowed) => {
                "Phone credentials are only for accounts with an approved email domain: sign in with your work account."
            }
            ApiError::Forbidden(PolicyRefusal::ClaimRequirementNotMet(_)) => {
                "Your account is not enabled for calling: ask an administrator to enable it, then sign in again."
            }
            ApiError::SessionRevoked(_) => {
                "Your session has ended (signed out, or the account was removed): sign in again."
            }
            ApiError::RateLimited(_) => {
                "Too many credential requests: wait the number of seconds in the Retry-After header, then try again."
            }
            ApiError::PayloadTooLarge => {
                "The request body is too large: /credentials needs no body."
            }
            ApiError::HeadersTooLarge => {
                "The request headers are too large: send the Authorization header and the usual browser headers only."
            }
            ApiError::Overloaded => "The service is busy: try again in a moment.",
            ApiError::SessionCheckUnavailable(_) => {
                "Your session could not be confirmed with the sign-in service: try again in a moment."
            }
            ApiError::NotFound => "There is nothing here: the credentials are at /credentials.",
            ApiError::MethodNotAllowed => {
                "This method is not allowed here: use GET or POST on /credentials."
            }
            ApiError::Timeout => "The request took too long: try again in a moment.",
            ApiError::TelnyxUnavailable { .. } => {
                "The phone service (Telnyx) is not answering right now: try again in a minute."
            }
            ApiError::TelnyxMisconfigured(_) => {
                "Phone credentials cannot be issued because this service's Telnyx settings are wrong: please tell the site's operator."
            }
            ApiError::TelnyxBadResponse(_) => {
                "The phone service (Telnyx) sent an answer we could not use: try again, and contact support if it keeps happening."
            }
            ApiError::Internal(_) => {
                "Something went wrong on our side: try again, and contact support if it keeps happening."
            }
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
        if self.is_refusal() {
            metrics::token_rejected(match &self {
                ApiError::InvalidToken(rejection) => rejection.reason(),
                _ => self.code(),
            });
        }
        let body = ErrorBody {
            success: false,
            error: self.message(),
            code: self.code(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        // RFC 6750 §3: a challenge on every 401, with invalid_token when a token was refused.
        let challenge = match self {
            ApiError::MissingToken => Some("Bearer"),
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
        if self.is_refusal() {
            response.extensions_mut().insert(Refusal(self.code()));
        }
        response
    }
}
