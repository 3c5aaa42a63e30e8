//! The in-memory store: always built, for tests and for applications that keep nothing.

mod log;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::Utc;
use foldhash::fast::RandomState;
use uuid::Uuid;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::store::{
    conflict, recorded, EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload,
};
use crate::stream::StreamId;
use log::Log;

/// An event store in process memory, safe to share between tasks (clone it: clones share data).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use es_core::{EventLog, MemoryStore, StreamId};
///
/// let store = MemoryStore::new();
/// let stream = StreamId::new("post", "1")?;
/// assert_eq!(store.stream_version(&stream).await?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
    /// Read models: documents, checkpoints, dead letters, leases.
    pub(crate) read_models: Arc<std::sync::Mutex<crate::read::memory::ReadModels>>,
    /// The head position after every append, for daemons waiting for new events.
    pub(crate) appended: Arc<AppendSignal>,
}

/// Tells waiting daemons the head position after each append.
#[derive(Debug)]
pub(crate) struct AppendSignal(pub(crate) tokio::sync::watch::Sender<u64>);

impl Default for AppendSignal {
    fn default() -> Self {
        AppendSignal(tokio::sync::watch::Sender::new(0))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// Every event in commit order; `all.get(i)` has position `i + 1`.
    all: Log,
    /// For each stream, the indexes into `all` of its events, in version order.
    streams: HashMap<StreamId, Vec<usize>, RandomState>,
    snapshots: HashMap<StreamId, Snapshot, RandomState>,
    /// What each command id appended: the indexes into `all`, on the stream of its first
    /// event there. Keyed by the id alone, which is cheaper to hash than a stream key and
    /// almost always unique (ids are random); `commands_elsewhere` holds the rare id that
    /// was used again on another stream.
    commands: HashMap<Uuid, Range<usize>, RandomState>,
    commands_elsewhere: HashMap<(StreamId, Uuid), Range<usize>, RandomState>,
}

impl Inner {
    /// What the command `command_id` appended to `stream`, if it ran there.
    fn command_run(&self, stream: &StreamId, command_id: Uuid) -> Option<Range<usize>> {
        let indexes = self.commands.get(&command_id)?;
        if self.all[indexes.start].stream == *stream {
            Some(indexes.clone())
        } else {
            self.commands_elsewhere
                .get(&(stream.clone(), command_id))
                .cloned()
        }
    }

    /// Records that the command `command_id` appended `indexes` to `stream`.
    fn record_command(&mut self, stream: &StreamId, command_id: Uuid, indexes: Range<usize>) {
        match self.commands.entry(command_id) {
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(indexes);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.commands_elsewhere
                    .insert((stream.clone(), command_id), indexes);
            }
        }
    }

    /// The stream's version: how many events it holds (0 when it has none).
    fn version(&self, stream: &StreamId) -> u64 {
        self.streams.get(stream).map_or(0, |v| v.len() as u64)
    }

    /// Up to `limit` events of one stream from `from_version`, in order.
    fn stream_slice<'a>(
        &'a self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> impl ExactSizeIterator<Item = &'a RecordedEvent> + 'a {
        let indexes = self.streams.get(stream).map_or(&[][..], Vec::as_slice);
        let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        indexes
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&index| &self.all[index])
    }
}

/// What an append comes to; see [`MemoryStore::decide`].
enum Decided {
    /// The command id was seen: these are the records its first run appended.
    AlreadyAppended(Vec<RecordedEvent>),
    /// The records to store (none for an empty batch).
    New(Vec<RecordedEvent>),
}

impl MemoryStore {
    /// The records `events` become when appended to `stream` (at version `actual`) now.
    fn records(
        inner: &Inner,
        stream: &StreamId,
        actual: u64,
        events: Vec<NewEvent>,
    ) -> Vec<RecordedEvent> {
        let recorded_at = Utc::now();
        let first = inner.all.len();
        events
            .into_iter()
            .enumerate()
            .map(|(offset, event)| {
                let version = actual + offset as u64 + 1;
                let position = (first + offset) as u64 + 1;
                recorded(event, stream, (version, position), recorded_at)
            })
            .collect()
    }

