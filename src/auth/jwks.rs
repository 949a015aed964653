//! The cache of an issuer's asymmetric signing keys: Supabase's, fetched from the project's
//! JWKS endpoint, and each third-party issuer's (`THIRD_PARTY_ISSUERS`), found through OIDC
//! discovery or at the JWKS URL its entry names. One mechanism for all of them: each issuer has
//! a [`KeyStore`] of its own, with the same bounds.
//!
//! A store's state is two values:
//! - the current [`KeySet`], which readers take (an `Arc`, behind a briefly held lock) without
//!   ever waiting on a fetch. A fetch that succeeds replaces it whole, with the next generation
//!   number; one that fails leaves it, so the last good keys stay in use;
//! - the last fetch (when it finished, and whether it succeeded), behind an async mutex that a
//!   fetch holds from start to end, so there is at most one fetch at a time.
//!
//! Whoever takes the mutex fetches, unless:
//! - a fetch finished after they asked: they waited on it, and take its outcome (concurrent
//!   misses share one fetch);
//! - for an unknown `kid`, the last fetch finished less than `min_refetch_interval` ago (a flood
//!   of made-up `kid`s costs at most one fetch per interval, per issuer).
//!
//! A store found by discovery reads the discovery document on every fetch (so a provider that
//! moves its `jwks_uri` is followed), and falls back on the `jwks_uri` it found last when the
//! document cannot be read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::VerificationKey;
use super::discovery::discover;
use super::jwk::usable_key;
use crate::config::JwksTiming;

/// A JWKS (or discovery document) larger than this is not an issuer's. Supabase's and the
/// providers' are a few KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The keys of one successful fetch, by `kid`.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    fetched_at: Option<Instant>,
    /// 0 before the first successful fetch, then one more with each.
    generation: u64,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.keys.get(kid).cloned()
    }
}

/// The outcome of the latest fetch, whatever it was.
#[derive(Clone, Copy)]
struct LastFetch {
    finished: Instant,
    succeeded: bool,
}

/// Where a store's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS at a known URL: Supabase's, or one a `THIRD_PARTY_ISSUERS` entry names.
    Jwks(Url),
    /// The `jwks_uri` of an OpenID Connect discovery document, which must name `issuer` as its
    /// own (OpenID Connect Discovery 1.0 §4.3).
    Discovery {
        document: Url,
        issuer: String,
        /// `ALLOW_INSECURE_HTTP`: whether a plain `http://` `jwks_uri` to another machine is
        /// followed.
        allow_insecure_http: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("could not reach {url}: {}", with_causes(source))]
    Unreachable {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status {
        url: Url,
        status: reqwest::StatusCode,
    },
    #[error("{url} sent more than {MAX_JWKS_BYTES} bytes")]
    TooLarge { url: Url },
    #[error("{url} did not send a JSON Web Key Set: {source}")]
    NotAKeySet {
        url: Url,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{url} did not send an OpenID Connect discovery document with issuer and jwks_uri: {source}"
    )]
    NotADiscoveryDocument {
        url: Url,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{url} is the discovery document of the issuer {found:?}, not {configured:?}: write the issuer in THIRD_PARTY_ISSUERS exactly as its tokens' iss has it, trailing slash included"
    )]
    IssuerMismatch {
        url: Url,
        found: String,
        configured: String,
    },
    #[error("{url} names the jwks_uri {jwks_uri:?}, {problem}")]
    UnusableJwksUri {
        url: Url,
        jwks_uri: String,
        problem: &'static str,
    },
}

/// What `/readyz` reports about a key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreStatus {
    /// No fetch has succeeded yet.
    NeverFetched,
    /// The last successful fetch, and how many keys it held.
    Fetched { age: Duration, keys: usize },
}

pub struct KeyStore {
    source: KeySource,
    /// Whose keys these are: `supabase`, or a third-party issuer's tag. The `issuer` label of
    /// the metrics, and a field of the log lines.
    issuer: &'static str,
    client: reqwest::Client,
    timing: JwksTiming,
    /// Builds the `Validation` for a key's algorithm, so claim rules stay in one place.
    make_key: Box<dyn Fn(Algorithm, DecodingKey) -> VerificationKey + Send + Sync>,
    current: RwLock<Arc<KeySet>>,
    /// Held for the whole of a fetch; `None` before the first one.
    last_fetch: tokio::sync::Mutex<Option<LastFetch>>,
    /// The JWKS fetched last, or to be fetched first: the source's own, or the `jwks_uri` that
    /// discovery named.
    jwks_url: RwLock<Option<Url>>,
    /// Why the last fetch failed, until one succeeds.
    last_error: Mutex<Option<String>>,
}

