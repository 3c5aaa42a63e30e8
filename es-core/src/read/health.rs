//! Health: where each projection stands against the head of the log.

use std::fmt;

use crate::error::StoreError;
use crate::read::store::{GenerationState, GenerationStatus, ReadStore, Stopped};
use crate::read::Projections;

/// What a projection is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthState {
    /// Known only from the store (no daemon in this process runs it).
    Unknown,
    /// The daemon is starting it.
    Starting,
    /// Applying batches.
    Running,
    /// Has applied everything read-all shows; waiting for new events.
    CaughtUp,
    /// Halted at an event under the stop policy.
    Stopped(Stopped),
    /// A rebuild is catching up beside the live generation.
    Rebuilding {
        /// The generation being built.
        generation: u32,
        /// Events read so far (up to this position).
        done: u64,
        /// The head it is catching up with.
        head: u64,
    },
    /// Another process holds it.
    Standby {
        /// The holder.
        holder: String,
    },
    /// The last batch failed on a store error; retrying.
    Failing(String),
    /// Events are committed beyond the checkpoint, but read-all holds them back behind a
    /// long-open transaction.
    HeldBack(crate::store::Blocker),
    /// An inline projection: commands apply it in their append's transaction, so it is never
    /// behind; the daemon only rebuilds it when its code version changed.
    Inline,
}

impl HealthState {
    pub(crate) fn is_unknown(&self) -> bool {
        matches!(self, HealthState::Unknown)
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthState::Unknown => f.write_str("not running here"),
            HealthState::Starting => f.write_str("starting"),
            HealthState::Running => f.write_str("running"),
            HealthState::CaughtUp => f.write_str("caught up"),
            HealthState::Stopped(stopped) => {
                write!(
                    f,
                    "stopped at position {}: {}",
                    stopped.position, stopped.error
                )
            }
            HealthState::Rebuilding {
                generation,
                done,
                head,
            } => write!(f, "rebuilding generation {generation}: {done} of {head}"),
            HealthState::Standby { holder } => write!(f, "standby (held by {holder})"),
            HealthState::Failing(error) => write!(f, "retrying after: {error}"),
            HealthState::HeldBack(blocker) => write!(f, "held back by a {blocker}"),
            HealthState::Inline => f.write_str("inline (applied by every command)"),
        }
    }
}

/// Where one projection stands.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionHealth {
    /// The projection.
    pub name: String,
    /// Its live generation.
    pub generation: u32,
    /// The version that generation was built by.
    pub version: String,
    /// The next position it will read.
    pub checkpoint: u64,
    /// The head of the log.
    pub head: u64,
    /// Events up to the head it has not applied (positions may not be dense, so this is an
    /// upper bound).
    pub lag_events: u64,
    /// How long ago the oldest event it has not applied was recorded (0 when caught up).
    pub lag_seconds: f64,
    /// What it is doing.
    pub state: HealthState,
    /// The process holding its lease, if any.
    pub holder: Option<String>,
    /// How many events it set aside.
    pub dead_letters: usize,
}

/// The health of every projection of `projections`, read from the store: usable from any
/// process, e.g. a `status` command while the daemon runs elsewhere.
pub async fn health(
    store: &dyn ReadStore,
    projections: &Projections,
) -> Result<Vec<ProjectionHealth>, StoreError> {
    let head = store.head_position().await?;
    let mut report = Vec::new();
    for projection in projections.entries() {
        let name = projection.name();
        let generations = store.generations(name).await?;
        let Some(live) = generations
            .iter()
            .find(|state| state.status == GenerationStatus::Live)
        else {
            report.push(ProjectionHealth {
                name: name.to_owned(),
                generation: 0,
                version: projection.version().to_owned(),
                checkpoint: 1,
                head,
                lag_events: head,
                lag_seconds: 0.0,
                state: HealthState::Unknown,
                holder: None,
                dead_letters: 0,
            });
            continue;
        };
        let building = generations
            .iter()
            .find(|state| state.status == GenerationStatus::Building);
        if projection.inline() {
            report.push(inline_health(store, name, live, building, head).await?);
            continue;
        }
        let oldest_unapplied = store.read_all(live.checkpoint, 1).await?;
        let lag_seconds = oldest_unapplied.first().map_or(0.0, |event| {
            (chrono::Utc::now() - event.recorded_at)
                .to_std()
                .map_or(0.0, |lag| lag.as_secs_f64())
        });
        let held_back = if oldest_unapplied.is_empty() && live.checkpoint <= head {
            store.read_all_blocker().await?
        } else {
            None
        };
        let state = match (&live.stopped, building) {
            (Some(stopped), _) => HealthState::Stopped(stopped.clone()),
            (None, Some(building)) => HealthState::Rebuilding {
                generation: building.generation,
                done: building.checkpoint.saturating_sub(1),
                head,
            },
            (None, None) => match held_back {
                Some(blocker) => HealthState::HeldBack(blocker),
                None if live.checkpoint > head => HealthState::CaughtUp,
                None => HealthState::Unknown,
            },
        };
        report.push(ProjectionHealth {
            name: name.to_owned(),
            generation: live.generation,
            version: live.version.clone(),
            checkpoint: live.checkpoint,
            head,
            lag_events: (head + 1).saturating_sub(live.checkpoint),
            lag_seconds,
            state,
            holder: store.lease_holder(name).await?,
            dead_letters: store.dead_letters(name).await?.len(),
        });
    }
    Ok(report)
}

/// An inline projection's health: its live generation has every committed event (each
/// command applied its own, in its transaction; the generation was complete when it went
/// live), so it is at the head; a building generation is a rebuild for a new code version.
async fn inline_health(
    store: &dyn ReadStore,
    name: &str,
    live: &GenerationState,
    building: Option<&GenerationState>,
    head: u64,
) -> Result<ProjectionHealth, StoreError> {
    let state = match building {
        Some(building) => match &building.stopped {
            Some(stopped) => HealthState::Stopped(stopped.clone()),
            None => HealthState::Rebuilding {
                generation: building.generation,
                done: building.checkpoint.saturating_sub(1),
                head,
            },
        },
        None => HealthState::Inline,
    };
    Ok(ProjectionHealth {
        name: name.to_owned(),
        generation: live.generation,
        version: live.version.clone(),
        checkpoint: head + 1,
        head,
        lag_events: 0,
        lag_seconds: 0.0,
        state,
        holder: store.lease_holder(name).await?,
        dead_letters: store.dead_letters(name).await?.len(),
    })
}