    /// Stores records worked out by [`records`](Self::records) on the log as it still is.
    pub(crate) fn push_records(
        &self,
        inner: &mut Inner,
        stream: &StreamId,
        records: Vec<RecordedEvent>,
    ) {
        let Some(first) = records.first() else {
            return;
        };
        let command_id = first.metadata.command_id;
        let start = inner.all.len();
        let appended = start..start + records.len();
        match inner.streams.get_mut(stream) {
            Some(indexes) => indexes.extend(appended.clone()),
            None => {
                // Room for a few more events, so a young stream's index is not reallocated
                // at each of its first appends.
                let mut indexes = Vec::with_capacity(appended.len().max(8));
                indexes.extend(appended.clone());
                inner.streams.insert(stream.clone(), indexes);
            }
        }
        inner.all.extend(records);
        if let Some(command_id) = command_id {
            inner.record_command(stream, command_id, appended);
        }
        // Waking waiters costs a lock and a scan; with no daemon listening there is no one.
        if self.appended.0.receiver_count() > 0 {
            self.appended.0.send_replace(inner.all.len() as u64);
        }
    }

    /// For a transaction's append (inline projections): the records as the log stands now,
    /// and the log's length they assume; nothing is stored yet.
    pub(crate) fn prepare_append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<(Vec<RecordedEvent>, usize, bool), StoreError> {
        let inner = self.read();
        let length = inner.all.len();
        Ok(match Self::decide(&inner, stream, expected, events)? {
            Decided::AlreadyAppended(first_run) => (first_run, length, true),
            Decided::New(records) => (records, length, false),
        })
    }

    /// What an append of `events` to `stream` comes to on the log as it is: the first run's
    /// records when its command id was seen on this stream, else the new records, or a
    /// conflict.
    fn decide(
        inner: &Inner,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Decided, StoreError> {
        if let Some(command_id) = events.first().and_then(|event| event.metadata.command_id) {
            if let Some(indexes) = inner.command_run(stream, command_id) {
                return Ok(Decided::AlreadyAppended(
                    inner.all.range(indexes).cloned().collect(),
                ));
            }
        }
        let actual = inner.version(stream);
        expected.check(stream, actual)?;
        Ok(Decided::New(Self::records(inner, stream, actual, events)))
    }

    /// Refuses a transaction's append when the log moved since its records were worked out.
    pub(crate) fn check_unmoved(
        inner: &Inner,
        stream: &StreamId,
        expected: ExpectedVersion,
        log_length: usize,
    ) -> Result<(), StoreError> {
        if inner.all.len() == log_length {
            return Ok(());
        }
        Err(conflict(stream, expected, inner.version(stream)))
    }

    /// The log, locked for writing.
    pub(crate) fn lock_log(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.write()
    }

    /// How many events the log holds (the head position: positions are dense from 1).
    pub(crate) fn log_length(inner: &Inner) -> usize {
        inner.all.len()
    }

    /// Up to `limit` events from `from_position`, and the log's length they were read at: a
    /// transaction that swaps generations checks at commit that nothing came after them.
    pub(crate) fn read_all_at(
        &self,
        from_position: u64,
        limit: usize,
    ) -> (Vec<RecordedEvent>, usize) {
        let inner = self.read();
        let start = usize::try_from(from_position.saturating_sub(1)).unwrap_or(usize::MAX);
        let events = inner
            .all
            .range(start..start.saturating_add(limit))
            .cloned()
            .collect();
        (events, inner.all.len())
    }

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
impl EventLog for MemoryStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::limits::check_append(stream, &events)?;
        let mut inner = self.write();
        let inner = &mut *inner;
        match Self::decide(inner, stream, expected, events)? {
            Decided::AlreadyAppended(first_run) => Ok(first_run),
            Decided::New(recorded) => {
                self.push_records(inner, stream, recorded.clone());
                Ok(recorded)
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.read();
        Ok(inner
            .stream_slice(stream, from_version, limit)
            .cloned()
            .collect())
    }

    async fn read_stream_payloads(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        // Clones only what replay needs; the payload and name are shared, not copied.
        let inner = self.read();
        Ok(inner
            .stream_slice(stream, from_version, limit)
            .map(StoredPayload::from)
            .collect())
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_all_at(from_position, limit).0)
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        Ok(self.read().all.len() as u64)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        Ok(self.read().version(stream))
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.read().snapshots.get(stream).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut inner = self.write();
        let newer_exists = inner
            .snapshots
            .get(&snapshot.stream)
            .is_some_and(|existing| existing.version > snapshot.version);
        if !newer_exists {
            inner.snapshots.insert(snapshot.stream.clone(), snapshot);
        }
        Ok(())
    }
}
