//! A user's devices in per_user mode: each device (a browser profile that sends its own
//! `device_id`) holds a telephony credential of its own, so each registers on its own and an
//! inbound call can ring every one of them. This layer sits over [`PerUserCredentials`], which
//! handles one [`Holder`]'s credential (lifetimes, the propagation wait, single flight, the
//! token cache, revocation) whether it is a user's default one or a device's.
//!
//! The rules, written once here:
//! - Every credential of a user carries the user's tag ([`Holder::tag`]), so one listing by tag
//!   finds all of them. A default credential made before tags is found by its name.
//! - A user holds at most `MAX_DEVICES_PER_USER` devices; the default credential is none of
//!   them, so a frontend that sends no `device_id` costs what it always did. Once a device new
//!   to this replica has its credential (so a Telnyx that fails is met, and its failure shared,
//!   by the per-holder single flight alone), the user's credentials are listed by their tag;
//!   past the cap, the other devices least recently issued a credential are deleted
//!   (through the per-holder revoke, so their cached tokens go too), each with an audit line.
//!   The new device is served either way: a listing or delete that fails is logged, and the
//!   user stays over the cap until their next new device. On one replica these checks take
//!   turns per user; two replicas checking two new devices of one user at the same moment can
//!   leave the user one over the cap until the next.
//! - `DELETE` with a device signs out that device; without, every device of the user.
//! - When each device was last issued a credential is kept in the [`book`].

mod book;
mod memory;
mod redis;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use quick_cache::sync::Cache;
use serde::Serialize;
use utoipa::ToSchema;

use super::per_user::PerUserCredentials;
use super::{CredentialError, DeviceId, Holder, WebRTCCredential, epoch_millis};
use crate::config::{CredentialConfig, PerUserConfig};
use crate::metrics;
use crate::shared::Redis;
use crate::telnyx::{Budget, TelephonyCredential};
use book::Book;

/// One credential of the user, as `GET /devices` lists it. Never a token or password. Every
/// field is always there (`null` where it says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Device {
    /// The browser's `device_id`; `null` for the default credential (requests without one).
    #[schema(required = true, examples("4c8e6a1e-0b7c-4a55-9d7e-3f1f2a9c0d11"))]
    pub device_id: Option<String>,
    /// The credential's SIP username: an inbound call reaches this device at
    /// `sip:<sip_username>@sip.telnyx.com`.
    pub sip_username: String,
    /// When the credential was created at Telnyx, in milliseconds since the Unix epoch (0 when
    /// Telnyx did not say).
    pub created_at: u64,
    /// When the credential expires unless the device asks again, in milliseconds since the Unix
    /// epoch; `null` for one without an expiry.
    #[schema(required = true)]
    pub expires_at: Option<u64>,
    /// When the device was last issued a credential, in milliseconds since the Unix epoch,
    /// where known (to the minute across replicas); `null` when no replica has a record of it.
    #[schema(required = true)]
    pub last_issued_at: Option<u64>,
}

pub struct Devices {
    credentials: PerUserCredentials,
    book: Book,
    /// `MAX_DEVICES_PER_USER`.
    max: usize,
    /// One turn at a time per user for making room for a new device (by user key).
    turns: Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

/// One of the user's credentials at Telnyx and whose it is.
struct Listed {
    holder: Holder,
    record: TelephonyCredential,
}

impl Devices {
    pub(super) fn new(
        config: &CredentialConfig,
        per_user: &PerUserConfig,
        redis: Option<Arc<Redis>>,
    ) -> Result<Self, String> {
        Ok(Self {
            credentials: PerUserCredentials::new(config, per_user, redis.as_ref())?,
            book: Book::new(
                per_user.cache_capacity,
                per_user.max_devices * 2,
                per_user.idle,
                redis,
            ),
            max: per_user.max_devices,
            turns: Cache::new(per_user.cache_capacity),
        })
    }

