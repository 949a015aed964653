//! Session check answers in this replica's memory: the only store without `REDIS_URL`, and the
//! fallback beside Redis.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use super::Answer;

/// Sessions whose answer is remembered at once; past it the least used are forgotten (and
/// simply asked about again).
const MAX_CACHED_SESSIONS: usize = 100_000;

pub struct MemoryAnswers {
    /// Session key → the answer and until when it holds.
    answers: Cache<String, (Answer, Instant)>,
}

impl MemoryAnswers {
    pub fn new() -> Self {
        Self {
            answers: Cache::new(MAX_CACHED_SESSIONS),
        }
    }

    /// The answer, and how much longer it holds.
    pub fn recall(&self, key: &str) -> Option<(Answer, Duration)> {
        let (answer, until) = self.answers.get(key)?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some((answer, left))
    }

    /// A confirmation never replaces a revocation that still holds: a check that started
    /// before the sign-out and finished after it must not undo it.
    pub fn remember(&self, key: &str, answer: Answer, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if answer == Answer::Confirmed
            && let Some((Answer::Revoked(_), _)) = self.recall(key)
        {
            return;
        }
        self.answers
            .insert(key.to_owned(), (answer, Instant::now() + ttl));
    }

    /// How many sessions have a remembered answer (some perhaps expired, not yet evicted).
    pub fn len(&self) -> usize {
        self.answers.len()
    }
}
