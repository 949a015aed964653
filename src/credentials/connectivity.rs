//! How the browser reaches Telnyx through NAT: the SIP realm and the STUN and TURN servers,
//! built once at start-up and shared by every credential.

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::config::CredentialConfig;

#[derive(Debug, Serialize)]
pub struct Connectivity {
    pub realm: String,
    pub stun_servers: Vec<String>,
    pub turn_servers: Vec<IceServer>,
    /// The same servers as `RTCIceServer`s, for `new RTCPeerConnection({ iceServers })`.
    pub ice_servers: Vec<IceServer>,
    /// The fields above as they appear in the credential's JSON, rendered once. Holds the
    /// TURN credential, so it is a secret too.
    #[serde(skip)]
    json: SecretString,
}

/// The browser's `RTCIceServer` dictionary; `turn_servers` uses it too, where a TURN server
/// may come without credentials (per_user mode without TURN credentials of its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose")]
    #[schema(value_type = Option<String>)]
    pub credential: Option<SecretString>,
}

fn expose<S: Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

impl Connectivity {
    /// `turn_fallback` is what TURN authenticates with when the configuration gives TURN no
    /// credentials of its own: the shared SIP identity in static mode, nothing in per_user mode.
    pub fn new(config: &CredentialConfig, turn_fallback: Option<(&str, &SecretString)>) -> Self {
        let turn_credentials = config
            .turn_credentials
            .as_ref()
            .map(|turn| (turn.username.as_str(), &turn.password))
            .or(turn_fallback);
        let turn_servers: Vec<IceServer> = (!config.turn_urls.is_empty())
            .then(|| IceServer {
                urls: config.turn_urls.clone(),
                username: turn_credentials.map(|(username, _)| username.to_owned()),
                credential: turn_credentials.map(|(_, password)| password.clone()),
            })
            .into_iter()
            .collect();
        let mut connectivity = Self {
            realm: config.realm.clone(),
            ice_servers: ice_servers(&config.stun_urls, &turn_servers),
            stun_servers: config.stun_urls.clone(),
            turn_servers,
            json: SecretString::default(),
        };
        connectivity.json = super::json_fields(&connectivity);
        connectivity
    }

    /// `"realm":…,"stun_servers":…,"turn_servers":…,"ice_servers":…`, for
    /// [`WebRTCCredential::write_json`](super::WebRTCCredential::write_json).
    pub(super) fn json_fields(&self) -> &str {
        self.json.expose_secret()
    }
}

/// STUN URLs as one `RTCIceServer`, each TURN server with credentials as another. A TURN server
/// without credentials is left out: `new RTCPeerConnection` throws on one.
fn ice_servers(stun_urls: &[String], turn_servers: &[IceServer]) -> Vec<IceServer> {
    let stun = (!stun_urls.is_empty()).then(|| IceServer {
        urls: stun_urls.to_vec(),
        username: None,
        credential: None,
    });
    let turn = turn_servers
        .iter()
        .filter(|server| server.username.is_some() && server.credential.is_some())
        .map(|server| IceServer {
            urls: server.urls.clone(),
            username: server.username.clone(),
            credential: server.credential.clone(),
        });
    stun.into_iter().chain(turn).collect()
}
