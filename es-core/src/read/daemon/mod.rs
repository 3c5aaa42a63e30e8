//! The projection daemon: one task per projection, catching up from its checkpoint in
//! batches, then following new events as they are appended. Inline projections, which
//! commands apply, get a task that only rebuilds one when it needs it (see [`inline`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{ProjectionError, StoreError};
use crate::read::background::{wait_past, Pacer, Pause, Tasks};
use crate::read::batch::{step, ReadAhead, Step};
use crate::read::health::{self, HealthState, ProjectionHealth};
use crate::read::store::{GenerationState, GenerationStatus, ReadStore, Stopped};
use crate::read::{first_live, live_state, table_of, ErasedProjection, Projections};

mod inline;
use inline::InlineRebuild;

/// How a daemon paces itself.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Who this process is, in health output and lease rows; a random id by default.
    pub holder: String,
    /// How long a lease lasts unless renewed; another process takes a projection over at
    /// most this long after its holder died.
    pub lease_ttl: Duration,
    /// How often an idle projection looks for new events when the store cannot signal
    /// appends (and how often a standby process checks whether the lease became free).
    pub poll_interval: Duration,
    /// How long to wait after a store error before trying again.
    pub retry_after: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            holder: format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            lease_ttl: Duration::from_secs(5),
            poll_interval: Duration::from_millis(500),
            retry_after: Duration::from_millis(500),
        }
    }
}

/// Runs every projection of a set against a store, in the background.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use es_core::{Daemon, MemoryStore, Projections};
///
/// let store = Arc::new(MemoryStore::new());
/// let daemon = Daemon::start(store.clone(), Projections::discover()).await?;
/// for projection in daemon.health().await? {
///     println!("{}: checkpoint {}, lag {}", projection.name, projection.checkpoint, projection.lag_events);
/// }
/// daemon.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Daemon {
    shared: Arc<Shared>,
    tasks: Tasks,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn ReadStore>,
    projections: Projections,
    config: DaemonConfig,
    /// Per projection: the live generation's checkpoint, for read-your-writes waits.
    checkpoints: HashMap<&'static str, watch::Sender<u64>>,
    /// Per projection: what its task is doing.
    states: Mutex<HashMap<&'static str, HealthState>>,
    /// Per projection: nudged to make a stopped projection try again.
    restarts: HashMap<&'static str, watch::Sender<u64>>,
}

impl Daemon {
    /// Starts a task per projection with the default [`DaemonConfig`]. Each projection's
    /// tables are created if missing; a projection whose code version differs from its live
    /// generation's starts a blue/green rebuild, serving the old generation until the swap.
    /// That includes inline projections (which commands apply): the daemon rebuilds one
    /// whose version changed, or that was first made on a log that already had events, and
    /// swaps it in while commands go on writing it.
    pub async fn start(
        store: Arc<dyn ReadStore>,
        projections: Projections,
    ) -> Result<Self, ProjectionError> {
        Self::start_with(store, projections, DaemonConfig::default()).await
    }

