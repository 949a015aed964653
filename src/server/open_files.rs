//! The open-files limit: raised to the hard limit at start-up, as Go's runtime does, and shared
//! between client connections (`MAX_CONNECTIONS`) and everything else the process opens.
//!
//! Each connection is a file. Without a cap, a flood of connections takes the last descriptor,
//! and from then on `accept` fails, and so does every outbound call (the JWKS, Telnyx, Supabase).

use std::fmt;
use std::io;

use crate::config::{Config, CredentialSourceConfig};

/// Descriptors kept for the process itself: standard streams, the runtime's epoll and wake-up
/// descriptors, the signal pipe, the listeners, `/metrics`' own connections, the JWKS fetch and
/// the DNS look-ups of outbound calls.
pub const RESERVED_FOR_PROCESS: u64 = 64;

/// Connections held on `BIND_ADDR` at most when `MAX_CONNECTIONS` is not set, whatever the file
/// limit allows (often a million): each costs memory while its head arrives, 15 to 20 KiB for a
/// slowloris connection (`bench/run.sh`'s slowloris line) and about 53 KiB for one sending the
/// largest head allowed, so this many take 60 to 240 MiB at worst. Where memory is tighter, set
/// `MAX_CONNECTIONS` (the Kubernetes manifest does).
pub const DEFAULT_MAX_CONNECTIONS_CEILING: usize = 4096;

/// `/metrics`' own connections on `METRICS_BIND_ADDR`, apart from the API's: a flood of the API
/// port leaves the scrapes that would show it.
pub const METRICS_CONNECTIONS: usize = 16;

/// The soft limit before start-up raised it, the soft limit now, and the hard limit above both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

impl OpenFiles {
    /// Raises the soft `RLIMIT_NOFILE` to the hard limit (rlimit's `increase_nofile_limit`,
    /// which on macOS also stays under `kern.maxfilesperproc`).
    #[cfg(unix)]
    pub fn raise() -> io::Result<Self> {
        let (soft_before, hard) = rlimit::Resource::NOFILE.get()?;
        let soft = rlimit::increase_nofile_limit(u64::MAX)?;
        Ok(Self {
            soft_before,
            soft,
            hard,
        })
    }

    #[cfg(not(unix))]
    pub fn raise() -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no RLIMIT_NOFILE on this platform",
        ))
    }
}

/// How the open-files limit is shared out, as `serve` logs it and `check-config` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// `None` where the limit cannot be read.
    pub files: Option<OpenFiles>,
    /// Descriptors kept for everything but client connections.
    pub reserved: u64,
    /// Connections held on `BIND_ADDR` at once.
    pub max_connections: usize,
    /// Whether `max_connections` was derived (`MAX_CONNECTIONS` not set).
    pub derived: bool,
}

impl ConnectionBudget {
    /// Raises the open-files limit and fits the connection cap under it. Fails when
    /// `MAX_CONNECTIONS` asks for more than the limit leaves.
    pub fn at_start_up(config: &Config) -> Result<Self, String> {
        let files = match OpenFiles::raise() {
            Ok(files) => Some(files),
            Err(error) => {
                tracing::warn!(%error, "cannot read or raise the open-files limit");
                None
            }
        };
        Self::plan(config, files)
    }

    /// The sharing-out itself, for a given limit.
    pub fn plan(config: &Config, files: Option<OpenFiles>) -> Result<Self, String> {
        let Some(files) = files else {
            return Ok(Self {
                files,
                reserved: 0,
                max_connections: config
                    .connections
                    .max_connections
                    .unwrap_or(DEFAULT_MAX_CONNECTIONS_CEILING),
                derived: config.connections.max_connections.is_none(),
            });
        };
        let reserved = reserved(config, files.soft);
        let room = usize::try_from(files.soft.saturating_sub(reserved)).unwrap_or(usize::MAX);
        match config.connections.max_connections {
            Some(max_connections) if max_connections > room => Err(format!(
                "MAX_CONNECTIONS is {max_connections}, more than the open-files limit leaves for connections ({room}: the limit is {}, and {reserved} are kept for the process and its outbound calls): lower MAX_CONNECTIONS, or raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd, --ulimit nofile= in docker)",
                files.soft
            )),
            Some(max_connections) => Ok(Self {
                files: Some(files),
                reserved,
                max_connections,
                derived: false,
            }),
            None if room == 0 => Err(format!(
                "the open-files limit ({}) leaves no room for connections once {reserved} are kept for the process and its outbound calls: raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd, --ulimit nofile= in docker)",
                files.soft
            )),
            None => Ok(Self {
                files: Some(files),
                reserved,
                max_connections: room.min(DEFAULT_MAX_CONNECTIONS_CEILING),
                derived: true,
            }),
        }
    }
}

