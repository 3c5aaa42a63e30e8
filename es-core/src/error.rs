//! The error enums of each layer: the store, decoding, projections and the repository.

use std::fmt;
use std::time::Duration;

use crate::event::DecodeFailure;
use crate::store::ExpectedVersion;
use crate::stream::StreamId;

/// Boxed error of a backend driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream was not at the expected version; nothing was appended.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The request breaks a documented limit; it was refused before reaching the database,
    /// the same way on every store, and nothing was written.
    #[error("refused an append to stream `{stream}`: {refusal}")]
    Refused {
        /// The stream the append was for.
        stream: StreamId,
        /// Which limit it broke.
        refusal: Refusal,
    },
    /// A stored row could not be read back; names where it is stored.
    #[error(transparent)]
    Corrupt(#[from] Box<CorruptRecord>),
    /// The store could not tell whether a write committed: the connection was lost after the
    /// commit was sent. Retrying blindly may write twice; retry with the same command id (the
    /// repository does) or read the stream first.
    #[error("{context}: the outcome is unknown, the connection was lost after the commit was sent: {source}")]
    OutcomeUnknown {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// A projection's checkpoint was not where a batch expected it: another worker committed
    /// first. The batch was rolled back; nothing of it was applied.
    #[error("the checkpoint of projection `{projection}` (generation {generation}) moved: expected position {expected}, found {actual:?}")]
    CheckpointMoved {
        /// The projection.
        projection: String,
        /// Its generation.
        generation: u32,
        /// Where the batch expected it.
        expected: u64,
        /// Where it was (`None`: the generation is gone, e.g. replaced by a rebuild).
        actual: Option<u64>,
    },
    /// A stored read-model document does not match its projection's document type (or a
    /// document does not serialize).
    #[error("document `{key}` of projection `{projection}` cannot be read or written: {source}")]
    CorruptDocument {
        /// The projection.
        projection: &'static str,
        /// The document's key.
        key: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A dead letter was retried by someone else first (or never existed).
    #[error(
        "projection `{projection}` has no dead letter at position {position} (already retried?)"
    )]
    NoDeadLetter {
        /// The projection.
        projection: String,
        /// The position asked for.
        position: u64,
    },
    /// A bounded wait expired.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for, e.g. "connecting to PostgreSQL" or "a pooled connection".
        what: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// This store cannot do what was asked (SQL on the memory store, say).
    #[error("{what}")]
    Unsupported {
        /// What was asked, and where it can be had.
        what: String,
    },
    /// The backend could not be reached or failed (I/O, network, driver error); nothing is
    /// known to have been written.
    #[error("{context}: {source}")]
    Backend {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Wraps a driver error with what the store was doing.
    pub fn backend(context: &'static str, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            context,
            source: source.into(),
        }
    }

    /// The conflict, if this is one.
    pub fn as_conflict(&self) -> Option<&Conflict> {
        match self {
            StoreError::Conflict(conflict) => Some(conflict),
            _ => None,
        }
    }
}

/// An append found its stream at another version than expected; nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("version conflict on stream `{stream}`: expected {expected}, but the stream is at version {actual}")]
pub struct Conflict {
    /// The stream written to.
    pub stream: StreamId,
    /// What the writer expected.
    pub expected: ExpectedVersion,
    /// The stream's version when the append was refused (0: no stream).
    pub actual: u64,
}

/// The part of a request a [`Refusal`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The aggregate type of a stream.
    AggregateType,
    /// The aggregate id of a stream.
    AggregateId,
    /// An event's stored name.
    EventName,
    /// An event's serialized payload.
    Payload,
    /// An event's free-form metadata.
    Metadata,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::AggregateType => "aggregate type",
            Field::AggregateId => "aggregate id",
            Field::EventName => "event name",
            Field::Payload => "payload",
            Field::Metadata => "metadata",
        })
    }
}

