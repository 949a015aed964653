//! per_user state in Redis, shared by every replica (`REDIS_URL`): each holder's login token and
//! which Telnyx credential is theirs (both sealed; the record is kept by [`registry`]), the
//! [`lease`] that lets one replica at a time call Telnyx for them, and their user's generation,
//! which a revocation moves on ([`repairs`] when Redis missed it). Every command is one round
//! trip, the ones that decide something a Lua script; the key schema is in [`crate::shared`],
//! the rules that use all this in [`super`].

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::IssuedToken;
use super::lifecycle::KnownCredential;
use crate::credentials::Holder;
use crate::shared::sealed::Sealer;
use crate::shared::{Redis, Unavailable, breaker, keys};
use crate::telnyx::TelephonyCredential;
pub(super) use lease::{LEASE_TTL, Lease};
pub(super) use registry::SharedRegistry;
use repairs::Repairs;

mod lease;
mod registry;
mod repairs;

/// A generation lives at least this long once made, and every entry stored under it stretches
/// it to outlive that entry (so no entry outlives the generation it belongs to).
const GENERATION_TTL: Duration = Duration::from_secs(86_400);
/// HKDF's `info` for the key that seals the values below.
const SEALING_PURPOSE: &str = "twc:v1 per_user values in Redis";

/// Reads the holder's generation (making one, from Redis's clock, if there is none), token and
/// credential record, and takes the lease if it is free (or still the caller's own: a release
/// that got no answer), in one step.
///
/// KEYS: generation, token, credential, lease. ARGV: owner, lease TTL ms, generation TTL ms.
/// Returns {generation, token or '', credential or '', 1 if the lease was taken else 0}.
const POLL: &str = r"
local generation = redis.call('GET', KEYS[1])
if not generation then
  local clock = redis.call('TIME')
  generation = clock[1] .. string.format('%06d', tonumber(clock[2]))
  redis.call('SET', KEYS[1], generation, 'PX', ARGV[3])
end
local leased = 0
if redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then
  leased = 1
elseif redis.call('GET', KEYS[4]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[4], ARGV[2])
  leased = 1
end
return {generation, redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '', leased}
";

/// Stores a token only while the generation it was minted under is current: a mint that began
/// before a revocation cannot store its token after it.
///
/// KEYS: generation, token. ARGV: generation, value, TTL ms. Returns 1 if stored, 0 if not.
const STORE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
";

/// Moves the generation on (Redis's clock in µs, and always past the last one, so a generation
/// never comes back) and drops the holder's token and credential record.
///
/// KEYS: generation, token, credential. ARGV: generation TTL ms.
const BUMP: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local next = math.max(now, (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) + 1)
local ttl = math.max(redis.call('PTTL', KEYS[1]), tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', ttl)
redis.call('DEL', KEYS[2], KEYS[3])
return 1
";

/// Each loaded once per Redis with `SCRIPT LOAD`, then run by its hash (and loaded again after
/// a Redis restart, which forgets them).
static POLL_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(POLL));
static STORE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(STORE));
static BUMP_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(BUMP));

/// The keys of one holder (see the schema in [`crate::shared`]).
#[derive(Clone)]
pub(super) struct HolderKeys {
    /// By [`Holder::user_key`]: one generation for all of a user's credentials.
    generation: String,
    /// The others by connection and [`Holder::credential_name`]: a record made for another
    /// `TELNYX_WEBRTC_CONNECTION_ID` is never used for this one.
    token: String,
    credential: String,
    lease: String,
}

impl HolderKeys {
    fn of(connection_id: &str, holder: &Holder) -> Self {
        let name = holder.credential_name();
        let of = |kind| keys::key(kind, &[connection_id.as_bytes(), name.as_bytes()]);
        Self {
            generation: generation_key(holder),
            token: of("token"),
            credential: of("credential"),
            lease: of("lease"),
        }
    }
}

