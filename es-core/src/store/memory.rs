//! The in-memory store: always built, for tests and for applications that keep nothing.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::Utc;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::store::{EventStore, ExpectedVersion, Snapshot, StoredPayload};

/// An event store in process memory, safe to share between tasks (clone it: clones share data).
///
/// ```
/// # tokio_test_runtime(async {
/// use es_core::{EventStore, ExpectedVersion, MemoryStore};
///
/// let store = MemoryStore::new();
/// assert_eq!(store.stream_version("post-1").await.unwrap(), 0);
/// # });
/// # fn tokio_test_runtime(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every event in commit order; `all[i].position == i + 1`.
    all: Vec<RecordedEvent>,
    /// For each stream, the indexes into `all` of its events, in version order.
    streams: HashMap<String, Vec<usize>, RandomState>,
    snapshots: HashMap<String, Snapshot, RandomState>,
    checkpoints: HashMap<String, u64, RandomState>,
}

impl Inner {
    /// Up to `limit` events of one stream from `from_version`, in order.
    fn stream_slice<'a>(
        &'a self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> impl Iterator<Item = &'a RecordedEvent> + 'a {
        let indexes = self.streams.get(stream_id).map_or(&[][..], Vec::as_slice);
        let skip = from_version.saturating_sub(1) as usize;
        indexes
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&index| &self.all[index])
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-written: every mutation
        // below completes its checks before touching the data. So a poisoned lock is safe to use.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream_id: &str,
        aggregate_type: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::store::require_stream_id(stream_id)?;
        let mut inner = self.write();
        let inner = &mut *inner;
        let actual = inner.streams.get(stream_id).map_or(0, |v| v.len() as u64);
        if !expected.accepts(actual) {
            return Err(StoreError::Conflict {
                stream_id: stream_id.to_owned(),
                expected,
                actual,
            });
        }
        let recorded_at = Utc::now();
        // Look up before inserting: appending to an existing stream allocates no key.
        if !inner.streams.contains_key(stream_id) {
            inner.streams.insert(stream_id.to_owned(), Vec::new());
        }
        let Some(indexes) = inner.streams.get_mut(stream_id) else {
            return Err(StoreError::backend(
                "memory store",
                "a stream vanished under the lock",
            ));
        };
        let mut recorded = Vec::with_capacity(events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let index = inner.all.len();
            let record = RecordedEvent {
                stream_id: stream_id.to_owned(),
                aggregate_type: aggregate_type.to_owned(),
                version: actual + offset as u64 + 1,
                position: index as u64 + 1,
                recorded_at,
                event_name: event.event_name,
                schema_version: event.schema_version,
                metadata: event.metadata,
                event: event.payload,
            };
            recorded.push(record.clone());
            inner.all.push(record);
            indexes.push(index);
        }
        Ok(recorded)
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.read();
        Ok(inner
            .stream_slice(stream_id, from_version, limit)
            .cloned()
            .collect())
    }

    async fn read_stream_payloads(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        // Clones only what replay needs; the payload is shared, not copied.
        let inner = self.read();
        Ok(inner
            .stream_slice(stream_id, from_version, limit)
            .map(|event| StoredPayload {
                version: event.version,
                event_name: event.event_name.clone(),
                schema_version: event.schema_version,
                recorded_at: event.recorded_at,
                payload: event.event.clone(),
            })
            .collect())
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.read();
        let skip = from_position.saturating_sub(1) as usize;
        Ok(inner.all.iter().skip(skip).take(limit).cloned().collect())
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.read().all.len() as u64)
    }

    async fn stream_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        Ok(self
            .read()
            .streams
            .get(stream_id)
            .map_or(0, |v| v.len() as u64))
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.read().snapshots.get(stream_id).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut inner = self.write();
        let newer_exists = inner
            .snapshots
            .get(&snapshot.stream_id)
            .is_some_and(|existing| existing.version > snapshot.version);
        if !newer_exists {
            inner.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }

    async fn load_checkpoint(&self, projection: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.read().checkpoints.get(projection).copied())
    }

    async fn save_checkpoint(
        &self,
        projection: &str,
        next_position: u64,
    ) -> Result<(), StoreError> {
        self.write()
            .checkpoints
            .insert(projection.to_owned(), next_position);
        Ok(())
    }
}
