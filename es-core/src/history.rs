//! History: an aggregate as of a past version or time, its full stream, and rollback that
//! appends a marker instead of deleting anything.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use tracing::Instrument;

use crate::envelope::Envelope;
use crate::error::{DecodeError, RepositoryError, StoreError};
use crate::event::{Event, EventSet};
use crate::replay::{rebuild, Until};
use crate::repository::{decode_event, CommandMetadata, Loaded, Repository};
use crate::store::EventLogExt;

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

/// Decodes one stored entry of an aggregate's stream: a rollback marker or one of its events.
pub(crate) fn decode_change<E: EventSet>(
    record: &crate::RecordedEvent,
) -> Result<Change<E>, DecodeError> {
    if &*record.event_name == RolledBack::NAME {
        RolledBack::decode(record.schema_version, &record.event)
            .map(Change::RolledBack)
            .map_err(|failure| failure.at_record(record))
    } else {
        decode_event::<E>(record).map(Change::Event)
    }
}

impl<A: Aggregate> Repository<A> {
    /// The aggregate as it was right after `version` (or its latest state, if `version` is
    /// beyond it). Rollback markers up to `version` are honoured.
    pub async fn load_at_version(
        &self,
        id: &A::Id,
        version: u64,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_of(id)?;
        rebuild::<A>(&**self.store(), &stream, Until::Version(version), true).await
    }

    /// The aggregate as it was at `at`: every event recorded at or before that time.
    pub async fn load_as_of(
        &self,
        id: &A::Id,
        at: DateTime<Utc>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_of(id)?;
        rebuild::<A>(&**self.store(), &stream, Until::Time(at), true).await
    }

    /// Every entry of the aggregate's stream, rolled-back events and markers included, with
    /// versions, times and metadata.
    pub async fn history(
        &self,
        id: &A::Id,
    ) -> Result<Vec<Envelope<Change<A::Event>>>, RepositoryError<A::Error>> {
        let stream = Self::stream_of(id)?;
        let mut history = Vec::new();
        let mut events = self.store().stream_events(&stream, 1);
        while let Some(record) = events.try_next().await? {
            let change = decode_change::<A::Event>(&record)?;
            history.push(record.map(|_| change));
        }
        Ok(history)
    }

    /// Returns the aggregate to its state at `to_version` by appending a [`RolledBack`]
    /// marker; `by` and `reason` are kept in the marker and in its metadata. Retried on a
    /// conflict like a command.
    pub async fn rollback(
        &self,
        id: &A::Id,
        to_version: u64,
        by: &str,
        reason: &str,
    ) -> Result<Envelope<RolledBack>, RepositoryError<A::Error>> {
        let stream = Self::stream_of(id)?;
        let marker = RolledBack {
            to_version,
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        let metadata = CommandMetadata::new()
            .with("rollback.by", by)
            .with("rollback.reason", reason);
        let span = tracing::info_span!(
            "es.rollback",
            aggregate = A::NAME,
            aggregate_id = stream.aggregate_id(),
            to_version,
            by,
            reason,
            outcome = tracing::field::Empty,
            events = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let committed = self
            .commit(&stream, &metadata, |loaded| {
                if to_version >= loaded.version {
                    return Err(RepositoryError::RollbackBeyondCurrent {
                        stream: stream.clone(),
                        to_version,
                        current: loaded.version,
                    });
                }
                Ok(vec![Change::RolledBack(marker.clone())])
            })
            .instrument(span)
            .await?;
        committed
            .into_iter()
            .find_map(|envelope| {
                envelope.filter_map(|change| match change {
                    Change::RolledBack(marker) => Some(marker),
                    Change::Event(_) => None,
                })
            })
            .ok_or_else(|| {
                StoreError::backend("rolling back", "the store recorded no marker").into()
            })
    }
}
