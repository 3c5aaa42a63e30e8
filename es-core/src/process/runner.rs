//! The process manager runtime: one task per process manager, under a lease, that catches up
//! on events from its checkpoint and fires its deadlines as they come due.
//!
//! One round of events: run the handlers of a batch (loading the state documents they ask
//! for), send their commands, then commit state, deadline changes and checkpoint in one
//! transaction (the checkpoint a compare-and-set). A crash after sending and before the
//! commit runs the batch again: the same commands under the same command ids, which the
//! aggregates' idempotency applies once.
//!
//! One deadline: run its handler, send its commands, then delete it with the handler's
//! changes in one transaction that also moves the deadline table's own counter by
//! compare-and-set, so two processes that both saw it due cannot both commit it. A round
//! fires a deadline only once it has read every event recorded before the deadline came due
//! (see [`Batch::may_fire`]): one of them may cancel it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};

use crate::envelope::{Payload, RecordedEvent};
use crate::error::StoreError;
use crate::process::clock::Clock;
use crate::process::dispatch::{Dispatch, Dispatcher, Sent};
use crate::process::error::ProcessError;
use crate::process::ids::command_id;
use crate::process::manager::{
    Cause, Deadline, DeadlineChange, Process, ProcessManager, StoredDeadline,
};
use crate::read::background::{Pacer, Pause, Tasks};
use crate::read::{
    ensure_live, live_state, DaemonConfig, Docs, DocumentTable, DocumentWrite, HealthState,
    ListQuery, ReadStore,
};
use crate::repository::CommandMetadata;

/// Events read and handled per transaction.
const BATCH_SIZE: usize = 100;
/// Deadlines listed per page while looking for due ones.
const DEADLINE_PAGE: usize = 500;

/// How a process manager runner paces itself.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// Who this process is, in lease rows; a random id by default.
    pub holder: String,
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// How often to look for new events (when the store cannot signal appends) and for
    /// deadlines come due.
    pub poll_interval: Duration,
    /// How long to wait after a failure before trying again.
    pub retry_after: Duration,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        let daemon = DaemonConfig::default();
        ProcessConfig {
            holder: daemon.holder,
            lease_ttl: daemon.lease_ttl,
            poll_interval: daemon.poll_interval,
            retry_after: daemon.retry_after,
        }
    }
}

/// Where a process manager stands.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessHealth {
    /// The process manager.
    pub name: &'static str,
    /// The next position it will read.
    pub checkpoint: u64,
    /// Deadlines scheduled and not yet fired or cancelled.
    pub pending_deadlines: usize,
    /// What this process's runner is doing.
    pub state: HealthState,
    /// Commands the aggregates rejected, since this runner started.
    pub rejected_commands: u64,
}

/// A process manager running in the background.
#[derive(Debug)]
pub struct ProcessRunner {
    engine: Arc<dyn Round>,
    task: Tasks,
}

impl ProcessRunner {
    /// Creates the process manager's tables when missing and starts its task.
    pub async fn start<P: ProcessManager>(
        store: Arc<dyn ReadStore>,
        dispatcher: Dispatcher,
        clock: Arc<dyn Clock>,
        manager: P,
        config: ProcessConfig,
    ) -> Result<Self, ProcessError> {
        if !valid_name(P::NAME) {
            return Err(ProcessError::InvalidName(P::NAME));
        }
        let (state_table, deadline_table) = tables(P::NAME);
        for table in [&state_table, &deadline_table] {
            ensure_live(&*store, table, "process").await?;
        }
        let engine = Arc::new(Engine {
            store,
            dispatcher,
            clock,
            manager,
            config,
            state_table,
            deadline_table,
            health: Mutex::new((HealthState::Starting, 0)),
            next_due: Mutex::new(NextDue::default()),
            rounds: watch::Sender::new(Rounds::default()),
            wake: Notify::new(),
        });
        let mut task = Tasks::default();
        task.spawn(|shutdown| run(Arc::clone(&engine) as Arc<dyn Round>, shutdown));
        Ok(ProcessRunner { engine, task })
    }

    /// Checkpoint, pending deadlines and state.
    pub async fn health(&self) -> Result<ProcessHealth, ProcessError> {
        self.engine.health().await
    }

