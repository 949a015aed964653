//! The credential sources and the `WebRTCCredential` they hand to the browser.
//!
//! The handlers call one seam, [`CredentialSource::issue`] (and [`CredentialSource::revoke`]
//! for `DELETE`, [`CredentialSource::devices`] for `GET /devices`); each `CREDENTIAL_MODE` is a
//! variant behind it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::config::{CredentialConfig, CredentialSourceConfig};
use crate::shared::Redis;
use crate::telnyx::TelnyxError;
pub use connectivity::{Connectivity, IceServer};
pub use devices::{Device, Devices};
pub use holder::{
    DeviceId, Holder, InvalidDeviceId, MAX_DEVICE_ID_LEN, is_third_party_name, issuer_tag, owner_of,
};
use shared::SharedCredential;

mod connectivity;
mod devices;
mod holder;
mod per_user;
mod shared;

/// What the browser needs to register with Telnyx and reach it through NAT, in the snake_case
/// shape the frontend reads: one JSON object, the identity's and the connectivity's fields
/// beside `expires_at`. The parts that do not change per request are shared, not copied.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebRTCCredential {
    #[serde(flatten)]
    #[schema(inline, value_type = SipIdentity)]
    pub identity: Arc<SipIdentity>,
    /// When the client should fetch a fresh credential: milliseconds since the Unix epoch.
    pub expires_at: u64,
    #[serde(flatten)]
    #[schema(inline, value_type = Connectivity)]
    pub connectivity: Arc<Connectivity>,
}

/// Who the browser registers as, and how it proves it. Kept typed, secret included, so that a
/// store can hold it; it becomes JSON only in a response body, where [`expose`] hands the
/// secret to the serializer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SipIdentity {
    /// SIP username: `login` for `TelnyxRTC`.
    pub username: String,
    /// SIP password (`password` for `TelnyxRTC`); static mode only.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    #[schema(value_type = Option<String>)]
    password: Option<SecretString>,
    /// A short-lived Telnyx login token (`login_token` for `TelnyxRTC`); per_user mode only.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    #[schema(value_type = Option<String>)]
    login_token: Option<SecretString>,
    /// `sip:<username>@<realm>`.
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
        let sip_uri = format!("sip:{username}@{realm}");
        let (password, login_token) = match secret {
            SipSecret::Password(password) => (Some(password), None),
            SipSecret::LoginToken(token) => (None, Some(token)),
        };
        Self {
            username,
            password,
            login_token,
            sip_uri,
        }
    }
}

/// The only place a secret is exposed: inside the serializer writing a response body.
pub(crate) fn expose<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
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
    /// One Telnyx telephony credential per user and device, handed out as short-lived login
    /// tokens.
    PerUser(Box<Devices>),
}

