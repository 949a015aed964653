//! Verifying Supabase access tokens (RFC 8725): which key, which algorithm, which claims.
//!
//! The algorithm always comes from our key, never from the token: HS256 only with the shared
//! secret, and a JWKS key's own type (or declared `alg`) for asymmetric tokens. The unverified
//! header is read for two things only: `kid`, as a map key, and `alg`, to tell a legacy HS256
//! token from an asymmetric one before a key is chosen; the chosen key then pins the algorithm.

pub mod cache;
pub mod claims;
pub mod jwks;
pub mod policy;
pub mod session;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use secrecy::ExposeSecret;

use cache::{TokenDigest, VerifiedTokens};
pub use claims::SupabaseClaims;
use jwks::KeyStore;
pub use policy::{AccessPolicy, PolicyRefusal};
pub use session::{SessionCheck, SessionRefusal};

use crate::config::AuthConfig;

/// The `cache` label of the verified-token cache's lookups in the metrics.
const ACCESS_TOKEN_CACHE: &str = "access_tokens";

/// Tokens longer than this are refused before any decoding. Supabase's are about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. Only ever logged (at debug) and turned into a uniform 401: the
/// client learns whether to sign in again, not which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token is not a signed JWT in compact form (three base64url parts)")]
    Malformed,
    #[error(
        "the token header names its own key or critical extensions ({0}); such headers are never trusted"
    )]
    UntrustedHeader(&'static str),
    #[error("the token is HS256 but SUPABASE_JWT_SECRET is not configured")]
    SharedSecretNotConfigured,
    #[error("the token is {0:?} and carries no kid")]
    MissingKeyId(Algorithm),
    #[error("no signing key has the token's kid, even after fetching the JWKS again")]
    UnknownKeyId,
    #[error("the token's alg does not match the algorithm of the key it names")]
    AlgorithmMismatch,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's iss is not the configured issuer")]
    WrongIssuer,
    #[error("the token's aud does not include the configured audience")]
    WrongAudience,
    #[error("the token lacks the required claim {0}")]
    MissingClaim(String),
    #[error("the token's claims are not Supabase's: {0}")]
    InvalidClaims(String),
}

impl TokenRejection {
    /// A stable snake_case name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenRejection::TooLarge => "too_large",
            TokenRejection::Malformed => "malformed",
            TokenRejection::UntrustedHeader(_) => "untrusted_header",
            TokenRejection::SharedSecretNotConfigured => "hs256_not_configured",
            TokenRejection::MissingKeyId(_) => "missing_kid",
            TokenRejection::UnknownKeyId => "unknown_kid",
            TokenRejection::AlgorithmMismatch => "algorithm_mismatch",
            TokenRejection::BadSignature => "bad_signature",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not_yet_valid",
            TokenRejection::WrongIssuer => "wrong_issuer",
            TokenRejection::WrongAudience => "wrong_audience",
            TokenRejection::MissingClaim(_) => "missing_claim",
            TokenRejection::InvalidClaims(_) => "invalid_claims",
        }
    }
}

/// A key we verify with, and the validation rules that go with its algorithm.
pub struct VerificationKey {
    pub decoding_key: DecodingKey,
    pub validation: Validation,
}

/// Verifies access tokens against the shared secret and the JWKS key store.
pub struct TokenVerifier {
    shared_secret: Option<Arc<VerificationKey>>,
    key_store: Option<Arc<KeyStore>>,
    /// `None` when `ACCESS_TOKEN_CACHE_ENTRIES` is 0: every token is then verified in full.
    verified: Option<VerifiedTokens>,
}

impl TokenVerifier {
    pub fn new(config: &AuthConfig) -> Self {
        let rules = ClaimRules {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs: config.leeway.as_secs(),
        };
        let shared_secret = config.jwt_secret.as_ref().map(|secret| {
            let key = DecodingKey::from_secret(secret.expose_secret().as_bytes());
            Arc::new(rules.key(Algorithm::HS256, key))
        });
        let key_store = config.jwks_url.clone().map(|url| {
            Arc::new(KeyStore::new(url, config.jwks, move |algorithm, key| {
                rules.key(algorithm, key)
            }))
        });
        let verified = (config.access_token_cache_entries > 0)
            .then(|| VerifiedTokens::new(config.access_token_cache_entries));
        Self {
            shared_secret,
            key_store,
            verified,
        }
    }

    /// Whether legacy HS256 tokens can be verified (`SUPABASE_JWT_SECRET` is set).
    pub fn accepts_hs256(&self) -> bool {
        self.shared_secret.is_some()
    }

    /// The JWKS cache, when asymmetric keys are in use (always, except in demo mode).
    pub fn key_store(&self) -> Option<&Arc<KeyStore>> {
        self.key_store.as_ref()
    }

