//! `CREDENTIAL_MODE=static`: one SIP identity from the environment, shared by every user.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use super::{Connectivity, SipIdentity, SipSecret, WebRTCCredential, epoch_millis};
use crate::config::CredentialConfig;

/// The shared identity, built once at start-up; each request only stamps a fresh `expires_at`
/// beside it.
pub struct SharedCredential {
    identity: Arc<SipIdentity>,
    connectivity: Arc<Connectivity>,
    ttl: Duration,
}

impl SharedCredential {
    pub(super) fn new(
        config: &CredentialConfig,
        username: &str,
        password: &SecretString,
        ttl: Duration,
    ) -> Self {
        Self {
            identity: Arc::new(SipIdentity::new(
                username.to_owned(),
                SipSecret::Password(password.clone()),
                &config.realm,
            )),
            connectivity: Arc::new(Connectivity::new(config, Some((username, password)))),
            ttl,
        }
    }

    pub(super) fn issue(&self, now: SystemTime) -> WebRTCCredential {
        WebRTCCredential {
            identity: self.identity.clone(),
            expires_at: epoch_millis(now + self.ttl),
            connectivity: self.connectivity.clone(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::{
        CredentialSourceConfig, DEFAULT_STUN_URLS, DEFAULT_TURN_URLS, TurnCredentials,
    };
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    /// Static mode with the default STUN and TURN servers.
    pub(in crate::credentials) fn config() -> CredentialConfig {
        CredentialConfig {
            source: CredentialSourceConfig::Static {
                username: "gencred".into(),
                password: SecretString::from("pw"),
                ttl: Duration::from_secs(60),
            },
            realm: "sip.telnyx.com".into(),
            stun_urls: DEFAULT_STUN_URLS.map(String::from).to_vec(),
            turn_urls: DEFAULT_TURN_URLS.map(String::from).to_vec(),
            turn_credentials: None,
        }
    }

    fn shared(config: &CredentialConfig) -> SharedCredential {
        let password = SecretString::from("pw");
        SharedCredential::new(config, "gencred", &password, Duration::from_secs(60))
    }

    /// Without TURN credentials of its own, the answer has no `ice_servers`: handed to the SDK
    /// it would replace the SDK's own relays with the SIP identity, which Telnyx does not
    /// document as accepted by its TURN servers. `turn_servers` keeps it for the old frontend.
    #[test]
    fn the_static_credential_serializes_in_the_frontend_shape_without_ice_servers() {
        let credential = shared(&config()).issue(UNIX_EPOCH + Duration::from_secs(1_000));
        assert_eq!(
            crate::credentials::tests::json_of(&credential),
            json!({
                "username": "gencred",
                "password": "pw",
                "expires_at": 1_060_000,
                "realm": "sip.telnyx.com",
                "sip_uri": "sip:gencred@sip.telnyx.com",
                "stun_servers": ["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"],
                "turn_servers": [{
                    "urls": [
                        "turn:turn.telnyx.com:3478?transport=udp",
                        "turn:turn.telnyx.com:3478?transport=tcp",
                        "turns:turn.telnyx.com:443",
                    ],
                    "username": "gencred",
                    "credential": "pw",
                }],
            })
        );
        assert!(!format!("{credential:?}").contains("\"pw\""));
    }

    #[test]
    fn turn_credentials_of_their_own_go_on_turn_and_into_ice_servers() {
        let mut config = config();
        config.turn_credentials = Some(TurnCredentials {
            username: "turnuser".into(),
            password: SecretString::from("turnpass"),
        });
        let body = crate::credentials::tests::json_of(&shared(&config).issue(UNIX_EPOCH));
        assert_eq!(body["turn_servers"][0]["username"], "turnuser");
        assert_eq!(body["turn_servers"][0]["credential"], "turnpass");
        assert_eq!(
            body["ice_servers"],
            json!([
                {"urls": ["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"]},
                {
                    "urls": [
                        "turn:turn.telnyx.com:3478?transport=udp",
                        "turn:turn.telnyx.com:3478?transport=tcp",
                        "turns:turn.telnyx.com:443",
                    ],
                    "username": "turnuser",
                    "credential": "turnpass",
                },
            ])
        );
        assert_eq!(body["password"], "pw");
    }

    #[test]
    fn empty_server_lists_leave_no_empty_ice_entries() {
        let mut config = config();
        config.stun_urls.clear();
        config.turn_urls.clear();
        config.turn_credentials = Some(TurnCredentials {
            username: "turnuser".into(),
            password: SecretString::from("turnpass"),
        });
        let credential = shared(&config).issue(UNIX_EPOCH);
        assert_eq!(
            credential
                .connectivity
                .ice_servers
                .as_deref()
                .map(<[_]>::len),
            None
        );
        assert!(credential.connectivity.turn_servers.is_empty());
    }
}