impl KeyStore {
    /// `issuer` names the store in metrics and logs (see the field).
    pub fn new(
        source: KeySource,
        issuer: &'static str,
        timing: JwksTiming,
        make_key: impl Fn(Algorithm, DecodingKey) -> VerificationKey + Send + Sync + 'static,
    ) -> Self {
        let client = super::http_client(timing.fetch_timeout)
            .build()
            .expect("the HTTP client's TLS backend initialises");
        let jwks_url = match &source {
            KeySource::Jwks(url) => Some(url.clone()),
            KeySource::Discovery { .. } => None,
        };
        Self {
            source,
            issuer,
            client,
            timing,
            make_key: Box::new(make_key),
            current: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
            jwks_url: RwLock::new(jwks_url),
            last_error: Mutex::new(None),
        }
    }

    /// The first URL a fetch reads: the JWKS, or the discovery document.
    pub fn url(&self) -> &Url {
        match &self.source {
            KeySource::Jwks(url) => url,
            KeySource::Discovery { document, .. } => document,
        }
    }

    /// The JWKS in use; `None` while discovery has not yet named one.
    pub fn jwks_url(&self) -> Option<Url> {
        self.jwks_url
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Why the last fetch failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `supabase`, or the tag of the third-party issuer.
    pub fn issuer(&self) -> &'static str {
        self.issuer
    }

    fn current(&self) -> RwLockReadGuard<'_, Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current().clone()
    }

    /// Which key set is current: 0 before the first successful fetch, then one more with each.
    /// A cached verification is only as good as its key set (see `auth::cache`). Whoever reads
    /// generation `g` and then looks a key up gets a key of generation `g` or later.
    pub fn generation(&self) -> u64 {
        self.current().generation
    }

    pub fn status(&self) -> KeyStoreStatus {
        let keys = self.snapshot();
        match keys.fetched_at {
            None => KeyStoreStatus::NeverFetched,
            Some(at) => KeyStoreStatus::Fetched {
                age: at.elapsed(),
                keys: keys.keys.len(),
            },
        }
    }

    /// Looks `kid` up, fetching the key set again if it is unknown and the last fetch is older
    /// than `min_refetch_interval`. Concurrent callers share one fetch.
    pub async fn get_or_refetch(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        if let Some(key) = self.snapshot().get(kid) {
            return Some(key);
        }
        let missed_at = Instant::now();
        let mut last_fetch = self.last_fetch.lock().await;
        let due = last_fetch.is_none_or(|last| {
            last.finished < missed_at && last.finished.elapsed() >= self.timing.min_refetch_interval
        });
        if due {
            tracing::debug!(
                kid,
                issuer = self.issuer,
                "unknown key id: fetching the signing keys again"
            );
            self.fetch_locked(&mut last_fetch).await;
        }
        drop(last_fetch);
        self.snapshot().get(kid)
    }

    /// Fetches the key set now, unless a fetch finished while this call waited for the running
    /// one (then shares its outcome). True when the fetch succeeded.
    pub async fn refresh(&self) -> bool {
        let asked_at = Instant::now();
        let mut last_fetch = self.last_fetch.lock().await;
        match *last_fetch {
            Some(last) if last.finished >= asked_at => last.succeeded,
            _ => self.fetch_locked(&mut last_fetch).await,
        }
    }

    /// Keeps the key set fresh for as long as the service runs: at once, then every
    /// `refresh_interval`, or every `retry_interval` while fetches fail.
    pub async fn refresh_forever(self: Arc<Self>) {
        loop {
            let pause = if self.refresh().await {
                self.timing.refresh_interval
            } else {
                self.timing.retry_interval
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Fetches with the mutex held, and records the outcome in `last_fetch`. True when the fetch
    /// succeeded; the outcome is logged either way.
    async fn fetch_locked(&self, last_fetch: &mut Option<LastFetch>) -> bool {
        let outcome = self.fetch().await;
        let succeeded = outcome.is_ok();
        crate::metrics::jwks_fetched(self.issuer, succeeded);
        match outcome {
            Ok((url, keys)) => {
                if keys.is_empty() && self.issuer == super::SUPABASE {
                    tracing::warn!(%url, "the JWKS holds no usable signing keys: only HS256 tokens (SUPABASE_JWT_SECRET) can be verified");
                } else if keys.is_empty() {
                    tracing::warn!(%url, issuer = self.issuer, "the JWKS holds no usable signing keys: no token of this issuer can be verified");
                } else {
                    tracing::info!(%url, issuer = self.issuer, keys = keys.len(), "fetched the signing keys");
                }
                let mut current = self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *current = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                    generation: current.generation + 1,
                });
                drop(current);
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
            }
            Err(error) => {
                let kept = self.snapshot().keys.len();
                tracing::warn!(%error, issuer = self.issuer, kept_keys = kept, "could not fetch the signing keys; keeping the last good ones");
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
            }
        }
        *last_fetch = Some(LastFetch {
            finished: Instant::now(),
            succeeded,
        });
        succeeded
    }

    async fn fetch(&self) -> Result<(Url, HashMap<String, Arc<VerificationKey>>), JwksError> {
        let url = self.locate().await?;
        let document: JwksDocument =
            download(&self.client, &url)
                .await?
                .map_err(|source| JwksError::NotAKeySet {
                    url: url.clone(),
                    source,
                })?;
        let mut keys = HashMap::new();
        for raw in document.keys {
            match usable_key(raw) {
                Ok(Some((kid, algorithm, decoding_key))) => {
                    keys.insert(kid, Arc::new((self.make_key)(algorithm, decoding_key)));
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(%url, issuer = self.issuer, reason, "skipped a key in the JWKS")
                }
            }
        }
        Ok((url, keys))
    }

    /// The JWKS to fetch: the source's own, or what discovery names now, or, when the discovery
    /// document cannot be read, what it named last.
    async fn locate(&self) -> Result<Url, JwksError> {
        let KeySource::Discovery {
            document,
            issuer,
            allow_insecure_http,
        } = &self.source
        else {
            return Ok(self.url().clone());
        };
        match discover(&self.client, document, issuer, *allow_insecure_http).await {
            Ok(url) => {
                *self
                    .jwks_url
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(url.clone());
                Ok(url)
            }
            Err(error) => match self.jwks_url() {
                Some(known) => {
                    tracing::warn!(%error, issuer = self.issuer, jwks_uri = %known, "could not read the discovery document; fetching the jwks_uri it named last");
                    Ok(known)
                }
                None => Err(error),
            },
        }
    }
}

