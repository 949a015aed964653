//! How the browser reaches Telnyx through NAT: the SIP realm and the STUN and TURN servers,
//! built once at start-up and shared by every credential.
//!
//! The rule for `ice_servers`, in both modes: it is there only when the operator configured TURN
//! credentials (`TELNYX_TURN_USERNAME`/`_PASSWORD`). `@telnyx/webrtc` replaces its own ICE list
//! with whatever `iceServers` it is given (`BrowserSession`'s `set iceServers` in packages/js),
//! and its own list (`DEFAULT_PROD_ICE_SERVERS`) has TURN over UDP, TCP and TLS on 443 with
//! credentials the SDK provisions itself. Nothing Telnyx publishes says its TURN servers accept
//! a SIP username and password, so a list without configured credentials would swap working
//! relays for none, or for credentials Telnyx never promised to accept.

use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;

use super::expose;
use crate::config::CredentialConfig;

#[derive(Debug, Serialize, ToSchema)]
pub struct Connectivity {
    pub realm: String,
    pub stun_servers: Vec<String>,
    /// TURN URLs, with `TELNYX_TURN_USERNAME`/`_PASSWORD` when set; without them, the shared
    /// SIP identity in static mode (which Telnyx does not document as accepted by its TURN
    /// servers) and no credentials in per_user mode. Hand the SDK `ice_servers`, not this.
    pub turn_servers: Vec<IceServer>,
    /// STUN and TURN as `RTCIceServer`s, for `new TelnyxRTC({ ..., iceServers })`. Present only
    /// when TURN credentials are configured: absent, pass no `iceServers`, so that
    /// `@telnyx/webrtc` keeps its own STUN and TURN servers (TURN over TLS on 443 included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_servers: Option<Vec<IceServer>>,
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

impl Connectivity {
    /// `turn_fallback` is what `turn_servers` (not `ice_servers`) carries when the configuration
    /// gives TURN no credentials of its own: the shared SIP identity in static mode, which the
    /// existing frontend reads there, and nothing in per_user mode (no SIP password reaches the
    /// browser in that mode).
    pub fn new(config: &CredentialConfig, turn_fallback: Option<(&str, &SecretString)>) -> Self {
        let configured = config
            .turn_credentials
            .as_ref()
            .map(|turn| (turn.username.as_str(), &turn.password));
        let turn_server = |credentials: Option<(&str, &SecretString)>| {
            (!config.turn_urls.is_empty()).then(|| IceServer {
                urls: config.turn_urls.clone(),
                username: credentials.map(|(username, _)| username.to_owned()),
                credential: credentials.map(|(_, password)| password.clone()),
            })
        };
        let turn_servers: Vec<IceServer> = turn_server(configured.or(turn_fallback))
            .into_iter()
            .collect();
        let ice_servers = configured
            .and_then(|credentials| turn_server(Some(credentials)))
            .map(|turn| ice_servers(&config.stun_urls, turn));
        Self {
            realm: config.realm.clone(),
            ice_servers,
            stun_servers: config.stun_urls.clone(),
            turn_servers,
        }
    }
}

/// STUN URLs as one `RTCIceServer`, the TURN server with its credentials as another.
fn ice_servers(stun_urls: &[String], turn: IceServer) -> Vec<IceServer> {
    let stun = (!stun_urls.is_empty()).then(|| IceServer {
        urls: stun_urls.to_vec(),
        username: None,
        credential: None,
    });
    stun.into_iter().chain([turn]).collect()
}
