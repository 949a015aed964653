//! The device book: when each of a user's devices was last issued a credential, the order in
//! which [`super::Devices`] evicts them and the `last_issued_at` of `GET /devices`.
//!
//! The rules, written once over the two stores: this replica's [`MemoryBook`] records every
//! issue and answers the request path (is this device known here?) without a round trip; with
//! `REDIS_URL`, [`RedisBook`] shares the record with every replica, written at a device's first
//! issue on a replica and then at most once per [`SHARE_EVERY`], so a cached token costs no
//! Redis command on most requests, and the shared order is good to that much.
//!
//! When Redis does not answer, each replica reads its own memory: a device issued only on
//! another replica then has no `last_issued_at` here, and eviction orders such devices by what
//! Telnyx knows (`updated_at`, moved at each extension of the credential, else `created_at`),
//! which can evict a device used an hour ago before one used yesterday. What was not written
//! meanwhile is written at the device's next issue once [`SHARE_EVERY`] has passed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::memory::MemoryBook;
use super::redis::RedisBook;
use crate::credentials::Holder;
use crate::shared::Redis;

/// How stale the shared record may be: at most one write per device per this, per replica.
pub const SHARE_EVERY: Duration = Duration::from_secs(60);

pub struct Book {
    memory: MemoryBook,
    shared: Option<RedisBook>,
}

impl Book {
    /// `users`: how many users this replica remembers; `per_user`: devices per user; `ttl`: how
    /// long the shared record of a user outlives their last issue.
    pub fn new(users: usize, per_user: usize, ttl: Duration, redis: Option<Arc<Redis>>) -> Self {
        Self {
            memory: MemoryBook::new(users, per_user),
            shared: redis.map(|redis| RedisBook::new(redis, ttl)),
        }
    }

    /// Whether this replica has issued the holder's credential (or made room for it), so that
    /// its next request needs no look at the user's other devices.
    pub fn knows(&self, holder: &Holder) -> bool {
        self.memory
            .knows(holder.user_key(), &holder.credential_name())
    }

    /// The holder, new here, was made room for at `at`: known here from now on, and shared at
    /// its next issue.
    pub fn admitted(&self, holder: &Holder, at: SystemTime) {
        self.memory
            .issued(holder.user_key(), &holder.credential_name(), at, None);
    }

    /// The holder's credential was issued at `at`.
    pub async fn issued(&self, holder: &Holder, at: SystemTime) {
        let name = holder.credential_name();
        let due = self
            .memory
            .issued(holder.user_key(), &name, at, Some(SHARE_EVERY));
        if let (true, Some(shared)) = (due, &self.shared) {
            // Unavailable: written at the next issue after SHARE_EVERY.
            let _ = shared.issued(holder.user_key(), &name, at).await;
        }
    }

    /// When each of `holders` (all of one user) was last issued a credential, where known: the
    /// later of this replica's record and the shared one.
    pub async fn last_issued(&self, user: &Holder, holders: &[Holder]) -> Vec<Option<SystemTime>> {
        let names: Vec<String> = holders.iter().map(Holder::credential_name).collect();
        let local = self.memory.last_issued(user.user_key(), &names);
        let shared = match &self.shared {
            Some(shared) => shared
                .last_issued(user.user_key(), &names)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        local
            .into_iter()
            .enumerate()
            .map(|(n, local)| local.max(shared.get(n).copied().flatten()))
            .collect()
    }

    /// The user's devices this replica has a record of.
    pub fn known_devices(&self, user: &Holder) -> Vec<Holder> {
        self.memory
            .names(user.user_key())
            .iter()
            .filter_map(|name| user.sibling_named(name))
            .collect()
    }

    /// Forgets `holders` (all of one user), here and in Redis.
    pub async fn forget(&self, user: &Holder, holders: &[Holder]) {
        let names: Vec<String> = holders.iter().map(Holder::credential_name).collect();
        self.memory.forget(user.user_key(), &names);
        if let Some(shared) = &self.shared {
            let _ = shared.forget(user.user_key(), &names).await;
        }
    }

    /// Forgets every device of the user, here and in Redis.
    pub async fn forget_user(&self, user: &Holder) {
        self.memory.forget_user(user.user_key());
        if let Some(shared) = &self.shared {
            let _ = shared.forget_user(user.user_key()).await;
        }
    }
}