/// Which documented limit a request broke (see `es_core::store` for the limits).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A part that must not be empty is.
    #[error("the {field} is empty")]
    Empty {
        /// Which part.
        field: Field,
    },
    /// A part is longer than its limit.
    #[error("the {field} is {bytes} bytes long; at most {max} are allowed")]
    TooLong {
        /// Which part.
        field: Field,
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A part holds a character it may not hold.
    #[error("the {field} contains {character:?}, which it may not hold{}", allowed_in(*field))]
    Character {
        /// Which part.
        field: Field,
        /// The first offending character.
        character: char,
    },
    /// The events of a batch carry different command ids: one append records one command.
    #[error("the events of one append carry different command ids ({} and {}); every event of a command carries its id", show_command_id(*first), show_command_id(*other))]
    CommandIdsDiffer {
        /// The first event's command id.
        first: Option<uuid::Uuid>,
        /// The first different one.
        other: Option<uuid::Uuid>,
    },
    /// A batch holds more events than one append may.
    #[error("the batch holds {count} events; one append may hold at most {max}")]
    TooManyEvents {
        /// Events in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },
}

fn show_command_id(id: Option<uuid::Uuid>) -> String {
    id.map_or_else(|| "none".to_owned(), |id| id.to_string())
}

fn allowed_in(field: Field) -> &'static str {
    match field {
        Field::AggregateType => " (only ASCII letters, digits, `_`, `-` and `.`)",
        _ => "",
    }
}

/// A stored row that cannot be read back, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("corrupt record in stream `{stream}`{} ({}): {problem}", at_version(*version), event_name.as_deref().unwrap_or("event name unknown"))]
pub struct CorruptRecord {
    /// The stream key as stored (it may itself be what is corrupt).
    pub stream: String,
    /// Its version, when that column could be read.
    pub version: Option<u64>,
    /// Its stored event name, when that column could be read.
    pub event_name: Option<String>,
    /// What is wrong with it.
    pub problem: Corruption,
}

fn at_version(version: Option<u64>) -> String {
    version.map_or_else(String::new, |version| format!(" at version {version}"))
}

impl CorruptRecord {
    /// A corrupt record error.
    #[allow(clippy::new_ret_no_self)] // callers always want the error, never the bare record
    pub fn new(
        stream: impl Into<String>,
        version: Option<u64>,
        event_name: Option<&str>,
        problem: Corruption,
    ) -> StoreError {
        StoreError::Corrupt(Box::new(CorruptRecord {
            stream: stream.into(),
            version,
            event_name: event_name.map(str::to_owned),
            problem,
        }))
    }
}

/// What is wrong with a corrupt record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A column that must hold a value is NULL.
    #[error("column `{column}` is NULL")]
    Null {
        /// The column.
        column: &'static str,
    },
    /// A number is negative or too large for its meaning.
    #[error("column `{column}` holds {value}, which is out of range")]
    OutOfRange {
        /// The column.
        column: &'static str,
        /// The stored value.
        value: i64,
    },
    /// A column holds a value of another type or shape.
    #[error("column `{column}` cannot be read: {detail}")]
    Unreadable {
        /// The column.
        column: &'static str,
        /// What the driver said.
        detail: String,
    },
    /// The stream key is not `"{type}/{id}"` with a valid type and id.
    #[error("the stream key is not a valid stream id: {0}")]
    StreamKey(#[source] Refusal),
    /// The versions of a stream are not 1, 2, 3, ... without gaps or repeats.
    #[error("expected version {expected}, found version {found}")]
    VersionGap {
        /// The version that should have come next.
        expected: u64,
        /// The version that came.
        found: u64,
    },
    /// A rollback marker points at or beyond itself.
    #[error("rollback marker points forward, to version {to_version}")]
    RollbackForward {
        /// Where it points.
        to_version: u64,
    },
}

/// A stored event that cannot be decoded, with where it is stored.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode event `{event_name}` (schema version {schema_version}) at version {version} of stream `{stream}`: {failure}")]
pub struct DecodeError {
    /// The stream holding the event.
    pub stream: StreamId,
    /// Its version in that stream.
    pub version: u64,
    /// Its stored name.
    pub event_name: String,
    /// The schema version it was stored with.
    pub schema_version: u32,
    /// What went wrong.
    #[source]
    pub failure: DecodeFailure,
}

impl DecodeFailure {
    /// Names where the event that failed to decode is stored: every decode error a user sees
    /// says stream, version, event name and stored schema version.
    pub fn at(
        self,
        stream: &StreamId,
        version: u64,
        event_name: &str,
        schema_version: u32,
    ) -> DecodeError {
        DecodeError {
            stream: stream.clone(),
            version,
            event_name: event_name.to_owned(),
            schema_version,
            failure: self,
        }
    }

    /// [`at`](Self::at) the place of a recorded event.
    pub fn at_record(self, record: &crate::RecordedEvent) -> DecodeError {
        self.at(
            &record.stream,
            record.version,
            &record.event_name,
            record.schema_version,
        )
    }
}

