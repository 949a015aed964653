//! The `AuthenticatedUser` extractor: a request reaches a handler only with a verified access
//! token (Supabase Auth's, or a `THIRD_PARTY_ISSUERS` issuer's) whose user the access policy
//! admits, within the rate limits, and (when the remote session check is on, for Supabase Auth
//! users) whose session Supabase still knows.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::client_addr::ClientAddr;
use super::error::ApiError;
use crate::auth::{SessionRefusal, SupabaseClaims, TokenIssuer};
use crate::credentials::Holder;

/// A user whose token verified and who may have phone credentials now.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    /// Shared with the token cache.
    pub claims: Arc<SupabaseClaims>,
    /// Who vouched for the token; with its `sub`, who the user is.
    pub issuer: TokenIssuer,
}

/// Borrows what it needs from the state: a clone of each service per request would cost an
/// atomic reference count each, on cache lines the worker threads share.
impl FromRequestParts<AppState> for AuthenticatedUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client_addr = ClientAddr::of(&parts.extensions);
        // Before any verification work: a flood from one address costs a map lookup each (a
        // Redis round trip with REDIS_URL).
        state
            .rate_limits
            .check_client_address(client_addr.0)
            .await?;
        let token = bearer_token(parts).inspect_err(|_| {
            tracing::debug!("refused: no bearer token in the Authorization header");
        })?;
        let verified = state.verifier.verify(token).await.map_err(|reason| {
            tracing::debug!(%reason, "refused: invalid token");
            ApiError::InvalidToken(reason)
        })?;
        let user = AuthenticatedUser {
            claims: verified.claims,
            issuer: verified.issuer,
        };
        let claims = &user.claims;
        let span = tracing::Span::current();
        span.record("user_id", claims.sub.as_str());
        span.record("issuer", user.issuer.tag());
        state.policy.check(claims).map_err(|refusal| {
            tracing::info!(
                rule = refusal.rule(),
                code = refusal.code(),
                %refusal,
                "refused by the access policy"
            );
            ApiError::Forbidden(refusal)
        })?;
        let holder = user.holder();
        state.rate_limits.check_user(holder.user_key()).await?;
        // Last, as the only step that may call out: only admitted users within their limit
        // cost Supabase a call. Supabase knows the sessions of its own users only: another
        // issuer's token is never sent to it.
        if let Some(sessions) = state
            .sessions
            .as_ref()
            .filter(|_| user.issuer.is_supabase())
        {
            sessions
                .confirm(token, claims, holder.user_key())
                .await
                .inspect_err(|refusal| match refusal {
                    SessionRefusal::Revoked(_) => {
                        tracing::info!(%refusal, "refused by the session check");
                    }
                    SessionRefusal::Unavailable(_) => {
                        tracing::error!(%refusal, "refused: the session check failed closed");
                    }
                })?;
        }
        Ok(user)
    }
}

impl AuthenticatedUser {
    /// Whose credential this request is for: a user is their issuer and their `sub`.
    pub fn holder(&self) -> Holder {
        match self.issuer {
            TokenIssuer::Supabase => Holder::supabase_user(&self.claims.sub),
            TokenIssuer::ThirdParty(tag) => Holder::third_party(tag, &self.claims.sub),
        }
    }
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235).
pub(super) fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
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
