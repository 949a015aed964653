//! The cache of verified tokens: a browser that sends the same access token again is answered
//! without a second signature check and claims parse.
//!
//! It must never change an answer, so an entry is served only while the full check would pass
//! as well:
//! - before the token's `exp` (the claim itself, not `exp` plus the leeway: a token in its
//!   grace period goes through the full check, which applies the leeway);
//! - while the signing keys are the set it was verified against. Every JWKS fetch that succeeds
//!   starts a new generation of that issuer's key set and retires the entries verified against
//!   the old one, so a key that leaves the JWKS (revoked or rotated out) stops vouching for
//!   cached tokens at once. Each entry is stamped with its own issuer's key set, so a refresh of
//!   one issuer's keys leaves the tokens of the others cached.
//!
//! Only tokens that verified are stored; a refusal (a bad signature, an `nbf` in the future) is
//! never remembered, so it is checked in full every time. Entries are keyed by the SHA-256 of
//! the whole token: the bearer token itself is never kept, and a token that differs in any
//! byte (another signature, say) is another key.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::digest::{SHA256, SHA256_OUTPUT_LEN, digest};

use super::Verified;

/// The cache key: SHA-256 of the whole compact token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; SHA256_OUTPUT_LEN]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        let mut bytes = [0; SHA256_OUTPUT_LEN];
        bytes.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        Self(bytes)
    }
}

/// Which key set a token was verified against: its issuer's (by position in the verifier),
/// and that set's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetStamp {
    pub issuer: usize,
    pub generation: u64,
}

#[derive(Clone)]
struct Entry {
    verified: Verified,
    key_set: KeySetStamp,
}

/// Verified tokens, at most about `capacity` of them (see [`VerifiedTokens::capacity`]); the
/// least recently useful go first. Safe to share between threads.
pub struct VerifiedTokens {
    entries: quick_cache::sync::Cache<TokenDigest, Entry>,
    hits: AtomicU64,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity),
            hits: AtomicU64::new(0),
        }
    }

    /// What a token verified to, if it may still be served at `now` (seconds since the Unix
    /// epoch): `current` says whether the key set it was verified against is still in use.
    pub fn get(
        &self,
        token: &TokenDigest,
        now: u64,
        current: impl Fn(KeySetStamp) -> bool,
    ) -> Option<Verified> {
        let stale = |entry: &Entry| !current(entry.key_set) || now >= entry.verified.claims.exp;
        let entry = self.entries.get(token)?;
        if stale(&entry) {
            // Only if still stale: another request may have stored a fresh answer meanwhile.
            self.entries.remove_if(token, stale);
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.verified)
    }

    /// Remembers a token that just verified against key set `key_set`. One already past its
    /// `exp` (accepted within the leeway) is not worth keeping: [`Self::get`] would not serve it.
    pub fn insert(&self, token: TokenDigest, verified: Verified, key_set: KeySetStamp, now: u64) {
        if now < verified.claims.exp {
            self.entries.insert(token, Entry { verified, key_set });
        }
    }

    /// How many answers came from the cache since start-up.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most entries the cache holds: the configured size, rounded up to a whole number of
    /// entries per shard (the cache is split into independently locked shards).
    pub fn capacity(&self) -> u64 {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenIssuer;
    use serde_json::json;
    use std::sync::Arc;

    fn claims(exp: u64) -> Verified {
        let value = json!({"sub": "u1", "exp": exp, "iss": "i", "aud": "authenticated"});
        Verified {
            claims: Arc::new(serde_json::from_value(value).unwrap()),
            issuer: TokenIssuer::Supabase,
        }
    }

    const SET_1: KeySetStamp = KeySetStamp {
        issuer: 0,
        generation: 1,
    };

    /// Only `stamp` is current.
    fn only(stamp: KeySetStamp) -> impl Fn(KeySetStamp) -> bool {
        move |other| other == stamp
    }

    #[test]
    fn an_entry_is_served_until_just_before_its_exp() {
        let cache = VerifiedTokens::new(16);
        let token = TokenDigest::of("a.b.c");
        cache.insert(token, claims(1_000), SET_1, 900);
        assert_eq!(
            cache.get(&token, 999, only(SET_1)).unwrap().claims.sub,
            "u1"
        );
        assert_eq!(cache.hits(), 1);
        assert!(
            cache.get(&token, 1_000, only(SET_1)).is_none(),
            "served at exp"
        );
        assert!(
            cache.get(&token, 999, only(SET_1)).is_none(),
            "an expired entry is dropped"
        );
        assert_eq!(cache.hits(), 1);
    }

    #[test]
    fn a_token_already_past_its_exp_is_not_stored() {
        let cache = VerifiedTokens::new(16);
        let token = TokenDigest::of("a.b.c");
        cache.insert(token, claims(1_000), SET_1, 1_000);
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_of_an_older_key_set_is_not_served() {
        let cache = VerifiedTokens::new(16);
        let token = TokenDigest::of("a.b.c");
        cache.insert(token, claims(1_000), SET_1, 900);
        let set_2 = KeySetStamp {
            generation: 2,
            ..SET_1
        };
        assert!(cache.get(&token, 900, only(set_2)).is_none());
        assert!(
            cache.get(&token, 900, only(SET_1)).is_none(),
            "the stale entry is gone, whatever generation asks next"
        );
    }

    #[test]
    fn a_refresh_of_another_issuers_keys_keeps_the_entry() {
        let cache = VerifiedTokens::new(16);
        let token = TokenDigest::of("a.b.c");
        let third_party = KeySetStamp {
            issuer: 2,
            generation: 7,
        };
        cache.insert(token, claims(1_000), third_party, 900);
        // Supabase's keys (issuer 0) moved on; issuer 2's did not.
        let current = |stamp: KeySetStamp| stamp.issuer != 0 && stamp == third_party;
        assert!(cache.get(&token, 900, current).is_some());
    }

    #[test]
    fn tokens_differing_in_one_byte_are_different_entries() {
        let cache = VerifiedTokens::new(16);
        cache.insert(TokenDigest::of("a.b.c"), claims(1_000), SET_1, 900);
        assert!(
            cache
                .get(&TokenDigest::of("a.b.d"), 900, only(SET_1))
                .is_none()
        );
        assert!(
            cache
                .get(&TokenDigest::of("a.b.c"), 900, only(SET_1))
                .is_some()
        );
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = VerifiedTokens::new(500);
        let bound = cache.capacity();
        assert!((500..500 + 64).contains(&bound), "{bound}");
        for n in 0..5_000 {
            cache.insert(
                TokenDigest::of(&format!("token-{n}")),
                claims(1_000),
                SET_1,
                900,
            );
            assert!(
                cache.len() as u64 <= bound,
                "{} entries after {n}",
                cache.len()
            );
        }
        assert!(cache.len() >= 250, "it does fill up: {}", cache.len());
    }
}
