//! The Telnyx API client: telephony credentials and their login tokens, written to Telnyx's
//! published API reference (developers.telnyx.com; the team-telnyx/openapi spec).
//!
//! It never reads a credential's `sip_password`: the field is left out of every type here, so
//! it cannot be logged or leaked from this process.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode, header};
use reqwest::{Response, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::config::{TelnyxApiConfig, TelnyxTiming};
pub use retry::Budget;

mod retry;

/// A telephony credential as Telnyx describes it, minus its SIP password.
#[derive(Debug, Clone, Deserialize)]
pub struct TelephonyCredential {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub sip_username: String,
    /// `connection:<id>` for credentials on a credential connection.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// A boolean in the reference, a string in some answers.
    #[serde(default, deserialize_with = "bool_or_string")]
    pub expired: bool,
    /// ISO 8601; compared as text, which orders Telnyx's one format correctly.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A credential connection as Telnyx describes it (`RetrieveCredentialConnection`), minus its
/// SIP `user_name` and `password`, which are left unread as every SIP password is here.
#[derive(Debug, Clone, Deserialize)]
pub struct CredentialConnection {
    #[serde(default)]
    pub connection_name: Option<String>,
    /// "Defaults to true" in the reference; a connection turned off places no calls.
    #[serde(default = "active_by_default")]
    pub active: bool,
    #[serde(default)]
    pub record_type: Option<String>,
}

fn active_by_default() -> bool {
    true
}

/// A login token minted for a telephony credential, and when it stops working.
pub struct LoginToken {
    pub token: SecretString,
    pub expires_at: SystemTime,
}

/// Why a Telnyx call failed, in the terms the caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum TelnyxError {
    /// Telnyx could not be reached, or kept answering 429 or 5xx, within the request's budget.
    #[error("Telnyx is unavailable: {cause}")]
    Unavailable {
        cause: String,
        retry_after: Option<Duration>,
    },
    /// 401 or 403: the API key is wrong, revoked, or may not manage telephony credentials.
    #[error("Telnyx refused the API key ({status}): {detail}")]
    Unauthorized { status: u16, detail: String },
    /// 404: the credential is gone.
    #[error("Telnyx has no such credential")]
    NotFound,
    /// Any other 4xx, such as a connection id that is not a credential connection.
    #[error("Telnyx rejected the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// A 2xx whose body is not what the API reference describes.
    #[error("Telnyx answered in an unexpected shape: {0}")]
    InvalidResponse(String),
}

pub struct TelnyxClient {
    http: reqwest::Client,
    base_url: Url,
    /// `Bearer <API key>`, marked sensitive so that no `Debug` print shows it.
    authorization: HeaderValue,
    /// For scrubbing the key from error text Telnyx might echo.
    api_key: SecretString,
    timing: TelnyxTiming,
    request_budget: Duration,
}

impl fmt::Debug for TelnyxClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnyxClient")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct Claims {
    exp: u64,
}

