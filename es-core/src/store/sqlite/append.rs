//! Appending: one `BEGIN IMMEDIATE` transaction per batch.
//!
//! A batch whose first event carries a command id already recorded on its stream appends
//! nothing: the events that command appended are returned instead, read in the same
//! transaction.
//!
//! The write lock is taken before the stream's version is read, so the expectation check
//! and the inserts see the same stream, whichever process appends; and positions (rowids)
//! are given out under that lock, so commit order is position order and read-all can never
//! skip an event that commits later with a lower position.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, TransactionBehavior};

use super::read;
use super::{backend, TooLarge};
use crate::envelope::{Metadata, NewEvent, RecordedEvent};
use crate::error::{CorruptRecord, Corruption, StoreError};
use crate::store::{self, ExpectedVersion};
use crate::stream::StreamId;

const INSERT: &str = "INSERT INTO es_events (stream_id, version, event_name, schema_version, \
     recorded_at_us, event_id, correlation_id, causation_id, extra, payload, command_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Appends a non-empty, already checked batch to `stream` if it is at `expected`.
pub(super) fn append(
    connection: &mut Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("starting a SQLite append"))?;
    let recorded = append_in(&transaction, stream, expected, events)?;
    transaction
        .commit()
        .map_err(backend("committing a SQLite append"))?;
    Ok(recorded)
}

/// The append itself, inside a transaction that holds the write lock and that the caller
/// commits (its own, or a projection batch's for inline projections).
pub(super) fn append_in(
    transaction: &Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    // Under the write lock: no other append of this command can commit between the look
    // and the inserts below.
    if let Some(command_id) = events.first().and_then(|event| event.metadata.command_id) {
        let first_run = read::command_events(transaction, stream, command_id)?;
        if !first_run.is_empty() {
            return Ok(first_run);
        }
    }
    let actual = read::stream_version(transaction, stream)?;
    expected.check(stream, actual)?;
    // SQLite keeps microseconds: truncate now, so what we return equals what a read returns.
    let recorded_at = truncate_to_micros(Utc::now());
    let recorded_at_us = recorded_at.timestamp_micros();
    let mut recorded = Vec::with_capacity(events.len());
    {
        let mut insert = transaction
            .prepare_cached(INSERT)
            .map_err(backend("preparing a SQLite append"))?;
        for (event, version) in events.into_iter().zip(actual + 1..) {
            let stored_version = i64::try_from(version).map_err(|_| {
                StoreError::backend("appending to SQLite", TooLarge::new("version", version))
            })?;
            insert
                .execute(params![
                    stream.as_str(),
                    stored_version,
                    &*event.event_name,
                    event.schema_version,
                    recorded_at_us,
                    event.metadata.event_id.to_string(),
                    event.metadata.correlation_id.to_string(),
                    event.metadata.causation_id.map(|id| id.to_string()),
                    encode_extra(&event.metadata)?,
                    event.payload.as_str(),
                    event.metadata.command_id.map(|id| id.to_string()),
                ])
                .map_err(backend("appending to SQLite"))?;
            // The CHECK on `position` keeps a rowid below 1 out of the table; should a file
            // without it get here, say so rather than return a position nobody can read.
            let rowid = transaction.last_insert_rowid();
            let position = u64::try_from(rowid).map_err(|_| {
                CorruptRecord::new(
                    stream.as_str(),
                    Some(version),
                    Some(&event.event_name),
                    Corruption::OutOfRange {
                        column: "position",
                        value: rowid,
                    },
                )
            })?;
            recorded.push(store::recorded(
                event,
                stream,
                (version, position),
                recorded_at,
            ));
        }
    }
    Ok(recorded)
}

fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_micros(at.timestamp_micros())
        .single()
        .unwrap_or(at)
}

/// The free-form entries as a JSON object, or NULL when there are none.
fn encode_extra(metadata: &Metadata) -> Result<Option<String>, StoreError> {
    if metadata.extra.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&metadata.extra)
        .map(Some)
        .map_err(|error| StoreError::backend("encoding event metadata", error))
}