    /// Starts with an explicit configuration.
    pub async fn start_with(
        store: Arc<dyn ReadStore>,
        projections: Projections,
        config: DaemonConfig,
    ) -> Result<Self, ProjectionError> {
        let mut checkpoints = HashMap::new();
        let mut restarts = HashMap::new();
        let mut states = HashMap::new();
        for projection in projections.entries() {
            if projection.inline() {
                // Commands apply it; its task only rebuilds it when a generation is building.
                let live = prepare(&*store, &**projection).await?;
                states.insert(projection.name(), HealthState::Inline);
                checkpoints.insert(projection.name(), watch::Sender::new(live.checkpoint));
                restarts.insert(projection.name(), watch::Sender::new(0));
                continue;
            }
            if !projection.handles_rollback() {
                return Err(ProjectionError::RollbackUnhandled(
                    projection.name().to_owned(),
                ));
            }
            projection.check()?;
            let live = prepare(&*store, &**projection).await?;
            // SQL projections' views show the live generation (made again in case a swap's
            // process died before it could); a store without SQL refuses them here.
            projection.publish(&*store, live.generation, false).await?;
            checkpoints.insert(projection.name(), watch::Sender::new(live.checkpoint));
            restarts.insert(projection.name(), watch::Sender::new(0));
            states.insert(projection.name(), HealthState::Starting);
        }
        let shared = Arc::new(Shared {
            store,
            projections,
            config,
            checkpoints,
            states: Mutex::new(states),
            restarts,
        });
        let mut tasks = Tasks::default();
        for projection in shared
            .projections
            .entries()
            .iter()
            .filter(|projection| projection.inline())
        {
            let projection = Arc::clone(projection);
            tasks.spawn(|shutdown| {
                let pacer = Pacer::new(
                    shutdown,
                    shared.store.append_signal(),
                    shared.config.poll_interval,
                    shared.config.retry_after,
                );
                InlineRebuild::new(Arc::clone(&shared), projection, pacer).run()
            });
        }
        for projection in shared
            .projections
            .entries()
            .iter()
            .filter(|projection| !projection.inline())
        {
            tasks.spawn(|shutdown| {
                Worker {
                    pacer: Pacer::new(
                        shutdown,
                        shared.store.append_signal(),
                        shared.config.poll_interval,
                        shared.config.retry_after,
                    ),
                    shared: Arc::clone(&shared),
                    projection: Arc::clone(projection),
                    ahead: ReadAhead::default(),
                }
                .run()
            });
        }
        Ok(Daemon { shared, tasks })
    }

    /// For each projection: checkpoint, head, lag in events and seconds, state, and who
    /// holds it.
    pub async fn health(&self) -> Result<Vec<ProjectionHealth>, StoreError> {
        let mut report = health::health(&*self.shared.store, &self.shared.projections).await?;
        let states = self.shared.lock_states();
        for projection in &mut report {
            // What this process's worker knows is fresher than the store, once it has done
            // a round; before that the store's view stands.
            // A stop or a blocking transaction seen in the store says more than "caught up".
            let store_knows_better = matches!(
                projection.state,
                HealthState::Stopped(_) | HealthState::HeldBack(_)
            );
            if let Some(state) = states.get(projection.name.as_str()) {
                // An inline projection the store shows as inline, or rebuilding elsewhere.
                let store_knows_better = store_knows_better || *state == HealthState::Inline;
                if !store_knows_better
                    && (!matches!(state, HealthState::Starting) || projection.state.is_unknown())
                {
                    projection.state = state.clone();
                }
            }
        }
        Ok(report)
    }

    /// Waits until `projection` has applied every event up to and including `position`
    /// (e.g. the position of the last event a command appended), for at most `timeout`.
    /// Returns whether it got there; a stopped projection never does. Works whichever
    /// process holds the projection: when another one does, this one watches the stored
    /// checkpoint.
    pub async fn wait_for(
        &self,
        projection: &str,
        position: u64,
        timeout: Duration,
    ) -> Result<bool, ProjectionError> {
        let Some(sender) = self.shared.checkpoints.get(projection) else {
            return Err(ProjectionError::NotRegistered(projection.to_owned()));
        };
        if self
            .shared
            .projections
            .get(projection)
            .is_some_and(|projection| projection.inline())
        {
            // The command that appended `position` applied it in its own transaction.
            return Ok(true);
        }
        let stored = || async {
            let stored = live_state(&*self.shared.store, projection)
                .await?
                .map_or(0, |state| state.checkpoint);
            // Another process holds the projection: its progress is news to every waiter here.
            sender.send_if_modified(|seen| {
                let newer = stored > *seen;
                if newer {
                    *seen = stored;
                }
                newer
            });
            Ok::<_, StoreError>(stored)
        };
        Ok(wait_past(sender.subscribe(), position, timeout, stored).await?)
    }

