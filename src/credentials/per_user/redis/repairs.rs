//! Revocations that Redis missed while it did not answer, written once it does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{HolderKeys, bump};
use crate::shared::{Redis, breaker};

/// Revocations Redis missed while it did not answer, sent once it does: every
/// [`breaker::COOL_DOWN`], by one task that ends when none is left. Held in memory only: a
/// replica that stops before Redis is back loses them (see docs/deploy.md, "Scaling out").
pub(super) struct Repairs {
    redis: Arc<Redis>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// By token key: one holder once, however often revoked meanwhile.
    revocations: HashMap<String, HolderKeys>,
    draining: bool,
}

impl Repairs {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self {
            redis,
            pending: Mutex::default(),
        }
    }

    pub fn queue(self: &Arc<Self>, keys: HolderKeys) {
        let mut pending = self.lock();
        pending.revocations.insert(keys.token.clone(), keys);
        if !pending.draining {
            pending.draining = true;
            tokio::spawn(self.clone().drain());
        }
    }

    async fn drain(self: Arc<Self>) {
        loop {
            tokio::time::sleep(breaker::COOL_DOWN).await;
            let waiting: Vec<HolderKeys> = self.lock().revocations.values().cloned().collect();
            let mut repaired = 0;
            for keys in waiting {
                if bump(&self.redis, &keys).await.is_err() {
                    break;
                }
                self.lock().revocations.remove(&keys.token);
                repaired += 1;
            }
            if repaired > 0 {
                tracing::info!(
                    repaired,
                    "wrote to Redis the revocations it missed while it was unavailable"
                );
            }
            let mut pending = self.lock();
            if pending.revocations.is_empty() {
                pending.draining = false;
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
