//! The one strict row decoder every read path uses (stream, read-all, replay payloads,
//! snapshots, the rows an append returns).
//!
//! A value that is NULL, of another type, out of range for its meaning, or unparsable is a
//! [`StoreError::Corrupt`] naming the stream, version and event name as far as they could be
//! read. Nothing is clamped, nothing panics: every column is read with `try_get`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::envelope::{Metadata, Payload, RecordedEvent};
use crate::error::{CorruptRecord, Corruption, StoreError};
use crate::store::{Snapshot, StoredPayload};
use crate::stream::StreamId;

/// Reads one row, remembering where it is stored as soon as each part is known.
pub(super) struct RowReader<'r> {
    row: &'r Row,
    stream: Option<StreamId>,
    /// The stream key as stored, when it is not a valid stream id (or not yet read).
    raw_stream: Option<String>,
    version: Option<u64>,
    event_name: Option<Arc<str>>,
}

impl<'r> RowReader<'r> {
    /// A reader for a row of a known stream (the query selected by it).
    pub(super) fn of_stream(row: &'r Row, stream: &StreamId) -> Self {
        RowReader {
            row,
            stream: Some(stream.clone()),
            raw_stream: None,
            version: None,
            event_name: None,
        }
    }

    /// A reader for a row whose stream is read from its `stream_id` column.
    pub(super) fn of_any_stream(row: &'r Row) -> Result<Self, StoreError> {
        let mut reader = RowReader {
            row,
            stream: None,
            raw_stream: None,
            version: None,
            event_name: None,
        };
        let key: String = reader.value("stream_id")?;
        match StreamId::parse(&key) {
            Ok(stream) => reader.stream = Some(stream),
            Err(refusal) => {
                reader.raw_stream = Some(key);
                // Name the version and event of the bad key too, where they can be read.
                reader.version = reader
                    .value::<StoredInt>("version")
                    .ok()
                    .and_then(|v| u64::try_from(v.0).ok());
                reader.event_name = reader.value::<String>("event_name").ok().map(Arc::from);
                return Err(reader.corrupt(Corruption::StreamKey(refusal)));
            }
        }
        Ok(reader)
    }

    /// The stream, once known.
    fn stream(&self) -> Result<StreamId, StoreError> {
        self.stream.clone().ok_or_else(|| {
            self.corrupt(Corruption::Unreadable {
                column: "stream_id",
                detail: "the stream is unknown".into(),
            })
        })
    }

    /// A corrupt-record error naming everything read so far.
    pub(super) fn corrupt(&self, problem: Corruption) -> StoreError {
        let stream = match (&self.stream, &self.raw_stream) {
            (Some(stream), _) => stream.as_str().to_owned(),
            (None, Some(raw)) => raw.clone(),
            (None, None) => String::from("?"),
        };
        CorruptRecord::new(stream, self.version, self.event_name.as_deref(), problem)
    }

