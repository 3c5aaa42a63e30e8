//! The one strict row decoder every read goes through: streams, read-all, replay payloads,
//! versions, the head position and snapshots; and on the read side, projection generations,
//! dead letters and documents.
//!
//! Each column is read as a [`ValueRef`] and checked: a NULL, a value of another type, a
//! number out of range for its meaning, a bad UUID, metadata that is not a JSON object of
//! strings, or a stream key that is not a valid [`StreamId`] is a [`StoreError::Corrupt`]
//! naming the stream, version and event name as far as they could be read. Nothing is clamped
//! and nothing panics: the row may have been written by anything that can open the file.
//!
//! Every event query selects [`LOCATE`] first, so the columns that name a row are read before
//! any other column can fail.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use foldhash::fast::RandomState;
use rusqlite::types::ValueRef;
use rusqlite::Row;
use uuid::Uuid;

use crate::envelope::{Metadata, Payload, RecordedEvent};
use crate::error::{CorruptRecord, Corruption, StoreError};
use crate::read::{DeadLetter, DocumentRow, GenerationState, GenerationStatus, Stopped};
use crate::store::{Snapshot, StoredPayload};
use crate::stream::StreamId;

/// The columns that say where a row is, selected first by every event query.
pub(super) const LOCATE: &str = "position, stream_id, version, event_name";

/// The columns of a full event, in the order [`Decoder::event`] reads them.
pub(super) const EVENT: &str = "position, stream_id, version, event_name, schema_version, \
     recorded_at_us, event_id, correlation_id, causation_id, extra, payload, command_id";

/// The columns replay needs, in the order [`Decoder::payload`] reads them.
pub(super) const PAYLOAD: &str =
    "position, stream_id, version, event_name, schema_version, recorded_at_us, payload";

/// The columns of a snapshot, in the order [`snapshot`] reads them.
pub(super) const SNAPSHOT: &str = "version, state_fingerprint, state, taken_at_us";

/// The columns of a projection generation, in the order [`generation`] reads them.
pub(super) const GENERATION: &str =
    "projection, generation, version, checkpoint, status, stopped_position, stopped_error";

/// The columns of a dead letter, in the order [`dead_letter`] reads them: [`LOCATE`] first,
/// since a dead letter names its event the way an event row does.
pub(super) const DEAD_LETTER: &str =
    "position, stream_id, version, event_name, projection, error, failed_at_us";

/// The columns of a document, in the order [`document`] reads them.
pub(super) const DOCUMENT: &str = "key, body";

/// A read-side row (a projection's state or one of its documents) that cannot be read back,
/// and where it is. Reported as the source of a [`StoreError::Backend`]: read models are
/// derived data, rebuilt from the log, so this is not a [`StoreError::Corrupt`] event.
#[derive(Debug, thiserror::Error)]
#[error("corrupt row in `{table}` ({row}): {problem}")]
pub(super) struct CorruptReadRow {
    table: String,
    row: String,
    problem: Corruption,
}

fn corrupt_read_row(table: &str, row: String, problem: Corruption) -> StoreError {
    StoreError::backend(
        "reading a SQLite read model",
        CorruptReadRow {
            table: table.to_owned(),
            row,
            problem,
        },
    )
}

