//! The Redis that replicas share state through (`REDIS_URL`): one multiplexed connection that
//! reconnects by itself, a short timeout on every command, and a circuit breaker, so a Redis
//! that is down or slow costs a request at most one timeout, and usually nothing.
//!
//! Each use decides, next to its code, what it falls back to when Redis does not answer:
//! [`crate::ratelimit`] counts in this replica's memory, [`crate::auth::session`] remembers
//! answers in this replica's memory, `per_user` mode (`credentials::per_user`) serves the
//! login tokens this replica cached and calls Telnyx on its own, and
//! [`crate::credentials::Devices`] orders devices by its own record and Telnyx's dates.
//! `/readyz` does not depend on Redis.
//!
//! # Keys
//!
//! Every key starts with [`keys::PREFIX`] and has a TTL; whatever identifies a user, a session
//! or a client appears only as a hash ([`keys::key`]). Values that are secrets, or that say
//! which Telnyx credential is whose, are sealed ([`sealed`]): AES-256-GCM, bound to their key's
//! name and to the user's generation.
//!
//! | key | value | TTL |
//! | --- | --- | --- |
//! | `twc:v1:rate:user:<hash of the user key>` (`credentials::Holder::user_key`: `supabase:<sub>`, or `<issuer tag>:<sub>`) | GCRA theoretical arrival time, µs since the epoch by Redis's clock (`TIME`) | until the key is back to a newcomer's state: at most `burst × period / rate` of `RATE_LIMIT_PER_USER` |
//! | `twc:v1:rate:ip:<hash of address or /64>` | the same, for `RATE_LIMIT_PER_IP` | the same |
//! | `twc:v1:session:<hash of the user key and session_id>` | `confirmed`, or `revoked <Supabase error_code>` | `SESSION_CHECK_CACHE_SECS` for `confirmed`; for `revoked`, until the token that was refused expires (plus `JWT_LEEWAY_SECS`) |
//! | `twc:v1:devices:<hash of the user key>` | a hash: field `twc:v1:device:<hash of the credential name>`, value the device's last issue in ms since the epoch (the writing replica's clock) | `TELNYX_CREDENTIAL_IDLE_DAYS`, renewed at every write ([`crate::credentials::Devices`]) |
//! | `twc:v1:gen:<hash of the user key>` | the user's generation: when it began, in µs by Redis's clock, in decimal; a `DELETE /credentials` moves it on, and always forward | at least a day, stretched by every entry stored under it to outlive that entry |
//! | `twc:v1:token:<hash of connection id and credential name>` | the holder's login token, SIP username, minting and expiry times: sealed | until the token expires |
//! | `twc:v1:credential:<hash of connection id and credential name>` | which Telnyx credential is the holder's: its id, SIP username, creation, expiry and usable-from times, sealed | until the credential expires (`TELNYX_CREDENTIAL_IDLE_DAYS` for one without an expiry) |
//! | `twc:v1:lease:<hash of connection id and credential name>` | a random id of the request calling Telnyx for the holder | 3 s, renewed every second while that request runs |
//!
//! The user key is `Holder::user_key` (`supabase:<sub>`), the credential name
//! `Holder::credential_name`; a generation covers every credential of one user.
//!
//! Redis 6 or later (or Valkey): the rate limit's and the generation's scripts read the
//! server's clock before they write, which needs scripts replicated by their effects, the
//! default since Redis 5. One Redis (a primary, with replicas or Sentinel if you like), not
//! Redis Cluster: a script's keys must live on one node.
//!
//! # Adding shared state
//!
//! A new use picks a kind of key (a row above, with its value and TTL), sends its commands
//! through [`Redis::run`], which bounds them and keeps the breaker and the metric, and decides
//! next to its own code what to do on [`Unavailable`]: keep a memory backend beside the Redis
//! one and write the rules once above both, as `ratelimit`, `auth::session` and
//! `credentials::per_user` do. A value that is a secret is sealed with [`sealed::Sealer`].

pub mod breaker;
pub mod keys;
pub mod sealed;

use std::future::Future;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::RedisConfig;
use crate::metrics;
use breaker::{Breaker, Transition};

/// How long one connection attempt (TCP, TLS, `AUTH`, `SELECT`) may take. Commands do not wait
/// this long: they give up after their own timeout while the attempt goes on in the background.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The one line that says Redis went away (at start-up or later).
const UNAVAILABLE: &str = "Redis is unavailable: each replica falls back to its own memory (rate limits, session checks, login tokens, device records) until Redis answers again";

/// Redis did not answer in time, answered with an error, or was skipped because the breaker
/// is open. Each use falls back in its own way; the cause is logged here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Redis is unavailable")]
pub struct Unavailable;

