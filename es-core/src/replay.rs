//! Rebuilding an aggregate's state from its stream: from the latest usable snapshot, through
//! the events after it, honouring rollback markers.

use futures::TryStreamExt;

use crate::aggregate::Aggregate;
use crate::error::{DecodeError, RepositoryError, StoreError};
use crate::event::{Event, EventSet};
use crate::history::RolledBack;
use crate::repository::Loaded;
use crate::store::{EventStore, EventStoreExt, StoredPayload};

/// The state after every event up to and including `to_version` (`u64::MAX`: the latest).
/// With `use_snapshot`, starts from the newest snapshot at or below `to_version` whose shape
/// matches the current state type; a snapshot of another shape is ignored, never misread.
pub(crate) async fn rebuild<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &str,
    to_version: u64,
    use_snapshot: bool,
) -> Result<Loaded<A>, RepositoryError<A::Error>> {
    let start = if use_snapshot {
        usable_snapshot::<A>(store, stream_id, to_version).await?
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
        if record.version > to_version {
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
            state = Box::pin(rebuild::<A>(store, stream_id, marker.to_version, false))
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
    to_version: u64,
) -> Result<Option<Loaded<A>>, RepositoryError<A::Error>> {
    if A::SNAPSHOT_EVERY.is_none() {
        return Ok(None);
    }
    let Some(snapshot) = store.load_snapshot(stream_id).await? else {
        return Ok(None);
    };
    if snapshot.version > to_version || snapshot.state_fingerprint != A::STATE_FINGERPRINT {
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
