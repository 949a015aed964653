//! Who vouches for a token: Supabase Auth, with the project's JWKS and legacy secret, or one of
//! `THIRD_PARTY_ISSUERS`, with its own key set alone. Each has its claim rules here; the keys
//! of every issuer are held the same way ([`KeyStore`]).

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;

use super::VerificationKey;
use super::jwks::{KeySource, KeyStore};
use crate::config::{AuthConfig, KeyLocation, ThirdPartyIssuer};

/// Supabase Auth's name among issuers: the `issuer` label of metrics and log lines, as a
/// third-party issuer's is its tag.
pub const SUPABASE: &str = "supabase";

/// Which issuer vouched for a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenIssuer {
    /// Supabase Auth (`SUPABASE_URL`, or `demo`'s own tokens).
    Supabase,
    /// A `THIRD_PARTY_ISSUERS` issuer, by its tag (`credentials::issuer_tag`).
    ThirdParty(&'static str),
}

impl TokenIssuer {
    /// `supabase`, or the third-party issuer's tag: bounded by the configuration, so fit for a
    /// metric label.
    pub fn tag(self) -> &'static str {
        match self {
            TokenIssuer::Supabase => SUPABASE,
            TokenIssuer::ThirdParty(tag) => tag,
        }
    }

    /// Only Supabase Auth's tokens can be shown to Supabase's `/auth/v1/user`.
    pub fn is_supabase(self) -> bool {
        self == TokenIssuer::Supabase
    }
}

/// Supabase Auth's keys: the legacy HS256 secret and the project's JWKS.
pub(super) struct SupabaseKeys {
    pub shared_secret: Option<Arc<VerificationKey>>,
    /// `None` only in demo mode, which signs its own HS256 tokens.
    pub key_store: Option<Arc<KeyStore>>,
}

impl SupabaseKeys {
    pub fn new(config: &AuthConfig) -> Self {
        let rules = ClaimRules {
            issuer: config.issuer.clone(),
            audience: Some(config.audience.clone()),
            leeway_secs: config.leeway.as_secs(),
        };
        let shared_secret = config.jwt_secret.as_ref().map(|secret| {
            let key = DecodingKey::from_secret(secret.expose_secret().as_bytes());
            Arc::new(rules.key(Algorithm::HS256, key))
        });
        let key_store = config.jwks_url.clone().map(|url| {
            Arc::new(KeyStore::new(
                KeySource::Jwks(url),
                SUPABASE,
                config.jwks,
                move |algorithm, key| rules.key(algorithm, key),
            ))
        });
        Self {
            shared_secret,
            key_store,
        }
    }
}

/// A `THIRD_PARTY_ISSUERS` issuer: its tokens are verified with its own keys only, asymmetric
/// ones only (its JWKS is public, so no key of it can be an HMAC secret).
pub struct ThirdPartyKeys {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    pub tag: &'static str,
    pub key_store: Arc<KeyStore>,
}

impl ThirdPartyKeys {
    pub(super) fn new(config: &AuthConfig, issuer: &ThirdPartyIssuer) -> Self {
        let tag = crate::metrics::label(&issuer.tag);
        let rules = ClaimRules {
            issuer: issuer.issuer.clone(),
            audience: issuer.audience.clone(),
            leeway_secs: config.leeway.as_secs(),
        };
        let source = match &issuer.keys {
            KeyLocation::Jwks(url) => KeySource::Jwks(url.clone()),
            KeyLocation::Discovery(document) => KeySource::Discovery {
                document: document.clone(),
                issuer: issuer.issuer.clone(),
                allow_insecure_http: config.allow_insecure_http,
            },
        };
        Self {
            issuer: issuer.issuer.clone(),
            tag,
            key_store: Arc::new(KeyStore::new(
                source,
                tag,
                config.jwks,
                move |algorithm, key| rules.key(algorithm, key),
            )),
        }
    }
}

/// The issuer, audience and clock-skew rules every key of one issuer shares.
struct ClaimRules {
    issuer: String,
    /// `None` leaves `aud` unchecked (a third-party entry without `|aud=`).
    audience: Option<String>,
    leeway_secs: u64,
}

impl ClaimRules {
    fn key(&self, algorithm: Algorithm, decoding_key: DecodingKey) -> VerificationKey {
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub", "iss"];
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        match &self.audience {
            Some(audience) => {
                required.push("aud");
                validation.validate_aud = true;
                validation.set_audience(&[audience]);
            }
            // jsonwebtoken would refuse any token that has an `aud` when none is expected.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = self.leeway_secs;
        VerificationKey {
            decoding_key,
            validation,
        }
    }
}
