//! When each device was last issued a credential, in Redis, shared by every replica: one hash
//! per user, one field per device. Key, fields and values are in the schema of
//! [`crate::shared`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shared::{Redis, Unavailable, keys};

pub struct RedisBook {
    redis: Arc<Redis>,
    /// The key's TTL, renewed by every write: a device not issued a credential for this long
    /// has lost it at Telnyx anyway (`TELNYX_CREDENTIAL_IDLE_DAYS`).
    ttl: Duration,
}

/// `twc:v1:devices:<hash of the user key>`.
fn key(user: &str) -> String {
    keys::key("devices", &[user.as_bytes()])
}

/// A device's field: a hash of its credential name, which holds the user id.
fn field(name: &str) -> String {
    keys::key("device", &[name.as_bytes()])
}

impl RedisBook {
    pub fn new(redis: Arc<Redis>, ttl: Duration) -> Self {
        Self { redis, ttl }
    }

    /// Writes the device's last issue, in ms since the epoch by this replica's clock, and
    /// renews the user's key.
    pub async fn issued(&self, user: &str, name: &str, at: SystemTime) -> Result<(), Unavailable> {
        let key = key(user);
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.hset(&key, field(name), millis(at))
            .ignore()
            .pexpire(&key, i64::try_from(ttl_ms).unwrap_or(i64::MAX))
            .ignore();
        self.redis
            .run(|mut connection| async move { pipe.query_async::<()>(&mut connection).await })
            .await
    }

    /// The last issue of each of `names`, where any replica recorded one, in one round trip.
    pub async fn last_issued(
        &self,
        user: &str,
        names: &[String],
    ) -> Result<Vec<Option<SystemTime>>, Unavailable> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = redis::cmd("HMGET");
        command.arg(key(user));
        for name in names {
            command.arg(field(name));
        }
        let values: Vec<Option<u64>> = self
            .redis
            .run(|mut connection| async move { command.query_async(&mut connection).await })
            .await?;
        Ok(values
            .into_iter()
            .map(|ms| ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)))
            .collect())
    }

    pub async fn forget(&self, user: &str, names: &[String]) -> Result<(), Unavailable> {
        if names.is_empty() {
            return Ok(());
        }
        let mut command = redis::cmd("HDEL");
        command.arg(key(user));
        for name in names {
            command.arg(field(name));
        }
        self.redis
            .run(|mut connection| async move {
                command.query_async::<redis::Value>(&mut connection).await
            })
            .await
            .map(drop)
    }

    pub async fn forget_user(&self, user: &str) -> Result<(), Unavailable> {
        let key = key(user);
        self.redis
            .run(|mut connection| async move {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<redis::Value>(&mut connection)
                    .await
            })
            .await
            .map(drop)
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}