    /// A non-NULL value of the column's Rust type.
    fn value<T: for<'a> FromSql<'a>>(&self, column: &'static str) -> Result<T, StoreError> {
        match self.row.try_get::<_, Option<T>>(column) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(self.corrupt(Corruption::Null { column })),
            Err(error) => Err(self.corrupt(Corruption::Unreadable {
                column,
                detail: error.to_string(),
            })),
        }
    }

    /// An integer column, in `min..=max`.
    fn integer(&self, column: &'static str, min: i64, max: i64) -> Result<i64, StoreError> {
        let StoredInt(value) = self.value(column)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.corrupt(Corruption::OutOfRange { column, value }))
        }
    }

    /// A `bigint` holding a `u64` of at least `min`.
    fn unsigned(&self, column: &'static str, min: u64) -> Result<u64, StoreError> {
        let min = i64::try_from(min).unwrap_or(i64::MAX);
        // In range 0..=i64::MAX, so the conversion cannot fail.
        self.integer(column, min, i64::MAX)
            .map(|value| value.unsigned_abs())
    }

    /// The event's version (at least 1), remembered for later errors.
    pub(super) fn version(&mut self) -> Result<u64, StoreError> {
        let version = self.unsigned("version", 1)?;
        self.version = Some(version);
        Ok(version)
    }

    /// The event's name, shared with earlier rows of the page, remembered for later errors.
    fn event_name(&mut self, names: &mut Names) -> Result<Arc<str>, StoreError> {
        let name = match self.row.try_get::<_, Option<&str>>("event_name") {
            Ok(Some(name)) => names.intern(name),
            Ok(None) => {
                return Err(self.corrupt(Corruption::Null {
                    column: "event_name",
                }))
            }
            Err(error) => {
                return Err(self.corrupt(Corruption::Unreadable {
                    column: "event_name",
                    detail: error.to_string(),
                }))
            }
        };
        self.event_name = Some(name.clone());
        Ok(name)
    }

    pub(super) fn position(&self) -> Result<u64, StoreError> {
        self.unsigned("position", 1)
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        let value = self.integer("schema_version", 0, i64::from(u32::MAX))?;
        // In range 0..=u32::MAX, checked just above.
        Ok(u32::try_from(value).unwrap_or(u32::MAX))
    }

    pub(super) fn time(&self, column: &'static str) -> Result<DateTime<Utc>, StoreError> {
        self.value(column)
    }

    fn json(&self, column: &'static str) -> Result<Arc<str>, StoreError> {
        self.value::<JsonText>(column).map(|JsonText(text)| text)
    }

    fn metadata(&self) -> Result<Metadata, StoreError> {
        let event_id: Uuid = self.value("event_id")?;
        let text = self.json("metadata")?;
        let stored: StoredMetadata = serde_json::from_str(&text).map_err(|error| {
            self.corrupt(Corruption::Unreadable {
                column: "metadata",
                detail: error.to_string(),
            })
        })?;
        let command_id = self
            .row
            .try_get::<_, Option<Uuid>>("command_id")
            .map_err(|error| {
                self.corrupt(Corruption::Unreadable {
                    column: "command_id",
                    detail: error.to_string(),
                })
            })?;
        Ok(Metadata {
            event_id,
            correlation_id: stored.correlation_id.unwrap_or(event_id),
            causation_id: stored.causation_id,
            command_id,
            extra: stored.extra,
        })
    }
}

/// Reads a full event row (the columns of [`EVENT_COLUMNS`], plus `stream_id` when `stream`
/// is `None`).
pub(super) fn recorded_event(
    row: &Row,
    stream: Option<&StreamId>,
    names: &mut Names,
) -> Result<RecordedEvent, StoreError> {
    let mut reader = match stream {
        Some(stream) => RowReader::of_stream(row, stream),
        None => RowReader::of_any_stream(row)?,
    };
    let version = reader.version()?;
    let event_name = reader.event_name(names)?;
    Ok(RecordedEvent {
        stream: reader.stream()?,
        version,
        position: reader.position()?,
        recorded_at: reader.time("recorded_at")?,
        event_name,
        schema_version: reader.schema_version()?,
        metadata: reader.metadata()?,
        event: Payload::from_json_text(reader.json("payload")?),
    })
}

/// Reads what replay needs of an event row (the columns of [`PAYLOAD_COLUMNS`]).
pub(super) fn stored_payload(
    row: &Row,
    stream: &StreamId,
    names: &mut Names,
) -> Result<StoredPayload, StoreError> {
    let mut reader = RowReader::of_stream(row, stream);
    let version = reader.version()?;
    let event_name = reader.event_name(names)?;
    Ok(StoredPayload {
        version,
        event_name,
        schema_version: reader.schema_version()?,
        recorded_at: reader.time("recorded_at")?,
        payload: Payload::from_json_text(reader.json("payload")?),
    })
}

