//! The optional remote session check (`SUPABASE_VERIFY_SESSION`): signing out or deleting a user
//! at Supabase does not recall the access tokens already issued, so a verified token is also
//! shown to Supabase's `GET /auth/v1/user`, which answers only while the session exists.
//!
//! Only Supabase Auth's own tokens are checked (a `THIRD_PARTY_ISSUERS` issuer's sessions are
//! not Supabase's to know, and its tokens are never sent there: `http::extractor` decides).
//!
//! Answers are remembered per user and session: a confirmation for `SESSION_CHECK_CACHE_SECS`,
//! a revocation until the refused token expires. Concurrent checks of one session on one
//! replica share one call, so each session costs Supabase at most one call per cache period
//! per replica, and with `REDIS_URL` one for all of them. Anything but a clear yes or a clear no
//! (Supabase unreachable, slow, erroring, or refusing our `apikey`) fails closed and is never
//! remembered.
//!
//! A custom `SUPABASE_JWT_AUDIENCE` works here as it is: no `X-JWT-AUD` header is sent, so
//! Supabase takes the request's audience from the token's own first `aud` (`requestAud` in
//! supabase/auth internal/api/helpers.go) and `UserGet` (internal/api/user.go) finds them equal.
//! Sending the configured audience instead would refuse tokens whose `aud` lists it second.
//!
//! The rules are here; [`memory`] and [`redis`] only keep the answers.

mod memory;
mod redis;
mod single_flight;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::memory::MemoryAnswers;
use self::redis::RedisAnswers;
use self::single_flight::SingleFlight;
use super::SupabaseClaims;
use super::jwks::with_causes;
use crate::config::SessionCheckConfig;
use crate::shared::{Redis, keys};

/// Supabase's user object is a few KiB; anything much larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Supabase's `error_code`s are short names; a longer one is cut before it is stored.
const MAX_STORED_CODE_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// Supabase says the session or the user is gone; carries Supabase's `error_code`.
    #[error("Supabase no longer accepts this session ({0})")]
    Revoked(String),
    /// Supabase could not give an answer we can trust.
    #[error("the session could not be checked: {0}")]
    Unavailable(String),
}

/// What Supabase said about a session, as remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Confirmed,
    /// With Supabase's `error_code`.
    Revoked(String),
}

impl Answer {
    /// The value stored in Redis: `confirmed`, or `revoked <error_code>`.
    fn to_value(&self) -> String {
        match self {
            Answer::Confirmed => "confirmed".to_owned(),
            Answer::Revoked(code) => format!("revoked {code}"),
        }
    }

    /// `None` for a value this release does not know: it is treated as no answer.
    fn parse(value: &str) -> Option<Self> {
        match value.split_once(' ') {
            None if value == "confirmed" => Some(Answer::Confirmed),
            Some(("revoked", code)) => Some(Answer::Revoked(code.to_owned())),
            _ => None,
        }
    }

    fn verdict(self) -> Result<(), SessionRefusal> {
        match self {
            Answer::Confirmed => Ok(()),
            Answer::Revoked(code) => Err(SessionRefusal::Revoked(code)),
        }
    }
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
    /// `JWT_LEEWAY_SECS`: how long past its `exp` a refused token could still verify.
    leeway: Duration,
    memory: MemoryAnswers,
    /// With `REDIS_URL`: the answers every replica has learned.
    shared: Option<RedisAnswers>,
    asking: SingleFlight<Result<(), SessionRefusal>>,
}

impl SessionCheck {
    pub fn new(config: &SessionCheckConfig, leeway: Duration, redis: Option<Arc<Redis>>) -> Self {
        let client = super::http_client(CHECK_TIMEOUT)
            // A redirect would carry the user's token elsewhere; Supabase answers directly.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's TLS backend initialises");
        Self {
            client,
            user_url: config.user_url.clone(),
            anon_key: config.anon_key.clone(),
            cache_ttl: config.cache_ttl,
            leeway,
            memory: MemoryAnswers::new(),
            shared: redis.map(RedisAnswers::new),
            asking: SingleFlight::new(),
        }
    }

    /// Ok when Supabase confirms (or recently confirmed) the token's session. `user` is the
    /// holder's user key (`credentials::Holder::user_key`), which the answers are kept by.
    pub async fn confirm(
        &self,
        token: &str,
        claims: &SupabaseClaims,
        user: &str,
    ) -> Result<(), SessionRefusal> {
        if self.cache_ttl.is_zero() {
            return self.ask(token, claims).await;
        }
        let key = keys::key(
            "session",
            &[
                user.as_bytes(),
                claims.session_id.as_deref().unwrap_or_default().as_bytes(),
            ],
        );
        if let Some(answer) = self.recall(&key).await {
            return answer.verdict();
        }
        // While this request asks, others for the same session wait for its answer.
        self.asking
            .run(&key, async {
                let verdict = self.ask(token, claims).await;
                match &verdict {
                    Ok(()) => self.remember(&key, Answer::Confirmed, self.cache_ttl).await,
                    Err(SessionRefusal::Revoked(code)) => {
                        let code = code.chars().take(MAX_STORED_CODE_LEN).collect();
                        let ttl = self.revocation_ttl(claims);
                        self.remember(&key, Answer::Revoked(code), ttl).await;
                    }
                    // The next request asks again.
                    Err(SessionRefusal::Unavailable(_)) => {}
                }
                verdict
            })
            .await
    }

    /// Redis first, while it answers: it holds what every replica learned, a sign-out seen
    /// by another replica included. When it does not, this replica's memory answers, so a
    /// sign-out seen elsewhere during a Redis outage reaches this replica only once its own
    /// confirmation expires (`SESSION_CHECK_CACHE_SECS` at most).
    async fn recall(&self, key: &str) -> Option<Answer> {
        let Some(shared) = &self.shared else {
            return self.memory.recall(key).map(|(answer, _)| answer);
        };
        let found = match shared.recall(key).await {
            Ok(found) => found,
            Err(_) => return self.memory.recall(key).map(|(answer, _)| answer),
        };
        if let Some((revoked @ Answer::Revoked(_), left)) = self.memory.recall(key)
            && !matches!(found, Some((Answer::Revoked(_), _)))
        {
            // A revocation this replica saw while Redis was down, or that Redis lost: it wins
            // over any confirmation, and is shared now.
            let _ = shared.remember(key, &revoked, left).await;
            return Some(revoked);
        }
        let (answer, left) = found?;
        self.memory.remember(key, answer.clone(), left);
        Some(answer)
    }

    /// In memory always (the fallback for when Redis is down), and in Redis when it answers;
    /// an answer Redis missed is asked for again by the next replica that needs it.
    async fn remember(&self, key: &str, answer: Answer, ttl: Duration) {
        if let Some(shared) = &self.shared {
            let _ = shared.remember(key, &answer, ttl).await;
        }
        self.memory.remember(key, answer, ttl);
    }

    /// Until the refused token could no longer verify anyway; other tokens of the session,
    /// if any outlive it, are asked about again.
    fn revocation_ttl(&self, claims: &SupabaseClaims) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (Duration::from_secs(claims.exp) + self.leeway)
            .saturating_sub(now)
            .max(Duration::from_secs(1))
    }

    /// How many sessions this replica remembers an answer for.
    pub fn cached_sessions(&self) -> usize {
        self.memory.len()
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
    let client = super::http_client(CHECK_TIMEOUT)
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
