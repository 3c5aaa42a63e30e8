//! A store wrapper that counts calls: one call is one round trip on PostgreSQL. Shared by the
//! tests and the benchmark.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use es_core::{
    EventStore, ExpectedVersion, NewEvent, RecordedEvent, Snapshot, StoreError, StoredPayload,
};

#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn EventStore>,
    calls: AtomicU64,
    stream_reads: AtomicU64,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        CountingStore {
            inner,
            calls: AtomicU64::new(0),
            stream_reads: AtomicU64::new(0),
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls that read a stream's events (full envelopes or replay payloads).
    pub fn stream_reads(&self) -> u64 {
        self.stream_reads.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl EventStore for CountingStore {
    async fn append(
        &self,
        s: &str,
        a: &str,
        e: ExpectedVersion,
        v: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count();
        self.inner.append(s, a, e, v).await
    }
    async fn read_stream(
        &self,
        s: &str,
        f: u64,
        l: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count();
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_stream(s, f, l).await
    }
    async fn read_stream_payloads(
        &self,
        s: &str,
        f: u64,
        l: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        self.count();
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_stream_payloads(s, f, l).await
    }
    async fn read_all(&self, f: u64, l: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.count();
        self.inner.read_all(f, l).await
    }
    async fn stream_version(&self, s: &str) -> Result<u64, StoreError> {
        self.count();
        self.inner.stream_version(s).await
    }
    async fn load_snapshot(&self, s: &str) -> Result<Option<Snapshot>, StoreError> {
        self.count();
        self.inner.load_snapshot(s).await
    }
    async fn save_snapshot(&self, s: Snapshot) -> Result<(), StoreError> {
        self.count();
        self.inner.save_snapshot(s).await
    }
    async fn load_checkpoint(&self, p: &str) -> Result<Option<u64>, StoreError> {
        self.count();
        self.inner.load_checkpoint(p).await
    }
    async fn save_checkpoint(&self, p: &str, n: u64) -> Result<(), StoreError> {
        self.count();
        self.inner.save_checkpoint(p, n).await
    }
}
