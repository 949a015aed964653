//! The cache of Supabase's asymmetric signing keys, fetched from the project's JWKS endpoint.
//!
//! Its state is two values:
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
//!   of made-up `kid`s costs at most one fetch per interval).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde::Deserialize;

use super::VerificationKey;
use crate::config::JwksTiming;

/// A JWKS larger than this is not a Supabase key set.
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
}

/// What `/readyz` reports about the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreStatus {
    /// No fetch has succeeded yet.
    NeverFetched,
    /// The last successful fetch, and how many keys it held.
    Fetched { age: Duration, keys: usize },
}

pub struct KeyStore {
    url: Url,
    client: reqwest::Client,
    timing: JwksTiming,
    /// Builds the `Validation` for a key's algorithm, so claim rules stay in one place.
    make_key: Box<dyn Fn(Algorithm, DecodingKey) -> VerificationKey + Send + Sync>,
    current: RwLock<Arc<KeySet>>,
    /// Held for the whole of a fetch; `None` before the first one.
    last_fetch: tokio::sync::Mutex<Option<LastFetch>>,
}

impl KeyStore {
    pub fn new(
        url: Url,
        timing: JwksTiming,
        make_key: impl Fn(Algorithm, DecodingKey) -> VerificationKey + Send + Sync + 'static,
    ) -> Self {
        let client = super::supabase_client(timing.fetch_timeout)
            .build()
            .expect("the HTTP client's TLS backend initialises");
        Self {
            url,
            client,
            timing,
            make_key: Box::new(make_key),
            current: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    pub fn url(&self) -> &Url {
        &self.url
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
            tracing::debug!(kid, "unknown key id: fetching the signing keys again");
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
        crate::metrics::jwks_fetched(succeeded);
        match outcome {
            Ok(keys) => {
                if keys.is_empty() {
                    tracing::warn!(url = %self.url, "the JWKS holds no usable signing keys: only HS256 tokens (SUPABASE_JWT_SECRET) can be verified");
                } else {
                    tracing::info!(url = %self.url, keys = keys.len(), "fetched the Supabase signing keys");
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
            }
            Err(error) => {
                let kept = self.snapshot().keys.len();
                tracing::warn!(%error, kept_keys = kept, "could not fetch the Supabase signing keys; keeping the last good ones");
            }
        }
        *last_fetch = Some(LastFetch {
            finished: Instant::now(),
            succeeded,
        });
        succeeded
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerificationKey>>, JwksError> {
        let document = download(&self.client, &self.url).await?;
        let mut keys = HashMap::new();
        for raw in document.keys {
            match usable_key(raw) {
                Ok(Some((kid, algorithm, decoding_key))) => {
                    keys.insert(kid, Arc::new((self.make_key)(algorithm, decoding_key)));
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(url = %self.url, reason, "skipped a key in the JWKS")
                }
            }
        }
        Ok(keys)
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

/// Fetches the key set at `url` once, the way the key store does, and says what each key is.
pub async fn inspect(url: &Url, timeout: Duration) -> Result<Vec<KeyReport>, JwksError> {
    let client = super::supabase_client(timeout)
        .build()
        .expect("the HTTP client's TLS backend initialises");
    let document = download(&client, url).await?;
    Ok(document
        .keys
        .into_iter()
        .map(|raw| match usable_key(raw) {
            Ok(Some((kid, algorithm, _))) => KeyReport::Usable { kid, algorithm },
            Ok(None) => KeyReport::Ignored,
            Err(reason) => KeyReport::Skipped(reason),
        })
        .collect())
}

/// `GET url`, bounded to [`MAX_JWKS_BYTES`], read as a JWKS document.
async fn download(client: &reqwest::Client, url: &Url) -> Result<JwksDocument, JwksError> {
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
    serde_json::from_slice(&body).map_err(|source| JwksError::NotAKeySet {
        url: url.clone(),
        source,
    })
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

/// Turns one JWKS entry into a verification key, or says why not.
///
/// `Ok(None)` is a key we deliberately ignore: symmetric (`oct`) keys, which a public JWKS must
/// not hold and which would let a public value act as an HMAC secret, and encryption keys.
fn usable_key(raw: serde_json::Value) -> Result<Option<(String, Algorithm, DecodingKey)>, String> {
    let jwk: Jwk =
        serde_json::from_value(raw).map_err(|error| format!("unreadable key: {error}"))?;
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return Ok(None);
    }
    if matches!(jwk.common.public_key_use, Some(ref key_use) if *key_use != PublicKeyUse::Signature)
    {
        return Ok(None);
    }
    let kid = jwk
        .common
        .key_id
        .clone()
        .ok_or("key without a kid (tokens name their key by kid)")?;
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(format!("kid {kid}: unsupported elliptic curve")),
        },
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return Err(format!("kid {kid}: unsupported key type")),
    };
    let algorithm = match jwk.common.key_algorithm {
        None => implied,
        Some(declared) => {
            let declared = algorithm_of(declared)
                .ok_or_else(|| format!("kid {kid}: unsupported alg {declared:?}"))?;
            let same_family = declared.family() == implied.family();
            let same_curve =
                implied.family() != jsonwebtoken::AlgorithmFamily::Ec || declared == implied;
            if !(same_family && same_curve) {
                return Err(format!(
                    "kid {kid}: alg {declared:?} does not fit the key type"
                ));
            }
            declared
        }
    };
    let decoding_key =
        DecodingKey::from_jwk(&jwk).map_err(|error| format!("kid {kid}: {error}"))?;
    Ok(Some((kid, algorithm, decoding_key)))
}

/// The signature algorithms a JWKS key may declare.
fn algorithm_of(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alg_of(key: serde_json::Value) -> Result<Option<Algorithm>, String> {
        usable_key(key).map(|found| found.map(|(_, algorithm, _)| algorithm))
    }

    // A P-256 public key (RFC 7515 appendix A.3).
    fn p256(extra: serde_json::Value) -> serde_json::Value {
        let mut key = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec-1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        for (name, value) in extra.as_object().unwrap() {
            key[name] = value.clone();
        }
        key
    }

    #[test]
    fn the_algorithm_comes_from_the_key() {
        assert_eq!(alg_of(p256(json!({}))).unwrap(), Some(Algorithm::ES256));
        assert_eq!(
            alg_of(p256(json!({"alg": "ES256", "use": "sig"}))).unwrap(),
            Some(Algorithm::ES256)
        );
        assert!(alg_of(p256(json!({"alg": "RS256"}))).is_err());
        assert!(alg_of(p256(json!({"alg": "ES384"}))).is_err());
        assert!(alg_of(p256(json!({"alg": "HS256"}))).is_err());
    }

    #[test]
    fn symmetric_and_encryption_keys_are_ignored() {
        let oct = json!({"kty": "oct", "kid": "legacy", "k": "c2VjcmV0", "alg": "HS256"});
        assert_eq!(alg_of(oct).unwrap(), None);
        assert_eq!(alg_of(p256(json!({"use": "enc"}))).unwrap(), None);
    }

    #[test]
    fn keys_without_kid_are_skipped_with_a_reason() {
        let mut key = p256(json!({}));
        key.as_object_mut().unwrap().remove("kid");
        assert!(alg_of(key).unwrap_err().contains("kid"));
    }
}
