//! A child process whose stdout a thread reads as it comes, parsing each line into a report:
//! the crash and takeover tests watch what their children say, and kill them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// A running child and the reports read from its stdout so far.
#[derive(Debug)]
pub struct ReportingChild<R> {
    /// The holder id it runs under, as lease rows name it.
    pub holder: String,
    child: Child,
    reports: Arc<Mutex<Vec<R>>>,
    reader: Option<JoinHandle<()>>,
}

impl<R: Send + 'static> ReportingChild<R> {
    /// Starts `command` (stdout piped, stderr dropped) as `holder`; each stdout line `parse`
    /// accepts becomes a report. Lines are read as they come, so a full pipe never blocks
    /// the child.
    pub fn spawn(
        mut command: Command,
        holder: &str,
        parse: impl Fn(&str) -> Option<R> + Send + 'static,
    ) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the child");
        let reports = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("the child's stdout");
        let reader = std::thread::spawn({
            let reports = Arc::clone(&reports);
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(report) = parse(&line) {
                        reports
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(report);
                    }
                }
            }
        });
        ReportingChild {
            holder: holder.to_owned(),
            child,
            reports,
            reader: Some(reader),
        }
    }

    /// The reports so far, in the order read.
    pub fn reports(&self) -> MutexGuard<'_, Vec<R>> {
        self.reports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGKILL: no shutdown, no lease released, whatever it was doing cut off.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl<R> Drop for ReportingChild<R> {
    /// A failed assertion must not leave children running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
