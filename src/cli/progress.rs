//! A one-line progress indicator for long runs of `prune`, drawn only on a terminal: a log file
//! or a pipe gets the result lines alone.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Fewer items than this finish before a person would look at a progress line.
const LONG: usize = 20;
/// Redraws at most this often.
const EVERY: Duration = Duration::from_millis(100);

pub(super) struct Progress {
    on_terminal: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl Progress {
    /// Draws on stdout when stdout is a terminal.
    pub fn on_stdout() -> Self {
        Self {
            on_terminal: std::io::stdout().is_terminal(),
            drawn: false,
            last: None,
        }
    }

    /// `what done/total`, redrawn in place, when the run is long enough to need it.
    pub fn show(&mut self, what: &str, done: usize, total: usize) {
        if !self.on_terminal || total < LONG {
            return;
        }
        if done < total && self.last.is_some_and(|last| last.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        self.drawn = true;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, "\r\x1b[2K{what} {done}/{total}");
        let _ = stdout.flush();
    }

    /// Wipes the progress line, so that a result line can take its place.
    pub fn clear(&mut self) {
        if self.drawn {
            self.drawn = false;
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "\r\x1b[2K");
            let _ = stdout.flush();
        }
    }
}
