//! Rebuilding a projection from position 1 into a new generation, blue/green: the live
//! generation keeps serving queries until the new one has caught up and is swapped in.

use std::time::{Duration, Instant};

use crate::error::ProjectionError;
use crate::read::batch::ReadAhead;
use crate::read::store::ReadStore;
use crate::read::swap::{round, Round};
use crate::read::{table_of, Projections};

/// How far a rebuild has come.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildProgress {
    /// The projection.
    pub projection: String,
    /// The generation being built.
    pub generation: u32,
    /// The position read up to.
    pub position: u64,
    /// The head when the rebuild last looked.
    pub head: u64,
    /// Events read so far.
    pub events: u64,
    /// Time since the rebuild started.
    pub elapsed: Duration,
}

impl RebuildProgress {
    /// Events read per second so far.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.events as f64 / seconds
        } else {
            0.0
        }
    }

    /// The share of the log done, from 0 to 1.
    pub fn fraction(&self) -> f64 {
        if self.head == 0 {
            1.0
        } else {
            (self.position as f64 / self.head as f64).min(1.0)
        }
    }

    /// Time left at the current rate, if it can be told.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        let left = self.head.saturating_sub(self.position) as f64;
        (rate > 0.0).then(|| Duration::from_secs_f64(left / rate))
    }
}

/// Rebuilds projection `name` of `projections` into a new generation, calling `on_progress`
/// after every batch, and swaps it in when it has caught up. Queries keep reading the old
/// generation until then. Runs in the caller's task; a running daemon that holds the
/// projection keeps going and sees the new generation.
pub async fn rebuild(
    store: &dyn ReadStore,
    projections: &Projections,
    name: &str,
    mut on_progress: impl FnMut(&RebuildProgress),
) -> Result<RebuildProgress, ProjectionError> {
    let Some(projection) = projections.get(name) else {
        return Err(ProjectionError::NotRegistered(name.to_owned()));
    };
    let generation = store
        .generations(name)
        .await?
        .iter()
        .map(|state| state.generation)
        .max()
        .unwrap_or(0)
        + 1;
    let table = table_of(&**projection, generation);
    let mut checkpoint = store
        .create_generation(&table, projection.version())
        .await?
        .checkpoint;
    let started = Instant::now();
    let mut progress = RebuildProgress {
        projection: name.to_owned(),
        generation,
        position: checkpoint.saturating_sub(1),
        head: store.head_position().await?,
        events: 0,
        elapsed: Duration::ZERO,
    };
    on_progress(&progress);
    let mut ahead = ReadAhead::default();
    loop {
        match round(store, &**projection, &table, checkpoint, &mut ahead).await {
            Ok(Round::Advanced {
                checkpoint: next,
                events,
            }) => {
                checkpoint = next;
                progress.position = next.saturating_sub(1);
                progress.events += events as u64;
            }
            // Caught up and swapped in, with what came in meanwhile.
            Ok(Round::Swapped {
                checkpoint: next,
                events,
            }) => {
                progress.position = next.saturating_sub(1);
                progress.events += events as u64;
                break;
            }
            Ok(Round::Stopped(stopped)) => {
                return Err(ProjectionError::Stopped {
                    projection: name.to_owned(),
                    position: stopped.position,
                    error: stopped.error,
                })
            }
            // A daemon applied this batch first: carry on from where it got.
            Err(crate::StoreError::CheckpointMoved {
                actual: Some(actual),
                ..
            }) => checkpoint = actual,
            Err(error) => return Err(error.into()),
        }
        progress.head = progress.head.max(progress.position);
        progress.elapsed = started.elapsed();
        on_progress(&progress);
    }
    crate::read::daemon::publish_swapped(store, &**projection, generation).await;
    progress.head = store.head_position().await?.max(progress.position);
    progress.elapsed = started.elapsed();
    on_progress(&progress);
    Ok(progress)
}
