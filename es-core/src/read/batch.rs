//! Applying one batch of events to one projection inside one read transaction.

use std::collections::{BTreeMap, HashMap};

use futures::future::BoxFuture;
use futures::TryStreamExt;

use crate::envelope::{Payload, RecordedEvent};
use crate::error::{CorruptRecord, Corruption, ProjectionError, StoreError};
use crate::event::Event;
use crate::history::RolledBack;
use crate::read::projection::{OnFailure, Projection};
use crate::read::store::{DocumentTable, DocumentWrite, ReadTx};
use crate::read::Docs;
use crate::replay::surviving_events;
use crate::store::{EventLog, EventLogExt};

/// What applying a batch did besides writing documents.
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct BatchOutcome {
    /// Events set aside under the skip policy: index in the batch, error.
    pub(crate) skipped: BTreeMap<usize, String>,
    /// The event the projection stopped at under the stop policy: index in the batch, error.
    pub(crate) stopped: Option<(usize, String)>,
}

impl BatchOutcome {
    /// The first event the projection could not apply, whatever its policy: for inline
    /// projections, which refuse the command rather than stop or skip.
    pub(crate) fn refusal(self) -> Option<(usize, String)> {
        self.stopped.or_else(|| self.skipped.into_iter().next())
    }
}

/// A projection with its type erased, so projections of different document types can sit
/// in one list. Implemented for every [`Projection`]; not for use outside the runtime.
pub trait ErasedProjection: Send + Sync {
    /// [`Projection::NAME`].
    fn name(&self) -> &'static str;
    /// [`Projection::VERSION`].
    fn version(&self) -> &'static str;
    /// [`Projection::EVENTS`].
    fn events(&self) -> &'static [&'static str];
    /// [`Projection::INDEXES`].
    fn indexes(&self) -> &'static [&'static str];
    /// [`Projection::ON_FAILURE`].
    fn on_failure(&self) -> OnFailure;
    /// [`Projection::INLINE`].
    fn inline(&self) -> bool;

    /// Applies `events` (the whole batch; events it does not handle are passed over) and
    /// writes the documents they change into `tx`.
    #[doc(hidden)]
    fn apply_batch<'a>(
        &'a self,
        log: &'a dyn EventLog,
        tx: &'a mut (dyn ReadTx + 'a),
        table: &'a DocumentTable,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<BatchOutcome, StoreError>>;

    /// Whether a rollback marker leaves its documents right: the runtime rebuilds per-stream
    /// documents, other projections must handle the marker.
    fn handles_rollback(&self) -> bool;

    /// What the daemon checks before it starts the projection, besides rollbacks.
    fn check(&self) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// Makes generation `live` what readers see (and, with `retire_older`, drops what older
    /// generations left behind): for SQL projections, their views and tables. Documents
    /// need nothing: the store's `promote` does it all.
    fn publish<'a>(
        &'a self,
        store: &'a dyn crate::read::ReadStore,
        live: u32,
        retire_older: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (store, live, retire_older);
        Box::pin(async { Ok(()) })
    }
}

/// The [`ErasedProjection`] getters that read the constants every kind of projection
/// (documents, SQL) declares alike.
macro_rules! declared_constants {
    ($projection:ident) => {
        fn name(&self) -> &'static str {
            $projection::NAME
        }

        fn version(&self) -> &'static str {
            $projection::VERSION
        }

        fn events(&self) -> &'static [&'static str] {
            $projection::EVENTS
        }

        fn on_failure(&self) -> OnFailure {
            $projection::ON_FAILURE
        }
    };
}
pub(crate) use declared_constants;

impl<P: Projection> ErasedProjection for P {
    declared_constants!(P);

    fn indexes(&self) -> &'static [&'static str] {
        P::INDEXES
    }

    fn inline(&self) -> bool {
        P::INLINE
    }

    fn apply_batch<'a>(
        &'a self,
        log: &'a dyn EventLog,
        tx: &'a mut (dyn ReadTx + 'a),
        table: &'a DocumentTable,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<BatchOutcome, StoreError>> {
        Box::pin(apply_batch(self, log, tx, table, events))
    }

    fn handles_rollback(&self) -> bool {
        P::PER_STREAM || P::EVENTS.contains(&RolledBack::NAME)
    }
}

