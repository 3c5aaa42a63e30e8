//! The pluggable event store: the one trait every backend implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};

use crate::envelope::{NewEvent, Payload, RecordedEvent};
use crate::error::StoreError;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// What the writer believes the stream's version is; the append fails with
/// [`StoreError::Conflict`] when it is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be exactly at this version (0 means no stream).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(expected) => expected == actual,
        }
    }
}

/// What replaying an aggregate reads of each stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPayload {
    /// Position in its stream.
    pub version: u64,
    /// The stored name.
    pub event_name: String,
    /// The schema version the payload was written with.
    pub schema_version: u32,
    /// When it was recorded, so replay can stop at a point in time.
    pub recorded_at: DateTime<Utc>,
    /// The serialized event.
    pub payload: Payload,
}

impl From<RecordedEvent> for StoredPayload {
    fn from(event: RecordedEvent) -> Self {
        StoredPayload {
            version: event.version,
            event_name: event.event_name,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            payload: event.event,
        }
    }
}

/// Refuses an append to an empty stream id, the same way in every store (yours too).
pub fn require_stream_id(stream_id: &str) -> Result<(), StoreError> {
    if stream_id.is_empty() {
        return Err(StoreError::InvalidRequest(
            "stream id is empty: an append must name the stream it writes to".into(),
        ));
    }
    Ok(())
}

/// A saved aggregate state, so a load reads only the events after `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The stream it summarizes.
    pub stream_id: String,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The stream version the state includes.
    pub version: u64,
    /// Identifies the shape of the serialized state; a load ignores snapshots of another shape.
    pub state_fingerprint: String,
    /// The serialized state.
    pub state: Payload,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Where events live. Every backend (memory, SQLite, PostgreSQL, yours) implements this trait
/// and nothing more; conveniences are in [`EventStoreExt`].
///
/// # For implementors
///
/// - `append` is atomic: all events of the batch are stored, or none. Versions continue the
///   stream gaplessly from its current version + 1. Positions are unique and strictly
///   increase in commit order across the whole store.
/// - `read_all` must never let a reader skip an event: it may only return an event once every
///   event with a lower position is either visible or will never exist (a rolled-back append).
/// - Snapshots keep only the latest per stream; checkpoints are plain upserts.
/// - Never build SQL from strings: every value is a bound parameter.
///
/// Prove an implementation with the conformance suite in `es_core::testing` (feature `testing`).
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug + 'static {
    /// Appends `events` to `stream_id` if the stream is at `expected`, atomically.
    /// Returns the recorded events with their versions, positions and times.
    async fn append(
        &self,
        stream_id: &str,
        aggregate_type: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of one stream with versions from `from_version` (inclusive), in order.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the whole store with positions from `from_position` (inclusive),
    /// in position order.
    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Like [`read_stream`](EventStore::read_stream), but only what replaying an aggregate
    /// needs. A store may override it to read and decode less; the default maps `read_stream`.
    async fn read_stream_payloads(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        Ok(self
            .read_stream(stream_id, from_version, limit)
            .await?
            .into_iter()
            .map(StoredPayload::from)
            .collect())
    }

    /// The highest position committed so far (0 when the store is empty). Read-all may not
    /// return it yet (see the read-all rule above); it tells a reader how far to wait for.
    /// The default pages through read-all; stores override it with one cheap query.
    async fn head_position(&self) -> Result<u64, StoreError> {
        let mut head = 0;
        loop {
            let page = self.read_all(head + 1, PAGE_SIZE).await?;
            match page.last() {
                Some(last) => head = last.position,
                None => return Ok(head),
            }
        }
    }

    /// The current version of a stream (0 when it has no events).
    async fn stream_version(&self, stream_id: &str) -> Result<u64, StoreError>;

    /// The latest snapshot of a stream, if any.
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Stores a snapshot, replacing an older one of the same stream.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// The saved position of a named projection (the next position it will read).
    async fn load_checkpoint(&self, projection: &str) -> Result<Option<u64>, StoreError>;

    /// Saves the position of a named projection.
    async fn save_checkpoint(&self, projection: &str, next_position: u64)
        -> Result<(), StoreError>;
}

/// How many events one page of a streamed read fetches.
pub const PAGE_SIZE: usize = 512;

/// How many events one page of a replay read fetches: its rows are small (no metadata), and
/// on a server each page costs a round trip.
pub const REPLAY_PAGE_SIZE: usize = 16_384;

/// Conveniences for every [`EventStore`].
pub trait EventStoreExt: EventStore {
    /// Streams one stream's events from `from_version`, a page at a time, so a long stream is
    /// read in bounded memory.
    fn stream_events<'a>(
        &'a self,
        stream_id: &'a str,
        from_version: u64,
    ) -> BoxStream<'a, Result<RecordedEvent, StoreError>> {
        paged(
            move |from| self.read_stream(stream_id, from, PAGE_SIZE),
            from_version,
            |e| e.version + 1,
        )
    }

    /// Streams what replay needs of one stream's events from `from_version`, a page at a time.
    fn stream_payloads<'a>(
        &'a self,
        stream_id: &'a str,
        from_version: u64,
    ) -> BoxStream<'a, Result<StoredPayload, StoreError>> {
        stream::try_unfold(Some(from_version), move |from| async move {
            let Some(from) = from else {
                return Ok(None);
            };
            let page = self
                .read_stream_payloads(stream_id, from, REPLAY_PAGE_SIZE)
                .await?;
            let next = match page.last() {
                Some(last) if page.len() == REPLAY_PAGE_SIZE => Some(last.version + 1),
                _ => None,
            };
            Ok(Some((stream::iter(page.into_iter().map(Ok)), next)))
        })
        .try_flatten()
        .boxed()
    }

    /// Streams every event from `from_position`, a page at a time, until the end of the store.
    fn stream_all(&self, from_position: u64) -> BoxStream<'_, Result<RecordedEvent, StoreError>> {
        paged(
            move |from| self.read_all(from, PAGE_SIZE),
            from_position,
            |e| e.position + 1,
        )
    }
}

impl<S: EventStore + ?Sized> EventStoreExt for S {}

fn paged<'a, F, Fut>(
    fetch: F,
    start: u64,
    next_after: fn(&RecordedEvent) -> u64,
) -> BoxStream<'a, Result<RecordedEvent, StoreError>>
where
    F: Fn(u64) -> Fut + Send + Sync + 'a,
    Fut: std::future::Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send + 'a,
{
    // State: the next position to fetch from, or None once a short page said "end".
    stream::try_unfold((Some(start), fetch), move |(from, fetch)| async move {
        let Some(from) = from else {
            return Ok(None);
        };
        let page = fetch(from).await?;
        let next = match page.last() {
            Some(last) if page.len() == PAGE_SIZE => Some(next_after(last)),
            _ => None,
        };
        Ok(Some((
            stream::iter(page.into_iter().map(Ok)),
            (next, fetch),
        )))
    })
    .try_flatten()
    .boxed()
}

use futures::TryStreamExt as _;
