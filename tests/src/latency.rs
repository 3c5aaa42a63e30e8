//! A read store whose transactions take a while to start and to read a live generation, as
//! round trips to a database server do.
//!
//! On the memory store a command's transaction takes microseconds, so a race with a
//! concurrent rebuild's swap is too rare to show up in a test. Behind this wrapper a swap
//! landing between a command's choice of generation and its commit becomes the common case.
//! The pauses come before the append, so commands do not conflict with each other more
//! than they would without it (the memory store refuses an append if the log moved between
//! the append and its commit).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use es_core::{
    DeadLetter, DocumentRow, DocumentTable, DocumentWrite, EventLog, ExpectedVersion,
    GenerationState, ListQuery, NewEvent, ReadStore, ReadTx, RecordedEvent, Stopped, Store,
    StoreError, StreamId,
};

/// Forwards everything to the store it wraps; a transaction sleeps `delay` after it begins
/// and after it reads a live generation.
#[derive(Debug)]
pub struct Latency {
    inner: Arc<dyn Store>,
    delay: Duration,
}

impl Latency {
    /// Wraps `inner`, with pauses of `delay`.
    pub fn new(inner: Arc<dyn Store>, delay: Duration) -> Self {
        Latency { inner, delay }
    }
}

struct SlowTx<'a> {
    inner: Box<dyn ReadTx + 'a>,
    delay: Duration,
}

#[async_trait]
impl ReadTx for SlowTx<'_> {
    async fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn load(
        &mut self,
        table: &DocumentTable,
        keys: &[String],
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.inner.load(table, keys).await
    }

    async fn write(
        &mut self,
        table: &DocumentTable,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), StoreError> {
        self.inner.write(table, writes).await
    }

    async fn advance(
        &mut self,
        table: &DocumentTable,
        from: u64,
        to: u64,
    ) -> Result<(), StoreError> {
        self.inner.advance(table, from, to).await
    }

    async fn live_generation(&mut self, projection: &str) -> Result<Option<u32>, StoreError> {
        let live = self.inner.live_generation(projection).await;
        tokio::time::sleep(self.delay).await;
        live
    }

    async fn read_all(
        &mut self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from_position, limit).await
    }

    async fn promote(&mut self, table: &DocumentTable) -> Result<(), StoreError> {
        self.inner.promote(table).await
    }

    async fn set_stopped(
        &mut self,
        table: &DocumentTable,
        stopped: Option<&Stopped>,
    ) -> Result<(), StoreError> {
        self.inner.set_stopped(table, stopped).await
    }

    async fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.inner.add_dead_letter(letter).await
    }

    async fn remove_dead_letter(
        &mut self,
        projection: &str,
        position: u64,
    ) -> Result<bool, StoreError> {
        self.inner.remove_dead_letter(projection, position).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.commit().await
    }
}

#[async_trait]
impl EventLog for Latency {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version, limit).await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from_position, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }
}

#[async_trait]
impl ReadStore for Latency {
    async fn generations(&self, projection: &str) -> Result<Vec<GenerationState>, StoreError> {
        self.inner.generations(projection).await
    }

    async fn create_generation(
        &self,
        table: &DocumentTable,
        version: &str,
    ) -> Result<GenerationState, StoreError> {
        self.inner.create_generation(table, version).await
    }

    async fn promote(&self, table: &DocumentTable) -> Result<(), StoreError> {
        self.inner.promote(table).await
    }

    async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        let inner = self.inner.begin().await?;
        tokio::time::sleep(self.delay).await;
        Ok(Box::new(SlowTx {
            inner,
            delay: self.delay,
        }))
    }

    async fn get_document(
        &self,
        table: &DocumentTable,
        key: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        self.inner.get_document(table, key).await
    }

    async fn list_documents(
        &self,
        table: &DocumentTable,
        query: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.inner.list_documents(table, query).await
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(projection).await
    }

    async fn acquire_lease(
        &self,
        projection: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        self.inner.acquire_lease(projection, holder, ttl).await
    }

    async fn lease_holder(&self, projection: &str) -> Result<Option<String>, StoreError> {
        self.inner.lease_holder(projection).await
    }

    async fn release_lease(&self, projection: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(projection, holder).await
    }
}
