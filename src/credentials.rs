//! The credential sources and the `WebRTCCredential` they hand to the browser.
//!
//! The handler calls one seam, [`CredentialSource::issue`]; each `CREDENTIAL_MODE` is a variant
//! behind it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};

use crate::config::{CredentialConfig, CredentialSourceConfig};

/// What the browser needs to register with Telnyx and reach it through NAT, in the snake_case
/// shape the frontend reads.
#[derive(Debug, Clone, Serialize)]
pub struct WebRTCCredential {
    /// SIP username: `login` for `TelnyxRTC`.
    pub username: String,
    /// SIP password (`password` for `TelnyxRTC`); absent when a login token is issued instead.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub password: Option<SecretString>,
    /// A Telnyx login token (`login_token` for `TelnyxRTC`); absent in static mode.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub login_token: Option<SecretString>,
    /// When the client should fetch a fresh credential: milliseconds since the Unix epoch.
    pub expires_at: u64,
    pub realm: String,
    pub sip_uri: String,
    pub stun_servers: Vec<String>,
    pub turn_servers: Vec<TurnServer>,
    /// The same servers as `RTCIceServer`s, for `new RTCPeerConnection({ iceServers })`.
    pub ice_servers: Vec<IceServer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TurnServer {
    pub urls: Vec<String>,
    pub username: String,
    #[serde(serialize_with = "expose_required")]
    pub credential: SecretString,
}

/// The browser's `RTCIceServer` dictionary.
#[derive(Debug, Clone, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    pub credential: Option<SecretString>,
}

/// Secrets leave the process only here, in the body of a successful response.
fn expose<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

fn expose_required<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// The user a credential is issued to, as the verified token describes them.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: String,
}

/// A failure to issue; every variant is a server-side problem (the user was already verified).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {}

/// Where credentials come from, chosen by `CREDENTIAL_MODE`.
pub enum CredentialSource {
    /// One SIP identity shared by every user.
    Static(StaticCredential),
}

impl CredentialSource {
    pub fn from_config(config: &CredentialConfig) -> Self {
        match &config.source {
            CredentialSourceConfig::Static { username, password } => {
                CredentialSource::Static(StaticCredential::new(config, username, password))
            }
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            CredentialSource::Static(_) => "static",
        }
    }

    pub async fn issue(&self, _recipient: &Recipient) -> Result<WebRTCCredential, CredentialError> {
        match self {
            CredentialSource::Static(source) => Ok(source.issue(SystemTime::now())),
        }
    }
}

/// The shared SIP identity, built into a complete credential once at start-up; each request
/// only stamps a fresh `expires_at` on a copy.
pub struct StaticCredential {
    template: WebRTCCredential,
    ttl: Duration,
}

impl StaticCredential {
    fn new(config: &CredentialConfig, username: &str, password: &SecretString) -> Self {
        let turn_servers = vec![TurnServer {
            urls: config.turn_urls.clone(),
            username: username.to_owned(),
            credential: password.clone(),
        }];
        let template = WebRTCCredential {
            username: username.to_owned(),
            password: Some(password.clone()),
            login_token: None,
            expires_at: 0,
            realm: config.realm.clone(),
            sip_uri: format!("sip:{username}@{}", config.realm),
            ice_servers: ice_servers(&config.stun_urls, &turn_servers),
            stun_servers: config.stun_urls.clone(),
            turn_servers,
        };
        Self {
            template,
            ttl: config.ttl,
        }
    }

    fn issue(&self, now: SystemTime) -> WebRTCCredential {
        let expires = now + self.ttl;
        let expires_at = expires.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
        WebRTCCredential {
            expires_at,
            ..self.template.clone()
        }
    }
}

/// STUN URLs as one `RTCIceServer`, each TURN server as another with its credentials.
fn ice_servers(stun_urls: &[String], turn_servers: &[TurnServer]) -> Vec<IceServer> {
    let stun = (!stun_urls.is_empty()).then(|| IceServer {
        urls: stun_urls.to_vec(),
        username: None,
        credential: None,
    });
    let turn = turn_servers
        .iter()
        .filter(|server| !server.urls.is_empty())
        .map(|server| IceServer {
            urls: server.urls.clone(),
            username: Some(server.username.clone()),
            credential: Some(server.credential.clone()),
        });
    stun.into_iter().chain(turn).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_STUN_URLS, DEFAULT_TURN_URLS};
    use serde_json::json;

    fn config() -> CredentialConfig {
        CredentialConfig {
            source: CredentialSourceConfig::Static {
                username: "gencred".into(),
                password: SecretString::from("pw"),
            },
            connection_id: None,
            realm: "sip.telnyx.com".into(),
            stun_urls: DEFAULT_STUN_URLS.map(String::from).to_vec(),
            turn_urls: DEFAULT_TURN_URLS.map(String::from).to_vec(),
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_static_credential_serializes_in_the_frontend_shape() {
        let CredentialSourceConfig::Static { username, password } = &config().source;
        let source = StaticCredential::new(&config(), username, password);
        let credential = source.issue(UNIX_EPOCH + Duration::from_secs(1_000));
        assert_eq!(
            serde_json::to_value(&credential).unwrap(),
            json!({
                "username": "gencred",
                "password": "pw",
                "expires_at": 1_060_000,
                "realm": "sip.telnyx.com",
                "sip_uri": "sip:gencred@sip.telnyx.com",
                "stun_servers": ["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"],
                "turn_servers": [{
                    "urls": ["turn:turn.telnyx.com:3478?transport=udp", "turn:turn.telnyx.com:3478?transport=tcp"],
                    "username": "gencred",
                    "credential": "pw",
                }],
                "ice_servers": [
                    {"urls": ["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"]},
                    {
                        "urls": ["turn:turn.telnyx.com:3478?transport=udp", "turn:turn.telnyx.com:3478?transport=tcp"],
                        "username": "gencred",
                        "credential": "pw",
                    },
                ],
            })
        );
        assert!(!format!("{credential:?}").contains("\"pw\""));
    }

    #[test]
    fn empty_server_lists_leave_no_empty_ice_entries() {
        let mut config = config();
        config.stun_urls.clear();
        config.turn_urls.clear();
        let CredentialSourceConfig::Static { username, password } = &config.source;
        let credential = StaticCredential::new(&config, username, password).issue(UNIX_EPOCH);
        assert!(credential.ice_servers.is_empty());
    }
}