/// Decodes a row of [`GENERATION`] columns.
pub(super) fn generation(row: &Row<'_>) -> Result<GenerationState, StoreError> {
    let projection = text(row, 0, "projection");
    let generation = integer(row, 1, "generation").and_then(|value| {
        u32::try_from(value).map_err(|_| Corruption::OutOfRange {
            column: "generation",
            value,
        })
    });
    let place = format!(
        "projection `{}`, generation {}",
        projection.as_ref().map_or("<unreadable>", |name| *name),
        generation
            .as_ref()
            .map_or_else(|_| "<unreadable>".to_owned(), u32::to_string)
    );
    let fail = |problem| corrupt_read_row("es_projection_generations", place.clone(), problem);
    let status = text(row, 4, "status").map_err(fail)?;
    let status = GenerationStatus::parse(status).ok_or_else(|| {
        fail(Corruption::Unreadable {
            column: "status",
            detail: format!("{status:?} is neither 'live' nor 'building'"),
        })
    })?;
    let stopped = match optional_integer(row, 5, "stopped_position").map_err(fail)? {
        None => None,
        Some(position) => Some(Stopped {
            position: u64::try_from(position).map_err(|_| {
                fail(Corruption::OutOfRange {
                    column: "stopped_position",
                    value: position,
                })
            })?,
            error: text(row, 6, "stopped_error").map_err(fail)?.to_owned(),
        }),
    };
    Ok(GenerationState {
        projection: projection.map_err(fail)?.to_owned(),
        generation: generation.map_err(fail)?,
        version: text(row, 2, "version").map_err(fail)?.to_owned(),
        checkpoint: unsigned(row, 3, "checkpoint", 0).map_err(fail)?,
        status,
        stopped,
    })
}

/// Decodes a row of [`DEAD_LETTER`] columns.
pub(super) fn dead_letter(row: &Row<'_>) -> Result<DeadLetter, StoreError> {
    let at = locate(row)?;
    let fail = |problem| at.corrupt(problem);
    Ok(DeadLetter {
        projection: text(row, 4, "projection").map_err(fail)?.to_owned(),
        position: at.position,
        stream: StreamId::parse(at.stream_key)
            .map_err(Corruption::StreamKey)
            .map_err(fail)?,
        version: at.version,
        event_name: at.event_name.to_owned(),
        error: text(row, 5, "error").map_err(fail)?.to_owned(),
        failed_at: timestamp(row, 6, "failed_at_us").map_err(fail)?,
    })
}

/// Decodes a row of [`DOCUMENT`] columns of the document table `table`.
pub(super) fn document(table: &str, row: &Row<'_>) -> Result<DocumentRow, StoreError> {
    let key = text(row, 0, "key");
    let place = match &key {
        Ok(key) => format!("key {key:?}"),
        Err(_) => "key <unreadable>".to_owned(),
    };
    let fail = |problem| corrupt_read_row(table, place.clone(), problem);
    Ok(DocumentRow {
        key: key.map_err(fail)?.to_owned(),
        body: Payload::from_json_text(text(row, 1, "body").map_err(fail)?),
    })
}

/// Where a row is, as far as its columns could be read; every error names it.
struct Place<'r> {
    stream: Cow<'r, str>,
    version: Option<u64>,
    event_name: Option<&'r str>,
}

impl Place<'_> {
    fn corrupt(&self, problem: Corruption) -> StoreError {
        CorruptRecord::new(self.stream.as_ref(), self.version, self.event_name, problem)
    }
}

/// The naming columns of an event row, checked.
pub(super) struct Located<'r> {
    place: Place<'r>,
    pub(super) position: u64,
    pub(super) stream_key: &'r str,
    pub(super) version: u64,
    pub(super) event_name: &'r str,
}

impl Located<'_> {
    fn corrupt(&self, problem: Corruption) -> StoreError {
        self.place.corrupt(problem)
    }
}

/// Reads the [`LOCATE`] columns (indexes 0 to 3) of a row.
pub(super) fn locate<'r>(row: &'r Row<'_>) -> Result<Located<'r>, StoreError> {
    let position = unsigned(row, 0, "position", 1);
    let stream_key = text(row, 1, "stream_id");
    let version = unsigned(row, 2, "version", 1);
    let event_name = text(row, 3, "event_name");
    let place = Place {
        stream: match (&stream_key, &position) {
            (Ok(key), _) => Cow::Borrowed(*key),
            (Err(_), Ok(position)) => {
                Cow::Owned(format!("<unreadable stream key at position {position}>"))
            }
            (Err(_), Err(_)) => Cow::Borrowed("<unreadable stream key>"),
        },
        version: version.as_ref().ok().copied(),
        event_name: event_name.as_ref().ok().copied(),
    };
    let fail = |problem| place.corrupt(problem);
    let position = position.map_err(fail)?;
    let stream_key = stream_key.map_err(fail)?;
    let version = version.map_err(fail)?;
    let event_name = event_name.map_err(fail)?;
    Ok(Located {
        place,
        position,
        stream_key,
        version,
        event_name,
    })
}