/// By [`Holder::user_key`]: one generation for all of a user's credentials.
fn generation_key(holder: &Holder) -> String {
    keys::key("gen", &[holder.user_key().as_bytes()])
}

/// What Redis holds for a holder, read in one step.
pub(super) struct Polled {
    pub generation: Arc<str>,
    /// The stored token of this generation, if there is one that opens.
    pub token: Option<StoredToken>,
    /// The credential recorded for the holder, as the registry needs it.
    pub recorded: Recorded,
    /// Taken for this caller: it calls Telnyx, the others wait.
    pub lease: Option<Lease>,
}

/// A login token as another replica (or an earlier process) stored it.
pub(super) struct StoredToken {
    pub sip_username: String,
    pub login_token: SecretString,
    pub minted_at: SystemTime,
    pub expires_at: SystemTime,
}

/// The holder's credential record: the bytes as stored (what a replacement must find there),
/// and what they say, when they open.
pub(super) struct Recorded {
    bytes: Option<Vec<u8>>,
    credential: Option<KnownCredential>,
}

/// The token's plaintext before it is sealed (borrowed while it is written: the token is not
/// copied for it).
#[derive(Serialize, Deserialize)]
struct TokenValue<'a> {
    #[serde(borrow)]
    sip_username: Cow<'a, str>,
    #[serde(borrow)]
    login_token: Cow<'a, str>,
    minted_at_ms: u64,
    expires_at_ms: u64,
}

/// The credential record's plaintext before it is sealed.
#[derive(Serialize, Deserialize)]
struct CredentialValue {
    id: String,
    sip_username: String,
    created_at_ms: Option<u64>,
    expires_at_ms: Option<u64>,
    usable_at_ms: u64,
}

pub(super) struct RedisTokens {
    redis: Arc<Redis>,
    sealer: Sealer,
    connection_id: String,
    /// `TELNYX_CREDENTIAL_IDLE_DAYS`: how long the record of a credential without an expiry lasts.
    idle: Duration,
    repairs: Arc<Repairs>,
}

impl RedisTokens {
    /// `api_key` (`TELNYX_API_KEY`) is what the sealing key is derived from: see
    /// docs/security.md for why.
    pub fn new(
        redis: Arc<Redis>,
        api_key: &SecretString,
        connection_id: &str,
        idle: Duration,
    ) -> Self {
        Self {
            repairs: Arc::new(Repairs::new(redis.clone())),
            redis,
            sealer: Sealer::derive(api_key.expose_secret().as_bytes(), SEALING_PURPOSE),
            connection_id: connection_id.to_owned(),
            idle,
        }
    }

    pub fn keys(&self, holder: &Holder) -> HolderKeys {
        HolderKeys::of(&self.connection_id, holder)
    }

