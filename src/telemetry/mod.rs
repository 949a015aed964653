//! Logging: human-readable lines for a terminal, or one flat JSON object per line for a log
//! pipeline.

mod json;

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

use crate::config::{LogConfig, LogFormat};
pub use json::FlatJson;

/// Lines not yet written out; each is one allocation, so this bounds memory too (a few MiB).
const BUFFERED_LINES: usize = 16_384;

/// Keeps the log writer running: hold it until the process is about to exit, and drop it then
/// to write out what is still queued.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Installs the global subscriber. Logs go to stdout, as container platforms expect.
///
/// Request threads format a line and queue it; one writer thread writes the queue out in
/// batches. Writing each line to stdout from the request threads cost a `write` call each and
/// made them queue on stdout's lock: with two lines per credential issued that took a third of
/// the throughput of `GET /credentials` on two cores (see README, Performance). A full queue
/// makes request threads wait rather than drop a line: the audit trail is complete or the
/// service slows down, never silently lossy.
pub fn init(config: &LogConfig) -> LogGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stdout()));
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match config.format {
        LogFormat::Pretty => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .init(),
    }
    LogGuard(guard)
}
