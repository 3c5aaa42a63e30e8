//! The end of a rebuild: the new generation swapped in for the live one.
//!
//! An async projection's live generation is written by the daemon from its checkpoint, so a
//! plain promotion loses nothing: the daemon goes on from the new generation's checkpoint.
//! An inline projection's live generation is written by commands, in their append's
//! transaction, with no checkpoint: an event appended after the rebuild's last read but
//! before the swap would be in the old generation only. So for an inline projection the
//! swap takes its transaction's turn against those commands
//! ([`ReadTx::promote`](crate::ReadTx::promote)), applies the events that came since the
//! rebuild's last read, and swaps, all in that one transaction.

use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::read::batch::{apply_in, step, ErasedProjection, ReadAhead, Step, BATCH_SIZE};
use crate::read::store::{DocumentTable, ReadStore};

/// The most events a swap applies while commands that write the projection inline wait for
/// it. More than that came in since the rebuild caught up: it catches up again first, so
/// commands never wait for more than one short batch.
const SWAP_BATCH_SIZE: usize = 200;

/// How long a rebuild waits before catching up again when a swap found too many events: on
/// PostgreSQL they may be committed but held back from read-all by a long transaction, which
/// catching up again at once would not get past.
const NOT_YET_PAUSE: Duration = Duration::from_millis(20);

/// What one round of a rebuild did.
#[derive(Debug)]
pub(crate) enum Round {
    /// A batch was applied (or nothing changed); the checkpoint is now here.
    Advanced { checkpoint: u64, events: usize },
    /// The generation is live, read up to `checkpoint`; `events` read this round.
    Swapped { checkpoint: u64, events: usize },
    /// The projection stopped at an event it could not apply.
    Stopped(crate::read::Stopped),
}

/// One round of a rebuild of `table` from `checkpoint`: a batch, then, once a batch has
/// found the end of the log, the swap. Not only when a read finds nothing: under steady
/// writes each batch waits its turn long enough for a few more events to come, and the swap
/// takes those in.
pub(crate) async fn round(
    store: &dyn ReadStore,
    projection: &dyn ErasedProjection,
    table: &DocumentTable,
    checkpoint: u64,
    ahead: &mut ReadAhead,
) -> Result<Round, StoreError> {
    let (checkpoint, read) = match step(store, projection, table, checkpoint, ahead).await? {
        Step::Advanced { checkpoint, events } if events >= BATCH_SIZE => {
            return Ok(Round::Advanced { checkpoint, events })
        }
        Step::Advanced { checkpoint, events } => (checkpoint, events),
        Step::CaughtUp => (checkpoint, 0),
        Step::Stopped(stopped) => return Ok(Round::Stopped(stopped)),
    };
    Ok(match swap_in(store, projection, table, checkpoint).await? {
        Swap::Done { checkpoint, events } => Round::Swapped {
            checkpoint,
            events: read + events,
        },
        Swap::NotYet { checkpoint } => Round::Advanced {
            checkpoint,
            events: read,
        },
    })
}

/// What a swap did.
#[derive(Debug)]
enum Swap {
    /// The generation is live, read up to `checkpoint`, with `events` applied in the swap.
    Done { checkpoint: u64, events: usize },
    /// Nothing changed: catch up from `checkpoint` first, then swap again.
    NotYet { checkpoint: u64 },
}

/// Swaps `table`'s generation in for `projection`'s live one, the rebuild having caught up
/// to `checkpoint`.
async fn swap_in(
    store: &dyn ReadStore,
    projection: &dyn ErasedProjection,
    table: &DocumentTable,
    checkpoint: u64,
) -> Result<Swap, StoreError> {
    if !projection.inline() {
        store.promote(table).await?;
        return Ok(Swap::Done {
            checkpoint,
            events: 0,
        });
    }
    let mut tx = store.begin().await?;
    // From here until the commit, commands writing the projection inline wait (or, on the
    // memory store, this commit fails if one committed after the read below).
    tx.promote(table).await?;
    let locked = Instant::now();
    let events = tx.read_all(checkpoint, SWAP_BATCH_SIZE + 1).await?;
    if events.len() > SWAP_BATCH_SIZE {
        // Dropping the transaction rolls it back and lets the commands go on.
        drop(tx);
        tokio::time::sleep(NOT_YET_PAUSE).await;
        return Ok(Swap::NotYet { checkpoint });
    }
    let mut next = checkpoint;
    if !events.is_empty() {
        match apply_in(store, &mut *tx, projection, table, checkpoint, &events).await {
            Ok(Step::Advanced { checkpoint, .. }) => next = checkpoint,
            // Not swapped: the rebuild's next batch stops at the same event and says so.
            Ok(Step::Stopped(_)) | Ok(Step::CaughtUp) => return Ok(Swap::NotYet { checkpoint }),
            Err(error) => return not_yet_or(error),
        }
    }
    if let Err(error) = tx.commit().await {
        return not_yet_or(error);
    }
    tracing::debug!(
        projection = projection.name(),
        generation = table.generation,
        events = events.len(),
        held = ?locked.elapsed(),
        "swapped in the rebuilt generation of an inline projection"
    );
    Ok(Swap::Done {
        checkpoint: next,
        events: events.len(),
    })
}

/// A checkpoint found elsewhere (another worker's batch, or a memory store refusing a swap
/// that events outran) means: catch up from there. Anything else is the rebuild's error.
fn not_yet_or(error: StoreError) -> Result<Swap, StoreError> {
    match error {
        StoreError::CheckpointMoved {
            actual: Some(actual),
            ..
        } => Ok(Swap::NotYet { checkpoint: actual }),
        error => Err(error),
    }
}
