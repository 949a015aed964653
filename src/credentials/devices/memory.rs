//! When each device was last issued a credential, in this replica's memory: the whole record
//! without `REDIS_URL`, and beside Redis the fallback and the record of what is still to share.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use quick_cache::sync::Cache;

/// One user's devices, by credential name.
type UserDevices = HashMap<String, Entry>;

#[derive(Debug, Clone, Copy)]
struct Entry {
    last_issued: SystemTime,
    /// When this replica last wrote the entry to Redis; `None` while it never has.
    shared_at: Option<Instant>,
}

pub struct MemoryBook {
    /// By user key; past the capacity the least used users are forgotten, and their devices'
    /// order is then read from Telnyx (see [`super::book`]).
    users: Cache<String, Arc<Mutex<UserDevices>>>,
    /// Most devices remembered per user: more than the cap, so that a device signed out
    /// elsewhere (another replica, `prune`) does not grow a user's record for ever.
    per_user: usize,
}

impl MemoryBook {
    pub fn new(users: usize, per_user: usize) -> Self {
        Self {
            users: Cache::new(users),
            per_user,
        }
    }

    pub fn knows(&self, user: &str, name: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|devices| lock(&devices).contains_key(name))
    }

    /// Records an issue at `at` (an earlier one never replaces a later one). With
    /// `share_every`, true when the entry is due to be written to Redis: never written, or not
    /// for `share_every`; it then counts as written. Without, the entry is only recorded here.
    pub fn issued(
        &self,
        user: &str,
        name: &str,
        at: SystemTime,
        share_every: Option<std::time::Duration>,
    ) -> bool {
        let devices = self.user(user);
        let mut devices = lock(&devices);
        let now = Instant::now();
        let entry = devices.entry(name.to_owned()).or_insert(Entry {
            last_issued: at,
            shared_at: None,
        });
        entry.last_issued = entry.last_issued.max(at);
        let due = share_every.is_some_and(|every| {
            entry
                .shared_at
                .is_none_or(|shared| now.duration_since(shared) >= every)
        });
        if due {
            entry.shared_at = Some(now);
        }
        self.bound(&mut devices);
        due
    }

    /// The last issue of each of `names`, where this replica knows it.
    pub fn last_issued(&self, user: &str, names: &[String]) -> Vec<Option<SystemTime>> {
        let Some(devices) = self.users.get(user) else {
            return vec![None; names.len()];
        };
        let devices = lock(&devices);
        names
            .iter()
            .map(|name| devices.get(name).map(|entry| entry.last_issued))
            .collect()
    }

    /// The credential names of the user's devices this replica knows.
    pub fn names(&self, user: &str) -> Vec<String> {
        self.users
            .get(user)
            .map(|devices| lock(&devices).keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn forget(&self, user: &str, names: &[String]) {
        if let Some(devices) = self.users.get(user) {
            let mut devices = lock(&devices);
            for name in names {
                devices.remove(name);
            }
        }
    }

    pub fn forget_user(&self, user: &str) {
        self.users.remove(user);
    }

    fn user(&self, user: &str) -> Arc<Mutex<UserDevices>> {
        match self
            .users
            .get_or_insert_with(user, || Ok::<_, Infallible>(Arc::default()))
        {
            Ok(devices) => devices,
        }
    }

    /// Drops the least recently issued entries past `per_user`.
    fn bound(&self, devices: &mut UserDevices) {
        while devices.len() > self.per_user {
            let oldest = devices
                .iter()
                .min_by_key(|(_, entry)| entry.last_issued)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => devices.remove(&name),
                None => break,
            };
        }
    }
}

fn lock(devices: &Mutex<UserDevices>) -> std::sync::MutexGuard<'_, UserDevices> {
    // Each entry is written whole; a panicking holder cannot leave one half-written.
    devices.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_latest_issue_wins_sharing_is_spaced_and_each_user_is_bounded() {
        let book = MemoryBook::new(10, 3);
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let minute = Duration::from_secs(60);
        assert!(!book.issued("u", "u:a", at(90), None), "recorded only");
        assert!(
            book.issued("u", "u:a", at(100), Some(minute)),
            "never shared"
        );
        assert!(
            !book.issued("u", "u:a", at(50), Some(minute)),
            "shared just now"
        );
        assert!(book.issued("u", "u:a", at(200), Some(Duration::ZERO)));
        assert_eq!(book.last_issued("u", &["u:a".into()]), [Some(at(200))]);
        assert!(book.knows("u", "u:a"));
        assert!(!book.knows("v", "u:a"));

        for (n, name) in ["u:b", "u:c", "u:d"].into_iter().enumerate() {
            book.issued("u", name, at(300 + n as u64), Some(minute));
        }
        let mut names = book.names("u");
        names.sort();
        assert_eq!(names, ["u:b", "u:c", "u:d"], "the oldest went first");

        book.forget("u", &["u:b".into()]);
        assert!(!book.knows("u", "u:b"));
        book.forget_user("u");
        assert!(book.names("u").is_empty());
        assert_eq!(book.last_issued("u", &["u:c".into()]), [None]);
    }
}