/// Reads a snapshot row.
pub(super) fn snapshot(row: &Row, stream: &StreamId) -> Result<Snapshot, StoreError> {
    let mut reader = RowReader::of_stream(row, stream);
    let version = reader.unsigned("version", 0)?;
    reader.version = Some(version);
    Ok(Snapshot {
        stream: stream.clone(),
        version,
        state_fingerprint: reader.value("state_fingerprint")?,
        state: Payload::from_json_text(reader.json("state")?),
        taken_at: reader.time("taken_at")?,
    })
}

/// A single `bigint` result such as a version or position (0 allowed), e.g. `max(...)`.
pub(super) fn count(
    row: &Row,
    stream: Option<&StreamId>,
    column: &'static str,
) -> Result<u64, StoreError> {
    let reader = match stream {
        Some(stream) => RowReader::of_stream(row, stream),
        None => RowReader {
            row,
            stream: None,
            raw_stream: None,
            version: None,
            event_name: None,
        },
    };
    reader.unsigned(column, 0)
}

/// The event columns read back, besides `stream_id`.
pub(super) const EVENT_COLUMNS: &str =
    "version, position, recorded_at, event_name, schema_version, event_id, command_id, metadata, payload";

/// The columns replay reads.
pub(super) const PAYLOAD_COLUMNS: &str =
    "version, event_name, schema_version, recorded_at, payload";

/// Metadata as stored in the `metadata` column: only what differs from the defaults.
#[derive(Deserialize)]
struct StoredMetadata {
    #[serde(default)]
    correlation_id: Option<Uuid>,
    #[serde(default)]
    causation_id: Option<Uuid>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

/// The `metadata` column of a new event: `{}` in the common case (the event started its
/// correlation, no causation, no free-form entries).
#[derive(Serialize)]
struct MetadataColumn<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extra: &'a BTreeMap<String, String>,
}

/// The JSON text stored in the `metadata` column for `metadata`.
pub(super) fn metadata_column(metadata: &Metadata) -> String {
    let column = MetadataColumn {
        correlation_id: (metadata.correlation_id != metadata.event_id)
            .then_some(metadata.correlation_id),
        causation_id: metadata.causation_id,
        extra: &metadata.extra,
    };
    // Uuids and a map of strings always serialize; the fallback is unreachable in practice
    // and still a valid column.
    serde_json::to_string(&column).unwrap_or_else(|_| String::from("{}"))
}

/// Event names of one page, so rows of the same event share one allocation.
#[derive(Default)]
pub(super) struct Names(Vec<Arc<str>>);

impl Names {
    /// Most logs have few event names; past this many, a page stops looking for repeats.
    const MAX: usize = 64;

    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|known| &***known == name) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        if self.0.len() < Self::MAX {
            self.0.push(name.clone());
        }
        name
    }
}

/// Any integer column, so a column widened or narrowed by hand is range-checked, not
/// refused as another type.
struct StoredInt(i64);

impl<'a> FromSql<'a> for StoredInt {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(StoredInt(match *ty {
            Type::INT2 => i64::from(i16::from_sql(ty, raw)?),
            Type::INT4 => i64::from(i32::from_sql(ty, raw)?),
            _ => i64::from_sql(ty, raw)?,
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8)
    }
}

/// A `json` (or `jsonb`, or text) column read as the JSON text it holds. PostgreSQL sends
/// `json` as its text in binary mode too, so nothing is parsed here: a payload is parsed
/// when decoded, where a failure names the event.
struct JsonText(Arc<str>);

impl<'a> FromSql<'a> for JsonText {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // Binary jsonb starts with a format version byte, 1.
        let raw = match (ty, raw.split_first()) {
            (&Type::JSONB, Some((1, rest))) => rest,
            (&Type::JSONB, _) => return Err("unsupported jsonb format version".into()),
            _ => raw,
        };
        Ok(JsonText(Arc::from(std::str::from_utf8(raw)?)))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB | Type::TEXT | Type::VARCHAR)
    }
}