/// Descriptors kept for the process and, where requests call out (`per_user` mode, the session
/// check), about one outbound connection per credential request in flight
/// (`MAX_CONCURRENT_REQUESTS`); never more than half the limit.
fn reserved(config: &Config, limit: u64) -> u64 {
    let calls_out = matches!(
        config.credentials.source,
        CredentialSourceConfig::PerUser(_)
    ) || config.auth.session_check.is_some();
    let outbound = if calls_out {
        config.limits.max_concurrent_requests as u64
    } else {
        0
    };
    (RESERVED_FOR_PROCESS + outbound).min(limit / 2)
}

impl fmt::Display for ConnectionBudget {
    /// The lines `check-config` prints after the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.files {
            Some(files) if files.soft > files.soft_before => writeln!(
                f,
                "open files (RLIMIT_NOFILE) = {} (raised from {}; hard limit {})",
                files.soft, files.soft_before, files.hard
            )?,
            Some(files) => writeln!(
                f,
                "open files (RLIMIT_NOFILE) = {} (hard limit {})",
                files.soft, files.hard
            )?,
            None => writeln!(f, "open files (RLIMIT_NOFILE) = unknown on this platform")?,
        }
        if self.derived {
            write!(
                f,
                "connections at most     = {} (MAX_CONNECTIONS not set: the open-files limit less {} kept for the process and its outbound calls, at most {DEFAULT_MAX_CONNECTIONS_CEILING})",
                self.max_connections, self.reserved
            )
        } else {
            write!(
                f,
                "connections at most     = {} (MAX_CONNECTIONS)",
                self.max_connections
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_from;

    fn config(extra: &[(&'static str, &'static str)]) -> Config {
        let mut pairs = vec![
            ("SUPABASE_URL", "https://abcd.supabase.co"),
            ("TELNYX_WEBRTC_USERNAME", "gencred123"),
            ("TELNYX_WEBRTC_PASSWORD", "sip-password-1"),
        ];
        pairs.extend_from_slice(extra);
        Config::from_lookup(lookup_from(pairs)).unwrap()
    }

    fn files(soft: u64) -> Option<OpenFiles> {
        Some(OpenFiles {
            soft_before: 256,
            soft,
            hard: soft,
        })
    }

    #[test]
    fn the_default_cap_leaves_room_under_the_limit_for_the_process() {
        let budget = ConnectionBudget::plan(&config(&[]), files(1024)).unwrap();
        assert_eq!(budget.max_connections, 1024 - 64);
        assert!(budget.derived);
        // A high limit is not all handed to connections: memory bounds them first.
        let budget = ConnectionBudget::plan(&config(&[]), files(1 << 20)).unwrap();
        assert_eq!(budget.max_connections, DEFAULT_MAX_CONNECTIONS_CEILING);
    }

    #[test]
    fn requests_that_call_out_keep_a_file_each_for_their_outbound_connection() {
        let checks_sessions = config(&[
            ("SUPABASE_VERIFY_SESSION", "true"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("MAX_CONCURRENT_REQUESTS", "200"),
        ]);
        let budget = ConnectionBudget::plan(&checks_sessions, files(1024)).unwrap();
        assert_eq!(budget.reserved, 264);
        assert_eq!(budget.max_connections, 1024 - 264);
        // Never more than half the limit is kept back.
        let budget = ConnectionBudget::plan(&checks_sessions, files(300)).unwrap();
        assert_eq!(budget.max_connections, 150);
    }

    #[test]
    fn an_explicit_cap_must_fit_under_the_limit() {
        let budget =
            ConnectionBudget::plan(&config(&[("MAX_CONNECTIONS", "900")]), files(1024)).unwrap();
        assert_eq!(budget.max_connections, 900);
        assert!(!budget.derived);
        let error = ConnectionBudget::plan(&config(&[("MAX_CONNECTIONS", "1000")]), files(1024))
            .unwrap_err();
        assert!(error.contains("MAX_CONNECTIONS is 1000"), "{error}");
        assert!(error.contains("960"), "{error}");
        assert!(error.contains("ulimit -Hn"), "{error}");
        // Above the ceiling is the operator's call, where the limit allows it.
        let budget =
            ConnectionBudget::plan(&config(&[("MAX_CONNECTIONS", "50000")]), files(1 << 20))
                .unwrap();
        assert_eq!(budget.max_connections, 50000);
    }

    #[test]
    fn check_config_says_where_the_cap_comes_from() {
        let budget = ConnectionBudget::plan(&config(&[]), files(1024)).unwrap();
        let text = budget.to_string();
        assert!(
            text.contains("open files (RLIMIT_NOFILE) = 1024 (raised from 256; hard limit 1024)"),
            "{text}"
        );
        assert!(text.contains("= 960 (MAX_CONNECTIONS not set"), "{text}");
    }
}
