//! A login token as this replica hands it out and caches it: when it is replaced, and, with
//! Redis, the generation it belongs to and when Redis last said that generation is current.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use secrecy::ExposeSecret;

use crate::credentials::SipIdentity;

pub(super) struct IssuedToken {
    pub identity: Arc<SipIdentity>,
    pub minted_at: SystemTime,
    pub expires_at: SystemTime,
    /// From here on the token is replaced rather than handed out.
    pub refresh_at: SystemTime,
    /// With Redis, the generation of its holder's user this token belongs to; `None` for one
    /// minted while Redis did not answer, which is dropped once Redis answers again.
    pub generation: Option<Arc<str>>,
    /// When Redis last said that generation is current ([`instant_stamp`]); 0: never.
    confirmed: AtomicU64,
    /// A confirmation is under way in the background.
    confirming: AtomicBool,
}

impl IssuedToken {
    pub fn new(
        identity: SipIdentity,
        minted_at: SystemTime,
        expires_at: SystemTime,
        margin: Duration,
    ) -> Self {
        // At least half the token's life is used even when the margin is longer than that life.
        let half_life = expires_at.duration_since(minted_at).unwrap_or_default() / 2;
        let refresh_at = (expires_at - margin).max(minted_at + half_life);
        Self {
            identity: Arc::new(identity),
            minted_at,
            expires_at,
            refresh_at,
            generation: None,
            confirmed: AtomicU64::new(0),
            confirming: AtomicBool::new(false),
        }
    }

    pub fn under(mut self, generation: Arc<str>) -> Self {
        self.generation = Some(generation);
        self
    }

    pub fn login_token(&self) -> &str {
        self.identity
            .login_token
            .as_ref()
            .map_or("", |token| token.expose_secret())
    }

    /// Redis said the generation was current in an answer to a command sent at `asked`.
    pub fn confirm(&self, asked: Instant) {
        self.confirmed
            .fetch_max(instant_stamp(asked), Ordering::Relaxed);
    }

    /// Whether Redis confirmed the generation in answer to a command sent after `since`.
    pub fn confirmed_after(&self, since: Instant) -> bool {
        self.confirmed.load(Ordering::Relaxed) > instant_stamp(since)
    }

    /// Claims the one background confirmation of this token; false if one is under way.
    pub fn start_confirming(&self) -> bool {
        !self.confirming.swap(true, Ordering::Relaxed)
    }

    pub fn done_confirming(&self) {
        self.confirming.store(false, Ordering::Relaxed);
    }
}

/// The origin of [`instant_stamp`]: taken when the source is built ([`start_clock`]), before
/// any token exists.
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since [`START`], plus one: 0 is before anything.
fn instant_stamp(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(*START).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
}

/// Sets [`START`], before the first token.
pub(super) fn start_clock() {
    LazyLock::force(&START);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::SipSecret;

    #[test]
    fn a_token_is_refreshed_a_margin_before_expiry_but_used_for_half_its_life_at_least() {
        let minted = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let day = Duration::from_secs(86_400);
        let identity = || SipIdentity::new("u".into(), SipSecret::LoginToken("t".into()), "r");
        let token = IssuedToken::new(identity(), minted, minted + day, Duration::from_secs(600));
        assert_eq!(token.refresh_at, minted + day - Duration::from_secs(600));
        let short = IssuedToken::new(
            identity(),
            minted,
            minted + Duration::from_secs(300),
            Duration::from_secs(600),
        );
        assert_eq!(short.refresh_at, minted + Duration::from_secs(150));
    }
}