/// The client every use of Redis shares.
pub struct Redis {
    client: redis::Client,
    /// Replaced by a fresh one whenever the breaker opens, so that a connection stuck on a
    /// peer that vanished without a reset is not waited on again.
    connection: RwLock<ConnectionManager>,
    command_timeout: Duration,
    breaker: Breaker,
    /// The URL without its password, for log lines.
    redacted_url: String,
}

impl Redis {
    /// Builds the client without connecting: the first command (or [`Redis::connect`])
    /// connects, so a Redis that is down does not keep the service from starting.
    pub fn new(config: &RedisConfig) -> Self {
        // The configuration accepted the URL only once this same client had.
        let client = redis::Client::open(config.url.expose_secret())
            .expect("REDIS_URL was validated with the Redis client");
        let connection = lazy_connection(&client, config.command_timeout)
            .expect("a connection without push messages needs no further checks");
        Self {
            client,
            connection: RwLock::new(connection),
            command_timeout: config.command_timeout,
            breaker: Breaker::new(config.command_timeout),
            redacted_url: config.redacted.clone(),
        }
    }

    /// Connects (with [`CONNECT_TIMEOUT`], not the command timeout) and says in the log whether
    /// Redis answered. Run once at start-up, in the background.
    pub async fn connect(&self) {
        let mut connection = self.connection();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(CONNECT_TIMEOUT, ping.query_async::<String>(&mut connection))
            .await
        {
            Ok(Ok(_)) => tracing::info!(redis = %self.redacted_url, "connected to Redis"),
            Ok(Err(error)) => self.unavailable_at_start(&error.to_string()),
            Err(_) => self
                .unavailable_at_start(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        }
    }

    fn unavailable_at_start(&self, cause: &str) {
        if let Some(Transition::Opened) = self.breaker.open(Instant::now()) {
            tracing::warn!(
                redis = %self.redacted_url,
                cause,
                hint = "check REDIS_URL: host and port, the password, rediss:// if the server wants TLS",
                retry_secs = breaker::COOL_DOWN.as_secs(),
                "{UNAVAILABLE}"
            );
            self.replace_connection();
        }
    }

    /// Runs `command` on the shared connection within the command timeout, or not at all
    /// while the breaker is open. Counts the outcome in `redis_commands_total`.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.admit(Instant::now()) {
            metrics::redis_command("skipped");
            return Err(Unavailable);
        }
        let outcome = tokio::time::timeout(self.command_timeout, command(self.connection())).await;
        match outcome {
            Ok(Ok(value)) => {
                metrics::redis_command("ok");
                if let Some(Transition::Closed { unavailable_for }) =
                    self.breaker.succeeded(Instant::now())
                {
                    tracing::warn!(
                        redis = %self.redacted_url,
                        unavailable_secs = unavailable_for.as_secs(),
                        "Redis answers again: state is shared by the replicas again"
                    );
                }
                Ok(value)
            }
            Ok(Err(error)) => {
                metrics::redis_command("error");
                self.failed(&error.to_string());
                Err(Unavailable)
            }
            Err(_) => {
                metrics::redis_command("timeout");
                self.failed(&format!(
                    "no answer within {} ms",
                    self.command_timeout.as_millis()
                ));
                Err(Unavailable)
            }
        }
    }

    fn failed(&self, cause: &str) {
        tracing::debug!(redis = %self.redacted_url, cause, "Redis command failed");
        if let Some(Transition::Opened) = self.breaker.failed(Instant::now()) {
            self.log_unavailable(cause);
            self.replace_connection();
        }
    }

    fn log_unavailable(&self, cause: &str) {
        tracing::warn!(
            redis = %self.redacted_url,
            cause,
            retry_secs = breaker::COOL_DOWN.as_secs(),
            "{UNAVAILABLE}"
        );
    }

    /// A new connection, connecting in the background so the next probe finds it ready.
    fn replace_connection(&self) {
        let Ok(fresh) = lazy_connection(&self.client, self.command_timeout) else {
            return;
        };
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        tokio::spawn(async move {
            let mut fresh = fresh;
            let ping = redis::cmd("PING");
            let _ =
                tokio::time::timeout(CONNECT_TIMEOUT, ping.query_async::<String>(&mut fresh)).await;
        });
    }

    fn connection(&self) -> ConnectionManager {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One multiplexed connection that reconnects by itself after it drops. It tries once per
/// reconnection: the breaker, not a retry loop, paces attempts against a Redis that is down.
fn lazy_connection(
    client: &redis::Client,
    command_timeout: Duration,
) -> RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        // Ours is the timeout that counts (see `Redis::run`); this one, later, only clears
        // the connection's record of a request nobody waits for any more.
        .set_response_timeout(Some(command_timeout * 2));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}
