//! A store wrapper that loses the replies of chosen appends, as a connection dropped after
//! COMMIT was sent would: the append committed (or not), and the caller hears
//! [`StoreError::OutcomeUnknown`] either way.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use es_core::{
    EventLog, EventStore, ExpectedVersion, NewEvent, RecordedEvent, Snapshot, SnapshotStore,
    StoreError, StoredPayload, StreamId,
};

/// Whether a lost reply's append reached the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The append committed; only the reply was lost.
    AfterCommit,
    /// The connection dropped before the append committed.
    BeforeCommit,
}

/// Forwards everything to the store it wraps, except that the next `n` appends lose their
/// reply (see [`lose_next`](Self::lose_next)).
#[derive(Debug)]
pub struct LosesReplies {
    inner: Arc<dyn EventStore>,
    to_lose: AtomicU32,
    lost: Lost,
    appends: AtomicU32,
    replies_lost: AtomicU32,
}

impl LosesReplies {
    /// Wraps `inner`; no reply is lost until [`lose_next`](Self::lose_next).
    pub fn new(inner: Arc<dyn EventStore>, lost: Lost) -> Self {
        LosesReplies {
            inner,
            to_lose: AtomicU32::new(0),
            lost,
            appends: AtomicU32::new(0),
            replies_lost: AtomicU32::new(0),
        }
    }

    /// The next `count` appends lose their reply.
    pub fn lose_next(&self, count: u32) {
        self.to_lose.store(count, Ordering::SeqCst);
    }

    /// Appends asked for so far.
    pub fn appends(&self) -> u32 {
        self.appends.load(Ordering::SeqCst)
    }

    /// Replies lost so far.
    pub fn replies_lost(&self) -> u32 {
        self.replies_lost.load(Ordering::SeqCst)
    }

    fn take_one_to_lose(&self) -> bool {
        self.to_lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}

fn connection_closed() -> StoreError {
    StoreError::OutcomeUnknown {
        context: "appending (fault injected by the test)",
        source: "connection closed".into(),
    }
}

#[async_trait::async_trait]
impl EventLog for LosesReplies {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if !self.take_one_to_lose() {
            return self.inner.append(stream, expected, events).await;
        }
        self.replies_lost.fetch_add(1, Ordering::SeqCst);
        if self.lost == Lost::AfterCommit {
            self.inner.append(stream, expected, events).await?;
        }
        Err(connection_closed())
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from, limit).await
    }

    async fn read_stream_payloads(
        &self,
        stream: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        self.inner.read_stream_payloads(stream, from, limit).await
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }

    async fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner
            .read_aggregate_type(aggregate_type, from, limit)
            .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }
}

#[async_trait::async_trait]
impl SnapshotStore for LosesReplies {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
}
