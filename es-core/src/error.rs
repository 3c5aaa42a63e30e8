//! The error enums of each layer: the store, decoding, projections and the repository.

use std::fmt;

use crate::event::DecodeFailure;
use crate::store::ExpectedVersion;

/// Boxed error of a backend driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream was not at the expected version; nothing was appended.
    #[error("version conflict on stream `{stream_id}`: expected {expected}, but the stream is at version {actual}")]
    Conflict {
        /// The stream written to.
        stream_id: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was refused (0: no stream).
        actual: u64,
    },
    /// A stored row could not be read back (bad column value, corrupt metadata).
    #[error("corrupt record in stream `{stream_id}` at version {version}: {reason}")]
    Corrupt {
        /// The stream of the bad row.
        stream_id: String,
        /// Its version.
        version: u64,
        /// What was wrong.
        reason: String,
    },
    /// The request itself is invalid (e.g. an empty stream id); nothing was written.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The backend could not be reached or failed (I/O, network, driver error).
    #[error("{context}: {source}")]
    Backend {
        /// What the store was doing.
        context: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Wraps a driver error with what the store was doing.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// A stored event that cannot be decoded, with where it is stored.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode event `{event_name}` (schema version {schema_version}) at version {version} of stream `{stream_id}`: {failure}")]
pub struct DecodeError {
    /// The stream holding the event.
    pub stream_id: String,
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
        stream_id: &str,
        version: u64,
        event_name: &str,
        schema_version: u32,
    ) -> DecodeError {
        DecodeError {
            stream_id: stream_id.to_owned(),
            version,
            event_name: event_name.to_owned(),
            schema_version,
            failure: self,
        }
    }

    /// [`at`](Self::at) the place of a recorded event.
    pub fn at_record(self, record: &crate::RecordedEvent) -> DecodeError {
        self.at(
            &record.stream_id,
            record.version,
            &record.event_name,
            record.schema_version,
        )
    }
}

/// Why a projection could not process an event.
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
    #[error("projection `{projection}` failed at position {position}: {reason}")]
    Handler {
        /// The projection's name.
        projection: &'static str,
        /// The position of the event it failed on.
        position: u64,
        /// The handler's message.
        reason: String,
    },
    /// No projection of the requested type is registered.
    #[error("no projection of type `{0}` is registered")]
    NotRegistered(&'static str),
    /// Reading events for the projection failed.
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
    #[error("gave up after {attempts} attempts: version conflict on stream `{stream_id}`: expected {expected}, but the stream is at version {actual}")]
    Conflict {
        /// The stream written to.
        stream_id: String,
        /// The version the last attempt expected.
        expected: ExpectedVersion,
        /// The version the stream was at.
        actual: u64,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A stored event of the aggregate could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The events were committed, but a projection failed to process them.
    #[error("events committed, but {0}")]
    Projection(#[source] ProjectionError),
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