/// Runs the batch against the documents loaded so far until a pass needs no document it
/// does not have (see [`Docs`]); failures set events aside or stop the batch at them, each
/// followed by a clean pass without the failed event's partial changes.
async fn apply_batch<P: Projection>(
    projection: &P,
    log: &dyn EventLog,
    tx: &mut (dyn ReadTx + '_),
    table: &DocumentTable,
    events: &[RecordedEvent],
) -> Result<BatchOutcome, StoreError> {
    let survivors = rolled_back_streams::<P>(log, events).await?;
    let mut loaded: HashMap<String, Option<P::Document>> = HashMap::new();
    if P::PER_STREAM {
        // Per-stream documents are keyed by their stream's aggregate id: load those up
        // front, so the first pass usually needs nothing more and is the only one.
        let mut keys: Vec<String> = events
            .iter()
            .filter(|event| P::EVENTS.contains(&&*event.event_name))
            .map(|event| event.aggregate_id().to_owned())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        load_into::<P>(tx, table, keys, &mut loaded).await?;
    }
    let mut outcome = BatchOutcome::default();
    loop {
        let end = outcome.stopped.as_ref().map_or(events.len(), |(at, _)| *at);
        let mut docs = Docs::new(&loaded);
        let mut failure = None;
        for (index, event) in events[..end].iter().enumerate() {
            if outcome.skipped.contains_key(&index) {
                continue;
            }
            let applied = match survivors.get(&index) {
                Some(surviving) => rebuild_document(projection, event, surviving, &mut docs),
                None if P::EVENTS.contains(&&*event.event_name) => {
                    projection.apply(event, &mut docs)
                }
                None => Ok(()),
            };
            if let Err(error) = applied {
                failure = Some((index, error));
                break;
            }
        }
        let missing = docs.take_missing();
        if !missing.is_empty() {
            // A failure in a pass that lacked documents may be caused by the lack: load and
            // run again before believing it.
            load_into::<P>(tx, table, missing.into_iter().collect(), &mut loaded).await?;
            continue;
        }
        if let Some((index, error)) = failure {
            let error = error.to_string();
            match P::ON_FAILURE {
                OnFailure::Skip => {
                    outcome.skipped.insert(index, error);
                }
                OnFailure::Stop => outcome.stopped = Some((index, error)),
            }
            continue;
        }
        let writes = docs
            .into_changes()
            .into_iter()
            .map(|(key, doc)| encode_write::<P>(key, doc))
            .collect::<Result<Vec<_>, _>>()?;
        if !writes.is_empty() {
            tx.write(table, writes).await?;
        }
        return Ok(outcome);
    }
}

/// Loads the documents under `keys` into `loaded` (`None` for a key without one).
async fn load_into<P: Projection>(
    tx: &mut (dyn ReadTx + '_),
    table: &DocumentTable,
    keys: Vec<String>,
    loaded: &mut HashMap<String, Option<P::Document>>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let rows = tx.load(table, &keys).await?;
    for key in keys {
        loaded.insert(key, None);
    }
    for row in rows {
        let doc = decode_document::<P>(&row.key, &row.body)?;
        loaded.insert(row.key, Some(doc));
    }
    Ok(())
}

/// For a per-stream projection that does not handle rollback markers itself: for each marker
/// in the batch (by index), the events of its stream that survive it, in order, or why they
/// cannot be known (a marker that does not decode: a failure of that event).
async fn rolled_back_streams<P: Projection>(
    log: &dyn EventLog,
    events: &[RecordedEvent],
) -> Result<HashMap<usize, Result<Vec<RecordedEvent>, ProjectionError>>, StoreError> {
    let mut survivors = HashMap::new();
    if !P::PER_STREAM || P::EVENTS.contains(&RolledBack::NAME) {
        return Ok(survivors);
    }
    for (index, event) in events.iter().enumerate() {
        if &*event.event_name != RolledBack::NAME {
            continue;
        }
        let to_version = match marker_target::<P>(event) {
            Ok(to_version) => to_version,
            Err(error) => {
                survivors.insert(index, Err(error));
                continue;
            }
        };
        // The state the marker returns to is made of the events up to `to_version`.
        let history: Vec<RecordedEvent> = log
            .stream_events(&event.stream, 1)
            .try_take_while(|record| std::future::ready(Ok(record.version <= to_version)))
            .try_collect()
            .await?;
        survivors.insert(index, surviving_records::<P>(history));
    }
    Ok(survivors)
}

/// Where a rollback marker returns to.
fn marker_target<P: Projection>(marker: &RecordedEvent) -> Result<u64, ProjectionError> {
    RolledBack::decode(marker.schema_version, &marker.event)
        .map(|decoded| decoded.to_version)
        .map_err(|failure| ProjectionError::Decode {
            projection: P::NAME,
            source: failure.at_record(marker),
        })
}

/// The records of a stream's prefix that survive its rollback markers, in order.
fn surviving_records<P: Projection>(
    history: Vec<RecordedEvent>,
) -> Result<Vec<RecordedEvent>, ProjectionError> {
    let markers = history
        .iter()
        .map(|record| {
            if &*record.event_name == RolledBack::NAME {
                marker_target::<P>(record).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let chain = surviving_events(&markers, 0).map_err(|_| {
        ProjectionError::Store(CorruptRecord::new(
            history
                .first()
                .map_or_else(String::new, |record| record.stream.to_string()),
            None,
            Some(RolledBack::NAME),
            Corruption::RollbackForward { to_version: 0 },
        ))
    })?;
    let mut kept: Vec<Option<RecordedEvent>> = history.into_iter().map(Some).collect();
    Ok(chain
        .into_iter()
        .filter_map(|index| kept[index].take())
        .collect())
}

/// Applies `projection` to `events` in memory, from no documents at all, and returns the
/// documents it ends with: what its tables would hold after exactly these events. For time
/// travel (a read model as it was at a past moment) and tests. A per-stream projection's
/// rollback markers are resolved from the events given.
pub fn project_in_memory<P: Projection>(
    projection: &P,
    events: &[RecordedEvent],
) -> Result<std::collections::BTreeMap<String, P::Document>, ProjectionError> {
    let mut docs = Docs::complete();
    let resolve_markers = P::PER_STREAM && !P::EVENTS.contains(&RolledBack::NAME);
    for (index, event) in events.iter().enumerate() {
        if resolve_markers && &*event.event_name == RolledBack::NAME {
            let to_version = marker_target::<P>(event)?;
            let history: Vec<RecordedEvent> = events[..index]
                .iter()
                .filter(|earlier| earlier.stream == event.stream && earlier.version <= to_version)
                .cloned()
                .collect();
            let surviving = surviving_records::<P>(history);
            rebuild_document(projection, event, &surviving, &mut docs)?;
        } else if P::EVENTS.contains(&&*event.event_name) {
            projection.apply(event, &mut docs)?;
        }
    }
    Ok(docs.into_documents())
}

/// What a rollback marker does to a per-stream projection: its stream's document is built
/// again from the events that survive the marker.
fn rebuild_document<P: Projection>(
    projection: &P,
    marker: &RecordedEvent,
    surviving: &Result<Vec<RecordedEvent>, ProjectionError>,
    docs: &mut Docs<P::Document>,
) -> Result<(), ProjectionError> {
    let surviving = match surviving {
        Ok(surviving) => surviving,
        Err(error) => {
            return Err(ProjectionError::Handler {
                projection: P::NAME,
                stream: marker.stream.clone(),
                version: marker.version,
                event_name: marker.event_name.to_string(),
                position: marker.position,
                reason: error.to_string(),
            })
        }
    };
    docs.delete(marker.aggregate_id());
    for event in surviving {
        if P::EVENTS.contains(&&*event.event_name) {
            projection.apply(event, docs)?;
        }
    }
    Ok(())
}

fn decode_document<P: Projection>(key: &str, body: &Payload) -> Result<P::Document, StoreError> {
    body.decode().map_err(|error| StoreError::CorruptDocument {
        projection: P::NAME,
        key: key.to_owned(),
        source: error,
    })
}

fn encode_write<P: Projection>(
    key: String,
    doc: Option<P::Document>,
) -> Result<DocumentWrite, StoreError> {
    let Some(doc) = doc else {
        return Ok(DocumentWrite {
            key,
            body: None,
            index_values: Vec::new(),
        });
    };
    let encode_error = |error| StoreError::CorruptDocument {
        projection: P::NAME,
        key: key.clone(),
        source: error,
    };
    let value = serde_json::to_value(&doc).map_err(encode_error)?;
    let index_values = P::INDEXES
        .iter()
        .map(|field| index_value(&value, field))
        .collect();
    let body = Payload::encode(&value).map_err(encode_error)?;
    Ok(DocumentWrite {
        key,
        body: Some(body),
        index_values,
    })
}

/// An indexed field's value as text: strings as they are, numbers and booleans as JSON
/// writes them, absent and null as `None`; nested values as their JSON.
pub(crate) fn index_value(document: &serde_json::Value, field: &str) -> Option<String> {
    match document.get(field)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// Where a batch of `events` leaves the checkpoint, after `outcome`.
pub(crate) fn next_checkpoint(events: &[RecordedEvent], outcome: &BatchOutcome, from: u64) -> u64 {
    match &outcome.stopped {
        Some((index, _)) => events[*index].position,
        None => events.last().map_or(from, |event| event.position + 1),
    }
}

/// How many events one batch reads and applies in one transaction.
pub(crate) const BATCH_SIZE: usize = 1_000;

/// What one step of catching up did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing to read at the checkpoint: caught up with what read-all shows.
    CaughtUp,
    /// A batch was applied; the checkpoint is now here.
    Advanced { checkpoint: u64, events: usize },
    /// The projection stopped at an event it could not apply.
    Stopped(crate::read::Stopped),
}

/// The batch after the one being applied, read while it was: catching up then costs about
/// the longer of reading and applying, not their sum.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// The position the batch was read from, and the batch.
    batch: Option<(u64, Vec<RecordedEvent>)>,
}

impl ReadAhead {
    /// The batch at `from`: the one read ahead when it starts there, else a fresh read.
    /// Events never change once at a position, so a batch read a moment ago is as good as
    /// one read now, only perhaps shorter.
    async fn take(
        &mut self,
        store: &dyn crate::read::ReadStore,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.batch.take() {
            Some((at, events)) if at == from => Ok(events),
            _ => store.read_all(from, BATCH_SIZE).await,
        }
    }
}

/// Reads one batch at `checkpoint` and applies it to `table` in one transaction: documents,
/// dead letters, the checkpoint (compare-and-set from `checkpoint`) and the stop record.
/// While it applies a full batch, it reads the next one into `ahead`.
pub(crate) async fn step(
    store: &dyn crate::read::ReadStore,
    projection: &dyn ErasedProjection,
    table: &DocumentTable,
    checkpoint: u64,
    ahead: &mut ReadAhead,
) -> Result<Step, StoreError> {
    let events = ahead.take(store, checkpoint).await?;
    let Some(last) = events.last() else {
        return Ok(Step::CaughtUp);
    };
    let following = last.position + 1;
    // A short batch was the end of the log: the next read waits for new events instead.
    let read_next = async {
        if events.len() < BATCH_SIZE {
            return None;
        }
        Some(store.read_all(following, BATCH_SIZE).await)
    };
    let (applied, next) = futures::future::join(
        apply_and_commit(store, projection, table, checkpoint, &events),
        read_next,
    )
    .await;
    if let (Ok(Step::Advanced { checkpoint, .. }), Some(Ok(next))) = (&applied, next) {
        if *checkpoint == following {
            ahead.batch = Some((following, next));
        }
    }
    applied
}

/// Applies `events` read at `checkpoint` to `table` and commits, with the checkpoint.
async fn apply_and_commit(
    store: &dyn crate::read::ReadStore,
    projection: &dyn ErasedProjection,
    table: &DocumentTable,
    checkpoint: u64,
    events: &[RecordedEvent],
) -> Result<Step, StoreError> {
    let mut tx = store.begin().await?;
    let step = apply_in(store, &mut *tx, projection, table, checkpoint, events).await?;
    tx.commit().await?;
    Ok(step)
}

/// Applies `events` read at `checkpoint` to `table` within `tx`: documents, dead letters,
/// the checkpoint (compare-and-set from `checkpoint`) and the stop record. Commits nothing.
pub(crate) async fn apply_in(
    log: &dyn EventLog,
    tx: &mut (dyn ReadTx + '_),
    projection: &dyn ErasedProjection,
    table: &DocumentTable,
    checkpoint: u64,
    events: &[RecordedEvent],
) -> Result<Step, StoreError> {
    let outcome = projection.apply_batch(log, tx, table, events).await?;
    for (index, error) in &outcome.skipped {
        let event = &events[*index];
        tx.add_dead_letter(&crate::read::DeadLetter {
            projection: projection.name().to_owned(),
            position: event.position,
            stream: event.stream.clone(),
            version: event.version,
            event_name: event.event_name.to_string(),
            error: error.clone(),
            failed_at: chrono::Utc::now(),
        })
        .await?;
    }
    let next = next_checkpoint(events, &outcome, checkpoint);
    let stopped = outcome
        .stopped
        .as_ref()
        .map(|(index, error)| crate::read::Stopped {
            position: events[*index].position,
            // The projection error already names the event, its stream and version.
            error: error.clone(),
        });
    if next != checkpoint {
        tx.advance(table, checkpoint, next).await?;
    }
    if let Some(stopped) = &stopped {
        tx.set_stopped(table, Some(stopped)).await?;
    }
    Ok(match stopped {
        Some(stopped) => Step::Stopped(stopped),
        None => Step::Advanced {
            checkpoint: next,
            events: events.len(),
        },
    })
}
