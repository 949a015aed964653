//! The `AuthenticatedUser` extractor: a request reaches a handler only with a verified Supabase
//! access token whose user the access policy admits.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::auth::{AccessPolicy, SupabaseClaims, TokenVerifier};

/// A user whose token verified and who may have phone credentials.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub claims: SupabaseClaims,
}

/// What the extractor needs from the application state.
#[derive(Clone)]
pub struct Authenticator {
    pub verifier: Arc<TokenVerifier>,
    pub policy: Arc<AccessPolicy>,
}

impl<S> FromRequestParts<S> for AuthenticatedUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        let token = bearer_token(parts).inspect_err(|_| {
            tracing::debug!("refused: no bearer token in the Authorization header");
        })?;
        let claims = authenticator
            .verifier
            .verify(token)
            .await
            .map_err(|reason| {
                tracing::debug!(%reason, "refused: invalid token");
                ApiError::InvalidToken(reason)
            })?;
        tracing::Span::current().record("user_id", claims.sub.as_str());
        authenticator.policy.check(&claims).map_err(|refusal| {
            tracing::debug!(%refusal, "refused: user may not have credentials");
            ApiError::Forbidden(refusal)
        })?;
        Ok(AuthenticatedUser { claims })
    }
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235).
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(ApiError::MissingToken)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::MissingToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::MissingToken);
    }
    Ok(token)
}