    /// Makes a stopped projection try the event it stopped at again (after the cause was
    /// fixed, e.g. a corrupt row repaired).
    pub fn restart(&self, projection: &str) -> Result<(), ProjectionError> {
        let Some(sender) = self.shared.restarts.get(projection) else {
            return Err(ProjectionError::NotRegistered(projection.to_owned()));
        };
        sender.send_modify(|count| *count += 1);
        Ok(())
    }

    /// Stops every task after its current batch and gives up the leases.
    pub async fn shutdown(self) {
        self.tasks.stop().await;
        for projection in self.shared.projections.entries() {
            let _ = self
                .shared
                .store
                .release_lease(projection.name(), &self.shared.config.holder)
                .await;
        }
    }
}

impl Shared {
    fn lock_states(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, HealthState>> {
        // Each write replaces one whole entry; a poisoned lock still holds whole entries.
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_state(&self, projection: &'static str, state: HealthState) {
        self.lock_states().insert(projection, state);
    }

    /// A round failed on a store error: say so, and wait the retry delay.
    fn failing(&self, projection: &'static str, error: &StoreError) -> Pause {
        self.set_state(projection, HealthState::Failing(error.to_string()));
        Pause::Retry
    }

    /// The projection halted at an event: say so, and wait for a restart (or shutdown).
    /// Returns whether it was restarted.
    async fn stopped_until_restart(
        &self,
        projection: &'static str,
        stopped: Stopped,
        pacer: &mut Pacer,
        restarts: &mut watch::Receiver<u64>,
    ) -> bool {
        self.set_state(projection, HealthState::Stopped(stopped));
        pacer.unless_stopped(restarts.changed()).await.is_some()
    }
}

/// Makes sure the projection has a live generation, and a building one when its code
/// version changed. Returns the live generation.
pub(crate) async fn prepare(
    store: &dyn ReadStore,
    projection: &dyn ErasedProjection,
) -> Result<GenerationState, StoreError> {
    let generations = store.generations(projection.name()).await?;
    let live = generations
        .iter()
        .find(|state| state.status == GenerationStatus::Live);
    let Some(live) = live else {
        return first_live(store, projection).await;
    };
    let building = generations
        .iter()
        .find(|state| state.status == GenerationStatus::Building);
    let current_version_exists = generations
        .iter()
        .any(|state| state.version == projection.version());
    if !current_version_exists {
        let next = generations
            .iter()
            .map(|state| state.generation)
            .max()
            .unwrap_or(0)
            + 1;
        tracing::info!(
            projection = projection.name(),
            from = %live.version,
            to = projection.version(),
            generation = next,
            "projection changed: rebuilding it beside the live generation"
        );
        store
            .create_generation(&table_of(projection, next), projection.version())
            .await?;
    } else if let Some(building) = building {
        if building.version != projection.version() {
            // A rebuild for a version this code does not have: drop it by promoting nothing;
            // the live generation is this code's version.
            tracing::warn!(
                projection = projection.name(),
                "a rebuild of another version was in progress; the live generation matches this code"
            );
        }
    }
    Ok(live.clone())
}

/// After a swap: what readers see follows the new live generation. The swap itself is done
/// and checkpointed, so a failure here is logged (the daemon makes the views again when it
/// next starts) rather than undoing it.
pub(crate) async fn publish_swapped(
    store: &dyn ReadStore,
    projection: &dyn ErasedProjection,
    live: u32,
) {
    if let Err(error) = projection.publish(store, live, true).await {
        tracing::warn!(projection = projection.name(), generation = live, %error, "the new live generation is in place, but making what readers see follow it failed");
    }
}

struct Worker {
    shared: Arc<Shared>,
    projection: Arc<dyn ErasedProjection>,
    pacer: Pacer,
    ahead: ReadAhead,
}

impl Worker {
    async fn run(mut self) {
        let name = self.projection.name();
        let mut restarts = self.shared.restarts[name].subscribe();
        let mut cleared_stop = false;
        while !self.pacer.stopping() {
            let pause = match self.work(&mut cleared_stop).await {
                Ok(Some(Step::Advanced { .. })) => Pause::None,
                Ok(Some(Step::Stopped(stopped))) => {
                    tracing::error!(projection = name, position = stopped.position, error = %stopped.error, "projection stopped");
                    // The checkpoint stays at the event.
                    if self
                        .shared
                        .stopped_until_restart(name, stopped, &mut self.pacer, &mut restarts)
                        .await
                    {
                        cleared_stop = false;
                    }
                    Pause::None
                }
                Ok(Some(Step::CaughtUp)) | Ok(None) => Pause::Poll,
                Err(error) => {
                    tracing::warn!(projection = name, %error, "projection batch failed; retrying");
                    self.shared.failing(name, &error)
                }
            };
            self.pacer.pause(pause).await;
        }
    }

    /// One round: hold the lease, then apply one batch to the generation being built (if a
    /// rebuild runs) or the live one. `None`: another process holds the lease.
    async fn work(&mut self, cleared_stop: &mut bool) -> Result<Option<Step>, StoreError> {
        let store = &*self.shared.store;
        let name = self.projection.name();
        let config = &self.shared.config;
        let holder = store
            .acquire_lease(name, &config.holder, config.lease_ttl)
            .await?;
        if holder != config.holder {
            self.shared.set_state(name, HealthState::Standby { holder });
            return Ok(None);
        }
        let generations = store.generations(name).await?;
        let target = generations
            .iter()
            .find(|state| {
                state.status == GenerationStatus::Building
                    && state.version == self.projection.version()
            })
            .or_else(|| {
                generations
                    .iter()
                    .find(|state| state.status == GenerationStatus::Live)
            });
        let Some(target) = target else {
            // Someone dropped the tables under us: make them again.
            prepare(store, &*self.projection).await?;
            return Ok(None);
        };
        let table = table_of(&*self.projection, target.generation);
        if let Some(stopped) = &target.stopped {
            if *cleared_stop {
                return Ok(Some(Step::Stopped(stopped.clone())));
            }
            // Starting, or restarted: try the event again.
            let mut tx = store.begin().await?;
            tx.set_stopped(&table, None).await?;
            tx.commit().await?;
            *cleared_stop = true;
        }
        let result = step(
            store,
            &*self.projection,
            &table,
            target.checkpoint,
            &mut self.ahead,
        )
        .await?;
        let building = target.status == GenerationStatus::Building;
        match &result {
            Step::Advanced { checkpoint, .. } => {
                if building {
                    let head = store.head_position().await?;
                    self.shared.set_state(
                        name,
                        HealthState::Rebuilding {
                            generation: target.generation,
                            done: checkpoint.saturating_sub(1),
                            head,
                        },
                    );
                } else {
                    self.shared.checkpoints[name].send_replace(*checkpoint);
                    self.shared.set_state(name, HealthState::Running);
                }
            }
            Step::CaughtUp if building => {
                store.promote(&table).await?;
                publish_swapped(store, &*self.projection, target.generation).await;
                tracing::info!(
                    projection = name,
                    generation = target.generation,
                    "rebuild caught up; it is now the live generation"
                );
                self.shared.checkpoints[name].send_replace(target.checkpoint);
                return Ok(Some(Step::Advanced {
                    checkpoint: target.checkpoint,
                    events: 0,
                }));
            }
            Step::CaughtUp => {
                self.shared.checkpoints[name].send_replace(target.checkpoint);
                self.shared.set_state(name, HealthState::CaughtUp);
            }
            Step::Stopped(_) => {}
        }
        Ok(Some(result))
    }
}
