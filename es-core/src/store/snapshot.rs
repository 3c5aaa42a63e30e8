//! Snapshots: a saved aggregate state, so a load reads only the events after it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::Payload;
use crate::error::StoreError;
use crate::stream::StreamId;

/// A saved aggregate state, so a load reads only the events after `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The stream it summarizes.
    pub stream: StreamId,
    /// The stream version the state includes.
    pub version: u64,
    /// Identifies the shape of the serialized state; a load ignores snapshots of another shape.
    pub state_fingerprint: String,
    /// The serialized state.
    pub state: Payload,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Where snapshots live: the latest one per stream.
///
/// # For implementors
///
/// Keep only the latest snapshot per stream: a save with a lower version than the one kept
/// is ignored. A snapshot is only ever an optimisation, so a row that cannot be read back
/// is an error the repository logs and replays around.
#[async_trait]
pub trait SnapshotStore: Send + Sync + std::fmt::Debug {
    /// The latest snapshot of a stream, if any.
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError>;

    /// Stores a snapshot, replacing an older one of the same stream.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;
}
