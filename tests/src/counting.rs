//! A store wrapper that counts calls: one call is one round trip on PostgreSQL. Shared by the
//! tests and the benchmark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use es_core::{
    EventLog, EventStore, ExpectedVersion, NewEvent, RecordedEvent, Snapshot, SnapshotStore,
    StoreError, StoredPayload, StreamId,
};

/// Counts every call to the store it wraps, and separately the calls that read a stream.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn EventStore>,
    calls: AtomicU64,
    stream_reads: AtomicU64,
    events_read: AtomicU64,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        CountingStore {
            inner,
            calls: AtomicU64::new(0),
            stream_reads: AtomicU64::new(0),
            events_read: AtomicU64::new(0),
        }
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls that read a stream's events (full envelopes or replay payloads).
    pub fn stream_reads(&self) -> u64 {
        self.stream_reads.load(Ordering::SeqCst)
    }

    /// Events returned by stream reads (full envelopes or replay payloads).
    pub fn events_read(&self) -> u64 {
        self.events_read.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    fn count_stream_read(&self) {
        self.count();
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl EventLog for CountingStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count();
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count_stream_read();
        let events = self.inner.read_stream(stream, from, limit).await?;
        self.events_read
            .fetch_add(events.len() as u64, Ordering::SeqCst);
        Ok(events)
    }

    async fn read_stream_payloads(
        &self,
        stream: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        self.count_stream_read();
        let events = self.inner.read_stream_payloads(stream, from, limit).await?;
        self.events_read
            .fetch_add(events.len() as u64, Ordering::SeqCst);
        Ok(events)
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count();
        self.inner.read_all(from, limit).await
    }

    async fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count();
        self.inner
            .read_aggregate_type(aggregate_type, from, limit)
            .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.count();
        self.inner.head_position().await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.count();
        self.inner.stream_version(stream).await
    }
}

#[async_trait::async_trait]
impl SnapshotStore for CountingStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.count();
        self.inner.load_snapshot(stream).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.count();
        self.inner.save_snapshot(snapshot).await
    }
}
