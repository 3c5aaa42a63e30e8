//! Reading a stream or the whole log a page at a time, in bounded memory, checking on the
//! way that a stream's versions run 1, 2, 3, ... without a gap or a repeat.

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::{EventLog, StoredPayload, PAGE_SIZE, REPLAY_PAGE_SIZE};
use crate::envelope::RecordedEvent;
use crate::error::{CorruptRecord, Corruption, StoreError};
use crate::stream::StreamId;

/// Conveniences for every [`EventLog`].
pub trait EventLogExt: EventLog {
    /// Streams one stream's events from `from_version`, a page at a time, so a long stream is
    /// read in bounded memory. A version gap or repeat is a [`StoreError::Corrupt`].
    fn stream_events<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
    ) -> BoxStream<'a, Result<RecordedEvent, StoreError>> {
        contiguous(stream, from_version, PAGE_SIZE, move |from| {
            self.read_stream(stream, from, PAGE_SIZE)
        })
    }

    /// Streams what replay needs of one stream's events from `from_version`, a page at a
    /// time, checking versions like [`stream_events`](Self::stream_events).
    fn stream_payloads<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
    ) -> BoxStream<'a, Result<StoredPayload, StoreError>> {
        contiguous(stream, from_version, REPLAY_PAGE_SIZE, move |from| {
            self.read_stream_payloads(stream, from, REPLAY_PAGE_SIZE)
        })
    }

    /// Streams every event from `from_position`, a page at a time, until the end of the store.
    fn stream_all(&self, from_position: u64) -> BoxStream<'_, Result<RecordedEvent, StoreError>> {
        stream::try_unfold(Some(from_position), move |from| async move {
            let Some(from) = from else {
                return Ok(None);
            };
            let page = self.read_all(from, PAGE_SIZE).await?;
            let next = match page.last() {
                Some(last) if page.len() == PAGE_SIZE => Some(last.position + 1),
                _ => None,
            };
            Ok::<_, StoreError>(Some((stream::iter(page.into_iter().map(Ok)), next)))
        })
        .try_flatten()
        .boxed()
    }
}

impl<L: EventLog + ?Sized> EventLogExt for L {}

/// What a stream's page holds: whole events or replay's payloads, each at a version.
trait Versioned {
    /// Its version, and its event name for naming it when the version is wrong.
    fn place(&self) -> (u64, &std::sync::Arc<str>);
}

impl Versioned for RecordedEvent {
    fn place(&self) -> (u64, &std::sync::Arc<str>) {
        (self.version, &self.event_name)
    }
}

impl Versioned for StoredPayload {
    fn place(&self) -> (u64, &std::sync::Arc<str>) {
        (self.version, &self.event_name)
    }
}

/// Checks that `page` holds versions `from`, `from + 1`, ... and returns the version after
/// its last event; a gap or a repeat is a corrupt-record error naming where it was found.
fn check_contiguous<T: Versioned>(
    stream: &StreamId,
    from: u64,
    page: &[T],
) -> Result<u64, StoreError> {
    let mut expected = from;
    for event in page {
        let (version, event_name) = event.place();
        if version != expected {
            return Err(CorruptRecord::new(
                stream.as_str(),
                Some(version),
                Some(event_name),
                Corruption::VersionGap {
                    expected,
                    found: version,
                },
            ));
        }
        expected += 1;
    }
    Ok(expected)
}

/// Pages through one stream, failing at the first version that is not the one expected.
fn contiguous<'a, T, F, Fut>(
    stream: &'a StreamId,
    from_version: u64,
    page_size: usize,
    fetch: F,
) -> BoxStream<'a, Result<T, StoreError>>
where
    T: Versioned + Send + 'a,
    F: Fn(u64) -> Fut + Send + Sync + 'a,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>> + Send + 'a,
{
    let from_version = from_version.max(1);
    // State: the next version to fetch, or None once a short page said "end".
    stream::try_unfold(
        (Some(from_version), fetch),
        move |(from, fetch)| async move {
            let Some(from) = from else {
                return Ok::<_, StoreError>(None);
            };
            let page = fetch(from).await?;
            let expected = check_contiguous(stream, from, &page)?;
            let next = (page.len() == page_size).then_some(expected);
            Ok(Some((
                stream::iter(page.into_iter().map(Ok)),
                (next, fetch),
            )))
        },
    )
    .try_flatten()
    .boxed()
}

/// Replay's read of one stream, a whole page at a time: what
/// [`stream_payloads`](EventLogExt::stream_payloads) yields, without a stream's poll per
/// event, which costs as much as the read itself when decoding is cheap.
pub(crate) struct PayloadPages<'a> {
    log: &'a dyn EventLog,
    stream: &'a StreamId,
    /// The next version to read, or `None` once a short page said "end".
    next: Option<u64>,
}

impl<'a> PayloadPages<'a> {
    pub(crate) fn new(log: &'a dyn EventLog, stream: &'a StreamId, from_version: u64) -> Self {
        PayloadPages {
            log,
            stream,
            next: Some(from_version.max(1)),
        }
    }

    /// The next page, checked for gaps; `None` at the end of the stream.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<StoredPayload>>, StoreError> {
        let Some(from) = self.next else {
            return Ok(None);
        };
        let page = self
            .log
            .read_stream_payloads(self.stream, from, REPLAY_PAGE_SIZE)
            .await?;
        let expected = check_contiguous(self.stream, from, &page)?;
        self.next = (page.len() == REPLAY_PAGE_SIZE).then_some(expected);
        Ok((!page.is_empty()).then_some(page))
    }
}
