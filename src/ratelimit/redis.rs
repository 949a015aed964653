//! A rate limit in Redis, one count for every replica: the GCRA `governor` runs in memory,
//! as a Lua script on Redis's own clock, so a limit means what it meant on one replica.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::RateLimited;
use crate::config::RateLimit;
use crate::shared::{Redis, Unavailable, keys};

/// governor's `Gcra::test_and_update` (governor 0.10, src/gcra.rs) step for step, with its
/// clock replaced by Redis's `TIME`, so replicas whose clocks disagree still share one count.
/// Times are in µs: since the epoch they stay below 2^53, exact in Lua's doubles.
///
/// KEYS[1]: the key. ARGV[1]: t, the time that earns one request back. ARGV[2]: tau, the
/// tolerance, t × (burst − 1). Returns 0 when the request is allowed, else the µs until one
/// would be. The key expires once it is back to a newcomer's state, as `retain_recent` would
/// forget it.
const GCRA: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local earliest = tat - tau
if now < earliest then
  return earliest - now
end
local next = math.max(tat, now) + t
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000))
return 0
";

/// Loaded once per Redis with `SCRIPT LOAD`, then run by its hash (and loaded again after a
/// Redis restart, which forgets it).
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA));

pub struct RedisLimiter {
    redis: Arc<Redis>,
    /// `rate:user` or `rate:ip`.
    kind: &'static str,
    t_micros: u64,
    tau_micros: u64,
}

impl RedisLimiter {
    pub fn new(redis: Arc<Redis>, kind: &'static str, limit: &RateLimit) -> Self {
        let t = micros(limit.replenish_interval()).max(1);
        Self {
            redis,
            kind,
            t_micros: t,
            tau_micros: t * u64::from(limit.burst - 1),
        }
    }

    /// The verdict for the holder that `id` names, or `Unavailable` when Redis did not give one.
    pub async fn check(&self, id: &[u8]) -> Result<Result<(), RateLimited>, Unavailable> {
        let key = keys::key(self.kind, &[id]);
        let wait: u64 = self
            .redis
            .run(|mut connection| async move {
                let mut invocation = SCRIPT.key(&key);
                invocation.arg(self.t_micros).arg(self.tau_micros);
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(match wait {
            0 => Ok(()),
            micros => Err(RateLimited {
                retry_after: Duration::from_micros(micros),
            }),
        })
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).expect("an interval of at most an hour")
}