impl CredentialSource {
    /// Builds the source; fails only when the Telnyx client cannot start. With `redis`,
    /// per_user state (tokens, credentials, revocations, the device book) is shared with the
    /// other replicas through it.
    pub fn from_config(
        config: &CredentialConfig,
        redis: Option<&Arc<Redis>>,
    ) -> Result<Self, String> {
        Ok(match &config.source {
            CredentialSourceConfig::Static {
                username,
                password,
                ttl,
            } => CredentialSource::Static(SharedCredential::new(config, username, password, *ttl)),
            CredentialSourceConfig::PerUser(per_user) => {
                CredentialSource::PerUser(Box::new(Devices::new(config, per_user, redis.cloned())?))
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

    /// The holder's credential (static mode: the one shared identity, whoever asks).
    pub async fn issue(&self, holder: &Holder) -> Result<WebRTCCredential, CredentialError> {
        match self {
            CredentialSource::Static(source) => Ok(source.issue(SystemTime::now())),
            CredentialSource::PerUser(source) => source.issue(holder).await,
        }
    }

    /// Deletes the holder's device's credential (without a device: every credential of the
    /// user), so every token minted for it stops working. False when there was nothing to
    /// delete.
    pub async fn revoke(&self, holder: &Holder) -> Result<bool, CredentialError> {
        match self {
            CredentialSource::Static(_) => Ok(false),
            CredentialSource::PerUser(source) => source.revoke(holder).await,
        }
    }

    /// The users' devices; `None` in static mode, where every browser shares one identity.
    pub fn devices(&self) -> Option<&Devices> {
        match self {
            CredentialSource::Static(_) => None,
            CredentialSource::PerUser(source) => Some(source),
        }
    }
}

/// Milliseconds since the Unix epoch, as `expires_at` carries them.
fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::*;

    /// The credential as the browser receives it.
    pub(crate) fn json_of(credential: &WebRTCCredential) -> Value {
        serde_json::to_value(credential).expect("a credential serializes")
    }

    fn credential(secret: SipSecret) -> WebRTCCredential {
        let mut config = shared::tests::config();
        config.turn_credentials = Some(crate::config::TurnCredentials {
            username: "turn\"user".into(),
            password: SecretString::from("turn\\pass"),
        });
        WebRTCCredential {
            // Characters JSON must escape, in the fields that come from outside.
            identity: Arc::new(SipIdentity::new(
                "user\"\\\n\u{1}é".into(),
                secret,
                "sip.telnyx.com",
            )),
            expires_at: u64::MAX,
            connectivity: Arc::new(Connectivity::new(&config, None)),
        }
    }

    #[test]
    fn the_json_written_is_the_shape_the_openapi_document_declares() {
        let RefOr::T(Schema::Object(schema)) =
            crate::http::openapi::flattened(WebRTCCredential::schema())
        else {
            panic!("WebRTCCredential is an object schema");
        };
        let declared: BTreeSet<&str> = schema.properties.keys().map(String::as_str).collect();
        let required: BTreeSet<&str> = schema.required.iter().map(String::as_str).collect();
        let mut written = BTreeSet::new();
        for secret in [
            SipSecret::Password(SecretString::from("pass\"word")),
            SipSecret::LoginToken(SecretString::from("login.token")),
        ] {
            let json = json_of(&credential(secret));
            let fields: BTreeSet<&str> = json
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                fields.is_subset(&declared),
                "undeclared fields: {fields:?} vs {declared:?}"
            );
            assert!(
                required.is_subset(&fields),
                "missing required fields: {required:?} vs {fields:?}"
            );
            written.extend(fields.into_iter().map(str::to_owned));
        }
        let written: BTreeSet<&str> = written.iter().map(String::as_str).collect();
        assert_eq!(written, declared, "a declared field is never written");
    }

    #[test]
    fn the_identity_keeps_its_parts_typed_and_its_secret_out_of_debug() {
        let identity = SipIdentity::new(
            "gencred".into(),
            SipSecret::LoginToken(SecretString::from("tok.en")),
            "sip.telnyx.com",
        );
        assert_eq!(identity.username, "gencred");
        assert_eq!(identity.sip_uri, "sip:gencred@sip.telnyx.com");
        assert!(identity.password.is_none());
        let token = identity
            .login_token
            .as_ref()
            .map(ExposeSecret::expose_secret);
        assert_eq!(token, Some("tok.en"));
        assert!(!format!("{identity:?}").contains("tok.en"));
    }

    #[test]
    fn the_json_written_escapes_and_carries_every_value() {
        let json = json_of(&credential(SipSecret::LoginToken(SecretString::from(
            "tok\"en",
        ))));
        assert_eq!(json["username"], "user\"\\\n\u{1}é");
        assert_eq!(json["login_token"], "tok\"en");
        assert!(json.get("password").is_none());
        assert_eq!(json["sip_uri"], "sip:user\"\\\n\u{1}é@sip.telnyx.com");
        assert_eq!(json["expires_at"], u64::MAX);
        assert_eq!(json["realm"], "sip.telnyx.com");
        assert_eq!(json["turn_servers"][0]["username"], "turn\"user");
        assert_eq!(json["turn_servers"][0]["credential"], "turn\\pass");
        assert_eq!(json["ice_servers"][1]["credential"], "turn\\pass");
        assert_eq!(json["stun_servers"].as_array().unwrap().len(), 2);
    }
}