    /// The holder's credential; for a device new to this replica, then room for it among the
    /// user's others.
    pub(super) async fn issue(&self, holder: &Holder) -> Result<WebRTCCredential, CredentialError> {
        let started = Instant::now();
        let new_here = holder.device().is_some() && !self.book.knows(holder);
        let credential = self.credentials.issue(holder).await?;
        if new_here {
            self.make_room(holder, started).await;
        }
        self.book.issued(holder, SystemTime::now()).await;
        Ok(credential)
    }

    /// Signs out the holder's device, or, for the user's default holder, every device of the
    /// user, the default one included. False when there was nothing to delete.
    pub(super) async fn revoke(&self, holder: &Holder) -> Result<bool, CredentialError> {
        if holder.device().is_some() {
            let deleted = self.credentials.revoke(holder).await?;
            self.book
                .forget(&holder.user(), std::slice::from_ref(holder))
                .await;
            return Ok(deleted);
        }
        let user = holder.user();
        let (telnyx, _) = self.credentials.telnyx();
        let budget = telnyx.budget();
        let mut holders = vec![user.clone()];
        let tagged = self.tagged(&user, &budget).await?;
        let known = self.book.known_devices(&user);
        for other in tagged.into_iter().map(|listed| listed.holder).chain(known) {
            if !holders.contains(&other) {
                holders.push(other);
            }
        }
        let mut deleted = false;
        // The default holder's own revoke finds a default credential made before tags by name.
        for holder in &holders {
            deleted |= self.credentials.revoke(holder).await?;
        }
        self.book.forget_user(&user).await;
        Ok(deleted)
    }

    /// The user's live credentials, oldest first, one per device.
    pub async fn list(&self, user: &Holder) -> Result<Vec<Device>, CredentialError> {
        let user = user.user();
        let (telnyx, _) = self.credentials.telnyx();
        let budget = telnyx.budget();
        let live = live_per_holder(self.listed(&user, &budget).await?, SystemTime::now());
        let holders: Vec<Holder> = live.iter().map(|listed| listed.holder.clone()).collect();
        let last_issued = self.book.last_issued(&user, &holders).await;
        Ok(live
            .into_iter()
            .zip(last_issued)
            .map(|(listed, last_issued)| Device {
                device_id: listed
                    .holder
                    .device()
                    .map(|device| device.as_str().to_owned()),
                sip_username: listed.record.sip_username,
                created_at: listed.record.created_at.map_or(0, epoch_millis),
                expires_at: listed.record.expires_at.map(epoch_millis),
                last_issued_at: last_issued.map(epoch_millis),
            })
            .collect())
    }

