//! `CREDENTIAL_MODE=per_user`: one Telnyx telephony credential per holder (a user, or
//! one of their devices), found or created through the Telnyx API, handed to the browser as
//! short-lived login tokens. How many devices a user may have is [`super::devices`]' concern,
//! above this one.
//!
//! The rules, written once here, over this replica's memory ([`memory`]) and, with
//! `REDIS_URL`, the Redis every replica shares ([`redis`]):
//! - A holder's credential is named after them ([`Holder::credential_name`],
//!   `supabase:<sub>[:<device_id>]`), so that a restart or another replica finds it at Telnyx
//!   instead of creating another, and the portal shows whose each one is. With Redis, which one
//!   is theirs is also recorded there, the first record winning (`SET NX`): a replica whose
//!   create lost deletes its credential.
//! - Login tokens are cached until shortly before they expire, and concurrent requests for one
//!   holder share one sequence of Telnyx calls, the propagation wait included: on one replica
//!   through a lock, across replicas through a lease in Redis, held by one replica while the
//!   others wait for the token it stores there (sealed: [`crate::shared::sealed`]).
//! - A token is never handed out for a credential younger than
//!   `TELNYX_CREDENTIAL_PROPAGATION_SECS`, never outlives its credential, and a credential lives
//!   `TELNYX_CREDENTIAL_IDLE_DAYS` past its holder's last token ([`lifecycle`] holds those calls).
//! - Revocation: `DELETE /credentials` deletes the holder's credentials at Telnyx, then moves
//!   their user's generation on in Redis. Every cached token, in Redis and in each replica's
//!   memory, carries the generation it was stored under: Redis stores a token only while its
//!   generation is current (checked in the same script), a replica confirms a cached token's
//!   generation at most [`LOCAL_TRUST`] before handing it out (in the background while its user
//!   keeps asking, so the request does not wait), and the `DELETE` answers only
//!   [`LOCAL_TRUST`] after the generation moved. So once it has answered, no replica hands out
//!   a token of a deleted credential, and nothing rests on a message reaching every replica.
//! - When Redis does not answer, each replica falls back to its memory: its cached tokens, its
//!   own single flight, the oldest credential at Telnyx; a revocation is written to Redis once
//!   it answers again.

mod lifecycle;
mod memory;
mod redis;
mod token;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{
    Connectivity, CredentialError, Holder, SipIdentity, SipSecret, WebRTCCredential, epoch_millis,
};
use crate::config::{CredentialConfig, PerUserConfig};
use crate::metrics;
use crate::shared::{Redis, Unavailable};
use crate::telnyx::{Budget, TelnyxClient};
use lifecycle::{KnownCredential, Lifecycle, Registry, Unshared};
use memory::{HolderSlot, MemoryTokens, Upstream};
use redis::{Lease, Polled, RedisTokens, StoredToken};
use token::IssuedToken;

/// How long a replica hands out a cached token on the strength of Redis's last word that its
/// generation is current; a revocation waits this long before it answers. Short, so a `DELETE`
/// is still quick; long enough that a holder's requests cost Redis a few round trips a second
/// per replica, not one each.
const LOCAL_TRUST: Duration = Duration::from_millis(500);
/// A token confirmed longer ago than this is confirmed again in the background when it is
/// handed out; the rest of [`LOCAL_TRUST`] leaves the answer time to come back.
const CONFIRM_AHEAD: Duration = Duration::from_millis(375);
/// How often a replica waiting for another's token looks in Redis again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How many times one request starts again after a revocation dropped the token it minted.
const MAX_RESTARTS: u32 = 2;

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

/// The `cache` label of this replica's token lookups.
const LOGIN_TOKEN_CACHE: &str = "login_tokens";
/// The `cache` label of the lookups in Redis that this replica's misses make.
const SHARED_LOGIN_TOKEN_CACHE: &str = "shared_login_tokens";

