//! History: an aggregate as of a past version or time, its full stream, and rollback that
//! appends a marker instead of deleting anything.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::envelope::{Envelope, Metadata, NewEvent, Payload};
use crate::error::{RepositoryError, StoreError};
use crate::event::Event;
use crate::replay::{rebuild, Until};
use crate::repository::{decode_event, Loaded, Repository};
use crate::store::{EventStoreExt, ExpectedVersion};

/// The marker a rollback appends: from here on, the aggregate's state is its state at
/// `to_version`. Nothing is deleted; the rolled-back events stay in the history.
///
/// Projections receive it like any event (`#[on] fn f(&mut self, e: &Envelope<RolledBack>)`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The version whose state the aggregate returns to.
    pub to_version: u64,
    /// Who asked for it.
    pub by: String,
    /// Why.
    pub reason: String,
}

impl Event for RolledBack {
    const NAME: &'static str = "es.rolled_back";
    const VERSION: u32 = 1;
}

/// One entry of an aggregate's history: a domain event or a rollback marker.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<E> {
    /// An event of the aggregate.
    Event(E),
    /// A rollback marker.
    RolledBack(RolledBack),
}

impl<A: Aggregate> Repository<A>
where
    A::Command: Clone,
{
    /// The aggregate as it was right after `version` (or its latest state, if `version` is
    /// beyond it). Rollback markers up to `version` are honoured.
    pub async fn load_at_version(
        &self,
        id: &A::Id,
        version: u64,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        rebuild::<A>(
            &**self.store(),
            &A::stream_id(id),
            Until::Version(version),
            true,
        )
        .await
    }

    /// The aggregate as it was at `at`: every event recorded at or before that time.
    pub async fn load_as_of(
        &self,
        id: &A::Id,
        at: DateTime<Utc>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        rebuild::<A>(&**self.store(), &A::stream_id(id), Until::Time(at), true).await
    }

    /// Every entry of the aggregate's stream, rolled-back events and markers included, with
    /// versions, times and metadata.
    pub async fn history(
        &self,
        id: &A::Id,
    ) -> Result<Vec<Envelope<Change<A::Event>>>, RepositoryError<A::Error>> {
        let stream_id = A::stream_id(id);
        let mut history = Vec::new();
        let mut events = self.store().stream_events(&stream_id, 1);
        while let Some(record) = events.try_next().await? {
            let change = if record.event_name == RolledBack::NAME {
                Change::RolledBack(
                    RolledBack::decode(record.schema_version, &record.event)
                        .map_err(|failure| failure.at_record(&record))?,
                )
            } else {
                Change::Event(decode_event::<A::Event>(&record)?)
            };
            history.push(record.map(|_| change));
        }
        Ok(history)
    }

    /// Returns the aggregate to its state at `to_version` by appending a [`RolledBack`]
    /// marker; `by` and `reason` are kept in the marker and in its metadata.
    pub async fn rollback(
        &self,
        id: &A::Id,
        to_version: u64,
        by: &str,
        reason: &str,
    ) -> Result<Envelope<RolledBack>, RepositoryError<A::Error>> {
        let stream_id = A::stream_id(id);
        let marker = RolledBack {
            to_version,
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        let payload = Payload::encode(&marker).map_err(|error| {
            StoreError::InvalidRequest(format!("rollback marker does not serialize: {error}"))
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.store().stream_version(&stream_id).await?;
            if to_version >= current {
                return Err(StoreError::InvalidRequest(format!(
                    "cannot roll `{stream_id}` back to version {to_version}: it is at version {current}; pick an earlier version"
                ))
                .into());
            }
            let mut metadata = Metadata::new(Uuid::now_v7());
            metadata.extra.insert("rollback.by".into(), by.to_owned());
            metadata
                .extra
                .insert("rollback.reason".into(), reason.to_owned());
            let event = NewEvent {
                event_name: RolledBack::NAME.to_owned(),
                schema_version: RolledBack::VERSION,
                metadata,
                payload: payload.clone(),
            };
            match self
                .store()
                .append(
                    &stream_id,
                    A::NAME,
                    ExpectedVersion::Exact(current),
                    vec![event],
                )
                .await
            {
                Ok(mut recorded) => {
                    self.forget_cached(&stream_id);
                    let Some(record) = recorded.pop() else {
                        return Err(StoreError::backend(
                            "rolling back",
                            "the store returned no event",
                        )
                        .into());
                    };
                    self.publish(record.position).await?;
                    tracing::info!(
                        stream_id,
                        to_version,
                        by,
                        reason,
                        version = record.version,
                        "rolled back"
                    );
                    return Ok(record.map(|_| marker));
                }
                Err(StoreError::Conflict {
                    stream_id,
                    expected,
                    actual,
                }) => {
                    self.after_conflict(attempt, stream_id, expected, actual)
                        .await?;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
}