    /// Keeps the user within the cap now that the device `holder`, new to this replica, has its
    /// credential: lists the user's credentials by their tag (a default one made before tags
    /// is no device, and need not be found) and evicts the least recently issued of the other
    /// devices past `MAX_DEVICES_PER_USER`. Within what is left of the request's
    /// `TELNYX_REQUEST_BUDGET_SECS` since `started`; never an error for the user.
    async fn make_room(&self, holder: &Holder, started: Instant) {
        let turn = self.turn(holder.user_key());
        let _turn = turn.lock().await;
        if self.book.knows(holder) {
            return; // done by the request this one waited on
        }
        let now = SystemTime::now();
        // Known from here on, so a failure below is not retried at every request.
        self.book.admitted(holder, now);
        let user = holder.user();
        let (telnyx, _) = self.credentials.telnyx();
        let budget = telnyx.budget_of(
            telnyx
                .budget()
                .remaining()
                .saturating_sub(started.elapsed()),
        );
        let listed = match self.tagged(&user, &budget).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, max_devices = self.max, "could not list the user's credentials to keep them within MAX_DEVICES_PER_USER: the user's next new device tries again");
                return;
            }
        };
        let others: Vec<Listed> = live_per_holder(listed, now)
            .into_iter()
            .filter(|listed| listed.holder.device().is_some() && listed.holder != *holder)
            .collect();
        let excess = (others.len() + 1).saturating_sub(self.max);
        if excess == 0 {
            return;
        }
        let holders: Vec<Holder> = others.iter().map(|listed| listed.holder.clone()).collect();
        let last_issued = self.book.last_issued(&user, &holders).await;
        let mut ranked: Vec<(SystemTime, Listed)> = last_issued
            .into_iter()
            .zip(others)
            .map(|(last_issued, listed)| (recency(last_issued, &listed.record), listed))
            .collect();
        ranked.sort_by(|(a, x), (b, y)| (a, &x.record.id).cmp(&(b, &y.record.id)));
        for (_, victim) in ranked.into_iter().take(excess) {
            self.evict(&user, victim).await;
        }
    }

    /// Deletes a device's credential at Telnyx through its own revoke (its cached token goes
    /// with it). A failure is logged and leaves the user over the cap until their next new
    /// device: the new one is served all the same.
    async fn evict(&self, user: &Holder, victim: Listed) {
        let device_id = victim.holder.device().map(DeviceId::as_str);
        match self.credentials.revoke(&victim.holder).await {
            Ok(_) => {
                metrics::device_evicted();
                tracing::info!(
                    audit = "device_evicted",
                    device_id,
                    sip_username = victim.record.sip_username.as_str(),
                    max_devices = self.max,
                    "signed out the user's least recently used device: a new one came past MAX_DEVICES_PER_USER"
                );
            }
            Err(error) => {
                tracing::warn!(device_id, %error, "could not sign out the user's least recently used device: the user stays over MAX_DEVICES_PER_USER until their next new device");
            }
        }
        self.book
            .forget(user, std::slice::from_ref(&victim.holder))
            .await;
    }

    /// Every credential of the user at Telnyx: those with the user's tag, and a default one made
    /// before tags, found by its name.
    async fn listed(&self, user: &Holder, budget: &Budget) -> Result<Vec<Listed>, CredentialError> {
        let mut listed = self.tagged(user, budget).await?;
        if !listed.iter().any(|listed| listed.holder == *user) {
            let (telnyx, connection_id) = self.credentials.telnyx();
            let untagged = telnyx
                .list_credentials(Some(&user.credential_name()), connection_id, budget)
                .await?;
            for record in untagged {
                if !listed.iter().any(|listed| listed.record.id == record.id) {
                    listed.push(Listed {
                        holder: user.clone(),
                        record,
                    });
                }
            }
        }
        Ok(listed)
    }

    /// The credentials with the user's tag whose names say they are the user's (the spec's
    /// credential record has no `tag` to check).
    async fn tagged(&self, user: &Holder, budget: &Budget) -> Result<Vec<Listed>, CredentialError> {
        let (telnyx, connection_id) = self.credentials.telnyx();
        let records = telnyx
            .list_tagged(&user.tag(), connection_id, budget)
            .await?;
        Ok(records
            .into_iter()
            .filter_map(|record| {
                let holder = user.sibling_named(record.name.as_deref()?)?;
                Some(Listed { holder, record })
            })
            .collect())
    }

    fn turn(&self, user: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self
            .turns
            .get_or_insert_with(user, || Ok::<_, Infallible>(Arc::default()))
        {
            Ok(turn) => turn,
        }
    }
}

/// Live credentials only (an expired one registers nothing and is deleted at its holder's next
/// request), one per holder (the oldest, as [`PerUserCredentials`] keeps), oldest first.
fn live_per_holder(listed: Vec<Listed>, now: SystemTime) -> Vec<Listed> {
    let mut live: Vec<Listed> = listed
        .into_iter()
        .filter(|listed| !listed.record.is_expired(now))
        .collect();
    live.sort_by(|a, b| {
        (&a.record.created_at, &a.record.id).cmp(&(&b.record.created_at, &b.record.id))
    });
    let mut kept: Vec<Listed> = Vec::with_capacity(live.len());
    for listed in live {
        if !kept.iter().any(|kept| kept.holder == listed.holder) {
            kept.push(listed);
        }
    }
    kept
}

/// How recently a device was used, for eviction: its last issue where a replica recorded one,
/// else what Telnyx knows (`updated_at`, moved by each extension, else `created_at`).
fn recency(last_issued: Option<SystemTime>, record: &TelephonyCredential) -> SystemTime {
    last_issued
        .or(record.updated_at)
        .or(record.created_at)
        .unwrap_or(UNIX_EPOCH)
}
