//! Session check answers in Redis, shared by every replica: a session one replica saw
//! confirmed costs the others no call to Supabase, and one it saw revoked is refused by all.
//! Key and values are in the schema of [`crate::shared`].

use std::sync::Arc;
use std::time::Duration;

use super::Answer;
use crate::shared::{Redis, Unavailable};

pub struct RedisAnswers {
    redis: Arc<Redis>,
}

impl RedisAnswers {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    /// The answer and how much longer it holds, in one round trip.
    pub async fn recall(&self, key: &str) -> Result<Option<(Answer, Duration)>, Unavailable> {
        let (value, ttl_ms): (Option<String>, i64) = self
            .redis
            .run(|mut connection| async move {
                redis::pipe()
                    .get(key)
                    .pttl(key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        let left = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        Ok(value
            .as_deref()
            .and_then(Answer::parse)
            .map(|answer| (answer, left)))
    }

    /// A confirmation is written only where no answer is (`NX`), so it never replaces a
    /// revocation another replica stored meanwhile; a revocation replaces whatever is there.
    pub async fn remember(
        &self,
        key: &str,
        answer: &Answer,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut set = redis::cmd("SET");
        set.arg(key).arg(answer.to_value()).arg("PX").arg(ttl_ms);
        if *answer == Answer::Confirmed {
            set.arg("NX");
        }
        self.redis
            .run(|mut connection| async move {
                set.query_async::<redis::Value>(&mut connection).await
            })
            .await
            .map(drop)
    }
}
