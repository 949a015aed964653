//! Verifying access tokens (RFC 8725): whose keys, which algorithm, which claims. Supabase
//! Auth's tokens, and those of the third-party issuers the Supabase project trusts
//! (`THIRD_PARTY_ISSUERS`).
//!
//! The algorithm always comes from our key, never from the token: HS256 only with Supabase's
//! shared secret, and a JWKS key's own type (or declared `alg`) for asymmetric tokens. Before
//! a key is chosen, three things of the token are read unverified:
//! - the header's `kid`, as a map key;
//! - the header's `alg`, to tell a legacy HS256 token from an asymmetric one (the chosen key
//!   then pins the algorithm);
//! - when third-party issuers are configured, the payload's `iss`, to choose whose key set to
//!   look in. Only that issuer's keys can then verify the token, and its validation checks the
//!   same `iss` again once the signature holds: a token that names one issuer and is signed by
//!   another's key finds no key or fails its signature. An `iss` that names no third-party
//!   issuer goes to Supabase's keys, as every token did before there were others.

pub mod cache;
pub mod claims;
mod discovery;
mod issuer;
mod jwk;
pub mod jwks;
pub mod policy;
pub mod session;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Header, Validation};
use serde::Deserialize;

use cache::{KeySetStamp, TokenDigest, VerifiedTokens};
pub use claims::SupabaseClaims;
use issuer::SupabaseKeys;
pub use issuer::{SUPABASE, ThirdPartyKeys, TokenIssuer};
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
    /// HMAC needs a shared secret, and a third-party issuer shares none with us: its keys are
    /// public, so a token "signed" with one of them proves nothing.
    #[error(
        "the token names a third-party issuer but is {0:?}, which no key of that issuer verifies"
    )]
    SymmetricFromThirdParty(Algorithm),
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
            TokenRejection::SymmetricFromThirdParty(_) => "symmetric_third_party",
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

/// A token that verified: its claims (shared with the token cache), and whose they are.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Arc<SupabaseClaims>,
    pub issuer: TokenIssuer,
}

/// Verifies access tokens against the keys of the issuer they name.
pub struct TokenVerifier {
    supabase: SupabaseKeys,
    third_party: Vec<ThirdPartyKeys>,
    /// `None` when `ACCESS_TOKEN_CACHE_ENTRIES` is 0: every token is then verified in full.
    verified: Option<VerifiedTokens>,
}

/// Whose keys verify a token: Supabase's, or the third-party issuer at this position.
#[derive(Clone, Copy)]
enum KeyOwner {
    Supabase,
    ThirdParty(usize),
}

impl KeyOwner {
    /// Its position among the verifier's issuers, Supabase first, for the token cache.
    fn position(self) -> usize {
        match self {
            KeyOwner::Supabase => 0,
            KeyOwner::ThirdParty(index) => index + 1,
        }
    }
}

impl TokenVerifier {
    pub fn new(config: &AuthConfig) -> Self {
        let verified = (config.access_token_cache_entries > 0)
            .then(|| VerifiedTokens::new(config.access_token_cache_entries));
        Self {
            supabase: SupabaseKeys::new(config),
            third_party: config
                .third_party_issuers
                .iter()
                .map(|issuer| ThirdPartyKeys::new(config, issuer))
                .collect(),
            verified,
        }
    }

    /// Whether legacy HS256 tokens can be verified (`SUPABASE_JWT_SECRET` is set).
    pub fn accepts_hs256(&self) -> bool {
        self.supabase.shared_secret.is_some()
    }

    /// Supabase's JWKS cache, when asymmetric keys are in use (always, except in demo mode).
    pub fn key_store(&self) -> Option<&Arc<KeyStore>> {
        self.supabase.key_store.as_ref()
    }

    /// The `THIRD_PARTY_ISSUERS` issuers, each with its key store, in the configured order.
    pub fn third_party(&self) -> &[ThirdPartyKeys] {
        &self.third_party
    }

    /// Every key store: Supabase's first (if any), then each third-party issuer's.
    pub fn key_stores(&self) -> impl Iterator<Item = &Arc<KeyStore>> {
        self.key_store()
            .into_iter()
            .chain(self.third_party.iter().map(|issuer| &issuer.key_store))
    }

    /// The cache of verified tokens, unless `ACCESS_TOKEN_CACHE_ENTRIES` turned it off.
    pub fn token_cache(&self) -> Option<&VerifiedTokens> {
        self.verified.as_ref()
    }

