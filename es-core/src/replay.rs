//! Rebuilding an aggregate's state from its stream: from the latest usable snapshot, through
//! the events after it, honouring rollback markers.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use crate::aggregate::Aggregate;
use crate::error::{DecodeError, RepositoryError, StoreError};
use crate::event::{Event, EventSet};
use crate::history::RolledBack;
use crate::repository::Loaded;
use crate::store::{EventStore, EventStoreExt, StoredPayload};

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

/// The state after every event up to `until`. With `use_snapshot`, starts from the newest
/// snapshot within `until` whose shape matches the current state type; a snapshot of another
/// shape is ignored, never misread.
pub(crate) async fn rebuild<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &str,
    until: Until,
    use_snapshot: bool,
) -> Result<Loaded<A>, RepositoryError<A::Error>> {
    let start = if use_snapshot {
        usable_snapshot::<A>(store, stream_id, until).await?
    } else {
        None
    };
    let Loaded {
        mut state,
        mut version,
    } = start.unwrap_or_else(|| Loaded {
        state: A::default(),
        version: 0,
    });
    let mut events = store.stream_payloads(stream_id, version + 1);
    while let Some(record) = events.try_next().await? {
        if !until.includes(&record) {
            break;
        }
        if record.event_name == RolledBack::NAME {
            let marker =
                RolledBack::decode(record.schema_version, &record.payload).map_err(|failure| {
                    failure.at(
                        stream_id,
                        record.version,
                        &record.event_name,
                        record.schema_version,
                    )
                })?;
            if marker.to_version >= record.version {
                return Err(StoreError::Corrupt {
                    stream_id: stream_id.to_owned(),
                    version: record.version,
                    reason: format!(
                        "rollback marker points forward, to version {}",
                        marker.to_version
                    ),
                }
                .into());
            }
            // The state the marker returns to, rebuilt from the start so that earlier markers
            // are honoured too. Boxed: an async fn cannot recurse into itself unboxed.
            state = Box::pin(rebuild::<A>(
                store,
                stream_id,
                Until::Version(marker.to_version),
                false,
            ))
            .await?
            .state;
        } else {
            state.apply(&decode_stored::<A::Event>(stream_id, &record)?);
        }
        version = record.version;
    }
    Ok(Loaded { state, version })
}

async fn usable_snapshot<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &str,
    until: Until,
) -> Result<Option<Loaded<A>>, RepositoryError<A::Error>> {
    if A::SNAPSHOT_EVERY.is_none() {
        return Ok(None);
    }
    let Some(snapshot) = store.load_snapshot(stream_id).await? else {
        return Ok(None);
    };
    // Only by version: a snapshot's time comes from the application's clock and events' times
    // from the store's, so comparing them across a skew could include a later event.
    let within = match until {
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
            tracing::warn!(stream_id, version = snapshot.version, %error, "ignoring a snapshot that does not deserialize");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Decodes a stored payload into an event set, naming where it is stored on failure.
fn decode_stored<E: EventSet>(stream_id: &str, record: &StoredPayload) -> Result<E, DecodeError> {
    E::decode(&record.event_name, record.schema_version, &record.payload).map_err(|failure| {
        failure.at(
            stream_id,
            record.version,
            &record.event_name,
            record.schema_version,
        )
    })
}
