//! The optional remote session check (`SUPABASE_VERIFY_SESSION`): signing out or deleting a user
//! at Supabase does not recall the access tokens already issued, so a verified token is also
//! shown to Supabase's `GET /auth/v1/user`, which answers only while the session exists.
//!
//! A positive answer is cached per user and session for `SESSION_CHECK_CACHE_SECS`, and
//! concurrent checks of one session share one call, so each session costs Supabase at most one
//! call per cache period. Refusals are never cached. Anything but a clear yes or a clear no
//! (Supabase unreachable, slow, erroring, or refusing our `apikey`) fails closed.
//!
//! A custom `SUPABASE_JWT_AUDIENCE` works here as it is: no `X-JWT-AUD` header is sent, so
//! Supabase takes the request's audience from the token's own first `aud` (`requestAud` in
//! supabase/auth internal/api/helpers.go) and `UserGet` (internal/api/user.go) finds them equal.
//! Sending the configured audience instead would refuse tokens whose `aud` lists it second.

use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, EntryAction, EntryResult};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::SupabaseClaims;
use super::jwks::with_causes;
use crate::config::SessionCheckConfig;

/// Sessions whose positive answer is remembered at once; past it the least used are forgotten
/// (and simply asked about again).
const MAX_CACHED_SESSIONS: usize = 100_000;
/// Supabase's user object is a few KiB; anything much larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// Supabase says the session or the user is gone; carries Supabase's `error_code`.
    #[error("Supabase no longer accepts this session ({0})")]
    Revoked(String),
    /// Supabase could not give an answer we can trust.
    #[error("the session could not be checked: {0}")]
    Unavailable(String),
}

/// The one field of Supabase's user object we compare.
#[derive(Deserialize)]
struct SupabaseUser {
    id: String,
}

pub struct SessionCheck {
    client: reqwest::Client,
    user_url: Url,
    anon_key: SecretString,
    cache_ttl: Duration,
    /// (user id, session id) → until when the positive answer holds.
    confirmed: Cache<(String, String), Instant>,
}

impl SessionCheck {
    pub fn new(config: &SessionCheckConfig) -> Self {
        let client = super::supabase_client(CHECK_TIMEOUT)
            // A redirect would carry the user's token elsewhere; Supabase answers directly.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's TLS backend initialises");
        Self {
            client,
            user_url: config.user_url.clone(),
            anon_key: config.anon_key.clone(),
            cache_ttl: config.cache_ttl,
            confirmed: Cache::new(MAX_CACHED_SESSIONS),
        }
    }

    /// Ok when Supabase confirms (or recently confirmed) the token's session.
    pub async fn confirm(
        &self,
        token: &str,
        claims: &SupabaseClaims,
    ) -> Result<(), SessionRefusal> {
        if self.cache_ttl.is_zero() {
            return self.ask(token, claims).await;
        }
        let key = (
            claims.sub.clone(),
            claims.session_id.clone().unwrap_or_default(),
        );
        let now = Instant::now();
        let entry = self
            .confirmed
            .entry_async(&key, |_, until| {
                if *until > now {
                    EntryAction::Retain(())
                } else {
                    EntryAction::ReplaceWithGuard
                }
            })
            .await;
        // While this request holds the guard, others for the same session wait for its answer.
        let guard = match entry {
            EntryResult::Retained(()) => return Ok(()),
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => Some(guard),
            EntryResult::Removed(..) | EntryResult::Timeout => None,
        };
        self.ask(token, claims).await?;
        if let Some(guard) = guard {
            let _ = guard.insert(Instant::now() + self.cache_ttl);
        }
        Ok(())
    }

    /// How many sessions have a remembered answer.
    pub fn cached_sessions(&self) -> usize {
        self.confirmed.len()
    }

