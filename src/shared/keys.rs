//! The names of the keys in Redis: one prefix, the kind of state, and a hash of whatever
//! identifies its holder, so that user ids, session ids and client addresses never appear in
//! clear (the schema is in [`super`]).

use aws_lc_rs::digest::{Context, SHA256};

/// Every key starts with this. The version changes whenever a value's format does, so the
/// replicas of two releases in one rollout never read each other's values.
pub const PREFIX: &str = "twc:v1:";

/// Bytes of SHA-256 kept in a key: 128 bits, no collision in any real number of users.
const HASH_BYTES: usize = 16;

/// `twc:v1:<kind>:<hash>`, the hash over `parts`, each length-prefixed so that no two lists of
/// parts hash alike (`("ab", "c")` and `("a", "bc")`).
///
/// The hash is not keyed: it keeps identifiers from being read off the keys, which is all a
/// user id (a random UUID) needs; a client address could be found again by hashing all of
/// IPv4, which is why nothing about the address but its limit state is stored.
pub fn key(kind: &str, parts: &[&[u8]]) -> String {
    let mut digest = Context::new(&SHA256);
    digest.update(kind.as_bytes());
    for part in parts {
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let digest = digest.finish();
    let mut key = String::with_capacity(PREFIX.len() + kind.len() + 1 + 2 * HASH_BYTES);
    key.push_str(PREFIX);
    key.push_str(kind);
    key.push(':');
    crate::hex::push_hex(&mut key, &digest.as_ref()[..HASH_BYTES]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_hashed_and_tell_their_parts_apart() {
        let user = "8d2f54a0-6c3b-4a8e-9f1d-2b7c0e5a9d41";
        let ada = key("rate:user", &[user.as_bytes()]);
        assert!(ada.starts_with("twc:v1:rate:user:"), "{ada}");
        assert_eq!(ada.len(), "twc:v1:rate:user:".len() + 32);
        assert!(!ada.contains(user) && !ada.contains("8d2f54a0"));
        assert_eq!(ada, key("rate:user", &[user.as_bytes()]), "stable");
        assert_ne!(ada, key("rate:ip", &[user.as_bytes()]), "kinds differ");
        assert_ne!(
            key("session", &[b"ab", b"c"]),
            key("session", &[b"a", b"bc"])
        );
    }
}