impl TelnyxClient {
    pub fn new(config: &TelnyxApiConfig) -> Result<Self, String> {
        let mut authorization = HeaderValue::from_str(&format!(
            "Bearer {}",
            config.api_key.expose_secret()
        ))
        .map_err(|_| {
            "TELNYX_API_KEY contains characters an HTTP header cannot carry: paste the key again"
                .to_owned()
        })?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(config.timing.connect_timeout)
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|error| format!("the HTTP client for Telnyx did not start: {error}"))?;
        Ok(Self {
            http,
            base_url: config.base_url.clone(),
            authorization,
            api_key: config.api_key.clone(),
            timing: config.timing,
            request_budget: config.request_budget,
        })
    }

    /// A fresh budget for the Telnyx calls of one request (`TELNYX_REQUEST_BUDGET_SECS`).
    pub fn budget(&self) -> Budget {
        Budget::new(self.request_budget)
    }

    /// `GET /telephony_credentials` filtered to one name on one connection. The filters are
    /// checked again here, so that a looser match on Telnyx's side cannot hand one user
    /// another's credential.
    pub async fn find_credentials(
        &self,
        name: &str,
        connection_id: &str,
        active_only: bool,
        budget: &Budget,
    ) -> Result<Vec<TelephonyCredential>, TelnyxError> {
        let resource_id = format!("connection:{connection_id}");
        let mut url = self.url(&["telephony_credentials"]);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("filter[name]", name)
                .append_pair("filter[resource_id]", &resource_id)
                .append_pair("page[size]", "250");
            if active_only {
                query.append_pair("filter[status]", "active");
            }
        }
        let response = self
            .send("list_credentials", budget, || self.http.get(url.clone()))
            .await?;
        let found: Data<Vec<TelephonyCredential>> = self.read_json(response).await?;
        Ok(found
            .data
            .into_iter()
            .filter(|credential| {
                credential.name.as_deref() == Some(name)
                    && credential.resource_id.as_deref() == Some(resource_id.as_str())
                    && !(active_only && credential.expired)
            })
            .collect())
    }

    /// `GET /credential_connections/{id}`, read-only (`RetrieveCredentialConnection` in
    /// team-telnyx/openapi `spec3.yml`): proves the API key works and the connection exists on
    /// its account, for `check-config --online`. 404 is [`TelnyxError::NotFound`].
    pub async fn credential_connection(
        &self,
        connection_id: &str,
        budget: &Budget,
    ) -> Result<CredentialConnection, TelnyxError> {
        let url = self.url(&["credential_connections", connection_id]);
        let response = self
            .send("get_connection", budget, || self.http.get(url.clone()))
            .await?;
        let found: Data<CredentialConnection> = self.read_json(response).await?;
        Ok(found.data)
    }

    /// How many telephony credentials the connection holds, from one page of
    /// `GET /telephony_credentials` (`meta.total_results`), read-only.
    pub async fn count_credentials(
        &self,
        connection_id: &str,
        budget: &Budget,
    ) -> Result<u64, TelnyxError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            meta: Option<Meta>,
            data: Vec<serde::de::IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct Meta {
            total_results: Option<u64>,
        }
        let mut url = self.url(&["telephony_credentials"]);
        url.query_pairs_mut()
            .append_pair(
                "filter[resource_id]",
                &format!("connection:{connection_id}"),
            )
            .append_pair("page[size]", "1");
        let response = self
            .send("list_credentials", budget, || self.http.get(url.clone()))
            .await?;
        let page: Page = self.read_json(response).await?;
        Ok(page
            .meta
            .and_then(|meta| meta.total_results)
            .unwrap_or(page.data.len() as u64))
    }

    /// `POST /telephony_credentials`.
    pub async fn create_credential(
        &self,
        name: &str,
        connection_id: &str,
        budget: &Budget,
    ) -> Result<TelephonyCredential, TelnyxError> {
        let url = self.url(&["telephony_credentials"]);
        let body = serde_json::json!({ "connection_id": connection_id, "name": name });
        let response = self
            .send("create_credential", budget, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        let created: Data<TelephonyCredential> = self.read_json(response).await?;
        Ok(created.data)
    }

    /// `POST /telephony_credentials/{id}/token`: Telnyx answers `201` with the JWT as
    /// `text/plain`. Its `exp` is read without verifying the signature, which is right here:
    /// the token is Telnyx's, for Telnyx to verify, and only its expiry is of use to us.
    pub async fn create_login_token(
        &self,
        credential_id: &str,
        budget: &Budget,
    ) -> Result<LoginToken, TelnyxError> {
        let url = self.url(&["telephony_credentials", credential_id, "token"]);
        let response = self
            .send("create_token", budget, || self.http.post(url.clone()))
            .await?;
        let response = self.success(response).await?;
        let text = response
            .text()
            .await
            .map_err(|error| TelnyxError::InvalidResponse(format!("unreadable token: {error}")))?;
        let token = text.trim().trim_matches('"');
        let claims: Claims =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| {
                TelnyxError::InvalidResponse(
                    "the login token is not a JWT with an exp claim".into(),
                )
            })?;
        Ok(LoginToken {
            token: SecretString::from(token),
            expires_at: UNIX_EPOCH + Duration::from_secs(claims.exp),
        })
    }

    /// `DELETE /telephony_credentials/{id}`; one already gone counts as deleted.
    pub async fn delete_credential(
        &self,
        credential_id: &str,
        budget: &Budget,
    ) -> Result<(), TelnyxError> {
        let url = self.url(&["telephony_credentials", credential_id]);
        let response = self
            .send("delete_credential", budget, || {
                self.http.delete(url.clone())
            })
            .await?;
        match self.success(response).await {
            Ok(_) | Err(TelnyxError::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("the base URL was checked to be a base at start-up")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn send(
        &self,
        endpoint: &'static str,
        budget: &Budget,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, TelnyxError> {
        retry::send(endpoint, &self.timing, budget, || {
            build()
                .header(header::AUTHORIZATION, self.authorization.clone())
                .header(header::ACCEPT, "application/json, text/plain")
        })
        .await
    }

    async fn read_json<T: DeserializeOwned>(&self, response: Response) -> Result<T, TelnyxError> {
        let response = self.success(response).await?;
        response
            .json()
            .await
            .map_err(|error| TelnyxError::InvalidResponse(error.to_string()))
    }

    /// The response if it is a success, else its error in our terms.
    async fn success(&self, response: Response) -> Result<Response, TelnyxError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = self.scrub(&error_detail(&response.text().await.unwrap_or_default()));
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => TelnyxError::Unauthorized {
                status: status.as_u16(),
                detail,
            },
            StatusCode::NOT_FOUND => TelnyxError::NotFound,
            _ => TelnyxError::Rejected {
                status: status.as_u16(),
                detail,
            },
        })
    }

    /// Telnyx has no reason to echo the key, but error text goes to the log, so make sure.
    fn scrub(&self, text: &str) -> String {
        let key = self.api_key.expose_secret();
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key, "[redacted]")
        }
    }
}

