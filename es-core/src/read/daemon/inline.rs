//! The daemon's part in an inline projection: rebuilding it when it needs one.
//!
//! Commands apply an inline projection's live generation in their own transactions, so the
//! daemon never feeds it. It watches for a generation of this code's version building (the
//! projection's code version changed, or it was first made on a log that already had
//! events, perhaps by a command in another process a moment ago) and rebuilds it: reads the
//! log into it and swaps it in with the events that came meanwhile, taking its turn against
//! the commands writing the live one ([`round`](crate::read::swap::round)). Under the
//! projection's lease, like every daemon task, so one process rebuilds while the others
//! stand by; watching needs no lease.

use std::sync::Arc;

use super::{publish_swapped, Shared};
use crate::error::StoreError;
use crate::read::background::{Pacer, Pause};
use crate::read::batch::ReadAhead;
use crate::read::health::HealthState;
use crate::read::store::{GenerationState, GenerationStatus, Stopped};
use crate::read::swap::{round, Round};
use crate::read::{table_of, ErasedProjection};

/// What one round of an inline projection's rebuild came to.
enum Outcome {
    /// A batch was applied, or the rebuild swapped in; there may be more at once.
    Going,
    /// No generation of this code's version is building: nothing to do.
    Idle,
    /// Another process holds the lease.
    Standby,
    /// Halted at an event under the stop policy.
    Stopped(Stopped),
}

pub(super) struct InlineRebuild {
    pub(super) shared: Arc<Shared>,
    pub(super) projection: Arc<dyn ErasedProjection>,
    pub(super) pacer: Pacer,
    pub(super) ahead: ReadAhead,
    /// Whether a stop recorded on the building generation is tried again (at start, and
    /// after a restart) rather than reported.
    retry_stopped: bool,
}

impl InlineRebuild {
    pub(super) fn new(
        shared: Arc<Shared>,
        projection: Arc<dyn ErasedProjection>,
        pacer: Pacer,
    ) -> Self {
        InlineRebuild {
            shared,
            projection,
            pacer,
            ahead: ReadAhead::default(),
            retry_stopped: true,
        }
    }

    pub(super) async fn run(mut self) {
        let name = self.projection.name();
        let mut restarts = self.shared.restarts[name].subscribe();
        while !self.pacer.stopping() {
            let pause = match self.round().await {
                Ok(Outcome::Going) => Pause::None,
                Ok(Outcome::Standby) => Pause::Poll,
                Ok(Outcome::Idle) => {
                    self.shared.set_state(name, HealthState::Inline);
                    Pause::Idle
                }
                Ok(Outcome::Stopped(stopped)) => {
                    tracing::error!(projection = name, position = stopped.position, error = %stopped.error, "rebuild of an inline projection stopped; the live generation goes on serving");
                    if self
                        .shared
                        .stopped_until_restart(name, stopped, &mut self.pacer, &mut restarts)
                        .await
                    {
                        self.retry_stopped = true;
                    }
                    Pause::None
                }
                Err(error) => {
                    tracing::warn!(projection = name, %error, "rebuild of an inline projection failed a round; retrying");
                    self.shared.failing(name, &error)
                }
            };
            self.pacer.pause(pause).await;
        }
    }

    async fn round(&mut self) -> Result<Outcome, StoreError> {
        let store = &*self.shared.store;
        let name = self.projection.name();
        let config = &self.shared.config;
        let building_now = |generations: Vec<GenerationState>| {
            generations.into_iter().find(|state| {
                state.status == GenerationStatus::Building
                    && state.version == self.projection.version()
            })
        };
        if building_now(store.generations(name).await?).is_none() {
            return Ok(Outcome::Idle);
        }
        let holder = store
            .acquire_lease(name, &config.holder, config.lease_ttl)
            .await?;
        if holder != config.holder {
            self.shared.set_state(name, HealthState::Standby { holder });
            return Ok(Outcome::Standby);
        }
        // Read again under the lease: the holder before may have swapped it in meanwhile.
        let Some(building) = building_now(store.generations(name).await?) else {
            return Ok(Outcome::Idle);
        };
        let table = table_of(&*self.projection, building.generation);
        if let Some(stopped) = building.stopped {
            if !self.retry_stopped {
                return Ok(Outcome::Stopped(stopped));
            }
            let mut tx = store.begin().await?;
            tx.set_stopped(&table, None).await?;
            tx.commit().await?;
        }
        self.retry_stopped = false;
        match round(
            store,
            &*self.projection,
            &table,
            building.checkpoint,
            &mut self.ahead,
        )
        .await?
        {
            Round::Advanced { checkpoint, .. } => {
                let head = store.head_position().await?;
                self.shared.set_state(
                    name,
                    HealthState::Rebuilding {
                        generation: building.generation,
                        done: checkpoint.saturating_sub(1),
                        head,
                    },
                );
                Ok(Outcome::Going)
            }
            Round::Swapped { .. } => {
                publish_swapped(store, &*self.projection, building.generation).await;
                tracing::info!(
                    projection = name,
                    generation = building.generation,
                    "inline projection rebuilt; it is now the live generation"
                );
                Ok(Outcome::Going)
            }
            Round::Stopped(stopped) => Ok(Outcome::Stopped(stopped)),
        }
    }
}