pub struct PerUserCredentials {
    telnyx: TelnyxClient,
    connection_id: String,
    rules: Rules,
    refresh_margin: Duration,
    realm: String,
    connectivity: Arc<Connectivity>,
    memory: MemoryTokens,
    /// With `REDIS_URL`.
    shared: Option<RedisTokens>,
}

impl PerUserCredentials {
    pub(super) fn new(
        config: &CredentialConfig,
        per_user: &PerUserConfig,
        redis: Option<&Arc<Redis>>,
    ) -> Result<Self, String> {
        token::start_clock();
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
            memory: MemoryTokens::new(per_user.cache_capacity),
            shared: redis.map(|redis| {
                RedisTokens::new(
                    redis.clone(),
                    &per_user.api.api_key,
                    &per_user.connection_id,
                    per_user.idle,
                )
            }),
        })
    }

    /// A login token for the holder: the cached one while it is fresh (and, with Redis, of the
    /// current generation), else one from Redis or a new one from Telnyx. While Telnyx fails, a
    /// cached token that has not expired is still served.
    pub(super) async fn issue(&self, holder: &Holder) -> Result<WebRTCCredential, CredentialError> {
        let slot = self.memory.slot(holder);
        if let Some(token) = self.fresh(holder, &slot).await {
            metrics::cache_lookup(LOGIN_TOKEN_CACHE, true);
            return Ok(self.credential(&token));
        }
        let asked_at = Instant::now();
        let mut upstream = slot.upstream.lock().await;
        if let Some(token) = self.fresh(holder, &slot).await {
            metrics::cache_lookup(LOGIN_TOKEN_CACHE, true);
            return Ok(self.credential(&token)); // minted by the request we waited on
        }
        metrics::cache_lookup(LOGIN_TOKEN_CACHE, false);
        let outcome = match &upstream.failure {
            Some((failed_at, error)) if *failed_at >= asked_at => Err(error.clone()),
            _ => self.obtain(holder, &slot, &mut upstream).await,
        };
        match outcome {
            Ok(token) => {
                upstream.failure = None;
                slot.set(Some(token.clone()));
                Ok(self.credential(&token))
            }
            Err(error) => {
                upstream.failure = Some((Instant::now(), error.clone()));
                match slot.cached() {
                    Some(token) if token.expires_at > SystemTime::now() => {
                        tracing::warn!(%error, "serving a cached login token: a new one could not be minted");
                        Ok(self.credential(&token))
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// Deletes every telephony credential of the holder at Telnyx (every token minted for them
    /// stops working), forgets the cached token and, with Redis, ends the generation every
    /// replica's tokens of the user belong to. False when there was nothing to delete.
    pub(super) async fn revoke(&self, holder: &Holder) -> Result<bool, CredentialError> {
        let slot = self.memory.slot(holder);
        // Waits out an in-flight mint here, so that it cannot cache a token after the delete;
        // one on another replica cannot store its token after the generation moves on.
        let mut upstream = slot.upstream.lock().await;
        let budget = self.telnyx.budget();
        let name = holder.credential_name();
        let mut credentials = self.lifecycle().all(&name, &budget).await?;
        let mut known: Vec<_> = upstream
            .credential
            .take()
            .map(|known| known.record)
            .into_iter()
            .collect();
        if let Some(shared) = &self.shared
            && let Ok(Some(recorded)) = shared.recorded_credential(holder).await
        {
            known.push(recorded);
        }
        for record in known {
            if !credentials.iter().any(|found| found.id == record.id) {
                credentials.push(record);
            }
        }
        for credential in &credentials {
            if let Err(error) = self.telnyx.delete_credential(&credential.id, &budget).await {
                if let Some(shared) = &self.shared {
                    // Some may be deleted already: no replica is to serve their tokens.
                    shared.revoke(holder).await;
                }
                return Err(error.into());
            }
        }
        let shared = match &self.shared {
            Some(shared) if !credentials.is_empty() => shared.revoke(holder).await,
            _ => false,
        };
        slot.set(None);
        upstream.failure = None;
        drop(upstream);
        self.memory.forget(holder);
        if shared {
            // Past this, every replica asks Redis before it hands out a token cached before
            // the generation moved on, and drops it.
            tokio::time::sleep(LOCAL_TRUST).await;
        }
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

    /// The cached token, while it is before its refresh point and, with Redis, its generation
    /// is still current; one that is not is dropped.
    async fn fresh(&self, holder: &Holder, slot: &HolderSlot) -> Option<Arc<IssuedToken>> {
        let token = slot.fresh(SystemTime::now())?;
        if let Some(shared) = &self.shared
            && !still_current(shared, holder, &token).await
        {
            slot.forget(&token);
            return None;
        }
        Some(token)
    }

    /// A token from Redis or Telnyx, for a holder this replica has no fresh token for.
    async fn obtain(
        &self,
        holder: &Holder,
        slot: &HolderSlot,
        upstream: &mut Upstream,
    ) -> Result<Arc<IssuedToken>, CredentialError> {
        let budget = self.telnyx.budget();
        match &self.shared {
            Some(shared) => {
                self.obtain_shared(shared, holder, slot, upstream, &budget)
                    .await
            }
            None => self
                .mint(holder, &mut upstream.credential, &mut Unshared, &budget)
                .await
                .map(Arc::new),
        }
    }

    /// With Redis: the token another replica stored, or one minted here under the holder's
    /// lease and stored for every replica. While another replica holds the lease, this one
    /// waits for its token, within the request's budget; one that crashed loses its lease
    /// after [`redis::LEASE_TTL`], and a waiter takes over. Whenever Redis does not answer,
    /// this replica goes on alone, as without Redis.
    async fn obtain_shared(
        &self,
        shared: &RedisTokens,
        holder: &Holder,
        slot: &HolderSlot,
        upstream: &mut Upstream,
        budget: &Budget,
    ) -> Result<Arc<IssuedToken>, CredentialError> {
        let keys = shared.keys(holder);
        let owner = Lease::owner();
        let mut restarts = 0;
        loop {
            let asked = Instant::now();
            let Ok(Polled {
                generation,
                token,
                recorded,
                lease,
            }) = shared.poll(&keys, &owner).await
            else {
                let mut alone = Unshared;
                return self
                    .mint(holder, &mut upstream.credential, &mut alone, budget)
                    .await
                    .map(Arc::new);
            };
            if slot
                .cached()
                .is_some_and(|cached| cached.generation.as_deref() != Some(&*generation))
            {
                // Of an earlier generation, or minted while Redis did not answer: not even a
                // fallback any more.
                slot.set(None);
            }
            let token = token.map(|stored| Arc::new(self.stored(stored, &generation, asked)));
            let now = SystemTime::now();
            if let Some(token) = &token
                && (now < token.refresh_at || (lease.is_none() && now < token.expires_at))
            {
                // Fresh; or due for refresh by the replica that holds the lease, and valid.
                if let Some(lease) = lease {
                    lease.release().await;
                }
                metrics::cache_lookup(SHARED_LOGIN_TOKEN_CACHE, true);
                return Ok(token.clone());
            }
            let Some(lease) = lease else {
                if budget.remaining() <= POLL_INTERVAL {
                    return Err(CredentialError::TelnyxUnavailable {
                        cause: "another replica has been calling Telnyx for this user for as long as TELNYX_REQUEST_BUDGET_SECS".into(),
                        retry_after: Duration::from_secs(2),
                    });
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            };
            metrics::cache_lookup(SHARED_LOGIN_TOKEN_CACHE, false);
            if let Some(token) = token {
                slot.set(Some(token)); // expired soon, but served if the mint fails
            }
            let mut registry = shared.registry(&keys, &generation, recorded);
            let mut known = registry.recorded();
            let minted = self.mint(holder, &mut known, &mut registry, budget).await;
            upstream.credential.clone_from(&known);
            let token = match minted {
                Ok(token) => Arc::new(token.under(generation.clone())),
                Err(error) => {
                    lease.release().await;
                    return Err(error);
                }
            };
            if let Some(known) = &known {
                registry.record(known).await;
            }
            let storing = Instant::now();
            let stored = shared.store(&keys, &generation, &token).await;
            lease.release().await;
            match stored {
                Ok(true) => {
                    token.confirm(storing);
                    return Ok(token);
                }
                // Served, and kept here while Redis, once it answers, says its generation holds.
                Err(Unavailable) => return Ok(token),
                Ok(false) if restarts < MAX_RESTARTS => {
                    tracing::info!(
                        "the user's credentials were revoked while a login token was minted for them: dropping the token and starting again"
                    );
                    restarts += 1;
                    upstream.credential = None;
                }
                Ok(false) => {
                    return Err(CredentialError::TelnyxUnavailable {
                        cause: "the user's credentials were revoked again while each new login token was minted".into(),
                        retry_after: Duration::from_secs(1),
                    });
                }
            }
        }
    }

    /// A token another replica (or an earlier process) stored, confirmed at `asked`.
    fn stored(&self, stored: StoredToken, generation: &Arc<str>, asked: Instant) -> IssuedToken {
        let identity = SipIdentity::new(
            stored.sip_username,
            SipSecret::LoginToken(stored.login_token),
            &self.realm,
        );
        let token = IssuedToken::new(
            identity,
            stored.minted_at,
            stored.expires_at,
            self.refresh_margin,
        )
        .under(generation.clone());
        token.confirm(asked);
        token
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

    /// Mints a login token for the holder's credential (see [`Lifecycle::token`]).
    async fn mint(
        &self,
        holder: &Holder,
        known: &mut Option<KnownCredential>,
        registry: &mut impl Registry,
        budget: &Budget,
    ) -> Result<IssuedToken, CredentialError> {
        let (credential, token) = self
            .lifecycle()
            .token(holder, known, registry, budget)
            .await?;
        tracing::debug!(credential_id = %credential.id, "minted a login token");
        let identity = SipIdentity::new(
            credential.sip_username,
            SipSecret::LoginToken(token.token),
            &self.realm,
        );
        Ok(IssuedToken::new(
            identity,
            SystemTime::now(),
            token.expires_at,
            self.refresh_margin,
        ))
    }
}

/// Whether a cached token may be handed out: Redis said its generation is current less than
/// [`LOCAL_TRUST`] ago, or says so now; or Redis does not answer, and this replica's memory
/// decides, as without Redis. Past [`CONFIRM_AHEAD`] a token is confirmed again in the
/// background, so a user who keeps asking never waits on Redis.
async fn still_current(shared: &RedisTokens, holder: &Holder, token: &Arc<IssuedToken>) -> bool {
    let asked = Instant::now();
    if let Some(generation) = &token.generation {
        let trusted = |trust| {
            asked
                .checked_sub(trust)
                .is_some_and(|since| token.confirmed_after(since))
        };
        if trusted(LOCAL_TRUST) {
            if !trusted(CONFIRM_AHEAD) && token.start_confirming() {
                let (asking, token, generation) = (
                    shared.generation_of(holder),
                    token.clone(),
                    generation.clone(),
                );
                tokio::spawn(async move {
                    if asking
                        .await
                        .is_ok_and(|current| current.as_deref() == Some(&*generation))
                    {
                        token.confirm(asked);
                    }
                    token.done_confirming();
                });
            }
            return true;
        }
    }
    match shared.generation_of(holder).await {
        Ok(current) => {
            let same =
                token.generation.is_some() && current.as_deref() == token.generation.as_deref();
            if same {
                token.confirm(asked);
            }
            same
        }
        Err(Unavailable) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let source = PerUserCredentials::new(&config.credentials, per_user, None).unwrap();
        for n in 0..1_000 {
            source
                .memory
                .slot(&Holder::supabase_user(&format!("user-{n}")));
        }
        let cached = source.memory.len();
        assert!(cached <= 50, "{cached} users cached");
        assert!(cached >= 25, "{cached} users cached");
    }
}
