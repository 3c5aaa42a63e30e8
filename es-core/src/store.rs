//! The pluggable part: the event log every backend implements, and its snapshot store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::{NewEvent, Payload, RecordedEvent};
use crate::error::{Conflict, StoreError};
use crate::stream::StreamId;

mod forward;
pub(crate) mod memory;
mod paging;
mod snapshot;

pub(crate) use paging::payload_pages;
pub use paging::EventLogExt;
pub use snapshot::{Snapshot, SnapshotStore};

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

    /// Refuses a stream at `actual` that this does not accept, with the conflict every store
    /// reports.
    pub(crate) fn check(self, stream: &StreamId, actual: u64) -> Result<(), StoreError> {
        if self.accepts(actual) {
            return Ok(());
        }
        Err(conflict(stream, self, actual))
    }
}

/// The error of an append that found `stream` at `actual`, not where `expected` said.
pub(crate) fn conflict(stream: &StreamId, expected: ExpectedVersion, actual: u64) -> StoreError {
    Conflict {
        stream: stream.clone(),
        expected,
        actual,
    }
    .into()
}

/// What `event` becomes once stored in `stream` at `version` and `position`: every store
/// assigns those and the time, and moves the rest over unchanged.
pub(crate) fn recorded(
    event: NewEvent,
    stream: &StreamId,
    (version, position): (u64, u64),
    recorded_at: DateTime<Utc>,
) -> RecordedEvent {
    RecordedEvent {
        // Shares its text with every envelope of the stream: nothing is copied.
        stream: stream.clone(),
        version,
        position,
        recorded_at,
        event_name: event.event_name,
        schema_version: event.schema_version,
        metadata: event.metadata,
        event: event.payload,
    }
}

/// What replaying an aggregate reads of each stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPayload {
    /// Position in its stream.
    pub version: u64,
    /// The stored name.
    pub event_name: std::sync::Arc<str>,
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

/// What replay needs of an event held elsewhere: its name and payload are shared, not copied.
impl From<&RecordedEvent> for StoredPayload {
    fn from(event: &RecordedEvent) -> Self {
        StoredPayload {
            version: event.version,
            event_name: event.event_name.clone(),
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            payload: event.event.clone(),
        }
    }
}

/// The event log: where events live, in streams, in one global order. Every backend (memory,
/// SQLite, PostgreSQL, yours) implements it; conveniences are in [`EventLogExt`].
///
/// `Arc<L>`, `&L` and `Box<L>` are logs too, forwarding every method (the optional fast
/// paths included), so `Arc<dyn EventStore>` works wherever a log does.
///
/// # For implementors
///
/// - Call [`check_append`](crate::limits::check_append) first: every store refuses the same
///   requests, at the same documented limits, before the database sees them.
/// - `append` is atomic: all events of the batch are stored, or none. Versions continue the
///   stream gaplessly from its current version + 1. Positions are unique and strictly
///   increase in commit order across the whole store. A wrong expectation is a
///   [`StoreError::Conflict`] saying expected and actual versions. When a connection is lost
///   after the commit was sent, say [`StoreError::OutcomeUnknown`], never a plain failure.
/// - Commands are idempotent. When the first event of a batch carries a
///   [`command_id`](crate::Metadata::command_id) already recorded on the same stream, append
///   nothing and return the events that command appended the first time (same versions,
///   positions, times and event ids), whatever the expected version says. Record the id in
///   the same transaction as the events, so the check and the append are one atomic step:
///   a retry after [`StoreError::OutcomeUnknown`] then never appends twice, and two
///   concurrent appends of one command append it once (the loser returns the winner's
///   events, or a conflict, never a driver error). Other streams may reuse an id.
/// - `read_all` must never let a reader skip an event: it may only return an event once every
///   event with a lower position is either visible or will never exist (a rolled-back append).
/// - A row that cannot be read back is a [`StoreError::Corrupt`] naming its stream, version
///   and event name; never clamp a number, never panic.
/// - Never build SQL from strings: every value is a bound parameter.
///
/// Prove an implementation with the conformance suite in `es_core::testing` (feature `testing`).
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Appends `events` to `stream` if the stream is at `expected`, atomically.
    /// Returns the recorded events with their versions, positions and times.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of one stream with versions from `from_version` (inclusive), in order.
    async fn read_stream(
        &self,
        stream: &StreamId,
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

    /// The current version of a stream (0 when it has no events).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// Like [`read_stream`](EventLog::read_stream), but only what replaying an aggregate
    /// needs. A store may override it to read and decode less; the default maps `read_stream`.
    async fn read_stream_payloads(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        Ok(self
            .read_stream(stream, from_version, limit)
            .await?
            .into_iter()
            .map(StoredPayload::from)
            .collect())
    }

    /// Like [`read_all`](EventLog::read_all), but only events of one aggregate type. The
    /// default filters read-all (a scan of the whole log); stores override it with an index.
    async fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut found = Vec::new();
        let mut from = from_position;
        loop {
            let page = self.read_all(from, PAGE_SIZE).await?;
            let full = page.len() == PAGE_SIZE;
            for event in page {
                from = event.position + 1;
                if event.aggregate_type() == aggregate_type {
                    found.push(event);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
            if !full {
                return Ok(found);
            }
        }
    }

    /// The transaction holding read-all back, if the store can have one and one does
    /// (PostgreSQL: the oldest open transaction with an id). The default: none.
    async fn read_all_blocker(&self) -> Result<Option<Blocker>, StoreError> {
        Ok(None)
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
}

/// A transaction that holds read-all back: read-all returns no event of a transaction younger
/// than the oldest one still running, so one long-open transaction anywhere delays every
/// reader. Health and read-your-writes waits name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The server process running it.
    pub pid: i64,
    /// How long it has been open.
    pub age: std::time::Duration,
    /// Its state, e.g. `idle in transaction`.
    pub state: String,
    /// The start of its last statement.
    pub query: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "transaction of server process {} open for {:.1} s ({}): {}",
            self.pid,
            self.age.as_secs_f64(),
            self.state,
            self.query
        )
    }
}

/// An event log with a snapshot store: what a [`Repository`](crate::Repository) needs.
/// Implemented for every type that is both.
pub trait EventStore: EventLog + SnapshotStore {}

impl<S: EventLog + SnapshotStore + ?Sized> EventStore for S {}

/// How many events one page of a streamed read fetches.
pub const PAGE_SIZE: usize = 512;

/// How many events one page of a replay read fetches: its rows are small (no metadata), and
/// on a server each page costs a round trip.
pub const REPLAY_PAGE_SIZE: usize = 16_384;
