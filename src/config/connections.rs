//! How the listener treats connections before and between requests: the header and idle
//! timeouts, the connection cap and the shutdown grace period.
//!
//! These hold where no request exists yet, so the request limits (`limits.rs`) cannot: a
//! connection that never completes its request head never reaches `MAX_CONCURRENT_REQUESTS`.

use std::fmt;
use std::time::Duration;

use super::env::Env;

/// nginx's `client_header_timeout` is 60 s, Go advises setting `ReadHeaderTimeout`; a browser
/// sends its whole head in one packet, so 10 s is generous and frees a slowloris slot six
/// times sooner than nginx.
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECS: u64 = 10;
/// nginx's `keepalive_timeout` is 75 s. A minute keeps a browser's connection warm across the
/// requests of one page visit and frees the slots of clients that left; a proxy in front should
/// close its idle upstream connections sooner than this, so it never reuses one being closed.
pub const DEFAULT_HTTP_IDLE_TIMEOUT_SECS: u64 = 60;
/// Below Kubernetes' default `terminationGracePeriodSeconds` (30 s) less the manifest's 5 s
/// `preStop` pause, so the process exits by itself before it is killed.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 20;

#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Time a connection has to deliver a complete request head: from the accept for the first
    /// request, from the first byte for each later one on a kept-alive connection.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for the first byte of its next request.
    pub idle_timeout: Duration,
    /// `MAX_CONNECTIONS`; `None` derives the cap from the open-files limit at start-up
    /// (`server::open_files`).
    pub max_connections: Option<usize>,
    /// Time in-flight requests get to finish after SIGTERM before their connections are cut.
    pub shutdown_grace: Duration,
}

pub(super) fn read(env: &mut Env<impl Fn(&str) -> Option<String>>) -> ConnectionConfig {
    let header_timeout = env.seconds_or(
        "HTTP_HEADER_TIMEOUT_SECS",
        DEFAULT_HTTP_HEADER_TIMEOUT_SECS,
        1..=120,
    );
    let idle_timeout = env.seconds_or(
        "HTTP_IDLE_TIMEOUT_SECS",
        DEFAULT_HTTP_IDLE_TIMEOUT_SECS,
        1..=3600,
    );
    let max_connections = env.optional_with("MAX_CONNECTIONS", |value| {
        value
            .parse::<usize>()
            .ok()
            .filter(|count| (1..=1_000_000).contains(count))
            .ok_or_else(|| {
                format!("is {value:?}: set it to a whole number from 1 to 1000000, or leave it empty to derive it from the open-files limit")
            })
    });
    let shutdown_grace =
        env.seconds_or("SHUTDOWN_GRACE_SECS", DEFAULT_SHUTDOWN_GRACE_SECS, 1..=300);
    ConnectionConfig {
        header_timeout,
        idle_timeout,
        max_connections,
        shutdown_grace,
    }
}

impl fmt::Display for ConnectionConfig {
    /// The lines `check-config` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HTTP_HEADER_TIMEOUT_SECS = {}",
            self.header_timeout.as_secs()
        )?;
        writeln!(
            f,
            "HTTP_IDLE_TIMEOUT_SECS = {}",
            self.idle_timeout.as_secs()
        )?;
        match self.max_connections {
            Some(count) => writeln!(f, "MAX_CONNECTIONS        = {count}")?,
            None => writeln!(
                f,
                "MAX_CONNECTIONS        = not set (derived from the open-files limit)"
            )?,
        }
        write!(
            f,
            "SHUTDOWN_GRACE_SECS    = {}",
            self.shutdown_grace.as_secs()
        )
    }
}
