//! The HTTP layer's one error type and the JSON body every error response carries:
//! `{"success": false, "error": "<what to do>", "code": "<stable snake_case code>"}`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::{PolicyRefusal, TokenRejection};
use crate::credentials::CredentialError;
use crate::metrics;

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

#[derive(Serialize)]
struct ErrorBody {
    success: bool,
    error: &'static str,
    code: &'static str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
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
        match &self {
            ApiError::MissingToken => metrics::token_rejected("missing_token"),
            ApiError::InvalidToken(rejection) => metrics::token_rejected(rejection.reason()),
            ApiError::Forbidden(refusal) => metrics::token_rejected(refusal.code()),
            _ => {}
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
            ApiError::InvalidToken(_) => Some(r#"Bearer error="invalid_token""#),
            _ => None,
        };
        if let ApiError::TelnyxUnavailable { retry_after, .. } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
