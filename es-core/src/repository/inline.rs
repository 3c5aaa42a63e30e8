//! Inline projections: applied to the live generation in the transaction of each append.
//!
//! The live generation is read inside that transaction with [`ReadTx::live_generation`],
//! never before it: a rebuild's swap and the append then take turns (or, on the memory
//! store, the later of the two fails and starts over), so an event is never written to a
//! generation that has just been swapped out, and a swap never misses an event that was.

use std::sync::Arc;

use uuid::Uuid;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::read::{live_table, table_of, Projections, ReadStore};
use crate::store::ExpectedVersion;
use crate::stream::StreamId;

/// How many times an append starts over when the generation it wrote was swapped out
/// before it could commit (only a store that never waits, the memory store, does that) or
/// vanished. Each time, a rebuild completed a swap: more than a few in a row would take
/// rebuilds back to back faster than a command.
const ATTEMPTS: u32 = 10;

/// Projections a repository applies in the transaction of each append.
pub(crate) struct Inline {
    store: Arc<dyn ReadStore>,
    projections: Projections,
}

/// An inline projection refused one of the append's events; nothing was appended.
pub(crate) struct Refused {
    pub(crate) projection: &'static str,
    pub(crate) version: u64,
    pub(crate) event_name: String,
    pub(crate) error: String,
}

/// How one attempt ended.
enum Attempt {
    /// The store's answer, to pass on.
    Ended(Result<Vec<RecordedEvent>, StoreError>),
    Refused(Refused),
    /// Nothing was appended; try again (this is why, should the attempts run out).
    Again(StoreError),
}

impl Inline {
    /// The inline projections among `projections`, or `None` when there are none.
    pub(crate) fn new(store: Arc<dyn ReadStore>, projections: Projections) -> Option<Self> {
        let projections = projections.only_inline();
        (!projections.names().is_empty()).then_some(Inline { store, projections })
    }

    /// Appends `events` to `stream` and applies them to every inline projection's live
    /// generation, in one transaction. The outer error is a projection's refusal (nothing
    /// appended); the inner result is the store's, for the repository's retry loop to read.
    pub(crate) async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        first_event_id: Option<Uuid>,
    ) -> Result<Result<Vec<RecordedEvent>, StoreError>, Refused> {
        let mut attempt = 1;
        loop {
            let this_attempt = self
                .try_append(stream, expected, events.clone(), first_event_id)
                .await;
            match this_attempt {
                Attempt::Ended(result) => return Ok(result),
                Attempt::Refused(refused) => return Err(refused),
                Attempt::Again(error) if attempt >= ATTEMPTS => return Ok(Err(error)),
                Attempt::Again(error) => {
                    tracing::debug!(%error, attempt, "an inline projection's generation was swapped during the append; starting over");
                    attempt += 1;
                }
            }
        }
    }

    async fn try_append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        first_event_id: Option<Uuid>,
    ) -> Attempt {
        let mut tx = match self.store.begin().await {
            Ok(tx) => tx,
            Err(error) => return Attempt::Ended(Err(error)),
        };
        // First, so that a swap waits for this transaction or this one for the swap
        // (in name order, the same in every transaction, so two never wait for each other).
        let mut tables = Vec::with_capacity(self.projections.entries().len());
        for projection in self.projections.entries() {
            match tx.live_generation(projection.name()).await {
                Ok(Some(generation)) => tables.push(table_of(&**projection, generation)),
                Ok(None) => {
                    // Made outside the transaction: on SQLite it holds the one writer
                    // connection, which making a generation needs too.
                    drop(tx);
                    return match live_table(&*self.store, &**projection).await {
                        Ok(table) => Attempt::Again(gone(table.projection, table.generation)),
                        Err(error) => Attempt::Ended(Err(error)),
                    };
                }
                Err(error) => return Attempt::Ended(Err(error)),
            }
        }
        let recorded = match tx.append(stream, expected, events).await {
            Ok(recorded) => recorded,
            Err(error) => return Attempt::Ended(Err(error)),
        };
        // Another run of this command appended these already, and applied them then.
        if recorded.first().map(|record| record.metadata.event_id) != first_event_id {
            return Attempt::Ended(Ok(recorded));
        }
        for (projection, table) in self.projections.entries().iter().zip(&tables) {
            let outcome = match projection
                .apply_batch(&*self.store, &mut *tx, table, &recorded)
                .await
            {
                Ok(outcome) => outcome,
                Err(error) => return again_or_ended(error),
            };
            if let Some((index, error)) = outcome.refusal() {
                // Dropping the transaction rolls the append back with the documents.
                let event = recorded.get(index);
                return Attempt::Refused(Refused {
                    projection: projection.name(),
                    version: event.map_or(0, |event| event.version),
                    event_name: event
                        .map_or_else(String::new, |event| event.event_name.to_string()),
                    error,
                });
            }
        }
        match tx.commit().await {
            Ok(()) => Attempt::Ended(Ok(recorded)),
            Err(error) => again_or_ended(error),
        }
    }
}

/// A generation that is gone (`CheckpointMoved` without a checkpoint) was swapped out
/// under the transaction, which appended nothing: start over. Anything else is the answer.
fn again_or_ended(error: StoreError) -> Attempt {
    match error {
        StoreError::CheckpointMoved { actual: None, .. } => Attempt::Again(error),
        error => Attempt::Ended(Err(error)),
    }
}

fn gone(projection: String, generation: u32) -> StoreError {
    StoreError::CheckpointMoved {
        projection,
        generation,
        expected: 0,
        actual: None,
    }
}
