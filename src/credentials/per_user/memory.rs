//! This replica's login tokens and its one sequence of Telnyx calls per holder: the whole store
//! without `REDIS_URL`; with it, the local cache and the local single flight in front of Redis,
//! and what this replica falls back to while Redis does not answer.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use quick_cache::sync::Cache;

use super::IssuedToken;
use super::lifecycle::KnownCredential;
use crate::credentials::{CredentialError, Holder};

/// The holders whose tokens this replica keeps, at most `TOKEN_CACHE_MAX_USERS` of them.
pub(super) struct MemoryTokens {
    holders: Cache<Holder, Arc<HolderSlot>>,
}

/// One holder's cached token, and the lock that makes their Telnyx calls one sequence.
#[derive(Default)]
pub(super) struct HolderSlot {
    /// Read without waiting on the lock: the cached path never queues behind Telnyx.
    current: RwLock<Option<Arc<IssuedToken>>>,
    pub upstream: tokio::sync::Mutex<Upstream>,
}

/// What the last sequence of Telnyx calls for a holder learned.
#[derive(Default)]
pub(super) struct Upstream {
    /// The holder's credential, once found or created: a later refresh only mints a token.
    pub credential: Option<KnownCredential>,
    /// When the last sequence failed, and how: requests that waited on it share its answer
    /// instead of starting another sequence against a Telnyx that just failed.
    pub failure: Option<(Instant, CredentialError)>,
}

impl MemoryTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            holders: Cache::new(capacity),
        }
    }

    pub fn slot(&self, holder: &Holder) -> Arc<HolderSlot> {
        let slot = self
            .holders
            .get_or_insert_with(holder, || Ok::<_, Infallible>(Arc::default()));
        match slot {
            Ok(slot) => slot,
        }
    }

    pub fn forget(&self, holder: &Holder) {
        self.holders.remove(holder);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.holders.len()
    }
}

impl HolderSlot {
    /// The cached token, while it is before its refresh point.
    pub fn fresh(&self, now: SystemTime) -> Option<Arc<IssuedToken>> {
        let current = self.current.read().expect("token lock poisoned");
        current
            .as_ref()
            .filter(|token| now < token.refresh_at)
            .cloned()
    }

    /// The cached token, fresh or not.
    pub fn cached(&self) -> Option<Arc<IssuedToken>> {
        self.current.read().expect("token lock poisoned").clone()
    }

    pub fn set(&self, token: Option<Arc<IssuedToken>>) {
        *self.current.write().expect("token lock poisoned") = token;
    }

    /// Drops `token` unless another has replaced it meanwhile.
    pub fn forget(&self, token: &Arc<IssuedToken>) {
        let mut current = self.current.write().expect("token lock poisoned");
        if current
            .as_ref()
            .is_some_and(|cached| Arc::ptr_eq(cached, token))
        {
            *current = None;
        }
    }
}
