//! `CREDENTIAL_MODE=per_user`: one Telnyx telephony credential per holder (a Supabase user, or
//! one of their devices), found or created through the Telnyx API, handed to the browser as
//! short-lived login tokens. How many devices a user may have is [`super::devices`]' concern,
//! above this one.
//!
//! The rules, written once here:
//! - Telnyx itself is the only shared state: the credential is found by its holder's name
//!   ([`Holder::credential_name`], `supabase:<sub>[:<device_id>]`), so a restart or another replica reuses it instead of creating
//!   another, and the portal shows whose each one is.
//! - Login tokens are cached per user in memory until shortly before they expire; concurrent
//!   requests for one user share one sequence of Telnyx calls, the propagation wait included.
//! - A token is never handed out for a credential younger than
//!   `TELNYX_CREDENTIAL_PROPAGATION_SECS`, never outlives its credential, and a credential lives
//!   `TELNYX_CREDENTIAL_IDLE_DAYS` past its user's last token ([`lifecycle`] holds those calls).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use quick_cache::sync::Cache;

use super::{
    Connectivity, CredentialError, Holder, SipIdentity, SipSecret, WebRTCCredential, epoch_millis,
};
use crate::config::{CredentialConfig, PerUserConfig};
use crate::metrics;
use crate::telnyx::TelnyxClient;
use lifecycle::{KnownCredential, Lifecycle};

mod lifecycle;

/// How long a credential takes to become usable, and how long it lives unused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// `TELNYX_CREDENTIAL_PROPAGATION_SECS`.
    pub propagation: Duration,
    /// `TELNYX_CREDENTIAL_IDLE_DAYS`.
    pub idle: Duration,
}

impl Rules {
    /// The `expires_at` a credential created or moved forward at `now` gets.
    fn expiry_from(&self, now: SystemTime) -> SystemTime {
        now + self.idle
    }

    /// Whether to move a credential forward before minting a token for it: less than half the
    /// idle period is left, so an active user's credential never lapses and an idle one does.
    /// One without an expiry (created before lifetimes) is given one.
    fn due_for_extension(&self, expires_at: Option<SystemTime>, now: SystemTime) -> bool {
        expires_at.is_none_or(|expires_at| expires_at < now + self.idle / 2)
    }
}

/// The `cache` label of this cache's lookups.
const LOGIN_TOKEN_CACHE: &str = "login_tokens";

pub struct PerUserCredentials {
    telnyx: TelnyxClient,
    connection_id: String,
    rules: Rules,
    refresh_margin: Duration,
    realm: String,
    connectivity: Arc<Connectivity>,
    users: Cache<Holder, Arc<UserSlot>>,
}

/// One user's cached token, and the lock that makes their Telnyx calls one sequence.
#[derive(Default)]
struct UserSlot {
    /// Read without waiting on the lock: the cached path never queues behind Telnyx.
    current: RwLock<Option<Arc<IssuedToken>>>,
    upstream: tokio::sync::Mutex<Upstream>,
}

/// What the last sequence of Telnyx calls for a user learned.
#[derive(Default)]
struct Upstream {
    /// The user's credential, once found or created: a later refresh only mints a token.
    credential: Option<KnownCredential>,
    /// When the last sequence failed, and how: requests that waited on it share its answer
    /// instead of starting another sequence against a Telnyx that just failed.
    failure: Option<(Instant, CredentialError)>,
}

struct IssuedToken {
    identity: Arc<SipIdentity>,
    expires_at: SystemTime,
    /// From here on the token is replaced rather than handed out.
    refresh_at: SystemTime,
}

impl IssuedToken {
    fn new(
        identity: SipIdentity,
        minted_at: SystemTime,
        expires_at: SystemTime,
        margin: Duration,
    ) -> Self {
        // At least half the token's life is used even when the margin is longer than that life.
        let half_life = expires_at.duration_since(minted_at).unwrap_or_default() / 2;
        let refresh_at = (expires_at - margin).max(minted_at + half_life);
        Self {
            identity: Arc::new(identity),
            expires_at,
            refresh_at,
        }
    }
}

impl PerUserCredentials {
    pub(super) fn new(config: &CredentialConfig, per_user: &PerUserConfig) -> Result<Self, String> {
        Ok(Self {
            telnyx: TelnyxClient::new(&per_user.api)?,
            connection_id: per_user.connection_id.clone(),
            rules: Rules {
                propagation: per_user.propagation,
                idle: per_user.idle,
            },
            refresh_margin: per_user.refresh_margin,
            realm: config.realm.clone(),
            connectivity: Arc::new(Connectivity::new(config, None)),
            users: Cache::new(per_user.cache_capacity),
        })
    }