    /// The cache of verified tokens, unless `ACCESS_TOKEN_CACHE_ENTRIES` turned it off.
    pub fn token_cache(&self) -> Option<&VerifiedTokens> {
        self.verified.as_ref()
    }

    /// Checks signature and claims, or finds the token verified before against the same keys
    /// and not yet expired; says nothing yet about whether the user may have a phone.
    pub async fn verify(&self, token: &str) -> Result<Arc<SupabaseClaims>, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TooLarge);
        }
        let Some(cache) = &self.verified else {
            return self.verify_fully(token).await.map(Arc::new);
        };
        // Read before verifying, so the keys used are of this generation or later: a fetch
        // that lands meanwhile makes the entry stored below stale at once, which costs one
        // more full check and never a wrong answer.
        let key_set = self
            .key_store
            .as_ref()
            .map_or(0, |store| store.generation());
        let digest = TokenDigest::of(token);
        let now = jsonwebtoken::get_current_timestamp();
        let cached = cache.get(&digest, key_set, now);
        crate::metrics::cache_lookup(ACCESS_TOKEN_CACHE, cached.is_some());
        if let Some(claims) = cached {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_fully(token).await?);
        cache.insert(digest, claims.clone(), key_set, now);
        Ok(claims)
    }

    /// The whole check: form, header, key, signature, claims.
    async fn verify_fully(&self, token: &str) -> Result<SupabaseClaims, TokenRejection> {
        // A JWE has five parts and a detached or unsecured JWS has an empty last one; neither
        // is a Supabase access token.
        let mut parts = token.split('.');
        let well_formed = parts
            .by_ref()
            .take(3)
            .filter(|part| !part.is_empty())
            .count()
            == 3
            && parts.next().is_none();
        if !well_formed {
            return Err(TokenRejection::Malformed);
        }
        // Unverified: read only to pick the key, as the module documentation explains.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        refuse_untrusted_header_fields(&header)?;
        let key = self.key_for(&header).await?;
        let claims =
            jsonwebtoken::decode::<SupabaseClaims>(token, &key.decoding_key, &key.validation)
                .map_err(|error| rejection_for(error.into_kind()))?
                .claims;
        if claims.sub.trim().is_empty() {
            return Err(TokenRejection::MissingClaim("sub".into()));
        }
        Ok(claims)
    }

    async fn key_for(&self, header: &Header) -> Result<Arc<VerificationKey>, TokenRejection> {
        let known_asymmetric_key = header
            .kid
            .as_deref()
            .zip(self.key_store.as_ref())
            .and_then(|(kid, store)| store.snapshot().get(kid));
        if let Some(key) = known_asymmetric_key {
            return Ok(key);
        }
        if header.alg == Algorithm::HS256 {
            // Supabase's legacy tokens may carry a kid of their own; it names no JWKS key.
            return self
                .shared_secret
                .clone()
                .ok_or(TokenRejection::SharedSecretNotConfigured);
        }
        let Some(kid) = header.kid.as_deref() else {
            return Err(TokenRejection::MissingKeyId(header.alg));
        };
        match &self.key_store {
            Some(store) => store
                .get_or_refetch(kid)
                .await
                .ok_or(TokenRejection::UnknownKeyId),
            None => Err(TokenRejection::UnknownKeyId),
        }
    }
}

/// The issuer, audience and clock-skew rules every key shares.
struct ClaimRules {
    issuer: String,
    audience: String,
    leeway_secs: u64,
}

impl ClaimRules {
    fn key(&self, algorithm: Algorithm, decoding_key: DecodingKey) -> VerificationKey {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = self.leeway_secs;
        VerificationKey {
            decoding_key,
            validation,
        }
    }
}

/// Headers that point at a key or demand extensions: Supabase sets none of them, and RFC 8725
/// §3.10 warns against following them, so their presence alone is a reason to refuse.
fn refuse_untrusted_header_fields(header: &Header) -> Result<(), TokenRejection> {
    let field = if header.jwk.is_some() {
        "jwk"
    } else if header.jku.is_some() {
        "jku"
    } else if header.x5u.is_some() {
        "x5u"
    } else if header.x5c.is_some() {
        "x5c"
    } else if header.crit.is_some() {
        "crit"
    } else {
        return Ok(());
    };
    Err(TokenRejection::UntrustedHeader(field))
}

fn rejection_for(kind: ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::InvalidAlgorithm => TokenRejection::AlgorithmMismatch,
        ErrorKind::MissingRequiredClaim(claim) => TokenRejection::MissingClaim(claim),
        ErrorKind::Json(error) => TokenRejection::InvalidClaims(error.to_string()),
        ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
            TokenRejection::BadSignature
        }
        _ => TokenRejection::Malformed,
    }
}

/// An HTTP client for calls to Supabase (the JWKS, the session check): `timeout` bounds each
/// call, connecting included, and the service names itself.
fn supabase_client(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
}
