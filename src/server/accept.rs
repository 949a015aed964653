//! Accepting connections: a cap on those open at once, the listen backlog beyond it, and
//! `accept` failures met with a pause rather than a spin.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listener, the router behind it, and its own cap on open connections.
pub(super) struct Door {
    /// The variable the listener and its cap come from, for the log.
    variable: &'static str,
    listener: TcpListener,
    pub(super) router: Router,
    slots: Arc<Semaphore>,
    max_connections: usize,
    errors: AcceptErrors,
    /// When the cap was last reported reached, so a saturated listener logs once a minute.
    full_since: Option<Instant>,
}

impl Door {
    pub(super) fn new(
        variable: &'static str,
        listener: TcpListener,
        router: Router,
        max_connections: usize,
    ) -> Self {
        Self {
            variable,
            listener,
            router,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            errors: AcceptErrors::default(),
            full_since: None,
        }
    }

    /// The next connection, once a slot is free. While none is, `accept` is not called, so
    /// new connections wait in the kernel's listen backlog (and past it, clients retry their
    /// SYN) instead of being accepted and dropped.
    pub(super) async fn accept(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        loop {
            if self.slots.available_permits() == 0
                && self
                    .full_since
                    .is_none_or(|since| since.elapsed() >= Duration::from_secs(60))
            {
                self.full_since = Some(Instant::now());
                tracing::warn!(
                    listener = self.variable,
                    max_connections = self.max_connections,
                    "connection cap reached: new connections wait in the listen backlog until one closes"
                );
            }
            let permit = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.errors.succeeded();
                    return (stream, peer, permit);
                }
                Err(error) => {
                    drop(permit);
                    if let Some(pause) = self.errors.failed(&error) {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
}

pub(super) async fn accept_if_open(
    door: Option<&mut Door>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    match door {
        Some(door) => door.accept().await,
        None => std::future::pending().await,
    }
}

/// How `accept` failures are met. A connection that failed before it was accepted
/// (`ECONNABORTED`) is skipped. Anything else, chiefly `EMFILE` and `ENFILE` (no descriptor
/// left, as when outbound calls took them), would fail again at once, since the connection stays
/// queued: the loop pauses instead of spinning, 5 ms at first and doubling to 1 s while the
/// failures go on, as Go's `net/http` does.
#[derive(Debug, Default)]
struct AcceptErrors {
    pause: Option<Duration>,
}

impl AcceptErrors {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const MAX_PAUSE: Duration = Duration::from_secs(1);

    fn succeeded(&mut self) {
        self.pause = None;
    }

    /// How long to pause before the next `accept`, if at all.
    fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
        ) {
            return None;
        }
        let pause = self
            .pause
            .map_or(Self::FIRST_PAUSE, |pause| (pause * 2).min(Self::MAX_PAUSE));
        self.pause = Some(pause);
        tracing::error!(%error, pause_ms = pause.as_millis() as u64, "cannot accept a connection");
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_pause_longer_each_time_up_to_a_second() {
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<u128> = (0..10)
            .map(|_| errors.failed(&emfile).unwrap().as_millis())
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        errors.succeeded();
        assert_eq!(errors.failed(&emfile), Some(Duration::from_millis(5)));
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.failed(&aborted), None, "skipped at once");
    }
}