/// Decodes the rows of one read, sharing the text repeated across them: consecutive events
/// of one stream share its [`StreamId`], and events of one name share the name, as they do
/// in the memory store.
#[derive(Default)]
pub(super) struct Decoder {
    last_stream: Option<StreamId>,
    names: HashSet<Arc<str>, RandomState>,
}

impl Decoder {
    /// A decoder for rows of `stream`, sharing its text.
    pub(super) fn for_stream(stream: &StreamId) -> Self {
        Decoder {
            last_stream: Some(stream.clone()),
            names: HashSet::default(),
        }
    }

    /// Decodes a row of [`EVENT`] columns.
    pub(super) fn event(&mut self, row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
        let at = locate(row)?;
        let fail = |problem| at.corrupt(problem);
        let stream = self.stream(at.stream_key).map_err(fail)?;
        let schema_version = schema_version(row, 4).map_err(fail)?;
        let recorded_at = timestamp(row, 5, "recorded_at_us").map_err(fail)?;
        let metadata = Metadata {
            event_id: uuid(row, 6, "event_id").map_err(fail)?,
            correlation_id: uuid(row, 7, "correlation_id").map_err(fail)?,
            causation_id: optional_uuid(row, 8, "causation_id").map_err(fail)?,
            command_id: optional_uuid(row, 11, "command_id").map_err(fail)?,
            extra: extra(row, 9).map_err(fail)?,
        };
        let payload = text(row, 10, "payload").map_err(fail)?;
        Ok(RecordedEvent {
            stream,
            version: at.version,
            position: at.position,
            recorded_at,
            event_name: self.name(at.event_name),
            schema_version,
            metadata,
            event: Payload::from_json_text(payload),
        })
    }

    /// Decodes a row of [`PAYLOAD`] columns.
    pub(super) fn payload(&mut self, row: &Row<'_>) -> Result<StoredPayload, StoreError> {
        let at = locate(row)?;
        let fail = |problem| at.corrupt(problem);
        // Not kept, but checked: replay must not accept a row read-all would refuse.
        self.stream(at.stream_key).map_err(fail)?;
        let schema_version = schema_version(row, 4).map_err(fail)?;
        let recorded_at = timestamp(row, 5, "recorded_at_us").map_err(fail)?;
        let payload = text(row, 6, "payload").map_err(fail)?;
        Ok(StoredPayload {
            version: at.version,
            event_name: self.name(at.event_name),
            schema_version,
            recorded_at,
            payload: Payload::from_json_text(payload),
        })
    }

    fn stream(&mut self, key: &str) -> Result<StreamId, Corruption> {
        if let Some(last) = self
            .last_stream
            .as_ref()
            .filter(|last| last.as_str() == key)
        {
            return Ok(last.clone());
        }
        let stream = StreamId::parse(key).map_err(Corruption::StreamKey)?;
        self.last_stream = Some(stream.clone());
        Ok(stream)
    }

    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = name.into();
        self.names.insert(Arc::clone(&shared));
        shared
    }
}

