//! The in-memory log's storage: every event in commit order, in fixed-size chunks.
//!
//! A single `Vec` would copy the whole log each time it outgrew its allocation, and touch
//! twice its size in fresh pages doing so: with a million events of about 200 bytes, a
//! 200 MB copy in the middle of one unlucky append. Chunks never move once allocated, so an
//! append costs the same at any length. Only the first chunk grows by copying, as a `Vec`
//! does, so a store that holds a handful of events does not take a megabyte.

use std::ops::Range;

use crate::envelope::RecordedEvent;

/// Events per chunk: 4,096 events of about 200 bytes, under a megabyte each.
const CHUNK: usize = 4096;

/// Every event in commit order; the event at index `i` has position `i + 1`.
#[derive(Debug, Default)]
pub(crate) struct Log {
    chunks: Vec<Vec<RecordedEvent>>,
    len: usize,
}

impl Log {
    /// How many events the log holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The events at `indexes`, in order (those the log holds).
    pub(crate) fn range(&self, indexes: Range<usize>) -> impl Iterator<Item = &RecordedEvent> {
        let end = indexes.end.min(self.len);
        let start = indexes.start.min(end);
        let (first_chunk, last_chunk) = (start / CHUNK, end.div_ceil(CHUNK));
        self.chunks[first_chunk..last_chunk]
            .iter()
            .enumerate()
            .flat_map(move |(offset, chunk)| {
                let chunk_start = (first_chunk + offset) * CHUNK;
                let from = start.saturating_sub(chunk_start);
                let to = (end - chunk_start).min(chunk.len());
                &chunk[from..to]
            })
    }

    /// Appends `records` at the end.
    pub(crate) fn extend(&mut self, records: impl IntoIterator<Item = RecordedEvent>) {
        for record in records {
            match self.chunks.last_mut() {
                Some(chunk) if chunk.len() < CHUNK => chunk.push(record),
                _ => {
                    // The first chunk grows as a `Vec` does, so a small log stays small; it
                    // stops at `CHUNK`, and later ones are allocated whole.
                    let mut chunk =
                        Vec::with_capacity(if self.chunks.is_empty() { 0 } else { CHUNK });
                    chunk.push(record);
                    self.chunks.push(chunk);
                }
            }
            self.len += 1;
        }
    }
}

/// The event at an index the log handed out (a stream's or a command's): always held, as
/// the log only grows.
impl std::ops::Index<usize> for Log {
    type Output = RecordedEvent;

    fn index(&self, index: usize) -> &RecordedEvent {
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Metadata, Payload};
    use crate::stream::StreamId;

    fn record(position: u64) -> RecordedEvent {
        RecordedEvent {
            stream: StreamId::new("log", "1").unwrap(),
            version: position,
            position,
            recorded_at: chrono::Utc::now(),
            event_name: "Noted".into(),
            schema_version: 1,
            metadata: Metadata::new(uuid::Uuid::nil()),
            event: Payload::from_json_text("{}"),
        }
    }

    #[test]
    fn ranges_across_chunk_boundaries_read_every_event_once_in_order() {
        let mut log = Log::default();
        let total = 2 * CHUNK + 5;
        log.extend((1..=total as u64).map(record));
        assert_eq!(log.len(), total);
        let cases = [
            (0, total),
            (CHUNK - 1, CHUNK + 1),
            (CHUNK, 2 * CHUNK),
            (3, 3),
            (total - 2, total + 10),
            (total + 1, total + 4),
        ];
        for (start, end) in cases {
            let positions: Vec<u64> = log.range(start..end).map(|r| r.position).collect();
            let expected: Vec<u64> = (start.min(total)..end.min(total))
                .map(|index| index as u64 + 1)
                .collect();
            assert_eq!(positions, expected, "range {start}..{end}");
        }
        assert_eq!(log[CHUNK].position, CHUNK as u64 + 1);
        assert_eq!(log[total - 1].position, total as u64);
    }
}