/// `{"errors": [{"code", "title", "detail"}]}` as one line; anything else, shortened.
fn error_detail(body: &str) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ApiError>,
    }
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    }
    match serde_json::from_str::<Errors>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .iter()
            .map(|error| {
                let code = error.code.as_ref().map(|code| match code {
                    serde_json::Value::String(code) => code.clone(),
                    other => other.to_string(),
                });
                [code, error.title.clone(), error.detail.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.chars().take(200).collect(),
    }
}

fn bool_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Bool(bool),
        Text(String),
        Null(()),
    }
    Ok(match Flexible::deserialize(deserializer)? {
        Flexible::Bool(value) => value,
        Flexible::Text(text) => text.eq_ignore_ascii_case("true"),
        Flexible::Null(()) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_reads_expired_as_a_boolean_or_a_string_and_drops_the_password() {
        for (expired, expected) in [
            (serde_json::json!(false), false),
            (serde_json::json!(true), true),
            (serde_json::json!("true"), true),
            (serde_json::json!("false"), false),
            (serde_json::Value::Null, false),
        ] {
            let credential: TelephonyCredential = serde_json::from_value(serde_json::json!({
                "id": "c215ade3-0d39-418e-94be-c5f780760199",
                "record_type": "credential",
                "name": "supabase:user-1",
                "expired": expired,
                "resource_id": "connection:804252963366242252",
                "sip_password": "a92dbcfb60184a8cb330b0acb2f7617b",
                "sip_username": "gencrednCvHU5IYpSBPPsXI2iQsDX",
                "created_at": "2020-06-18T21:32:38",
            }))
            .unwrap();
            assert_eq!(credential.expired, expected);
            assert!(!format!("{credential:?}").contains("a92dbcfb"));
        }
    }

    #[test]
    fn error_bodies_become_one_line() {
        let body = r#"{"errors":[{"code":"10015","title":"Invalid value","detail":"connection_id is not a credential connection"}]}"#;
        assert_eq!(
            error_detail(body),
            "10015 Invalid value connection_id is not a credential connection"
        );
        assert_eq!(
            error_detail("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }
}
