//! Progress of long work: a bar redrawn in place on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use es_core::RebuildProgress;

/// How far some work is: `done` of `total` events, at `rate` events/s.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub done: u64,
    pub total: u64,
    pub rate: f64,
}

impl Counts {
    /// Counts `done` of `total` since `started`.
    pub fn since(done: u64, total: u64, started: Instant) -> Self {
        let seconds = started.elapsed().as_secs_f64();
        Counts {
            done,
            total,
            rate: if seconds > 0.0 {
                done as f64 / seconds
            } else {
                0.0
            },
        }
    }

    fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }

    fn eta(&self) -> Option<Duration> {
        let left = self.total.saturating_sub(self.done) as f64;
        (self.rate > 0.0).then(|| Duration::from_secs_f64(left / self.rate))
    }
}

impl From<&RebuildProgress> for Counts {
    fn from(progress: &RebuildProgress) -> Self {
        Counts {
            done: progress.position,
            total: progress.head,
            rate: progress.rate(),
        }
    }
}

/// Shows progress on stderr.
#[derive(Debug)]
pub struct Bar {
    label: String,
    terminal: bool,
    last_line: Option<Instant>,
}

impl Bar {
    /// A bar for `label`; redrawn in place when stderr is a terminal.
    pub fn new(label: &str) -> Self {
        Bar {
            label: label.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            last_line: None,
        }
    }

    /// Shows a rebuild's progress.
    pub fn show(&mut self, progress: &RebuildProgress) {
        self.show_counts(progress.into());
    }

    /// Shows `counts`: every call on a terminal, at most one line a second otherwise.
    pub fn show_counts(&mut self, counts: Counts) {
        let eta = counts.eta().map_or_else(
            || "-".to_owned(),
            |eta| format!("{:.0} s", eta.as_secs_f64()),
        );
        let text = format!(
            "{}: {}/{} events ({:.0}%), {:.0} events/s, ETA {eta}",
            self.label,
            counts.done,
            counts.total,
            counts.fraction() * 100.0,
            counts.rate
        );
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let width = 30;
            let filled = (counts.fraction() * width as f64) as usize;
            let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
            let _ = write!(stderr, "\r[{bar}] {text}\x1b[K");
        } else if self
            .last_line
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            let _ = writeln!(stderr, "{text}");
            self.last_line = Some(Instant::now());
        }
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}
