//! A rate limit in this replica's memory (GCRA, from `governor`), with memory that shrinks again
//! as clients go away.
//!
//! A key's state is one 64-bit timestamp, and a key that has earned back its whole burst is
//! indistinguishable from a new one, so [`MemoryLimiter::sweep`] drops those. The keys held at
//! any time are then those of clients seen within the last sweep interval plus the time a full
//! burst takes to earn back.

use std::hash::Hash;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use super::RateLimited;
use crate::config::RateLimit;

/// One rate limit applied separately to each key.
pub struct MemoryLimiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
}

impl<K: Hash + Eq + Clone> MemoryLimiter<K> {
    pub fn new(limit: &RateLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> MemoryLimiter<K, C> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ratelimit::tests::limit;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_key_gets_its_burst_then_waits_for_the_replenish_interval() {
        let clock = FakeRelativeClock::default();
        let limiter = MemoryLimiter::with_clock(&limit(20, 60, 10), clock.clone());
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
        let limiter = MemoryLimiter::with_clock(&limit(20, 60, 10), clock.clone());
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
}