/// One key of a JWKS as `check-config --online` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyReport {
    /// A signing key tokens can be verified with.
    Usable { kid: String, algorithm: Algorithm },
    /// A symmetric or encryption key, which verification ignores on purpose.
    Ignored,
    /// A key that cannot be used, and why.
    Skipped(String),
}

/// What [`inspect`] found: the JWKS it read (the `jwks_uri` discovery named, for a discovery
/// source), and each of its keys.
pub struct Inspection {
    pub jwks_url: Url,
    pub keys: Vec<KeyReport>,
}

/// Fetches the key set of `source` once, the way a key store does, and says what each key is.
pub async fn inspect(source: &KeySource, timeout: Duration) -> Result<Inspection, JwksError> {
    let client = super::http_client(timeout)
        .build()
        .expect("the HTTP client's TLS backend initialises");
    let jwks_url = match source {
        KeySource::Jwks(url) => url.clone(),
        KeySource::Discovery {
            document,
            issuer,
            allow_insecure_http,
        } => discover(&client, document, issuer, *allow_insecure_http).await?,
    };
    let document: JwksDocument =
        download(&client, &jwks_url)
            .await?
            .map_err(|source| JwksError::NotAKeySet {
                url: jwks_url.clone(),
                source,
            })?;
    let keys = document
        .keys
        .into_iter()
        .map(|raw| match usable_key(raw) {
            Ok(Some((kid, algorithm, _))) => KeyReport::Usable { kid, algorithm },
            Ok(None) => KeyReport::Ignored,
            Err(reason) => KeyReport::Skipped(reason),
        })
        .collect();
    Ok(Inspection { jwks_url, keys })
}

/// `GET url`, bounded to [`MAX_JWKS_BYTES`], read as JSON: the outer error is the transfer's,
/// the inner one the document's, which the caller names.
pub(super) async fn download<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &Url,
) -> Result<Result<T, serde_json::Error>, JwksError> {
    let unreachable = |source| JwksError::Unreachable {
        url: url.clone(),
        source,
    };
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(JwksError::Status {
            url: url.clone(),
            status: response.status(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge { url: url.clone() });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(serde_json::from_slice(&body))
}

/// reqwest's own message is "error sending request"; the useful part (connection refused,
/// timed out, certificate unknown) is in its sources.
pub(super) fn with_causes(error: &reqwest::Error) -> String {
    format!("{error}{}", crate::error_chain::causes(error))
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}