/// Decodes a row of [`SNAPSHOT`] columns of `stream`'s snapshot.
pub(super) fn snapshot(stream: &StreamId, row: &Row<'_>) -> Result<Snapshot, StoreError> {
    let version = unsigned(row, 0, "version", 0);
    let place = Place {
        stream: Cow::Borrowed(stream.as_str()),
        version: version.as_ref().ok().copied(),
        event_name: None,
    };
    let fail = |problem| place.corrupt(problem);
    Ok(Snapshot {
        stream: stream.clone(),
        version: version.map_err(fail)?,
        state_fingerprint: text(row, 1, "state_fingerprint").map_err(fail)?.to_owned(),
        state: Payload::from_json_text(text(row, 2, "state").map_err(fail)?),
        taken_at: timestamp(row, 3, "taken_at_us").map_err(fail)?,
    })
}

/// A column's value; a column the query did not select is a bug here, reported, not a panic.
fn value<'r>(
    row: &'r Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<ValueRef<'r>, Corruption> {
    row.get_ref(index).map_err(|error| Corruption::Unreadable {
        column,
        detail: error.to_string(),
    })
}

fn wrong_type(column: &'static str, expected: &str, found: ValueRef<'_>) -> Corruption {
    match found {
        ValueRef::Null => Corruption::Null { column },
        other => Corruption::Unreadable {
            column,
            detail: format!("expected {expected}, found {}", other.data_type()),
        },
    }
}

fn integer(row: &Row<'_>, index: usize, column: &'static str) -> Result<i64, Corruption> {
    match value(row, index, column)? {
        ValueRef::Integer(value) => Ok(value),
        other => Err(wrong_type(column, "an integer", other)),
    }
}

/// An integer that must be at least `min` (0 or 1) to mean anything.
fn unsigned(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
    min: u64,
) -> Result<u64, Corruption> {
    let value = integer(row, index, column)?;
    u64::try_from(value)
        .ok()
        .filter(|unsigned| *unsigned >= min)
        .ok_or(Corruption::OutOfRange { column, value })
}

fn schema_version(row: &Row<'_>, index: usize) -> Result<u32, Corruption> {
    let column = "schema_version";
    let value = integer(row, index, column)?;
    u32::try_from(value).map_err(|_| Corruption::OutOfRange { column, value })
}

fn timestamp(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<DateTime<Utc>, Corruption> {
    let value = integer(row, index, column)?;
    Utc.timestamp_micros(value)
        .single()
        .ok_or(Corruption::OutOfRange { column, value })
}

fn optional_integer(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<Option<i64>, Corruption> {
    match value(row, index, column)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(value) => Ok(Some(value)),
        other => Err(wrong_type(column, "an integer", other)),
    }
}

fn optional_text<'r>(
    row: &'r Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<Option<&'r str>, Corruption> {
    match value(row, index, column)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|error| Corruption::Unreadable {
                    column,
                    detail: format!("not UTF-8: {error}"),
                })
        }
        other => Err(wrong_type(column, "text", other)),
    }
}

fn text<'r>(row: &'r Row<'_>, index: usize, column: &'static str) -> Result<&'r str, Corruption> {
    optional_text(row, index, column)?.ok_or(Corruption::Null { column })
}

fn parse_uuid(column: &'static str, text: &str) -> Result<Uuid, Corruption> {
    Uuid::parse_str(text).map_err(|error| Corruption::Unreadable {
        column,
        detail: format!("{text:?} is not a UUID: {error}"),
    })
}

fn uuid(row: &Row<'_>, index: usize, column: &'static str) -> Result<Uuid, Corruption> {
    parse_uuid(column, text(row, index, column)?)
}

fn optional_uuid(
    row: &Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<Option<Uuid>, Corruption> {
    optional_text(row, index, column)?
        .map(|text| parse_uuid(column, text))
        .transpose()
}

/// The free-form metadata: NULL when there is none, else a JSON object of strings.
fn extra(row: &Row<'_>, index: usize) -> Result<BTreeMap<String, String>, Corruption> {
    let column = "extra";
    match optional_text(row, index, column)? {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text).map_err(|error| Corruption::Unreadable {
            column,
            detail: format!("not a JSON object of strings: {error}"),
        }),
    }
}
