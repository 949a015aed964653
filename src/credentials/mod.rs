//! The credential sources and the `WebRTCCredential` they hand to the browser.
//!
//! The handlers call one seam, [`CredentialSource::issue`] (and [`CredentialSource::revoke`]
//! for `DELETE`); each `CREDENTIAL_MODE` is a variant behind it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::config::{CredentialConfig, CredentialSourceConfig};
use crate::telnyx::TelnyxError;
pub use connectivity::{Connectivity, IceServer};
use per_user::PerUserCredentials;
use shared::SharedCredential;

mod connectivity;
mod per_user;
mod shared;

/// What the browser needs to register with Telnyx and reach it through NAT, in the snake_case
/// shape the frontend reads. The parts that do not change per request are shared, not copied.
#[derive(Debug, Clone)]
pub struct WebRTCCredential {
    pub identity: Arc<SipIdentity>,
    /// When the client should fetch a fresh credential: milliseconds since the Unix epoch.
    pub expires_at: u64,
    pub connectivity: Arc<Connectivity>,
}

/// Who the browser registers as, and how it proves it.
#[derive(Debug)]
pub struct SipIdentity {
    /// SIP username: `login` for `TelnyxRTC`.
    pub username: String,
    pub secret: SipSecret,
    pub sip_uri: String,
}

#[derive(Debug)]
pub enum SipSecret {
    /// A SIP password (`password` for `TelnyxRTC`): static mode.
    Password(SecretString),
    /// A Telnyx login token (`login_token` for `TelnyxRTC`): per_user mode.
    LoginToken(SecretString),
}

impl SipIdentity {
    fn new(username: String, secret: SipSecret, realm: &str) -> Self {
        Self {
            sip_uri: format!("sip:{username}@{realm}"),
            username,
            secret,
        }
    }
}

impl Serialize for WebRTCCredential {
    /// Secrets leave the process only here, in the body of a successful response.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let identity = &*self.identity;
        let connectivity = &*self.connectivity;
        let (password, login_token) = match &identity.secret {
            SipSecret::Password(password) => (Some(password.expose_secret()), None),
            SipSecret::LoginToken(token) => (None, Some(token.expose_secret())),
        };
        CredentialBody {
            username: &identity.username,
            password,
            login_token,
            expires_at: self.expires_at,
            realm: &connectivity.realm,
            sip_uri: &identity.sip_uri,
            stun_servers: &connectivity.stun_servers,
            turn_servers: &connectivity.turn_servers,
            ice_servers: &connectivity.ice_servers,
        }
        .serialize(serializer)
    }
}

/// A `WebRTCCredential` as the browser receives it: one struct gives both the JSON and its
/// OpenAPI schema, so the two cannot differ.
#[derive(Serialize, ToSchema)]
struct CredentialBody<'a> {
    /// SIP username: `login` for `TelnyxRTC`.
    username: &'a str,
    /// SIP password (`password` for `TelnyxRTC`); static mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    /// A short-lived Telnyx login token (`login_token` for `TelnyxRTC`); per_user mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    login_token: Option<&'a str>,
    /// When the client should fetch a fresh credential: milliseconds since the Unix epoch.
    expires_at: u64,
    realm: &'a str,
    /// `sip:<username>@<realm>`.
    sip_uri: &'a str,
    stun_servers: &'a [String],
    turn_servers: &'a [IceServer],
    /// The same servers as `RTCIceServer`s, for `new TelnyxRTC({ ..., iceServers })`.
    ice_servers: &'a [IceServer],
}

impl utoipa::PartialSchema for WebRTCCredential {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        CredentialBody::schema()
    }
}

impl ToSchema for WebRTCCredential {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        CredentialBody::schemas(schemas);
    }
}

/// The user a credential is issued to, as the verified token describes them.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: String,
}

/// A failure to issue or revoke; every variant is a server-side problem (the user was already
/// verified).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// Telnyx cannot be reached or keeps failing: worth retrying later.
    #[error("Telnyx is unavailable: {cause}")]
    TelnyxUnavailable {
        cause: String,
        /// When the client may try again.
        retry_after: Duration,
    },
    /// Telnyx refuses this service's requests: the operator must fix the configuration.
    #[error("{0}")]
    TelnyxMisconfigured(String),
    /// Telnyx answered something its API reference does not describe.
    #[error("{0}")]
    TelnyxBadResponse(String),
}

/// Without a `Retry-After` from Telnyx, how long a client is told to wait.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

impl From<TelnyxError> for CredentialError {
    fn from(error: TelnyxError) -> Self {
        match error {
            TelnyxError::Unavailable { cause, retry_after } => CredentialError::TelnyxUnavailable {
                cause,
                retry_after: retry_after
                    .unwrap_or(DEFAULT_RETRY_AFTER)
                    .clamp(Duration::from_secs(1), Duration::from_secs(300)),
            },
            TelnyxError::Unauthorized { status, detail } => {
                CredentialError::TelnyxMisconfigured(format!(
                    "Telnyx refused TELNYX_API_KEY ({status} {detail}): set it to a current API key from the Mission Control portal (API Keys)"
                ))
            }
            TelnyxError::Rejected { status, detail } => {
                CredentialError::TelnyxMisconfigured(format!(
                    "Telnyx rejected a telephony credential request ({status} {detail}): check that TELNYX_WEBRTC_CONNECTION_ID is the ID of a credential connection"
                ))
            }
            TelnyxError::NotFound => CredentialError::TelnyxBadResponse(
                "Telnyx lost a telephony credential it had just listed or created".into(),
            ),
            TelnyxError::InvalidResponse(detail) => CredentialError::TelnyxBadResponse(detail),
        }
    }
}

/// Where credentials come from, chosen by `CREDENTIAL_MODE`.
pub enum CredentialSource {
    /// One SIP identity shared by every user.
    Static(SharedCredential),
    /// One Telnyx telephony credential per user, handed out as short-lived login tokens.
    PerUser(Box<PerUserCredentials>),
}

impl CredentialSource {
    /// Builds the source; fails only when the Telnyx client cannot start.
    pub fn from_config(config: &CredentialConfig) -> Result<Self, String> {
        Ok(match &config.source {
            CredentialSourceConfig::Static {
                username,
                password,
                ttl,
            } => CredentialSource::Static(SharedCredential::new(config, username, password, *ttl)),
            CredentialSourceConfig::PerUser(per_user) => {
                CredentialSource::PerUser(Box::new(PerUserCredentials::new(config, per_user)?))
            }
        })
    }

    pub fn mode(&self) -> &'static str {
        match self {
            CredentialSource::Static(_) => "static",
            CredentialSource::PerUser(_) => "per_user",
        }
    }

    /// Whether `DELETE /credentials` means anything: a shared identity cannot be revoked for
    /// one user.
    pub fn can_revoke(&self) -> bool {
        matches!(self, CredentialSource::PerUser(_))
    }

    pub async fn issue(&self, recipient: &Recipient) -> Result<WebRTCCredential, CredentialError> {
        match self {
            CredentialSource::Static(source) => Ok(source.issue(SystemTime::now())),
            CredentialSource::PerUser(source) => source.issue(&recipient.user_id).await,
        }
    }

    /// Deletes the user's own credential, so every token minted for it stops working.
    pub async fn revoke(&self, recipient: &Recipient) -> Result<(), CredentialError> {
        match self {
            CredentialSource::Static(_) => Ok(()),
            CredentialSource::PerUser(source) => source.revoke(&recipient.user_id).await,
        }
    }
}

/// Milliseconds since the Unix epoch, as `expires_at` carries them.
fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}
