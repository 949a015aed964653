//! The circuit breaker in front of Redis: after a few failures in a row, commands are skipped
//! for a cool-down instead of each waiting out its timeout, then one probe decides whether
//! Redis is back.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures in a row (errors or timeouts) that open the breaker. One is not enough: a single
/// timeout can be a pause of the network, not a Redis that is gone.
pub const FAILURES_TO_OPEN: u32 = 3;
/// How long commands are skipped once the breaker is open, before one probe is let through.
/// Short, because a Redis that is back makes state shared again only once a probe succeeds.
pub const COOL_DOWN: Duration = Duration::from_secs(1);

pub struct Breaker {
    state: Mutex<State>,
    /// A probe that reported nothing by then (its request was dropped) lets another through.
    probe_deadline: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Commands run; `failures` in a row so far.
    Closed { failures: u32 },
    /// Commands are skipped until `retry_at`; Redis has been unavailable since `since`.
    Open { since: Instant, retry_at: Instant },
    /// One command, started at `started`, is finding out whether Redis is back.
    Probing { since: Instant, started: Instant },
}

/// A change of state worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The breaker opened: Redis is unavailable from now on.
    Opened,
    /// A command succeeded while the breaker was open: Redis is back after being away this long.
    Closed { unavailable_for: Duration },
}

impl Breaker {
    pub fn new(command_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            probe_deadline: command_timeout * 2,
        }
    }

    /// Whether a command may run now. While the breaker is open, one command per cool-down
    /// is let through as the probe.
    pub fn admit(&self, now: Instant) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { since, retry_at } if now >= retry_at => {
                *state = State::Probing {
                    since,
                    started: now,
                };
                true
            }
            State::Probing { since, started } if now >= started + self.probe_deadline => {
                *state = State::Probing {
                    since,
                    started: now,
                };
                true
            }
            State::Open { .. } | State::Probing { .. } => false,
        }
    }

    pub fn succeeded(&self, now: Instant) -> Option<Transition> {
        let mut state = self.lock();
        let transition = match *state {
            State::Closed { .. } => None,
            State::Open { since, .. } | State::Probing { since, .. } => Some(Transition::Closed {
                unavailable_for: now.saturating_duration_since(since),
            }),
        };
        *state = State::Closed { failures: 0 };
        transition
    }

    pub fn failed(&self, now: Instant) -> Option<Transition> {
        let mut state = self.lock();
        match *state {
            State::Closed { failures } if failures + 1 < FAILURES_TO_OPEN => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                None
            }
            State::Closed { .. } => {
                *state = State::Open {
                    since: now,
                    retry_at: now + COOL_DOWN,
                };
                Some(Transition::Opened)
            }
            State::Open { since, .. } | State::Probing { since, .. } => {
                *state = State::Open {
                    since,
                    retry_at: now + COOL_DOWN,
                };
                None
            }
        }
    }

    /// Opens the breaker at once: Redis could not be reached at start-up.
    pub fn open(&self, now: Instant) -> Option<Transition> {
        let mut state = self.lock();
        let transition = match *state {
            State::Closed { .. } => Some(Transition::Opened),
            State::Open { .. } | State::Probing { .. } => None,
        };
        let since = match *state {
            State::Open { since, .. } | State::Probing { since, .. } => since,
            State::Closed { .. } => now,
        };
        *state = State::Open {
            since,
            retry_at: now + COOL_DOWN,
        };
        transition
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value, valid whatever a panicking holder was doing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(50);

    #[test]
    fn a_few_failures_in_a_row_open_it_and_a_success_in_between_does_not() {
        let breaker = Breaker::new(TIMEOUT);
        let now = Instant::now();
        for _ in 1..FAILURES_TO_OPEN {
            assert_eq!(breaker.failed(now), None);
        }
        assert_eq!(breaker.succeeded(now), None, "it was closed all along");
        for _ in 1..FAILURES_TO_OPEN {
            assert_eq!(breaker.failed(now), None);
            assert!(breaker.admit(now));
        }
        assert_eq!(breaker.failed(now), Some(Transition::Opened));
        assert!(!breaker.admit(now));
        assert!(!breaker.admit(now + COOL_DOWN - Duration::from_millis(1)));
        assert!(breaker.is_open());
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_through_and_decides() {
        let breaker = Breaker::new(TIMEOUT);
        let start = Instant::now();
        assert_eq!(breaker.open(start), Some(Transition::Opened));
        assert_eq!(breaker.open(start), None, "already open: no second line");

        let later = start + COOL_DOWN;
        assert!(breaker.admit(later), "the probe");
        assert!(!breaker.admit(later), "only one probe at a time");
        assert_eq!(breaker.failed(later), None, "still away: no new line");
        assert!(!breaker.admit(later + COOL_DOWN / 2), "a new cool-down");

        let again = later + COOL_DOWN;
        assert!(breaker.admit(again));
        assert_eq!(
            breaker.succeeded(again),
            Some(Transition::Closed {
                unavailable_for: 2 * COOL_DOWN
            })
        );
        assert!(breaker.admit(again) && breaker.admit(again), "closed again");
    }

    #[test]
    fn a_probe_that_never_reports_lets_another_through() {
        let breaker = Breaker::new(TIMEOUT);
        let start = Instant::now();
        breaker.open(start);
        assert!(breaker.admit(start + COOL_DOWN));
        assert!(!breaker.admit(start + COOL_DOWN + TIMEOUT));
        assert!(breaker.admit(start + COOL_DOWN + 2 * TIMEOUT));
    }
}