    /// A login token for the user: the cached one while it is fresh, else a new one from
    /// Telnyx. While Telnyx fails, a cached token that has not expired is still served.
    pub(super) async fn issue(&self, holder: &Holder) -> Result<WebRTCCredential, CredentialError> {
        let slot = self.slot(holder);
        if let Some(token) = slot.fresh(SystemTime::now()) {
            metrics::cache_lookup(LOGIN_TOKEN_CACHE, true);
            return Ok(self.credential(&token));
        }
        let asked_at = Instant::now();
        let mut upstream = slot.upstream.lock().await;
        if let Some(token) = slot.fresh(SystemTime::now()) {
            metrics::cache_lookup(LOGIN_TOKEN_CACHE, true);
            return Ok(self.credential(&token)); // minted by the request we waited on
        }
        metrics::cache_lookup(LOGIN_TOKEN_CACHE, false);
        let outcome = match &upstream.failure {
            Some((failed_at, error)) if *failed_at >= asked_at => Err(error.clone()),
            _ => self.mint(holder, &mut upstream).await,
        };
        match outcome {
            Ok(token) => {
                upstream.failure = None;
                *slot.current.write().expect("token lock poisoned") = Some(token.clone());
                Ok(self.credential(&token))
            }
            Err(error) => {
                upstream.failure = Some((Instant::now(), error.clone()));
                let cached = slot.current.read().expect("token lock poisoned").clone();
                match cached {
                    Some(token) if token.expires_at > SystemTime::now() => {
                        tracing::warn!(%error, "serving a cached login token: a new one could not be minted");
                        Ok(self.credential(&token))
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// Deletes every telephony credential of the user at Telnyx (every token minted for them
    /// stops working) and forgets the cached token. False when there was none to delete.
    pub(super) async fn revoke(&self, holder: &Holder) -> Result<bool, CredentialError> {
        let slot = self.slot(holder);
        // Waits out an in-flight mint, so that it cannot cache a token after the delete.
        let mut upstream = slot.upstream.lock().await;
        let budget = self.telnyx.budget();
        let name = holder.credential_name();
        let mut credentials = self.lifecycle().all(&name, &budget).await?;
        if let Some(known) = upstream.credential.take()
            && !credentials.iter().any(|found| found.id == known.record.id)
        {
            credentials.push(known.record);
        }
        for credential in &credentials {
            self.telnyx
                .delete_credential(&credential.id, &budget)
                .await?;
        }
        *slot.current.write().expect("token lock poisoned") = None;
        upstream.failure = None;
        drop(upstream);
        self.users.remove(holder);
        tracing::info!(
            deleted = credentials.len(),
            "revoked the user's telephony credentials"
        );
        Ok(!credentials.is_empty())
    }

    /// The Telnyx client and connection, for [`super::devices`]' listings of a user's
    /// credentials by their tag.
    pub(super) fn telnyx(&self) -> (&TelnyxClient, &str) {
        (&self.telnyx, &self.connection_id)
    }

    fn slot(&self, holder: &Holder) -> Arc<UserSlot> {
        let slot = self
            .users
            .get_or_insert_with(holder, || Ok::<_, Infallible>(Arc::default()));
        match slot {
            Ok(slot) => slot,
        }
    }

    fn credential(&self, token: &IssuedToken) -> WebRTCCredential {
        WebRTCCredential {
            identity: token.identity.clone(),
            expires_at: epoch_millis(token.expires_at),
            connectivity: self.connectivity.clone(),
        }
    }

    fn lifecycle(&self) -> Lifecycle<'_> {
        Lifecycle {
            telnyx: &self.telnyx,
            connection_id: &self.connection_id,
            rules: &self.rules,
        }
    }

    /// Mints a login token for the user's credential (see [`Lifecycle::token`]).
    async fn mint(
        &self,
        holder: &Holder,
        upstream: &mut Upstream,
    ) -> Result<Arc<IssuedToken>, CredentialError> {
        let budget = self.telnyx.budget();
        let (credential, token) = self
            .lifecycle()
            .token(holder, &mut upstream.credential, &budget)
            .await?;
        tracing::debug!(credential_id = %credential.id, "minted a login token");
        let identity = SipIdentity::new(
            credential.sip_username,
            SipSecret::LoginToken(token.token),
            &self.realm,
        );
        Ok(Arc::new(IssuedToken::new(
            identity,
            SystemTime::now(),
            token.expires_at,
            self.refresh_margin,
        )))
    }
}

impl UserSlot {
    fn fresh(&self, now: SystemTime) -> Option<Arc<IssuedToken>> {
        let current = self.current.read().expect("token lock poisoned");
        current
            .as_ref()
            .filter(|token| now < token.refresh_at)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_refreshed_a_margin_before_expiry_but_used_for_half_its_life_at_least() {
        let minted = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        let identity = || SipIdentity::new("u".into(), SipSecret::LoginToken("t".into()), "r");
        let token = IssuedToken::new(identity(), minted, minted + day, Duration::from_secs(600));
        assert_eq!(token.refresh_at, minted + day - Duration::from_secs(600));
        let short = IssuedToken::new(
            identity(),
            minted,
            minted + Duration::from_secs(300),
            Duration::from_secs(600),
        );
        assert_eq!(short.refresh_at, minted + Duration::from_secs(150));
    }

    #[test]
    fn the_token_cache_holds_at_most_its_capacity_of_users() {
        let config = crate::config::Config::from_lookup(crate::config::lookup_from([
            ("SUPABASE_URL", "https://abcd.supabase.co"),
            ("CREDENTIAL_MODE", "per_user"),
            ("TELNYX_API_KEY", "KEY0123"),
            ("TELNYX_WEBRTC_CONNECTION_ID", "1234"),
            ("TOKEN_CACHE_MAX_USERS", "50"),
        ]))
        .unwrap();
        let crate::config::CredentialSourceConfig::PerUser(per_user) = &config.credentials.source
        else {
            panic!("per_user mode was asked for");
        };
        let source = PerUserCredentials::new(&config.credentials, per_user).unwrap();
        for n in 0..1_000 {
            source.slot(&Holder::supabase_user(&format!("user-{n}")));
        }
        assert!(
            source.users.len() <= 50,
            "{} users cached",
            source.users.len()
        );
        assert!(
            source.users.len() >= 25,
            "{} users cached",
            source.users.len()
        );
    }
}