    /// Asks for the user's current generation; `None` when there is none (it expired with
    /// everything stored under it, or Redis lost it), which no cached token carries. The
    /// question stands on its own (`'static`), so it can be asked in the background.
    pub fn generation_of(
        &self,
        holder: &Holder,
    ) -> impl Future<Output = Result<Option<String>, Unavailable>> + Send + 'static {
        let redis = self.redis.clone();
        let key = generation_key(holder);
        async move {
            redis
                .run(|mut connection| async move {
                    redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut connection)
                        .await
                })
                .await
        }
    }

    /// The holder's generation, token and credential record, and the lease if it is free.
    pub async fn poll(&self, keys: &HolderKeys, owner: &str) -> Result<Polled, Unavailable> {
        let (generation, token, credential, leased): (String, Vec<u8>, Vec<u8>, i64) = self
            .redis
            .run(|mut connection| async move {
                POLL_SCRIPT
                    .key(&keys.generation)
                    .key(&keys.token)
                    .key(&keys.credential)
                    .key(&keys.lease)
                    .arg(owner)
                    .arg(millis(LEASE_TTL))
                    .arg(millis(GENERATION_TTL))
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let lease = (leased == 1).then(|| Lease::taken(&self.redis, &keys.lease, owner));
        let token = self.open_token(&keys.token, &generation, &token);
        let recorded = Recorded {
            credential: self.open_credential(&keys.credential, &generation, &credential),
            bytes: (!credential.is_empty()).then_some(credential),
        };
        Ok(Polled {
            generation: generation.into(),
            token,
            recorded,
            lease,
        })
    }

    /// Stores `token` for every replica, if `generation` is still the user's. `Ok(false)`: a
    /// revocation moved it on meanwhile, and the token must not be served.
    pub async fn store(
        &self,
        keys: &HolderKeys,
        generation: &str,
        token: &IssuedToken,
    ) -> Result<bool, Unavailable> {
        let value = TokenValue {
            sip_username: Cow::Borrowed(&token.identity.username),
            login_token: Cow::Borrowed(token.login_token()),
            minted_at_ms: epoch_ms(token.minted_at),
            expires_at_ms: epoch_ms(token.expires_at),
        };
        let plaintext = Zeroizing::new(serde_json::to_vec(&value).expect("plain fields serialize"));
        let sealed = self
            .sealer
            .seal(&keys.token, generation.as_bytes(), &plaintext);
        let ttl = until(token.expires_at);
        let stored: i64 = self
            .redis
            .run(|mut connection| async move {
                STORE_SCRIPT
                    .key(&keys.generation)
                    .key(&keys.token)
                    .arg(generation)
                    .arg(&sealed)
                    .arg(millis(ttl))
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok(stored == 1)
    }

    /// The registry of the holder's credential for one sequence of Telnyx calls, starting from
    /// what [`RedisTokens::poll`] read under `generation`.
    pub fn registry<'a>(
        &'a self,
        keys: &'a HolderKeys,
        generation: &'a str,
        recorded: Recorded,
    ) -> SharedRegistry<'a> {
        SharedRegistry {
            tokens: self,
            keys,
            generation,
            expected: recorded.bytes,
            recorded: recorded.credential,
        }
    }

    /// The credential recorded for the holder, for `DELETE /credentials` to delete beside what
    /// Telnyx lists.
    pub async fn recorded_credential(
        &self,
        holder: &Holder,
    ) -> Result<Option<TelephonyCredential>, Unavailable> {
        let keys = &self.keys(holder);
        let (generation, value): (Option<String>, Option<Vec<u8>>) = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("MGET")
                    .arg(&keys.generation)
                    .arg(&keys.credential)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(generation
            .zip(value)
            .and_then(|(generation, value)| {
                self.open_credential(&keys.credential, &generation, &value)
            })
            .map(|known| known.record))
    }

    /// Moves the user's generation on and drops the holder's token and record: once each
    /// replica has confirmed its cached token again, none serves a token stored before. If
    /// Redis does not answer, this is done once it does ([`Repairs`]); false until then.
    pub async fn revoke(&self, holder: &Holder) -> bool {
        let keys = self.keys(holder);
        match bump(&self.redis, &keys).await {
            Ok(()) => true,
            Err(Unavailable) => {
                tracing::warn!(
                    retry_secs = breaker::COOL_DOWN.as_secs(),
                    "the revocation could not be written to Redis: the other replicas may hand out their cached token of the deleted credential until it is, which this replica keeps trying until Redis answers"
                );
                self.repairs.queue(keys);
                false
            }
        }
    }

    fn open_token(&self, key: &str, generation: &str, sealed: &[u8]) -> Option<StoredToken> {
        if sealed.is_empty() {
            return None;
        }
        let Some(plaintext) = self.sealer.open(key, generation.as_bytes(), sealed) else {
            tracing::debug!(
                "a login token in Redis did not open (an earlier generation, or another TELNYX_API_KEY): treated as none"
            );
            return None;
        };
        let value: TokenValue = serde_json::from_slice(&plaintext).ok()?;
        Some(StoredToken {
            sip_username: value.sip_username.into_owned(),
            login_token: SecretString::from(value.login_token.into_owned()),
            minted_at: from_epoch_ms(value.minted_at_ms),
            expires_at: from_epoch_ms(value.expires_at_ms),
        })
    }

    fn seal_credential(
        &self,
        key: &str,
        generation: &str,
        credential: &KnownCredential,
    ) -> Vec<u8> {
        let record = &credential.record;
        let value = CredentialValue {
            id: record.id.clone(),
            sip_username: record.sip_username.clone(),
            created_at_ms: record.created_at.map(epoch_ms),
            expires_at_ms: record.expires_at.map(epoch_ms),
            usable_at_ms: epoch_ms(credential.usable_at),
        };
        let plaintext = serde_json::to_vec(&value).expect("plain fields serialize");
        self.sealer.seal(key, generation.as_bytes(), &plaintext)
    }

    fn open_credential(
        &self,
        key: &str,
        generation: &str,
        sealed: &[u8],
    ) -> Option<KnownCredential> {
        if sealed.is_empty() {
            return None;
        }
        let plaintext = self.sealer.open(key, generation.as_bytes(), sealed)?;
        let value: CredentialValue = serde_json::from_slice(&plaintext).ok()?;
        Some(KnownCredential {
            record: TelephonyCredential {
                id: value.id,
                name: None,
                sip_username: value.sip_username,
                resource_id: Some(format!("connection:{}", self.connection_id)),
                expired: false,
                created_at: value.created_at_ms.map(from_epoch_ms),
                // Not recorded: only the device layer's listings by tag read it.
                updated_at: None,
                expires_at: value.expires_at_ms.map(from_epoch_ms),
            },
            usable_at: from_epoch_ms(value.usable_at_ms),
        })
    }

    /// A record lasts as long as its credential, which expires unless moved forward.
    fn credential_ttl(&self, credential: &KnownCredential) -> Duration {
        credential.record.expires_at.map_or(self.idle, until)
    }
}

async fn bump(redis: &Redis, keys: &HolderKeys) -> Result<(), Unavailable> {
    redis
        .run(|mut connection| async move {
            BUMP_SCRIPT
                .key(&keys.generation)
                .key(&keys.token)
                .key(&keys.credential)
                .arg(millis(GENERATION_TTL))
                .invoke_async::<i64>(&mut connection)
                .await
        })
        .await
        .map(drop)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// From now until `at`, at least a second (a TTL must be positive).
fn until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now())
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn from_epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holders_keys_are_hashed_apart_by_kind_connection_and_user() {
        let ada = Holder::supabase_user("8d2f54a0-6c3b-4a8e-9f1d-2b7c0e5a9d41");
        let keys = HolderKeys::of("1684641123236054244", &ada);
        let all = [&keys.generation, &keys.token, &keys.credential, &keys.lease];
        for (key, kind) in all.iter().zip(["gen", "token", "credential", "lease"]) {
            assert!(key.starts_with(&format!("twc:v1:{kind}:")), "{key}");
            assert!(
                !key.contains("8d2f54a0") && !key.contains("supabase"),
                "{key}"
            );
        }
        let hashes: std::collections::HashSet<_> =
            all.iter().map(|key| key.rsplit(':').next()).collect();
        assert_eq!(hashes.len(), 4, "no kind shares another's hash");

        // Another connection: another credential, token and lease; the same user.
        let elsewhere = HolderKeys::of("9999999999999999999", &ada);
        assert_eq!(elsewhere.generation, keys.generation);
        assert_ne!(elsewhere.token, keys.token);
        assert_ne!(elsewhere.credential, keys.credential);
        assert_ne!(elsewhere.lease, keys.lease);
        let grace = HolderKeys::of("1684641123236054244", &Holder::supabase_user("grace"));
        assert_ne!(grace.generation, keys.generation);
        assert_ne!(grace.token, keys.token);
    }
}
