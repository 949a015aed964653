//! Logging: human-readable lines for a terminal, or one flat JSON object per line for a log
//! pipeline.

mod json;
mod writer;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::JsonFields;

use crate::config::{LogConfig, LogFormat};
pub use json::FlatJson;
pub use writer::LogFlusher;

/// Installs the global subscriber. Logs go to stdout, as container platforms expect, through
/// [`writer`]'s buffer; hold the returned flusher until the process is about to exit.
pub fn init(config: &LogConfig) -> LogFlusher {
    let (writer, flusher) = writer::buffered_stdout();
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
    flusher
}
