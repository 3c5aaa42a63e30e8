//! A log or snapshot store behind `&`, `Box` or `Arc` is one too, forwarding every method,
//! the optional fast paths included: a wrapped store never falls back to a slow default.

use std::sync::Arc;

use async_trait::async_trait;

use super::{EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload};
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
