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
pub(crate) trait Versioned {
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
    stream::try_unfold(
        StreamPages::new(stream, from_version, page_size, fetch),
        |mut pages| async move {
            let page = pages.next_page().await?;
            Ok::<_, StoreError>(page.map(|page| (stream::iter(page.into_iter().map(Ok)), pages)))
        },
    )
    .try_flatten()
    .boxed()
}

/// One stream, a whole page at a time, each checked for gaps. Replay loops over the pages
/// itself ([`payload_pages`]): a stream's poll per event costs as much as reading it when
/// decoding is cheap.
pub(crate) struct StreamPages<'a, F> {
    stream: &'a StreamId,
    page_size: usize,
    /// Reads up to `page_size` events from a version.
    fetch: F,
    /// The next version to read, or `None` once a short page said "end".
    next: Option<u64>,
}

impl<'a, F> StreamPages<'a, F> {
    fn new(stream: &'a StreamId, from_version: u64, page_size: usize, fetch: F) -> Self {
        StreamPages {
            stream,
            page_size,
            fetch,
            next: Some(from_version.max(1)),
        }
    }

    /// The next page; `None` at the end of the stream.
    pub(crate) async fn next_page<T, Fut>(&mut self) -> Result<Option<Vec<T>>, StoreError>
    where
        T: Versioned,
        F: Fn(u64) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
    {
        let Some(from) = self.next else {
            return Ok(None);
        };
        let page = (self.fetch)(from).await?;
        let expected = check_contiguous(self.stream, from, &page)?;
        self.next = (page.len() == self.page_size).then_some(expected);
        Ok((!page.is_empty()).then_some(page))
    }
}

/// What replay needs of `stream`'s events from `from_version`, as
/// [`stream_payloads`](EventLogExt::stream_payloads) reads them, a page at a time.
pub(crate) fn payload_pages<'a>(
    log: &'a dyn EventLog,
    stream: &'a StreamId,
    from_version: u64,
) -> StreamPages<'a, impl Fn(u64) -> PayloadPage<'a>> {
    StreamPages::new(stream, from_version, REPLAY_PAGE_SIZE, move |from| {
        log.read_stream_payloads(stream, from, REPLAY_PAGE_SIZE)
    })
}

/// One page of [`payload_pages`], being read.
type PayloadPage<'a> = futures::future::BoxFuture<'a, Result<Vec<StoredPayload>, StoreError>>;