    /// Checks signature and claims, or finds the token verified before against the same keys
    /// and not yet expired; says nothing yet about whether the user may have a phone.
    pub async fn verify(&self, token: &str) -> Result<Verified, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TooLarge);
        }
        let Some(cache) = &self.verified else {
            return self.verify_fully(token).await.map(|(verified, _)| verified);
        };
        let digest = TokenDigest::of(token);
        let now = jsonwebtoken::get_current_timestamp();
        let cached = cache.get(&digest, now, |stamp| {
            self.generation_at(stamp.issuer) == stamp.generation
        });
        crate::metrics::cache_lookup(ACCESS_TOKEN_CACHE, cached.is_some());
        if let Some(verified) = cached {
            return Ok(verified);
        }
        let (verified, key_set) = self.verify_fully(token).await?;
        cache.insert(digest, verified.clone(), key_set, now);
        Ok(verified)
    }

    /// The key set generation of the issuer at `position` (see [`KeyOwner::position`]).
    fn generation_at(&self, position: usize) -> u64 {
        let store = match position {
            0 => self.key_store(),
            n => self.third_party.get(n - 1).map(|issuer| &issuer.key_store),
        };
        store.map_or(0, |store| store.generation())
    }

    /// The whole check: form, header, issuer, key, signature, claims. Also returns the key set
    /// generation read before the key was looked up: a fetch that lands meanwhile makes a cache
    /// entry stored with it stale at once, which costs one more full check and never a wrong
    /// answer.
    async fn verify_fully(&self, token: &str) -> Result<(Verified, KeySetStamp), TokenRejection> {
        // A JWE has five parts and a detached or unsecured JWS has an empty last one; neither
        // is an access token.
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
        let owner = self.key_owner(token);
        let key_set = KeySetStamp {
            issuer: owner.position(),
            generation: self.generation_at(owner.position()),
        };
        let (key, issuer) = match owner {
            KeyOwner::Supabase => (self.supabase_key(&header).await?, TokenIssuer::Supabase),
            KeyOwner::ThirdParty(index) => {
                let third_party = &self.third_party[index];
                let key = third_party_key(third_party, &header).await?;
                (key, TokenIssuer::ThirdParty(third_party.tag))
            }
        };
        let claims =
            jsonwebtoken::decode::<SupabaseClaims>(token, &key.decoding_key, &key.validation)
                .map_err(|error| rejection_for(error.into_kind()))?
                .claims;
        if claims.sub.trim().is_empty() {
            return Err(TokenRejection::MissingClaim("sub".into()));
        }
        let verified = Verified {
            claims: Arc::new(claims),
            issuer,
        };
        Ok((verified, key_set))
    }

    /// The issuer whose keys alone may verify the token, by the `iss` it claims (unverified, as
    /// the module documentation explains). Without third-party issuers nothing is read.
    fn key_owner(&self, token: &str) -> KeyOwner {
        if self.third_party.is_empty() {
            return KeyOwner::Supabase;
        }
        /// The one claim read before verification.
        #[derive(Deserialize)]
        struct ClaimedIssuer {
            iss: Option<String>,
        }
        let claimed = jsonwebtoken::dangerous::insecure_decode_claims::<ClaimedIssuer>(token)
            .ok()
            .and_then(|claims| claims.iss);
        let Some(claimed) = claimed else {
            return KeyOwner::Supabase;
        };
        self.third_party
            .iter()
            .position(|issuer| issuer.issuer == claimed)
            .map_or(KeyOwner::Supabase, KeyOwner::ThirdParty)
    }

    async fn supabase_key(&self, header: &Header) -> Result<Arc<VerificationKey>, TokenRejection> {
        let key_store = self.supabase.key_store.as_ref();
        let known_asymmetric_key = header
            .kid
            .as_deref()
            .zip(key_store)
            .and_then(|(kid, store)| store.snapshot().get(kid));
        if let Some(key) = known_asymmetric_key {
            return Ok(key);
        }
        if header.alg == Algorithm::HS256 {
            // Supabase's legacy tokens may carry a kid of their own; it names no JWKS key.
            return self
                .supabase
                .shared_secret
                .clone()
                .ok_or(TokenRejection::SharedSecretNotConfigured);
        }
        let Some(kid) = header.kid.as_deref() else {
            return Err(TokenRejection::MissingKeyId(header.alg));
        };
        match key_store {
            Some(store) => store
                .get_or_refetch(kid)
                .await
                .ok_or(TokenRejection::UnknownKeyId),
            None => Err(TokenRejection::UnknownKeyId),
        }
    }
}

/// A key of `issuer`'s own set, by the token's `kid`: never a shared secret.
async fn third_party_key(
    issuer: &ThirdPartyKeys,
    header: &Header,
) -> Result<Arc<VerificationKey>, TokenRejection> {
    if header.alg.family() == AlgorithmFamily::Hmac {
        return Err(TokenRejection::SymmetricFromThirdParty(header.alg));
    }
    let Some(kid) = header.kid.as_deref() else {
        return Err(TokenRejection::MissingKeyId(header.alg));
    };
    issuer
        .key_store
        .get_or_refetch(kid)
        .await
        .ok_or(TokenRejection::UnknownKeyId)
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

/// An HTTP client for calls to Supabase (the JWKS, the session check) and to the third-party
/// issuers (discovery, their JWKS): `timeout` bounds each call, connecting included, and the
/// service names itself.
fn http_client(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
}
