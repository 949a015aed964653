//! Rate limits per verified user and per client address (`RATE_LIMIT_PER_USER`,
//! `RATE_LIMIT_PER_IP`): GCRA, counted in this replica's memory, or with `REDIS_URL` in Redis,
//! one count for every replica.
//!
//! The rules are written here once: which limits apply, what a key is (the verified user's
//! `Holder::user_key`, their issuer and `sub`; an IPv4 address or an IPv6 /64), and what
//! happens when Redis does not answer. The backends,
//! [`memory`] (governor) and [`redis`] (the same algorithm as a Lua script), only keep the count.

pub mod memory;
pub mod redis;

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use self::memory::MemoryLimiter;
use self::redis::RedisLimiter;
use crate::config::{LimitsConfig, RateLimit};
use crate::shared::Redis;

/// How often keys that are back to a fresh state are dropped from memory.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A request over its limit, and how long until one more would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited; retry after {retry_after:?}")]
pub struct RateLimited {
    pub retry_after: Duration,
}

/// The service's rate limits, each off when not configured.
pub struct RateLimits {
    per_user: Option<Limit<String>>,
    per_client_address: Option<Limit<IpAddr>>,
}

/// One limit, applied to each key separately.
struct Limit<K: Hash + Eq + Clone> {
    /// This replica's own count: the whole limit without Redis, the fallback beside it.
    memory: MemoryLimiter<K>,
    shared: Option<RedisLimiter>,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    fn new(limit: &RateLimit, redis: Option<&Arc<Redis>>, kind: &'static str) -> Self {
        Self {
            memory: MemoryLimiter::new(limit),
            shared: redis.map(|redis| RedisLimiter::new(redis.clone(), kind, limit)),
        }
    }

    /// Redis decides while it answers. When it is down, slow, or skipped by the circuit
    /// breaker, this replica's own count decides: each replica then allows the whole limit
    /// on its own. The memory count goes on counting the requests Redis let through, so a
    /// fallback starts from this replica's share of the traffic, not from a fresh burst.
    async fn check(&self, key: &K, id: &[u8]) -> Result<(), RateLimited> {
        if let Some(shared) = &self.shared
            && let Ok(verdict) = shared.check(id).await
        {
            if verdict.is_ok() {
                let _ = self.memory.check(key);
            }
            return verdict;
        }
        self.memory.check(key)
    }
}

impl RateLimits {
    /// With `redis`, the limits are shared by every replica using the same Redis.
    pub fn new(config: &LimitsConfig, redis: Option<&Arc<Redis>>) -> Self {
        Self {
            per_user: config
                .per_user
                .as_ref()
                .map(|limit| Limit::new(limit, redis, "rate:user")),
            per_client_address: config
                .per_client_address
                .as_ref()
                .map(|limit| Limit::new(limit, redis, "rate:ip")),
        }
    }

    /// `RATE_LIMIT_PER_USER`, keyed by the verified user: `Holder::user_key`, so that the same
    /// `sub` from two issuers is counted apart.
    pub async fn check_user(&self, user_id: &str) -> Result<(), RateLimited> {
        match &self.per_user {
            // Allocating the key only on a miss would need governor's entry API; a user id is short.
            Some(limit) => limit.check(&user_id.to_owned(), user_id.as_bytes()).await,
            None => Ok(()),
        }
    }

    /// `RATE_LIMIT_PER_IP`. An unknown address (only in-process tests lack one) is not limited.
    pub async fn check_client_address(&self, address: Option<IpAddr>) -> Result<(), RateLimited> {
        match (&self.per_client_address, address) {
            (Some(limit), Some(address)) => {
                let network = network_of(address);
                limit.check(&network, network.to_string().as_bytes()).await
            }
            _ => Ok(()),
        }
    }

    pub fn sweep(&self) {
        if let Some(limit) = &self.per_user {
            limit.memory.sweep();
        }
        if let Some(limit) = &self.per_client_address {
            limit.memory.sweep();
        }
    }

    /// Runs until the task is aborted (at shutdown).
    pub async fn sweep_forever(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.sweep();
        }
    }
}

/// The unit one client controls: an IPv4 address, or an IPv6 /64 (one host usually has a whole
/// /64 to pick addresses from, so limiting single IPv6 addresses would limit nobody).
fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit of `requests` per `period_secs`, with `burst`; the backends' tests use it too.
    pub(super) fn limit(requests: u32, period_secs: u64, burst: u32) -> RateLimit {
        RateLimit {
            requests,
            period: Duration::from_secs(period_secs),
            burst,
        }
    }

    #[tokio::test]
    async fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(network_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());

        let limits = RateLimits::new(
            &LimitsConfig {
                per_user: None,
                per_client_address: Some(limit(1, 3600, 1)),
                trust_proxy_headers: false,
                max_concurrent_requests: 1,
                max_request_body_bytes: 0,
                max_request_header_bytes: 0,
            },
            None,
        );
        assert!(limits.check_client_address(Some(a)).await.is_ok());
        assert!(limits.check_client_address(Some(b)).await.is_err());
        assert!(limits.check_client_address(Some(other)).await.is_ok());
        assert!(
            limits.check_user("anyone").await.is_ok(),
            "per-user limit off"
        );
    }
}