    async fn ask(&self, token: &str, claims: &SupabaseClaims) -> Result<(), SessionRefusal> {
        let unavailable = |problem: String| SessionRefusal::Unavailable(problem);
        let response = self
            .client
            .get(self.user_url.clone())
            .header("apikey", self.anon_key.expose_secret())
            .bearer_auth(token)
            .send()
            .await
            .map_err(|error| {
                unavailable(format!(
                    "could not reach {}: {}",
                    self.user_url,
                    with_causes(&error)
                ))
            })?;
        let status = response.status();
        let body = read_bounded(response).await.map_err(|problem| {
            unavailable(format!(
                "{} answered HTTP {status}, {problem}",
                self.user_url
            ))
        })?;
        match status {
            StatusCode::OK => {
                let user: SupabaseUser = serde_json::from_slice(&body).map_err(|error| {
                    unavailable(format!(
                        "{} answered 200 without a user object: {error}",
                        self.user_url
                    ))
                })?;
                if user.id == claims.sub {
                    Ok(())
                } else {
                    Err(unavailable(format!(
                        "{} answered for another user than the token's sub",
                        self.user_url
                    )))
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                let answer = ErrorAnswer::parse(&body);
                if status == StatusCode::UNAUTHORIZED && answer.blames_the_api_key() {
                    return Err(unavailable(format!(
                        "{} refused SUPABASE_ANON_KEY ({}): set it to the project's anon (publishable) key",
                        self.user_url, answer.message
                    )));
                }
                Err(SessionRefusal::Revoked(
                    answer
                        .code
                        .unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
                ))
            }
            StatusCode::BAD_REQUEST => {
                let answer = ErrorAnswer::parse(&body);
                let error_code = answer.code.as_deref().unwrap_or("none");
                let hint = match error_code {
                    "validation_failed" => {
                        "Supabase wants the token's first aud to be the audience of the request: issue tokens whose aud starts with SUPABASE_JWT_AUDIENCE"
                    }
                    "bad_jwt" => {
                        "Supabase refuses the token's claims (sub and session_id must be UUIDs): only tokens that Supabase Auth issued can be checked, so turn SUPABASE_VERIFY_SESSION off for any others"
                    }
                    _ => "Supabase refused the request itself: check SUPABASE_URL",
                };
                tracing::warn!(error_code, message = %answer.message, "Supabase's session check answered 400: {hint}");
                Err(unavailable(format!(
                    "{} answered HTTP 400 with error_code {error_code} ({}): {hint}",
                    self.user_url, answer.message
                )))
            }
            _ => Err(unavailable(format!(
                "{} answered HTTP {status}",
                self.user_url
            ))),
        }
    }
}

/// Whether Supabase accepts `SUPABASE_ANON_KEY`, asked without a user's token: for
/// `check-config --online`.
///
/// `GET /auth/v1/settings` is the one endpoint that checks nothing but the key: Supabase Auth
/// serves it to anyone (supabase/auth `internal/api/api.go`), and in front of it the API gateway
/// refuses a missing or unknown `apikey` with a 401, as on every `/auth/v1/` route except the
/// open ones (the JWKS, `verify`, `callback`, `authorize`; supabase/supabase
/// `docker/volumes/api/kong.yml`).
pub async fn check_anon_key(config: &SessionCheckConfig) -> Result<(), String> {
    let url = config
        .user_url
        .join("settings")
        .expect("a sibling of /auth/v1/user is a URL");
    let client = super::supabase_client(CHECK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's TLS backend initialises");
    let response = client
        .get(url.clone())
        .header("apikey", config.anon_key.expose_secret())
        .send()
        .await
        .map_err(|error| {
            format!(
                "could not reach {url}: {}: check SUPABASE_URL, and that this machine reaches it",
                with_causes(&error)
            )
        })?;
    let status = response.status();
    let body = read_bounded(response).await.unwrap_or_default();
    match status {
        StatusCode::OK => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(format!(
            "Supabase refused SUPABASE_ANON_KEY at {url} (HTTP {status}: {}): set it to the project's anon (publishable) key (Supabase dashboard → Project Settings → API Keys)",
            ErrorAnswer::parse(&body).message
        )),
        _ => Err(format!(
            "{url} answered HTTP {status}: check that SUPABASE_URL is the project's URL"
        )),
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("then failed: {}", with_causes(&error)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("with more than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Supabase Auth's error body (`{"code":403,"error_code":"session_not_found","msg":…}`, or
/// `{"code":"session_not_found","message":…}` in newer API versions), or its API gateway's
/// (`{"message":"Invalid API key"}`).
struct ErrorAnswer {
    code: Option<String>,
    message: String,
}

impl ErrorAnswer {
    fn parse(body: &[u8]) -> Self {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Self {
            code: text("error_code").or_else(|| text("code")),
            message: text("msg").or_else(|| text("message")).unwrap_or_default(),
        }
    }

    /// The gateway refuses a wrong or missing `apikey` with a 401 before Auth sees the token:
    /// a configuration problem, not a verdict on the user.
    fn blames_the_api_key(&self) -> bool {
        self.code.is_none() && self.message.to_ascii_lowercase().contains("api key")
    }
}
