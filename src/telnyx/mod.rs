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
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::{TelnyxApiConfig, TelnyxTiming};
use model::{Claims, Data, Page, error_detail};
pub use model::{CredentialConnection, LoginToken, TelephonyCredential, format_time, parse_time};
pub use retry::Budget;
use retry::Repeat;

mod model;
mod retry;

/// `page[size]` at the spec's maximum (`PageSize`: `maximum: 250`), so a connection's
/// credentials take as few pages as the spec allows.
const PAGE_SIZE: u64 = 250;
/// A bound on pages read for one listing (250,000 credentials), so that an answer whose
/// `total_pages` never ends cannot keep a request going.
const MAX_PAGES: u64 = 1_000;

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

    /// A budget of `total` for work that is not one request's, such as `prune`'s listing.
    pub fn budget_of(&self, total: Duration) -> Budget {
        Budget::new(total)
    }

    /// Every credential on the connection (with `name`, only those so named), from every page
    /// of `GET /telephony_credentials`, expired ones included: the caller decides what an
    /// expired one means. The spec lists `filter[status]` without values, so no status filter
    /// is sent. The filters are checked again here, so that a looser match on Telnyx's side
    /// cannot hand one user another's credential.
    pub async fn list_credentials(
        &self,
        name: Option<&str>,
        connection_id: &str,
        budget: &Budget,
    ) -> Result<Vec<TelephonyCredential>, TelnyxError> {
        let filter = name.map(|name| ("filter[name]", name));
        let listed = self.list(filter, connection_id, budget).await?;
        Ok(listed
            .into_iter()
            .filter(|credential| name.is_none_or(|name| credential.name.as_deref() == Some(name)))
            .collect())
    }

    /// Every credential on the connection tagged `tag` (`filter[tag]`, the spec's `OptionalTag`
    /// parameter of `findTelephonyCredentials`), from every page, expired ones included. The
    /// spec's `TelephonyCredential` carries no `tag`, so the tag cannot be checked again here:
    /// the caller checks each credential's name instead.
    pub async fn list_tagged(
        &self,
        tag: &str,
        connection_id: &str,
        budget: &Budget,
    ) -> Result<Vec<TelephonyCredential>, TelnyxError> {
        self.list(Some(("filter[tag]", tag)), connection_id, budget)
            .await
    }

    /// The pages of `GET /telephony_credentials` on the connection, with one more filter.
    async fn list(
        &self,
        filter: Option<(&str, &str)>,
        connection_id: &str,
        budget: &Budget,
    ) -> Result<Vec<TelephonyCredential>, TelnyxError> {
        let resource_id = format!("connection:{connection_id}");
        let mut found = Vec::new();
        for page_number in 1..=MAX_PAGES {
            let mut url = self.url(&["telephony_credentials"]);
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("filter[resource_id]", &resource_id);
                if let Some((name, value)) = filter {
                    query.append_pair(name, value);
                }
                query
                    .append_pair("page[number]", &page_number.to_string())
                    .append_pair("page[size]", &PAGE_SIZE.to_string());
            }
            let response = self
                .send("list_credentials", budget, Repeat::Safe, || {
                    self.http.get(url.clone())
                })
                .await?;
            let page: Page<TelephonyCredential> = self.read_json(response).await?;
            let on_page = page.data.len();
            found.extend(page.data.into_iter().filter(|credential| {
                credential.resource_id.as_deref() == Some(resource_id.as_str())
            }));
            let total_pages = page.meta.and_then(|meta| meta.total_pages).unwrap_or(1);
            if page_number >= total_pages || on_page == 0 {
                return Ok(found);
            }
        }
        Err(TelnyxError::InvalidResponse(format!(
            "the credential list went on past {MAX_PAGES} pages of {PAGE_SIZE}"
        )))
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
            .send("get_connection", budget, Repeat::Safe, || {
                self.http.get(url.clone())
            })
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
            .send("list_credentials", budget, Repeat::Safe, || {
                self.http.get(url.clone())
            })
            .await?;
        let page: Page = self.read_json(response).await?;
        Ok(page
            .meta
            .and_then(|meta| meta.total_results)
            .unwrap_or(page.data.len() as u64))
    }

    /// `POST /telephony_credentials` with `expires_at` and `tag`
    /// (`TelephonyCredentialCreateRequest`). Not repeated after a timeout or a 5xx, which may
    /// hide a success: the caller lists first.
    pub async fn create_credential(
        &self,
        name: &str,
        tag: &str,
        connection_id: &str,
        expires_at: SystemTime,
        budget: &Budget,
    ) -> Result<TelephonyCredential, TelnyxError> {
        let url = self.url(&["telephony_credentials"]);
        let body = serde_json::json!({
            "connection_id": connection_id,
            "name": name,
            "tag": tag,
            "expires_at": format_time(expires_at),
        });
        let response = self
            .send(
                "create_credential",
                budget,
                Repeat::OnlyIfUnprocessed,
                || self.http.post(url.clone()).json(&body),
            )
            .await?;
        let created: Data<TelephonyCredential> = self.read_json(response).await?;
        Ok(created.data)
    }

    /// `PATCH /telephony_credentials/{id}` with a new `expires_at`
    /// (`TelephonyCredentialUpdateRequest`).
    pub async fn extend_credential(
        &self,
        credential_id: &str,
        expires_at: SystemTime,
        budget: &Budget,
    ) -> Result<TelephonyCredential, TelnyxError> {
        let url = self.url(&["telephony_credentials", credential_id]);
        let body = serde_json::json!({ "expires_at": format_time(expires_at) });
        let response = self
            .send("update_credential", budget, Repeat::Safe, || {
                self.http.patch(url.clone()).json(&body)
            })
            .await?;
        let updated: Data<TelephonyCredential> = self.read_json(response).await?;
        Ok(updated.data)
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
            .send("create_token", budget, Repeat::Safe, || {
                self.http.post(url.clone())
            })
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
            .send("delete_credential", budget, Repeat::Safe, || {
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
        repeat: Repeat,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, TelnyxError> {
        retry::send(endpoint, &self.timing, budget, repeat, || {
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
