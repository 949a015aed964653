//! The record of which Telnyx credential is a holder's, kept in Redis (sealed) so that every
//! replica uses the same one: the first record wins, and a replacement (the credential was
//! gone, or its expiry moved) never overwrites a record it did not read.

use std::sync::LazyLock;

use redis::Script;

use super::{HolderKeys, RedisTokens, millis};
use crate::credentials::per_user::lifecycle::{Claim, KnownCredential, Registry};
use crate::shared::Unavailable;

/// Records the holder's credential if the record is still what the caller read ('' for none),
/// so the first replica to record one wins and a replacement never overwrites another's.
///
/// KEYS: generation, credential. ARGV: generation, expected, value, TTL ms.
/// Returns {1, ''} if recorded, {2, current value or ''} if not, {0, ''} if the generation moved on.
const CLAIM: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, ''} end
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[2] then return {2, current} end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return {1, ''}
";

/// Loaded once per Redis with `SCRIPT LOAD`, then run by its hash.
static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM));

/// The replicas' agreement on a holder's credential, for one sequence of Telnyx calls.
pub(in crate::credentials::per_user) struct SharedRegistry<'a> {
    pub(super) tokens: &'a RedisTokens,
    pub(super) keys: &'a HolderKeys,
    pub(super) generation: &'a str,
    /// The record's bytes as last read or written: a claim replaces only these.
    pub(super) expected: Option<Vec<u8>>,
    pub(super) recorded: Option<KnownCredential>,
}

impl SharedRegistry<'_> {
    /// The credential recorded for the holder, if any.
    pub fn recorded(&self) -> Option<KnownCredential> {
        self.recorded.clone()
    }

    /// Records `known` if it is not what the record says (its expiry was moved forward, or it
    /// replaced one that is gone).
    pub async fn record(&mut self, known: &KnownCredential) {
        let unchanged = self.recorded.as_ref().is_some_and(|recorded| {
            recorded.record.id == known.record.id
                && recorded.record.expires_at == known.record.expires_at
        });
        if !unchanged {
            self.claim(known).await;
        }
    }
}

impl Registry for SharedRegistry<'_> {
    async fn claim(&mut self, credential: &KnownCredential) -> Claim {
        let value = self
            .tokens
            .seal_credential(&self.keys.credential, self.generation, credential);
        let ttl = self.tokens.credential_ttl(credential);
        // A second round only when the record changed under us to something this replica
        // cannot read (another TELNYX_API_KEY during a rollout) or to nothing.
        let (keys, generation, value) = (self.keys, self.generation, &value);
        for _ in 0..2 {
            let expected = self.expected.as_deref().unwrap_or_default();
            let answer: Result<(i64, Vec<u8>), _> = self
                .tokens
                .redis
                .run(|mut connection| async move {
                    CLAIM_SCRIPT
                        .key(&keys.generation)
                        .key(&keys.credential)
                        .arg(generation)
                        .arg(expected)
                        .arg(value)
                        .arg(millis(ttl))
                        .invoke_async(&mut connection)
                        .await
                })
                .await;
            match answer {
                Err(Unavailable) => return Claim::Unshared,
                // Revoked meanwhile: nothing is recorded, and storing the token will find out.
                Ok((0, _)) => return Claim::Ours,
                Ok((1, _)) => {
                    self.expected = Some(value.clone());
                    self.recorded = Some(credential.clone());
                    return Claim::Ours;
                }
                Ok((_, current)) => {
                    let theirs = self.tokens.open_credential(
                        &self.keys.credential,
                        self.generation,
                        &current,
                    );
                    self.expected = (!current.is_empty()).then_some(current);
                    if let Some(theirs) = theirs {
                        self.recorded = Some(theirs.clone());
                        return Claim::Theirs(theirs);
                    }
                }
            }
        }
        Claim::Unshared
    }
}
