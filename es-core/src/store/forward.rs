//! A log or snapshot store behind `&`, `Box` or `Arc` is one too, forwarding every method,
//! the optional fast paths included: a wrapped store never falls back to a slow default.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Blocker, EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload};
use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::stream::StreamId;

macro_rules! forward {
    ($($wrapper:ty),+) => {$(
        #[async_trait]
        impl<L: EventLog + ?Sized> EventLog for $wrapper {
            async fn append(
                &self,
                stream: &StreamId,
                expected: ExpectedVersion,
                events: Vec<NewEvent>,
            ) -> Result<Vec<RecordedEvent>, StoreError> {
                (**self).append(stream, expected, events).await
            }

            async fn read_stream(
                &self,
                stream: &StreamId,
                from_version: u64,
                limit: usize,
            ) -> Result<Vec<RecordedEvent>, StoreError> {
                (**self).read_stream(stream, from_version, limit).await
            }

            async fn read_all(
                &self,
                from_position: u64,
                limit: usize,
            ) -> Result<Vec<RecordedEvent>, StoreError> {
                (**self).read_all(from_position, limit).await
            }

            async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
                (**self).stream_version(stream).await
            }

            async fn read_stream_payloads(
                &self,
                stream: &StreamId,
                from_version: u64,
                limit: usize,
            ) -> Result<Vec<StoredPayload>, StoreError> {
                (**self).read_stream_payloads(stream, from_version, limit).await
            }

            async fn read_aggregate_type(
                &self,
                aggregate_type: &str,
                from_position: u64,
                limit: usize,
            ) -> Result<Vec<RecordedEvent>, StoreError> {
                (**self).read_aggregate_type(aggregate_type, from_position, limit).await
            }

            async fn head_position(&self) -> Result<u64, StoreError> {
                (**self).head_position().await
            }

            async fn read_all_blocker(&self) -> Result<Option<Blocker>, StoreError> {
                (**self).read_all_blocker().await
            }
        }

        #[async_trait]
        impl<L: SnapshotStore + ?Sized> SnapshotStore for $wrapper {
            async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
                (**self).load_snapshot(stream).await
            }

            async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
                (**self).save_snapshot(snapshot).await
            }
        }
    )+};
}

forward!(&L, Box<L>, Arc<L>);

#[cfg(test)]
mod tests {
    use super::*;

    /// A log whose slow paths fail: only its own fast paths answer.
    #[derive(Debug)]
    struct FastOnly;

    fn slow() -> StoreError {
        StoreError::backend(
            "test",
            "the slow default was called instead of the fast path",
        )
    }

    #[async_trait]
    impl EventLog for FastOnly {
        async fn append(
            &self,
            _: &StreamId,
            _: ExpectedVersion,
            _: Vec<NewEvent>,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            Ok(Vec::new())
        }
        async fn read_stream(
            &self,
            _: &StreamId,
            _: u64,
            _: usize,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            Err(slow())
        }
        async fn read_all(&self, _: u64, _: usize) -> Result<Vec<RecordedEvent>, StoreError> {
            Err(slow())
        }
        async fn stream_version(&self, _: &StreamId) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn read_stream_payloads(
            &self,
            _: &StreamId,
            _: u64,
            _: usize,
        ) -> Result<Vec<StoredPayload>, StoreError> {
            Ok(Vec::new())
        }
        async fn read_aggregate_type(
            &self,
            _: &str,
            _: u64,
            _: usize,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            Ok(Vec::new())
        }
        async fn head_position(&self) -> Result<u64, StoreError> {
            Ok(7)
        }
    }

    #[tokio::test]
    async fn wrappers_take_the_fast_paths() {
        let stream = StreamId::new("test", "1").unwrap();
        let inner = FastOnly;
        let wrapped: Arc<Box<&dyn EventLog>> = Arc::new(Box::new(&inner));
        assert!(wrapped.read_stream_payloads(&stream, 1, 10).await.is_ok());
        assert!(wrapped.read_aggregate_type("test", 1, 10).await.is_ok());
        assert_eq!(wrapped.head_position().await.unwrap(), 7);
    }
}