    /// Waits, at most `timeout`, until the process manager has handled every event up to
    /// `position` and fired every deadline due when this was called; returns whether it did.
    ///
    /// For a caller that wants to see the commands a process manager sends in answer to its
    /// own (a short CLI run, a test); commands never wait for it. When another process holds
    /// the lease, deadlines are that process's business and only the checkpoint is awaited.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<bool, ProcessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rounds = self.engine.rounds();
        // A round that began before this call may have looked for due deadlines too early.
        let begun = rounds.borrow_and_update().begun;
        loop {
            let (finished, standby) = {
                let seen = rounds.borrow_and_update();
                let done = seen.finished > begun && seen.read_to_end && seen.checkpoint > position;
                (done, seen.standby)
            };
            if finished || (standby && self.engine.checkpoint().await? > position) {
                return Ok(true);
            }
            self.engine.wake();
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            // Another holder's progress shows only in the store: look again now and then.
            let recheck = self.engine.config().poll_interval;
            tokio::select! {
                _ = rounds.changed() => {}
                _ = tokio::time::sleep_until(deadline.min(now + recheck)) => {}
            }
        }
    }

    /// Stops after the current round and gives up the lease.
    pub async fn shutdown(self) {
        self.task.stop().await;
        self.engine.release().await;
    }
}

/// The tables of a process manager named `name`: its state (whose generation holds the
/// checkpoint) and its deadlines (whose generation's checkpoint counts fired deadlines).
pub(crate) fn tables(name: &str) -> (DocumentTable, DocumentTable) {
    let table = |projection: String| DocumentTable {
        projection,
        generation: 1,
        indexes: Vec::new(),
    };
    (
        table(format!("pm_{name}")),
        table(format!("pm_{name}_deadlines")),
    )
}

/// Process manager names become table names, as projection names do.
fn valid_name(name: &str) -> bool {
    crate::read::sql::plain_identifier(name)
}

/// One process manager's work, with its type erased for the task.
trait Round: Send + Sync + std::fmt::Debug {
    fn round(&self) -> futures::future::BoxFuture<'_, Result<Progress, ProcessError>>;
    fn health(&self) -> futures::future::BoxFuture<'_, Result<ProcessHealth, ProcessError>>;
    fn release(&self) -> futures::future::BoxFuture<'_, ()>;
    fn config(&self) -> &ProcessConfig;
    fn set_state(&self, state: HealthState);
    fn append_signal(&self) -> Option<watch::Receiver<u64>>;
    /// The rounds begun and finished so far, for [`ProcessRunner::wait_for`].
    fn rounds(&self) -> watch::Receiver<Rounds>;
    /// The stored checkpoint.
    fn checkpoint(&self) -> futures::future::BoxFuture<'_, Result<u64, ProcessError>>;
    /// Starts the next round now rather than after the poll interval.
    fn wake(&self);
    /// Resolves once [`wake`](Self::wake) is called.
    fn woken(&self) -> futures::future::BoxFuture<'_, ()>;
}

/// Where the runner's rounds stand: the number of the last round begun, of the last one
/// finished, and what that one saw.
#[derive(Clone, Copy, Debug, Default)]
struct Rounds {
    begun: u64,
    finished: u64,
    /// The checkpoint after the last finished round.
    checkpoint: u64,
    /// Whether another process held the lease in the last finished round.
    standby: bool,
    /// Whether the last finished round read the log to its end (so it fired every deadline
    /// due when it began).
    read_to_end: bool,
}

/// What a round did.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Handled events or fired deadlines: there may be more at once.
    Busy,
    /// Nothing to do now.
    Idle,
    /// Another process holds the lease.
    Standby,
}

async fn run(engine: Arc<dyn Round>, shutdown: watch::Receiver<bool>) {
    let config = engine.config();
    let mut pacer = Pacer::new(
        shutdown,
        engine.append_signal(),
        config.poll_interval,
        config.retry_after,
    );
    while !pacer.stopping() {
        let pause = match engine.round().await {
            Ok(Progress::Busy) => Pause::None,
            Ok(Progress::Idle | Progress::Standby) => Pause::Poll,
            Err(error) => {
                tracing::warn!(%error, "process manager round failed; retrying");
                engine.set_state(HealthState::Failing(error.to_string()));
                Pause::Retry
            }
        };
        // A caller waiting for this process manager wakes it rather than wait out a pause.
        pacer.pause_or(pause, engine.woken()).await;
    }
}

