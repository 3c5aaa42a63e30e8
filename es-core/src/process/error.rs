//! Why a process manager could not go on.

use crate::error::{BoxError, DecodeError, StoreError};

/// Why a process manager's batch or deadline failed. The runner retries after a pause: its
/// checkpoint has not moved, and the commands it sent are sent again under the same ids, so
/// the aggregates apply them once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event or a deadline's message could not be decoded into the handler's type.
    #[error("process manager `{process}`: {source}")]
    Decode {
        /// The process manager.
        process: &'static str,
        /// Where and why.
        #[source]
        source: DecodeError,
    },
    /// A deadline's stored message could not be decoded into the handler's type.
    #[error("process manager `{process}`: deadline `{key}`: {source}")]
    DeadlineMessage {
        /// The process manager.
        process: &'static str,
        /// The deadline's key.
        key: String,
        /// Why.
        #[source]
        source: crate::event::DecodeFailure,
    },
    /// A handler returned an error.
    #[error("process manager `{process}` failed on {cause}: {source}")]
    Handler {
        /// The process manager.
        process: &'static str,
        /// The event (name and position) or deadline (key) it failed on.
        cause: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// A handler sent a command to an aggregate the dispatcher has no repository for.
    #[error("process manager `{process}` sent a command to aggregate `{aggregate}`, which the dispatcher has no route for: add `.route::<...>(repository)` for it")]
    NoRoute {
        /// The process manager.
        process: &'static str,
        /// The aggregate's stored type.
        aggregate: &'static str,
    },
    /// A command could not be run for a reason other than the aggregate rejecting it (a
    /// store error, an invalid id, conflicts past the retry policy).
    #[error("process manager `{process}`: command {command} failed: {source}")]
    Dispatch {
        /// The process manager.
        process: &'static str,
        /// The command, as its `Debug` shows it, with its target.
        command: String,
        /// The repository's error.
        #[source]
        source: BoxError,
    },
    /// A stored state document or deadline does not decode, or a state or deadline message
    /// does not encode.
    #[error(
        "process manager `{process}`: stored {what} `{key}` is not readable or writable: {source}"
    )]
    Corrupt {
        /// The process manager.
        process: &'static str,
        /// `state` or `deadline`.
        what: &'static str,
        /// Its key.
        key: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The process manager's name cannot name its tables.
    #[error("process manager name `{0}` must be 1 to 40 lowercase letters, digits and `_`, starting with a letter")]
    InvalidName(&'static str),
}
