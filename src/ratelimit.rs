//! Rate limits per verified user and per client address (GCRA, from `governor`), with memory
//! that shrinks again as clients go away.
//!
//! A key's state is one 64-bit timestamp, and a key that has earned back its whole burst is
//! indistinguishable from a new one, so [`RateLimits::sweep_forever`] drops those. The keys held
//! at any time are then those of clients seen within the last sweep interval plus the time a
//! full burst takes to earn back.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{LimitsConfig, RateLimit};

/// How often keys that are back to a fresh state are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A request over its limit, and how long until one more would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited; retry after {retry_after:?}")]
pub struct RateLimited {
    pub retry_after: Duration,
}

/// One rate limit applied separately to each key.
pub struct KeyedRateLimiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    pub fn new(limit: &RateLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedRateLimiter<K, C> {
    /// With a clock of the caller's choosing; tests pass governor's `FakeRelativeClock`.
    pub fn with_clock(limit: &RateLimit, clock: C) -> Self {
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota(limit), clock),
        }
    }

    pub fn check(&self, key: &K) -> Result<(), RateLimited> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| RateLimited {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            })
    }

    /// Forgets the keys whose state is back to that of a newcomer.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many keys are held now.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

fn quota(limit: &RateLimit) -> Quota {
    let burst = NonZeroU32::new(limit.burst).expect("the burst is validated positive");
    Quota::with_period(limit.replenish_interval())
        .expect("the rate is validated, so the interval is positive")
        .allow_burst(burst)
}

/// The service's rate limits, each off when not configured.
pub struct RateLimits {
    per_user: Option<KeyedRateLimiter<String>>,
    per_client_address: Option<KeyedRateLimiter<IpAddr>>,
}

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            per_user: config.per_user.as_ref().map(KeyedRateLimiter::new),
            per_client_address: config
                .per_client_address
                .as_ref()
                .map(KeyedRateLimiter::new),
        }
    }

    /// `RATE_LIMIT_PER_USER`, keyed by the verified `sub`.
    pub fn check_user(&self, user_id: &str) -> Result<(), RateLimited> {
        match &self.per_user {
            // Allocating the key only on a miss would need governor's entry API; a user id is short.
            Some(limiter) => limiter.check(&user_id.to_owned()),
            None => Ok(()),
        }
    }

    /// `RATE_LIMIT_PER_IP`. An unknown address (only in-process tests lack one) is not limited.
    pub fn check_client_address(&self, address: Option<IpAddr>) -> Result<(), RateLimited> {
        match (&self.per_client_address, address) {
            (Some(limiter), Some(address)) => limiter.check(&network_of(address)),
            _ => Ok(()),
        }
    }

    pub fn sweep(&self) {
        if let Some(limiter) = &self.per_user {
            limiter.sweep();
        }
        if let Some(limiter) = &self.per_client_address {
            limiter.sweep();
        }
    }

    /// Runs until the task is aborted (at shutdown).
    pub async fn sweep_forever(self: std::sync::Arc<Self>) {
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
    use governor::clock::FakeRelativeClock;

    fn limit(requests: u32, period_secs: u64, burst: u32) -> RateLimit {
        RateLimit {
            requests,
            period: Duration::from_secs(period_secs),
            burst,
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_for_the_replenish_interval() {
        let clock = FakeRelativeClock::default();
        let limiter = KeyedRateLimiter::with_clock(&limit(20, 60, 10), clock.clone());
        let ada = "ada".to_owned();
        for request in 1..=10 {
            assert_eq!(limiter.check(&ada), Ok(()), "request {request}");
        }
        let refused = limiter.check(&ada).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(3));
        assert!(
            limiter.check(&"grace".to_owned()).is_ok(),
            "keys are separate"
        );

        clock.advance(Duration::from_millis(2_999));
        assert!(limiter.check(&ada).is_err(), "still one millisecond to go");
        clock.advance(Duration::from_millis(1));
        assert_eq!(limiter.check(&ada), Ok(()), "one request earned back");
        assert!(limiter.check(&ada).is_err());

        clock.advance(Duration::from_secs(30));
        for request in 1..=10 {
            assert_eq!(limiter.check(&ada), Ok(()), "full burst again: {request}");
        }
    }

    #[test]
    fn sweeping_forgets_clients_that_have_gone_and_keeps_the_active_ones() {
        let clock = FakeRelativeClock::default();
        let limiter = KeyedRateLimiter::with_clock(&limit(20, 60, 10), clock.clone());
        for user in 0..10_000 {
            limiter.check(&format!("user-{user}")).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 10_000);
        clock.advance(Duration::from_secs(60));
        let regular = "regular".to_owned();
        for _ in 0..10 {
            limiter.check(&regular).unwrap();
        }
        limiter.sweep();
        assert_eq!(
            limiter.tracked_keys(),
            1,
            "only the client still in its window"
        );
        assert!(
            limiter.check(&regular).is_err(),
            "its state survived the sweep"
        );

        clock.advance(Duration::from_secs(60));
        limiter.sweep();
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(network_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());

        let limits = RateLimits::new(&LimitsConfig {
            per_user: None,
            per_client_address: Some(limit(1, 3600, 1)),
            trust_proxy_headers: false,
            max_concurrent_requests: 1,
            max_request_body_bytes: 0,
            max_request_header_bytes: 0,
        });
        assert!(limits.check_client_address(Some(a)).is_ok());
        assert!(limits.check_client_address(Some(b)).is_err());
        assert!(limits.check_client_address(Some(other)).is_ok());
        assert!(limits.check_user("anyone").is_ok(), "per-user limit off");
    }
}
