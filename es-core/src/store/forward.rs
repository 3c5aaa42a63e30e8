//! A log or snapshot store behind `&`, `Box` or `Arc` is one too, forwarding every method,
//! the optional fast paths included: a wrapped store never falls back to a slow default.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Snapshot, SnapshotStore};
use crate::error::StoreError;
use crate::stream::StreamId;

/// Implements [`EventLog`] with the trait's method signatures written here, once: an
/// implementation names each method's parameters and gives its body, and a method it leaves
/// out keeps the trait's default. The wrappers below and every backend are written with it,
/// so a new method (a new fast path) is declared in the trait and here, and nowhere else.
///
/// `event_log! { impl for MyStore { head_position(&self) { ... } ... } }`; generic
/// parameters go in brackets: `impl[L: EventLog + ?Sized] for Arc<L>`.
macro_rules! event_log {
    (impl $([$($generics:tt)*])? for $ty:ty { $($methods:tt)* }) => {
        $crate::store::event_log!(@munch [[$($($generics)*)?] $ty []] $($methods)*);
    };
    // Every method read: the impl.
    (@munch [[$($generics:tt)*] $ty:ty [$($done:tt)*]]) => {
        // A block of its own, so the signatures name their types without the caller's
        // imports; which of them are used depends on the methods given.
        const _: () = {
            #[allow(unused_imports)]
            use $crate::envelope::{NewEvent, RecordedEvent};
            use $crate::error::StoreError;
            #[allow(unused_imports)]
            use $crate::store::{Blocker, EventLog, ExpectedVersion, StoredPayload};
            use $crate::stream::StreamId;

            #[async_trait::async_trait]
            impl<$($generics)*> EventLog for $ty {
                $($done)*
            }
        };
    };
    // The next method: its signature, then on with the rest.
    (@munch $impl:tt $name:ident $params:tt $body:block $($rest:tt)*) => {
        $crate::store::event_log!(@signature [$impl $body [$($rest)*]] $name $params);
    };
    (@push [[$generics:tt $ty:ty [$($done:tt)*]] $body:block [$($rest:tt)*]]
        $($signature:tt)*
    ) => {
        $crate::store::event_log!(
            @munch [$generics $ty [$($done)* $($signature)* $body]] $($rest)*
        );
    };
    // The trait's signatures, with the implementation's names for the parameters.
    (@signature $state:tt append(&$this:ident, $stream:ident, $expected:ident, $events:ident)) => {
        $crate::store::event_log!(@push $state
            async fn append(
                &$this, $stream: &StreamId, $expected: ExpectedVersion, $events: Vec<NewEvent>
            ) -> Result<Vec<RecordedEvent>, StoreError>);
    };
    (@signature $state:tt read_stream(&$this:ident, $stream:ident, $from:ident, $limit:ident)) => {
        $crate::store::event_log!(@push $state
            async fn read_stream(&$this, $stream: &StreamId, $from: u64, $limit: usize)
                -> Result<Vec<RecordedEvent>, StoreError>);
    };
    (@signature $state:tt read_all(&$this:ident, $from:ident, $limit:ident)) => {
        $crate::store::event_log!(@push $state
            async fn read_all(&$this, $from: u64, $limit: usize)
                -> Result<Vec<RecordedEvent>, StoreError>);
    };
    (@signature $state:tt stream_version(&$this:ident, $stream:ident)) => {
        $crate::store::event_log!(@push $state
            async fn stream_version(&$this, $stream: &StreamId) -> Result<u64, StoreError>);
    };
    (@signature $state:tt
        read_stream_payloads(&$this:ident, $stream:ident, $from:ident, $limit:ident)
    ) => {
        $crate::store::event_log!(@push $state
            async fn read_stream_payloads(&$this, $stream: &StreamId, $from: u64, $limit: usize)
                -> Result<Vec<StoredPayload>, StoreError>);
    };
    (@signature $state:tt
        read_aggregate_type(&$this:ident, $type:ident, $from:ident, $limit:ident)
    ) => {
        $crate::store::event_log!(@push $state
            async fn read_aggregate_type(&$this, $type: &str, $from: u64, $limit: usize)
                -> Result<Vec<RecordedEvent>, StoreError>);
    };
    (@signature $state:tt head_position(&$this:ident)) => {
        $crate::store::event_log!(@push $state
            async fn head_position(&$this) -> Result<u64, StoreError>);
    };
    (@signature $state:tt read_all_blocker(&$this:ident)) => {
        $crate::store::event_log!(@push $state
            async fn read_all_blocker(&$this) -> Result<Option<Blocker>, StoreError>);
    };
    (@signature $state:tt $name:ident $params:tt) => {
        compile_error!(concat!(
            "EventLog has no method `", stringify!($name), stringify!($params), "`"
        ));
    };
}
pub(crate) use event_log;

/// `Arc<L>`, `&L` and `Box<L>` logs and snapshot stores: every method, the fast paths
/// included, is the wrapped store's.
macro_rules! forward {
    ($($wrapper:ty),+) => {$(
        event_log! {
            impl[L: EventLog + ?Sized] for $wrapper {
                append(&self, stream, expected, events) {
                    (**self).append(stream, expected, events).await
                }
                read_stream(&self, stream, from_version, limit) {
                    (**self).read_stream(stream, from_version, limit).await
                }
                read_all(&self, from_position, limit) {
                    (**self).read_all(from_position, limit).await
                }
                stream_version(&self, stream) {
                    (**self).stream_version(stream).await
                }
                read_stream_payloads(&self, stream, from_version, limit) {
                    (**self).read_stream_payloads(stream, from_version, limit).await
                }
                read_aggregate_type(&self, aggregate_type, from_position, limit) {
                    (**self).read_aggregate_type(aggregate_type, from_position, limit).await
                }
                head_position(&self) {
                    (**self).head_position().await
                }
                read_all_blocker(&self) {
                    (**self).read_all_blocker().await
                }
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
    use crate::store::EventLog;

    /// A log whose slow paths fail: only its own fast paths answer.
    #[derive(Debug)]
    struct FastOnly;

    fn slow() -> StoreError {
        StoreError::backend(
            "test",
            "the slow default was called instead of the fast path",
        )
    }

    event_log! {
        impl for FastOnly {
            append(&self, _stream, _expected, _events) {
                Ok(Vec::new())
            }
            read_stream(&self, _stream, _from_version, _limit) {
                Err(slow())
            }
            read_all(&self, _from_position, _limit) {
                Err(slow())
            }
            stream_version(&self, _stream) {
                Ok(0)
            }
            read_stream_payloads(&self, _stream, _from_version, _limit) {
                Ok(Vec::new())
            }
            read_aggregate_type(&self, _aggregate_type, _from_position, _limit) {
                Ok(Vec::new())
            }
            head_position(&self) {
                Ok(7)
            }
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