struct Engine<P: ProcessManager> {
    store: Arc<dyn ReadStore>,
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    manager: P,
    config: ProcessConfig,
    state_table: DocumentTable,
    deadline_table: DocumentTable,
    health: Mutex<(HealthState, u64)>,
    next_due: Mutex<NextDue>,
    rounds: watch::Sender<Rounds>,
    wake: Notify,
}

impl<P: ProcessManager> std::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRunner")
            .field("name", &P::NAME)
            .field("dispatcher", &self.dispatcher)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<P: ProcessManager> Engine<P> {
    fn lock_health(&self) -> std::sync::MutexGuard<'_, (HealthState, u64)> {
        // Each write replaces one whole field; a poisoned lock still holds whole fields.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The checkpoint (or firing counter) of one of its tables.
    async fn counter(&self, table: &DocumentTable) -> Result<u64, StoreError> {
        Ok(live_state(&*self.store, &table.projection)
            .await?
            .map_or(1, |state| state.checkpoint))
    }

    /// One round, numbered for [`ProcessRunner::wait_for`].
    async fn counted_round(&self) -> Result<Progress, ProcessError> {
        let mut number = 0;
        self.rounds.send_modify(|rounds| {
            rounds.begun += 1;
            number = rounds.begun;
        });
        let (progress, read_to_end) = self.round_typed().await?;
        let checkpoint = self.counter(&self.state_table).await?;
        self.rounds.send_modify(|rounds| {
            rounds.finished = number;
            rounds.checkpoint = checkpoint;
            rounds.standby = progress == Progress::Standby;
            rounds.read_to_end = read_to_end;
        });
        Ok(progress)
    }

    /// Takes or renews the lease; false, and standing by, when another process holds it.
    async fn hold_lease(&self) -> Result<bool, ProcessError> {
        let holder = self
            .store
            .acquire_lease(
                &self.state_table.projection,
                &self.config.holder,
                self.config.lease_ttl,
            )
            .await?;
        if holder != self.config.holder {
            self.lock_health().0 = HealthState::Standby { holder };
            // The holder may schedule deadlines this process never sees.
            self.lock_next_due().forget();
            return Ok(false);
        }
        Ok(true)
    }

    fn lock_next_due(&self) -> std::sync::MutexGuard<'_, NextDue> {
        // Each write replaces whole fields; a poisoned lock still holds whole fields.
        self.next_due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One round: a batch of events, then the deadlines due; also whether it read the log
    /// to its end.
    async fn round_typed(&self) -> Result<(Progress, bool), ProcessError> {
        // Taken before the lease is asked for: the lease runs from about then.
        let renewed = Instant::now();
        if !self.hold_lease().await? {
            return Ok((Progress::Standby, false));
        }
        // Taken before reading: an event read after it may be recorded before it.
        let now = self.clock.now();
        let batch = self.handle_batch().await?;
        let read_to_end = batch.unread_after.is_none();
        let fired = match self.fire_due(&batch, now, renewed).await? {
            Some(fired) => fired,
            None => return Ok((Progress::Standby, false)),
        };
        let busy = batch.handled || fired;
        self.lock_health().0 = if busy {
            HealthState::Running
        } else {
            HealthState::CaughtUp
        };
        let progress = if busy { Progress::Busy } else { Progress::Idle };
        Ok((progress, read_to_end))
    }

    /// Runs `handle` against the state documents until a run needs none it has not loaded
    /// (see [`Docs`]); returns the last run's commands and deadline changes.
    async fn run_handlers(
        &self,
        loaded: &mut HashMap<String, Option<P::State>>,
        mut handle: impl FnMut(
            &mut Docs<P::State>,
            &mut Vec<DeadlineChange>,
        ) -> Result<Vec<(Cause, Vec<Dispatch>)>, ProcessError>,
    ) -> Result<Handled<P::State>, ProcessError> {
        loop {
            let mut docs = Docs::new(loaded);
            let mut deadlines = Vec::new();
            let outcome = handle(&mut docs, &mut deadlines);
            let missing = docs.take_missing();
            if !missing.is_empty() {
                // A failure in a run that lacked state may be caused by the lack: load and
                // run again before believing it.
                for key in missing {
                    let row = self.store.get_document(&self.state_table, &key).await?;
                    let doc = row
                        .map(|row| {
                            row.body.decode().map_err(|source| ProcessError::Corrupt {
                                process: P::NAME,
                                what: "state",
                                key: key.clone(),
                                source,
                            })
                        })
                        .transpose()?;
                    loaded.insert(key, doc);
                }
                continue;
            }
            return Ok(Handled {
                commands: outcome?,
                state: docs.into_changes(),
                deadlines,
            });
        }
    }

    /// Sends each command with ids derived from its cause, so a second run sends the same.
    async fn send(&self, commands: Vec<(Cause, Vec<Dispatch>)>) -> Result<(), ProcessError> {
        for (cause, dispatches) in commands {
            for (index, dispatch) in dispatches.into_iter().enumerate() {
                let metadata = CommandMetadata::new()
                    .correlation_id(cause.correlation_id)
                    .causation_id(cause.id)
                    .command_id(command_id(P::NAME, cause.id, index))
                    .with("process_manager", P::NAME);
                let described = dispatch.to_string();
                if let Sent::Rejected(reason) =
                    dispatch.send(&self.dispatcher, P::NAME, metadata).await?
                {
                    tracing::info!(process_manager = P::NAME, command = %described, %reason, "command rejected");
                    self.lock_health().1 += 1;
                }
            }
        }
        Ok(())
    }

    /// The writes of a handled batch or deadline: state documents and deadline changes.
    fn writes(
        &self,
        handled: Handled<P::State>,
    ) -> Result<(Vec<DocumentWrite>, Vec<DocumentWrite>), ProcessError> {
        let state = handled
            .state
            .into_iter()
            .map(|(key, doc)| {
                let body = doc
                    .map(|doc| Payload::encode(&doc))
                    .transpose()
                    .map_err(|source| ProcessError::Corrupt {
                        process: P::NAME,
                        what: "state",
                        key: key.clone(),
                        source,
                    })?;
                Ok(DocumentWrite {
                    key,
                    body,
                    index_values: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, ProcessError>>()?;
        // The last change of each key wins.
        let mut last: Vec<DeadlineChange> = Vec::new();
        for change in handled.deadlines {
            last.retain(|earlier| earlier.key() != change.key());
            last.push(change);
        }
        let deadlines = last
            .into_iter()
            .map(|change| match change {
                DeadlineChange::Cancel { key } => Ok(DocumentWrite {
                    key,
                    body: None,
                    index_values: Vec::new(),
                }),
                DeadlineChange::Schedule { key, deadline } => {
                    let body = deadline
                        .and_then(|deadline| Payload::encode(&deadline))
                        .map_err(|source| ProcessError::Corrupt {
                            process: P::NAME,
                            what: "deadline",
                            key: key.clone(),
                            source,
                        })?;
                    Ok(DocumentWrite {
                        key,
                        body: Some(body),
                        index_values: Vec::new(),
                    })
                }
            })
            .collect::<Result<Vec<_>, ProcessError>>()?;
        Ok((state, deadlines))
    }

    /// Handles one batch of events; returns how far it read.
    async fn handle_batch(&self) -> Result<Batch, ProcessError> {
        let checkpoint = self.counter(&self.state_table).await?;
        let events = self.store.read_all(checkpoint, BATCH_SIZE).await?;
        // A short read is the end of the log only if nothing committed lies beyond it: on
        // PostgreSQL read-all holds back events behind a transaction still running, and
        // one of those may cancel a deadline.
        let held_back = events.len() < BATCH_SIZE
            && self.store.head_position().await?
                > events
                    .last()
                    .map_or(checkpoint.saturating_sub(1), |last| last.position);
        let Some(last) = events.last() else {
            return Ok(Batch {
                handled: false,
                // Nothing read, something held back: no deadline may fire this round.
                unread_after: held_back.then_some(DateTime::<Utc>::MIN_UTC),
            });
        };
        let next = last.position + 1;
        let unread_after = (events.len() == BATCH_SIZE || held_back).then_some(last.recorded_at);
        let mut loaded = HashMap::new();
        let handled = self
            .run_handlers(&mut loaded, |docs, deadlines| {
                let mut commands = Vec::new();
                for event in &events {
                    if !P::EVENTS.contains(&&*event.event_name) {
                        continue;
                    }
                    let cause = Cause::of_event(event);
                    let mut process = Process::new(P::NAME, docs, deadlines, cause);
                    let sent = self
                        .manager
                        .on_event(event, &mut process)
                        .map_err(|error| at_event(error, event))?;
                    commands.push((cause, sent));
                }
                Ok(commands)
            })
            .await?;
        self.commit_handled(handled, |tx, state_table, _| {
            Box::pin(async move { tx.advance(state_table, checkpoint, next).await })
        })
        .await?;
        Ok(Batch {
            handled: true,
            unread_after,
        })
    }

    /// Sends a handled run's commands, then commits its writes and `advance` together.
    async fn commit_handled(
        &self,
        mut handled: Handled<P::State>,
        advance: impl for<'t> FnOnce(
            &'t mut (dyn crate::read::ReadTx + '_),
            &'t DocumentTable,
            &'t DocumentTable,
        ) -> futures::future::BoxFuture<'t, Result<(), StoreError>>,
    ) -> Result<(), ProcessError> {
        let commands = std::mem::take(&mut handled.commands);
        self.send(commands).await?;
        let scheduled = handled
            .deadlines
            .iter()
            .filter_map(|change| match change {
                DeadlineChange::Schedule {
                    deadline: Ok(deadline),
                    ..
                } => Some(deadline.due_at),
                _ => None,
            })
            .min();
        let (state, deadlines) = self.writes(handled)?;
        let committed = async {
            let mut tx = self.store.begin().await?;
            if !state.is_empty() {
                tx.write(&self.state_table, state).await?;
            }
            if !deadlines.is_empty() {
                tx.write(&self.deadline_table, deadlines).await?;
            }
            advance(&mut *tx, &self.state_table, &self.deadline_table).await?;
            tx.commit().await
        }
        .await;
        let mut next_due = self.lock_next_due();
        match &committed {
            Ok(()) => next_due.scheduled(scheduled),
            // Perhaps committed after all (a lost connection): look at the table next time.
            Err(_) => next_due.forget(),
        }
        Ok(committed?)
    }

    /// Every pending deadline's document, a page at a time.
    async fn pending_deadlines(&self) -> Result<Vec<crate::read::DocumentRow>, StoreError> {
        let mut rows = Vec::new();
        let mut query = ListQuery {
            limit: DEADLINE_PAGE,
            ..ListQuery::default()
        };
        loop {
            let page = self
                .store
                .list_documents(&self.deadline_table, &query)
                .await?;
            let full = page.len() == DEADLINE_PAGE;
            query.after = page.last().map(|row| row.key.clone());
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
    }

    /// The deadlines `batch` lets fire at `now`, earliest first.
    async fn due(
        &self,
        batch: &Batch,
        now: DateTime<Utc>,
    ) -> Result<Vec<Deadline<Payload>>, ProcessError> {
        if !self
            .lock_next_due()
            .worth_a_look(|due_at| batch.may_fire(due_at, now), self.config.lease_ttl)
        {
            return Ok(Vec::new());
        }
        let mut due = Vec::new();
        let mut later: Option<DateTime<Utc>> = None;
        for row in self.pending_deadlines().await? {
            let deadline = decode_deadline::<P>(&row.key, &row.body)?;
            if batch.may_fire(deadline.due_at, now) {
                due.push(deadline);
            } else {
                later = Some(later.map_or(deadline.due_at, |at| at.min(deadline.due_at)));
            }
        }
        due.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        // The ones due now are fired next; should one fail, the error path forgets this.
        self.lock_next_due().listed(later);
        Ok(due)
    }

    /// Fires the deadlines `batch` lets fire at `now`, one transaction each; returns whether
    /// it fired any, or `None` when another process took the lease meanwhile.
    async fn fire_due(
        &self,
        batch: &Batch,
        now: DateTime<Utc>,
        mut renewed: Instant,
    ) -> Result<Option<bool>, ProcessError> {
        let due = self.due(batch, now).await?;
        let fired = !due.is_empty();
        for deadline in due {
            // Many deadlines due at once (after a pause, a restart) take longer to fire than
            // the lease lasts: renew it on the way, or a standby takes it and fires the same
            // deadlines beside this process, both failing on the firing counter.
            if renewed.elapsed() >= self.config.lease_ttl / 3 {
                renewed = Instant::now();
                if !self.hold_lease().await? {
                    return Ok(None);
                }
            }
            if let Err(error) = self.fire(deadline).await {
                // It stays pending, and was left out of what `due` remembered.
                self.lock_next_due().forget();
                return Err(error);
            }
        }
        Ok(Some(fired))
    }

    async fn fire(&self, deadline: Deadline<Payload>) -> Result<(), ProcessError> {
        let counter = self.counter(&self.deadline_table).await?;
        // Still there, and still this one (not fired, cancelled or rescheduled meanwhile)?
        let current = self
            .store
            .get_document(&self.deadline_table, &deadline.key)
            .await?
            .map(|row| decode_deadline::<P>(&row.key, &row.body))
            .transpose()?;
        if current.is_none_or(|current| current.id != deadline.id) {
            return Ok(());
        }
        let mut loaded = HashMap::new();
        let handled = self
            .run_handlers(&mut loaded, |docs, deadlines| {
                // The deadline goes; its handler may schedule the same key again.
                deadlines.push(DeadlineChange::Cancel {
                    key: deadline.key.clone(),
                });
                let cause = Cause::of_deadline(&deadline);
                let sent = if P::DEADLINES.contains(&deadline.name.as_str()) {
                    let mut process = Process::new(P::NAME, docs, deadlines, cause);
                    self.manager.on_deadline(&deadline, &mut process)?
                } else {
                    tracing::warn!(process_manager = P::NAME, key = %deadline.key, name = %deadline.name, "no handler for this deadline's message; dropping it");
                    Vec::new()
                };
                Ok(vec![(cause, sent)])
            })
            .await?;
        self.commit_handled(handled, |tx, _, deadline_table| {
            Box::pin(async move { tx.advance(deadline_table, counter, counter + 1).await })
        })
        .await
    }
}

/// What the lease holder knows of its pending deadlines without reading them: the earliest
/// due time. Only the holder schedules, so it knows each change it made; looking for due
/// deadlines then costs nothing until that time comes, instead of a read of every pending
/// deadline each round.
#[derive(Debug, Default)]
struct NextDue {
    /// The earliest due time of the pending deadlines (`None` for none), when known.
    earliest: Option<Option<DateTime<Utc>>>,
    /// When the deadlines were last read: read again after a lease's time in any case, a
    /// safety net for changes made by a holder this process did not see.
    listed: Option<Instant>,
}

impl NextDue {
    /// Whether reading the deadlines may find one that `may_fire`.
    fn worth_a_look(&self, may_fire: impl Fn(DateTime<Utc>) -> bool, every: Duration) -> bool {
        match (self.earliest, self.listed) {
            (Some(earliest), Some(listed)) if listed.elapsed() < every => {
                earliest.is_some_and(may_fire)
            }
            _ => true,
        }
    }

    /// The deadlines were read; those not due now are due at `later` at the earliest.
    fn listed(&mut self, later: Option<DateTime<Utc>>) {
        self.earliest = Some(later);
        self.listed = Some(Instant::now());
    }

    /// This process committed deadlines due at `due_at` at the earliest.
    fn scheduled(&mut self, due_at: Option<DateTime<Utc>>) {
        if let (Some(known), Some(due_at)) = (&mut self.earliest, due_at) {
            *known = Some(known.map_or(due_at, |at| at.min(due_at)));
        }
    }

    /// What is pending is not known: read the deadlines next time.
    fn forget(&mut self) {
        *self = NextDue::default();
    }
}

/// How far a round read the log, which bounds the deadlines it may fire.
struct Batch {
    /// Whether there were events to handle.
    handled: bool,
    /// When the last event read was recorded, if the read filled a batch: the events after
    /// it are still unread.
    unread_after: Option<DateTime<Utc>>,
}

impl Batch {
    /// Whether a deadline due at `due_at` may fire at `now`: it is due, and no event
    /// recorded before it came due is still unread, since one may cancel it. After a full
    /// batch that holds only for deadlines due before its last event was recorded (a
    /// catching-up process would otherwise fire deadlines the events it has yet to read
    /// cancelled in time); after a short one, the log was read to its end.
    fn may_fire(&self, due_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        due_at <= now && self.unread_after.is_none_or(|last| due_at < last)
    }
}

/// The outcome of the last run of a batch's (or a deadline's) handlers.
struct Handled<S> {
    commands: Vec<(Cause, Vec<Dispatch>)>,
    state: Vec<(String, Option<S>)>,
    deadlines: Vec<DeadlineChange>,
}

fn decode_deadline<P: ProcessManager>(
    key: &str,
    body: &Payload,
) -> Result<Deadline<Payload>, ProcessError> {
    body.decode::<StoredDeadline>()
        .and_then(|stored| stored.into_deadline(key.to_owned()))
        .map_err(|source| ProcessError::Corrupt {
            process: P::NAME,
            what: "deadline",
            key: key.to_owned(),
            source,
        })
}

/// A handler's error, with the event it failed on.
fn at_event(error: ProcessError, event: &RecordedEvent) -> ProcessError {
    match error {
        ProcessError::Handler {
            process, source, ..
        } => ProcessError::Handler {
            process,
            cause: format!(
                "event `{}` at position {} (stream `{}`)",
                event.event_name, event.position, event.stream
            ),
            source,
        },
        other => other,
    }
}

impl<P: ProcessManager> Round for Engine<P> {
    fn round(&self) -> futures::future::BoxFuture<'_, Result<Progress, ProcessError>> {
        Box::pin(self.counted_round())
    }

    fn health(&self) -> futures::future::BoxFuture<'_, Result<ProcessHealth, ProcessError>> {
        Box::pin(async move {
            let checkpoint = self.counter(&self.state_table).await?;
            let pending = self.pending_deadlines().await?.len();
            let (state, rejected_commands) = self.lock_health().clone();
            Ok(ProcessHealth {
                name: P::NAME,
                checkpoint,
                pending_deadlines: pending,
                state,
                rejected_commands,
            })
        })
    }

    fn release(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self
                .store
                .release_lease(&self.state_table.projection, &self.config.holder)
                .await;
        })
    }

    fn config(&self) -> &ProcessConfig {
        &self.config
    }

    fn set_state(&self, state: HealthState) {
        self.lock_health().0 = state;
    }

    fn append_signal(&self) -> Option<watch::Receiver<u64>> {
        self.store.append_signal()
    }

    fn rounds(&self) -> watch::Receiver<Rounds> {
        self.rounds.subscribe()
    }

    fn checkpoint(&self) -> futures::future::BoxFuture<'_, Result<u64, ProcessError>> {
        Box::pin(async move { Ok(self.counter(&self.state_table).await?) })
    }

    fn wake(&self) {
        self.wake.notify_one();
    }

    fn woken(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.wake.notified())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default()
    }

    #[test]
    fn pending_deadlines_are_read_again_only_when_one_may_be_due() {
        let lease = Duration::from_secs(60);
        let due_by = |now: i64| move |due_at: DateTime<Utc>| due_at <= at(now);
        let mut next = NextDue::default();
        assert!(next.worth_a_look(due_by(0), lease), "nothing known yet");
        next.listed(Some(at(100)));
        assert!(!next.worth_a_look(due_by(99), lease));
        assert!(next.worth_a_look(due_by(100), lease));
        next.scheduled(Some(at(50)));
        assert!(
            next.worth_a_look(due_by(50), lease),
            "an earlier one was scheduled"
        );
        next.listed(None);
        assert!(!next.worth_a_look(due_by(1_000_000), lease), "none pending");
        next.scheduled(Some(at(7)));
        assert!(next.worth_a_look(due_by(7), lease));
        next.forget();
        next.scheduled(Some(at(7)));
        assert!(next.worth_a_look(due_by(0), lease), "forgotten: read again");
        next.listed(None);
        assert!(
            next.worth_a_look(due_by(0), Duration::ZERO),
            "read again after a lease's time"
        );
    }
}
