//! What the runtime's background tasks have in common (projection workers, the outbox
//! publisher, subscriptions, process managers): they stop on one signal, wait between rounds
//! for an append, a poll interval or a retry delay, and let callers wait for a checkpoint.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a read-your-writes wait looks at the stored checkpoint, which moves without
/// telling this process when another one holds the lease.
const STORED_CHECKPOINT_RECHECK: Duration = Duration::from_millis(50);

/// Tasks that stop together: each watches one shutdown signal.
#[derive(Debug)]
pub(crate) struct Tasks {
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            tasks: Vec::new(),
            shutdown: watch::Sender::new(false),
        }
    }
}

impl Tasks {
    /// Starts the task `start` makes, handing it the shutdown signal to watch.
    pub(crate) fn spawn<F>(&mut self, start: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = tokio::spawn(start(self.shutdown.subscribe()));
        self.tasks.push(task);
    }

    /// Asks every task to stop after its current round and waits until each has.
    pub(crate) async fn stop(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            // A task that panicked is stopped too; there is nothing left to hand back.
            let _ = task.await;
        }
    }
}

/// What a background task waits for before its next round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Nothing: the round did work, so there may be more at once.
    None,
    /// New events (when the store signals appends), or the poll interval.
    Poll,
    /// The retry delay after a failure; an append does not make a retry more likely to work.
    Retry,
    /// The poll interval: the task watches for something appends do not bring about.
    Idle,
}

/// Paces one background task's rounds and tells it when to stop.
#[derive(Debug)]
pub(crate) struct Pacer {
    shutdown: watch::Receiver<bool>,
    appended: Option<watch::Receiver<u64>>,
    poll_interval: Duration,
    retry_after: Duration,
}

impl Pacer {
    /// A pacer woken by `appended` (the store's append signal, if it has one) when it polls.
    pub(crate) fn new(
        shutdown: watch::Receiver<bool>,
        appended: Option<watch::Receiver<u64>>,
        poll_interval: Duration,
        retry_after: Duration,
    ) -> Self {
        Pacer {
            shutdown,
            appended,
            poll_interval,
            retry_after,
        }
    }

    /// Whether the task was asked to stop.
    pub(crate) fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs `work` unless the task is asked to stop first: `None` then.
    pub(crate) async fn unless_stopped<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            output = work => Some(output),
            _ = self.shutdown.changed() => None,
        }
    }

    /// Waits as `pause` says, or less when the task is asked to stop.
    pub(crate) async fn pause(&mut self, pause: Pause) {
        self.pause_or(pause, std::future::pending()).await;
    }

    /// Waits as `pause` says, or less when the task is asked to stop or `woken` resolves.
    pub(crate) async fn pause_or(&mut self, pause: Pause, woken: impl Future<Output = ()>) {
        let (interval, appended) = match pause {
            Pause::None => return,
            Pause::Poll => (self.poll_interval, self.appended.as_mut()),
            Pause::Retry => (self.retry_after, None),
            Pause::Idle => (self.poll_interval, None),
        };
        let appended = async {
            match appended {
                Some(receiver) => {
                    let _ = receiver.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = appended => {}
            _ = woken => {}
            _ = self.shutdown.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Waits, at most `timeout`, until a checkpoint is past `position`: the one this process's
/// task announces on `announced`, or the stored one `stored` reads (another process may hold
/// the lease). Returns whether it got there.
pub(crate) async fn wait_past<E, F>(
    mut announced: watch::Receiver<u64>,
    position: u64,
    timeout: Duration,
    mut stored: impl FnMut() -> F,
) -> Result<bool, E>
where
    F: Future<Output = Result<u64, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if *announced.borrow_and_update() > position || stored().await? > position {
            return Ok(true);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        // Woken by this process's task, or after a short while to look at the store.
        let _ = tokio::time::timeout(
            (deadline - now).min(STORED_CHECKPOINT_RECHECK),
            announced.changed(),
        )
        .await;
    }
}
