//! Progress of long work: a bar redrawn in place on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use es_core::RebuildProgress;

/// Shows a rebuild's progress on stderr.
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

    /// Shows `progress`: every call on a terminal, at most one line a second otherwise.
    pub fn show(&mut self, progress: &RebuildProgress) {
        let eta = progress.eta().map_or_else(
            || "-".to_owned(),
            |eta| format!("{:.0} s", eta.as_secs_f64()),
        );
        let text = format!(
            "{}: {}/{} events ({:.0}%), {:.0} events/s, ETA {eta}",
            self.label,
            progress.position,
            progress.head,
            progress.fraction() * 100.0,
            progress.rate()
        );
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let width = 30;
            let filled = (progress.fraction() * width as f64) as usize;
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
