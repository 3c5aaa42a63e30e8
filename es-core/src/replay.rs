//! Rebuilding an aggregate's state from its stream: from the latest usable snapshot, through
//! the events after it, honouring rollback markers.
//!
//! A load stays linear in the stream's length however many rollback markers it holds. Most
//! streams have none, so events are applied as they stream in. At the first marker the
//! replay starts over once, buffering the stream, and resolves every marker at once: each
//! version points at the state it ends in (a marker at the state it returns to), so the
//! events that make up the final state are found by one walk back from the end.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use crate::aggregate::Aggregate;
use crate::error::{CorruptRecord, Corruption, DecodeError, RepositoryError};
use crate::event::{Event, EventSet};
use crate::history::RolledBack;
use crate::repository::Loaded;
use crate::store::{payload_pages, EventLogExt, EventStore, StoredPayload};
use crate::stream::StreamId;

/// How far a rebuild goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    /// Up to and including this stream version (`u64::MAX`: the latest).
    Version(u64),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
}

impl Until {
    fn includes(self, record: &StoredPayload) -> bool {
        match self {
            Until::Version(version) => record.version <= version,
            Until::Time(at) => record.recorded_at <= at,
        }
    }
}

/// What a rebuild replays: a stream of a store, up to `until`. Every step of a rebuild reads
/// the same one.
#[derive(Clone, Copy)]
struct Replayed<'a> {
    store: &'a dyn EventStore,
    stream: &'a StreamId,
    until: Until,
}

/// The state after every event up to `until`. With `use_snapshot`, starts from the newest
/// snapshot within `until` whose shape matches the current state type; a snapshot of another
/// shape is ignored, never misread.
pub(crate) async fn rebuild<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    until: Until,
    use_snapshot: bool,
) -> Result<Loaded<A>, RepositoryError<A::Error>> {
    let replayed = Replayed {
        store,
        stream,
        until,
    };
    let start = starting_point::<A>(replayed, use_snapshot).await?;
    let Some(start) = apply_unless_rolled_back(replayed, start).await? else {
        return resolve_rollbacks(replayed, use_snapshot).await;
    };
    Ok(start)
}

/// `known` brought up to the stream's end by applying only the events after its version:
/// what a command retried after a conflict decides on, instead of replaying the stream from
/// its start (on a hot stream, each conflict would otherwise cost a read of the whole
/// stream). A rollback marker among the new events cannot be applied on top of a state, so
/// then the stream is rebuilt as a load would.
pub(crate) async fn catch_up<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    known: Loaded<A>,
) -> Result<Loaded<A>, RepositoryError<A::Error>> {
    let replayed = Replayed {
        store,
        stream,
        until: Until::Version(u64::MAX),
    };
    match apply_unless_rolled_back(replayed, known).await? {
        Some(current) => Ok(current),
        None => rebuild(store, stream, Until::Version(u64::MAX), true).await,
    }
}

async fn starting_point<A: Aggregate>(
    replayed: Replayed<'_>,
    use_snapshot: bool,
) -> Result<Loaded<A>, RepositoryError<A::Error>> {
    let snapshot = if use_snapshot {
        usable_snapshot::<A>(replayed).await?
    } else {
        None
    };
    Ok(snapshot.unwrap_or_else(|| Loaded {
        state: A::default(),
        version: 0,
    }))
}

/// Applies events as they stream in; `None` at the first rollback marker.
async fn apply_unless_rolled_back<A: Aggregate>(
    replayed: Replayed<'_>,
    start: Loaded<A>,
) -> Result<Option<Loaded<A>>, RepositoryError<A::Error>> {
    let Loaded {
        mut state,
        mut version,
    } = start;
    let mut pages = payload_pages(replayed.store, replayed.stream, version + 1);
    while let Some(page) = pages.next_page().await? {
        for record in &page {
            if !replayed.until.includes(record) {
                return Ok(Some(Loaded { state, version }));
            }
            if &*record.event_name == RolledBack::NAME {
                return Ok(None);
            }
            state.apply(&decode_stored::<A::Event>(replayed.stream, record)?);
            version = record.version;
        }
    }
    Ok(Some(Loaded { state, version }))
}

