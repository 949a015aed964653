//! The right to call Telnyx for one holder, held by one replica at a time: taken with
//! `SET NX PX` (in [`super`]'s poll), renewed while its holder lives, released by
//! compare-and-delete, and gone by itself [`LEASE_TTL`] after a holder that crashed.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::millis;
use crate::shared::{Redis, Unavailable};

/// How long a lease lasts unless its holder renews it: how long the replicas wait for one that
/// crashed before another takes over. Far below `TELNYX_REQUEST_BUDGET_SECS`, so a waiter takes
/// over within its own request.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// A live holder renews its lease this often: two renewals may fail before it lapses.
const LEASE_RENEWAL: Duration = Duration::from_secs(1);

/// KEYS: lease. ARGV: owner. Deletes the lease only if it is still the owner's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS: lease. ARGV: owner, TTL ms. Extends the lease only if it is still the owner's.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// Each loaded once per Redis with `SCRIPT LOAD`, then run by its hash.
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW));

/// A lease one request holds: the others wait for the token it stores.
pub(in crate::credentials::per_user) struct Lease {
    redis: Arc<Redis>,
    key: String,
    owner: String,
    renewer: tokio::task::JoinHandle<()>,
    held: bool,
}

impl Lease {
    /// A new owner id: one per request that may take a lease.
    pub fn owner() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    pub(super) fn taken(redis: &Arc<Redis>, key: &str, owner: &str) -> Self {
        let renewer = {
            let (redis, key, owner) = (redis.clone(), key.to_owned(), owner.to_owned());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_RENEWAL).await;
                    let (key, owner) = (&key, &owner);
                    let renewed: Result<i64, _> = redis
                        .run(|mut connection| async move {
                            RENEW_SCRIPT
                                .key(key)
                                .arg(owner)
                                .arg(millis(LEASE_TTL))
                                .invoke_async(&mut connection)
                                .await
                        })
                        .await;
                    if renewed == Ok(0) {
                        tracing::debug!(
                            "the lease on a holder's Telnyx calls lapsed: another replica may call Telnyx for them too"
                        );
                        return;
                    }
                }
            })
        };
        Self {
            redis: redis.clone(),
            key: key.to_owned(),
            owner: owner.to_owned(),
            renewer,
            held: true,
        }
    }

    pub async fn release(mut self) {
        self.held = false;
        self.renewer.abort();
        let _ = release(&self.redis, &self.key, &self.owner).await;
    }
}

impl Drop for Lease {
    /// A request dropped while it held the lease (its client went away) hands it on at once.
    fn drop(&mut self) {
        self.renewer.abort();
        // Not while the runtime itself shuts down: the lease then lapses by itself.
        if self.held
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (redis, key, owner) = (
                self.redis.clone(),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.owner),
            );
            runtime.spawn(async move {
                let _ = release(&redis, &key, &owner).await;
            });
        }
    }
}

async fn release(redis: &Redis, key: &str, owner: &str) -> Result<i64, Unavailable> {
    redis
        .run(|mut connection| async move {
            RELEASE_SCRIPT
                .key(key)
                .arg(owner)
                .invoke_async(&mut connection)
                .await
        })
        .await
}