/// Why a projection could not process an event, or a read-model query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The event could not be decoded into the type the handler takes.
    #[error("projection `{projection}`: {source}")]
    Decode {
        /// The projection's name.
        projection: &'static str,
        /// The located decode error.
        #[source]
        source: DecodeError,
    },
    /// The handler reported a failure of its own.
    #[error("projection `{projection}` failed on event `{event_name}` at position {position} (stream `{stream}`, version {version}): {reason}")]
    Handler {
        /// The projection's name.
        projection: &'static str,
        /// The stream of the event it failed on.
        stream: StreamId,
        /// Its version.
        version: u64,
        /// Its stored name.
        event_name: String,
        /// Its position.
        position: u64,
        /// The handler's message.
        reason: String,
    },
    /// No projection of that name is in the set.
    #[error("no projection named `{0}` is registered")]
    NotRegistered(String),
    /// A query filtered on a field the projection does not index.
    #[error("projection `{projection}` has no index on `{field}`; indexed fields: {indexes} (add it with `#[projection(index({field}))]`)")]
    UnknownIndex {
        /// The projection.
        projection: &'static str,
        /// The field asked for.
        field: String,
        /// The fields it indexes.
        indexes: String,
    },
    /// A projection builds documents across streams and does not handle rollback markers.
    #[error("projection `{0}` builds documents across streams but does not handle `RolledBack`, so a rollback would leave its documents showing rolled-back events; handle it, or declare the projection per-stream")]
    RollbackUnhandled(String),
    /// A page cursor that no listing of this order gave.
    #[error(
        "`{cursor}` is not a cursor of this ordered listing; pass the `next` of its previous page"
    )]
    InvalidCursor {
        /// The cursor given.
        cursor: String,
    },
    /// A SQL projection names a table it cannot have.
    #[error("SQL projection `{projection}` declares table `{table}`: a table name must be a lowercase identifier of at most 40 characters, without `__`, not `gen` and not starting with `es_` (the runtime's); declare at least one table")]
    InvalidSqlTable {
        /// The projection.
        projection: &'static str,
        /// The table name it declared (empty when it declared none).
        table: String,
    },
    /// The projection stopped at an event under the stop policy.
    #[error("projection `{projection}` stopped at position {position}: {error}")]
    Stopped {
        /// The projection.
        projection: String,
        /// The event's position.
        position: u64,
        /// Why.
        error: String,
    },
    /// Reading events or writing documents failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why running a command through the repository failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The aggregate rejected the command; nothing was appended.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// Other writers kept winning; the retry policy gave up.
    #[error("gave up after {attempts} attempts: {conflict}")]
    Conflict {
        /// The last attempt's conflict.
        #[source]
        conflict: Conflict,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The aggregate id cannot name a stream (empty, too long, or holding a NUL); nothing
    /// was read or written.
    #[error("invalid id for aggregate `{aggregate_type}`: {refusal}")]
    InvalidId {
        /// The aggregate type.
        aggregate_type: &'static str,
        /// What is wrong with the id.
        refusal: Refusal,
    },
    /// An inline projection refused one of the command's events; nothing was appended.
    #[error("inline projection `{projection}` refused event `{event_name}` (stream `{stream}`, version {version}), so the command appended nothing: {error}")]
    InlineProjection {
        /// The projection.
        projection: &'static str,
        /// The stream written to.
        stream: StreamId,
        /// The version the event would have had.
        version: u64,
        /// The event's stored name.
        event_name: String,
        /// What the handler said.
        error: String,
    },
    /// A stored event of the aggregate could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An event the aggregate produced does not serialize; nothing was appended.
    #[error("event `{event_name}` of aggregate `{aggregate_type}` does not serialize: {source}")]
    Encode {
        /// The aggregate type.
        aggregate_type: &'static str,
        /// The event's stored name.
        event_name: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A rollback asked for a version the stream has not passed; nothing was appended.
    #[error("cannot roll `{stream}` back to version {to_version}: it is at version {current}; pick an earlier version")]
    RollbackBeyondCurrent {
        /// The stream.
        stream: StreamId,
        /// The version asked for.
        to_version: u64,
        /// The stream's version.
        current: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E: std::error::Error + 'static> RepositoryError<E> {
    /// The domain error, if the aggregate rejected the command.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            RepositoryError::Rejected(error) => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}