/// Replays a stream that holds rollback markers in one pass over its records (two when a
/// marker returns to a version before the snapshot it started from).
async fn resolve_rollbacks<A: Aggregate>(
    replayed: Replayed<'_>,
    use_snapshot: bool,
) -> Result<Loaded<A>, RepositoryError<A::Error>> {
    let start = starting_point::<A>(replayed, use_snapshot).await?;
    let base = start.version;
    let records: Vec<StoredPayload> = replayed
        .store
        .stream_payloads(replayed.stream, base + 1)
        .try_take_while(|record| std::future::ready(Ok(replayed.until.includes(record))))
        .try_collect()
        .await?;
    let mut markers = Vec::with_capacity(records.len());
    for record in &records {
        markers.push(if &*record.event_name == RolledBack::NAME {
            let marker =
                RolledBack::decode(record.schema_version, &record.payload).map_err(|failure| {
                    failure.at(
                        replayed.stream,
                        record.version,
                        &record.event_name,
                        record.schema_version,
                    )
                })?;
            Some(marker.to_version)
        } else {
            None
        });
    }
    let chain = match surviving_events(&markers, base) {
        Ok(chain) => chain,
        // The marker returns behind the snapshot: start from the beginning instead.
        Err(ChainError::BeforeBase) => return Box::pin(resolve_rollbacks(replayed, false)).await,
        Err(ChainError::Forward { index, to_version }) => {
            let record = &records[index];
            return Err(CorruptRecord::new(
                replayed.stream.as_str(),
                Some(record.version),
                Some(&record.event_name),
                Corruption::RollbackForward { to_version },
            )
            .into());
        }
    };
    let mut state = start.state;
    for &index in &chain {
        state.apply(&decode_stored::<A::Event>(
            replayed.stream,
            &records[index],
        )?);
    }
    let version = records.last().map_or(base, |record| record.version);
    Ok(Loaded { state, version })
}

/// Why a stream's rollback markers cannot be resolved from the records at hand.
#[derive(Debug)]
pub(crate) enum ChainError {
    /// A marker returns to a version before the first record given.
    BeforeBase,
    /// A marker returns to its own version or later.
    Forward {
        /// The marker's index.
        index: usize,
        /// Where it points.
        to_version: u64,
    },
}

/// Which of a stream's records make up its state after the last one, in order, when
/// `markers[i]` is `Some(v)` for a rollback marker returning to version `v` and `None` for
/// an event. The records are versions `base + 1`, `base + 2`, ... One pass, linear however
/// many markers there are: each version points at the last event of the chain that makes up
/// the state at that version (a marker at the state it returns to), and the chain is found by
/// one walk back from the end.
pub(crate) fn surviving_events(
    markers: &[Option<u64>],
    base: u64,
) -> Result<Vec<usize>, ChainError> {
    // `ends_in[v - base]`: the last event of the chain that makes up the state at version v
    // (an index into the records), or `None` for the starting state itself.
    let mut ends_in: Vec<Option<usize>> = Vec::with_capacity(markers.len() + 1);
    // `previous[i]`: the event applied before record `i` in its chain.
    let mut previous: Vec<Option<usize>> = vec![None; markers.len()];
    ends_in.push(None);
    for (index, marker) in markers.iter().enumerate() {
        let version = base + index as u64 + 1;
        let end = match *marker {
            Some(to_version) if to_version >= version => {
                return Err(ChainError::Forward { index, to_version })
            }
            Some(to_version) if to_version < base => return Err(ChainError::BeforeBase),
            Some(to_version) => ends_in[(to_version - base) as usize],
            None => {
                previous[index] = ends_in[index];
                Some(index)
            }
        };
        ends_in.push(end);
    }
    let mut chain = Vec::new();
    let mut cursor = ends_in.last().copied().flatten();
    while let Some(index) = cursor {
        chain.push(index);
        cursor = previous[index];
    }
    chain.reverse();
    Ok(chain)
}

async fn usable_snapshot<A: Aggregate>(
    replayed: Replayed<'_>,
) -> Result<Option<Loaded<A>>, RepositoryError<A::Error>> {
    if A::SNAPSHOT_EVERY.is_none() {
        return Ok(None);
    }
    let snapshot = match replayed.store.load_snapshot(replayed.stream).await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => return Ok(None),
        // A snapshot is only a shortcut: one that cannot be read is replayed around.
        Err(error) => {
            tracing::warn!(stream = %replayed.stream, %error, "ignoring a snapshot that cannot be read");
            return Ok(None);
        }
    };
    // Only by version: a snapshot's time comes from the application's clock and events' times
    // from the store's, so comparing them across a skew could include a later event.
    let within = match replayed.until {
        Until::Version(version) => snapshot.version <= version,
        Until::Time(_) => false,
    };
    if !within || snapshot.state_fingerprint != A::STATE_FINGERPRINT {
        return Ok(None);
    }
    match A::restore_state(&snapshot.state) {
        Some(Ok(state)) => Ok(Some(Loaded {
            state,
            version: snapshot.version,
        })),
        Some(Err(error)) => {
            tracing::warn!(stream = %replayed.stream, version = snapshot.version, %error, "ignoring a snapshot that does not deserialize");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Decodes a stored payload into an event set, naming where it is stored on failure.
fn decode_stored<E: EventSet>(stream: &StreamId, record: &StoredPayload) -> Result<E, DecodeError> {
    E::decode(&record.event_name, record.schema_version, &record.payload).map_err(|failure| {
        failure.at(
            stream,
            record.version,
            &record.event_name,
            record.schema_version,
        )
    })
}
