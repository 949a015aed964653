//! Supabase Auth's admin users endpoint, for `prune`: does a user still exist?
//!
//! `GET ${SUPABASE_URL}/auth/v1/admin/users/{id}` with the project's secret key as `apikey`
//! (for the API gateway) and as the bearer token (for Auth's `requireAdminCredentials`). Per
//! supabase/auth `internal/api/admin.go` (`loadUser`): 200 with the user; 404 `user_not_found`
//! when there is none; 404 `validation_failed` when the id is not a UUID.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::config::SupabaseAdminConfig;

const TIMEOUT: Duration = Duration::from_secs(10);

/// What Supabase says about one user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserStatus {
    Exists,
    /// 404 `user_not_found`: the user was deleted.
    Gone,
    /// Supabase says nothing about this id (for instance it is not a UUID): left alone.
    Unknown(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 401 or 403: the key is wrong, or not the secret key.
    #[error(
        "Supabase refused SUPABASE_SERVICE_ROLE_KEY ({status} {detail}): set it to the project's secret key (sb_secret_…) or legacy service_role key"
    )]
    Refused { status: u16, detail: String },
    /// Unreachable, timed out, or an answer that says neither yes nor no.
    #[error("Supabase's admin API could not answer: {0}")]
    Unavailable(String),
}

pub struct SupabaseAdmin {
    http: reqwest::Client,
    users_url: Url,
    key: secrecy::SecretString,
}

impl SupabaseAdmin {
    pub fn new(config: &SupabaseAdminConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|error| format!("the HTTP client for Supabase did not start: {error}"))?;
        Ok(Self {
            http,
            users_url: config.users_url.clone(),
            key: config.service_role_key.clone(),
        })
    }

    pub async fn user_status(&self, user_id: &str) -> Result<UserStatus, AdminError> {
        let mut url = self.users_url.clone();
        url.path_segments_mut()
            .expect("the users URL is a base")
            .pop_if_empty()
            .push(user_id);
        let key = self.key.expose_secret();
        let mut apikey = reqwest::header::HeaderValue::from_str(key).map_err(|_| {
            AdminError::Unavailable(
                "SUPABASE_SERVICE_ROLE_KEY holds characters a header cannot carry".into(),
            )
        })?;
        apikey.set_sensitive(true);
        let response = self
            .http
            .get(url)
            .header("apikey", apikey)
            .bearer_auth(key)
            .send()
            .await
            .map_err(|error| AdminError::Unavailable(describe(&error)))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let error_code = text("error_code").or_else(|| text("code"));
        let detail = text("msg")
            .or_else(|| text("message"))
            .unwrap_or_default()
            .replace(key, "[redacted]");
        match status {
            StatusCode::OK => Ok(UserStatus::Exists),
            StatusCode::NOT_FOUND if error_code.as_deref() == Some("user_not_found") => {
                Ok(UserStatus::Gone)
            }
            StatusCode::NOT_FOUND => Ok(UserStatus::Unknown(format!(
                "Supabase answered 404 {} ({detail})",
                error_code.as_deref().unwrap_or("without an error_code")
            ))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(AdminError::Refused {
                status: status.as_u16(),
                detail: [error_code.unwrap_or_default(), detail]
                    .join(" ")
                    .trim()
                    .to_owned(),
            }),
            other => Err(AdminError::Unavailable(format!(
                "Supabase answered {other} ({detail})"
            ))),
        }
    }
}

/// A transport failure in words, without the URL's secrets (it has none) and with its causes.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "the request timed out"
    } else {
        "the request failed"
    };
    format!("{what}{}", crate::error_chain::causes(error))
}
