//! `CREDENTIAL_MODE=per_user`: one Telnyx telephony credential per Supabase user, found or
//! created through the Telnyx API, handed to the browser as short-lived login tokens.
//!
//! Telnyx itself is the only shared state: the credential is found by a name derived from the
//! user id, so a restart or another replica reuses it instead of creating another. Login tokens
//! are cached per user in memory until shortly before they expire; concurrent requests for one
//! user share one sequence of Telnyx calls.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use quick_cache::sync::Cache;

use super::{
    Connectivity, CredentialError, SipIdentity, SipSecret, WebRTCCredential, epoch_millis,
};
use crate::config::{CredentialConfig, PerUserConfig};
use crate::metrics;
use crate::telnyx::{Budget, TelephonyCredential, TelnyxClient, TelnyxError};

/// The `cache` label of this cache's lookups.
const LOGIN_TOKEN_CACHE: &str = "login_tokens";

pub struct PerUserCredentials {
    telnyx: TelnyxClient,
    connection_id: String,
    refresh_margin: Duration,
    realm: String,
    connectivity: Arc<Connectivity>,
    users: Cache<String, Arc<UserSlot>>,
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
    credential: Option<TelephonyCredential>,
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
            refresh_margin: per_user.refresh_margin,
            realm: config.realm.clone(),
            connectivity: Arc::new(Connectivity::new(config, None)),
            users: Cache::new(per_user.cache_capacity),
        })
    }

    /// A login token for the user: the cached one while it is fresh, else a new one from
    /// Telnyx. While Telnyx fails, a cached token that has not expired is still served.
    pub(super) async fn issue(&self, user_id: &str) -> Result<WebRTCCredential, CredentialError> {
        let slot = self.slot(user_id);
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
            _ => self.mint(user_id, &mut upstream).await,
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
    pub(super) async fn revoke(&self, user_id: &str) -> Result<bool, CredentialError> {
        let slot = self.slot(user_id);
        // Waits out an in-flight mint, so that it cannot cache a token after the delete.
        let mut upstream = slot.upstream.lock().await;
        let budget = self.telnyx.budget();
        let name = credential_name(user_id);
        let mut credentials = self
            .telnyx
            .find_credentials(&name, &self.connection_id, false, &budget)
            .await?;
        if let Some(known) = upstream.credential.take()
            && !credentials.iter().any(|found| found.id == known.id)
        {
            credentials.push(known);
        }
        for credential in &credentials {
            self.telnyx
                .delete_credential(&credential.id, &budget)
                .await?;
        }
        *slot.current.write().expect("token lock poisoned") = None;
        upstream.failure = None;
        drop(upstream);
        self.users.remove(user_id);
        tracing::info!(
            deleted = credentials.len(),
            "revoked the user's telephony credentials"
        );
        Ok(!credentials.is_empty())
    }

    fn slot(&self, user_id: &str) -> Arc<UserSlot> {
        let slot = self
            .users
            .get_or_insert_with(user_id, || Ok::<_, Infallible>(Arc::default()));
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

    /// Mints a login token for the user's credential, finding or creating the credential first
    /// when it is not known yet, and once more when Telnyx says the known one is gone or expired.
    async fn mint(
        &self,
        user_id: &str,
        upstream: &mut Upstream,
    ) -> Result<Arc<IssuedToken>, CredentialError> {
        let budget = self.telnyx.budget();
        let name = credential_name(user_id);
        let credential = match upstream.credential.take() {
            Some(known) => known,
            None => self.find_or_create(&name, &budget).await?,
        };
        let (credential, token) = match self
            .telnyx
            .create_login_token(&credential.id, &budget)
            .await
        {
            Ok(token) => (credential, token),
            Err(TelnyxError::NotFound | TelnyxError::Rejected { .. }) => {
                tracing::info!(credential_id = %credential.id, "the user's telephony credential is gone or expired: finding or creating it again");
                let credential = self.find_or_create(&name, &budget).await?;
                let token = self
                    .telnyx
                    .create_login_token(&credential.id, &budget)
                    .await?;
                (credential, token)
            }
            Err(error) => {
                upstream.credential = Some(credential);
                return Err(error.into());
            }
        };
        tracing::debug!(credential_id = %credential.id, "minted a login token");
        let identity = SipIdentity::new(
            credential.sip_username.clone(),
            SipSecret::LoginToken(token.token),
            &self.realm,
        );
        upstream.credential = Some(credential);
        Ok(Arc::new(IssuedToken::new(
            identity,
            SystemTime::now(),
            token.expires_at,
            self.refresh_margin,
        )))
    }

    /// The user's active credential on the connection, created when there is none. Two
    /// replicas that create one at the same moment both keep the oldest, and each deletes its
    /// own extra, so the user ends up with one credential.
    async fn find_or_create(
        &self,
        name: &str,
        budget: &Budget,
    ) -> Result<TelephonyCredential, CredentialError> {
        let found = self
            .telnyx
            .find_credentials(name, &self.connection_id, true, budget)
            .await?;
        if let Some(existing) = oldest(found) {
            return Ok(existing);
        }
        let created = self
            .telnyx
            .create_credential(name, &self.connection_id, budget)
            .await?;
        tracing::info!(credential_id = %created.id, sip_username = %created.sip_username, "created a telephony credential for the user");
        let Ok(now_found) = self
            .telnyx
            .find_credentials(name, &self.connection_id, true, budget)
            .await
        else {
            return Ok(created);
        };
        match oldest(now_found) {
            Some(keeper) if keeper.id != created.id => {
                tracing::info!(kept = %keeper.id, "another instance created the user's credential at the same moment: keeping the older one");
                if let Err(error) = self.telnyx.delete_credential(&created.id, budget).await {
                    tracing::warn!(credential_id = %created.id, %error, "could not delete a duplicate telephony credential");
                }
                Ok(keeper)
            }
            _ => Ok(created),
        }
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

/// The name that finds a user's credential again: the Supabase user id (`sub`), namespaced.
fn credential_name(user_id: &str) -> String {
    format!("supabase:{user_id}")
}

/// The credential every instance agrees on: the earliest created, ties broken by id.
fn oldest(credentials: Vec<TelephonyCredential>) -> Option<TelephonyCredential> {
    credentials
        .into_iter()
        .min_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)))
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
            source.slot(&format!("user-{n}"));
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

    #[test]
    fn the_oldest_credential_wins_and_ties_go_to_the_lower_id() {
        let credential = |id: &str, created_at: &str| TelephonyCredential {
            id: id.into(),
            name: Some("supabase:u".into()),
            sip_username: format!("gencred{id}"),
            resource_id: Some("connection:1".into()),
            expired: false,
            created_at: Some(created_at.into()),
        };
        let kept = oldest(vec![
            credential("b", "2026-01-02T00:00:00"),
            credential("c", "2026-01-01T00:00:00"),
            credential("a", "2026-01-01T00:00:00"),
        ]);
        assert_eq!(kept.unwrap().id, "a");
        assert!(oldest(Vec::new()).is_none());
    }
}
