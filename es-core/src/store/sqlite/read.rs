//! Reading: streams, the whole log, one aggregate type, versions and the head position.
//!
//! Every query here is a single statement, so in WAL mode it reads one consistent snapshot of
//! the file without waiting for the writer. Every row goes through the strict decoder.

use rusqlite::{params, Connection, Params, Row, ToSql};

use super::backend;
use super::decode::{self, Decoder};
use crate::envelope::RecordedEvent;
use crate::error::StoreError;
use crate::store::StoredPayload;
use crate::stream::StreamId;

/// What an event read says it was doing when it fails.
const EVENTS: &str = "reading SQLite events";

/// Where a read starts and how many rows it may return, as SQLite integers; `None` when it
/// cannot return anything (no row has a version or position beyond `i64::MAX`).
fn window(from: u64, limit: usize) -> Option<(i64, i64)> {
    let from = i64::try_from(from).ok()?;
    // LIMIT is "at most": more than i64::MAX rows cannot exist, so saturating loses nothing.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    (limit > 0).then_some((from, limit))
}

/// Runs `sql` and decodes each row with `decode`; `reading` says what, should it fail.
pub(super) fn query<T>(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    reading: &'static str,
    mut decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = connection
        .prepare_cached(sql)
        .map_err(backend("preparing a SQLite read"))?;
    let mut rows = statement.query(params).map_err(backend(reading))?;
    let mut decoded = Vec::new();
    while let Some(row) = rows.next().map_err(backend(reading))? {
        decoded.push(decode(row)?);
    }
    Ok(decoded)
}

/// What a stream read returns: whole events, or only what replay needs of them. One read
/// serves both, so they page the same way and differ only in columns.
pub(super) trait StreamRow: Sized {
    /// The columns selected, in the order `decode` reads them.
    const COLUMNS: &'static str;

    /// Reads one row.
    fn decode(decoder: &mut Decoder, row: &Row<'_>) -> Result<Self, StoreError>;
}

impl StreamRow for RecordedEvent {
    const COLUMNS: &'static str = decode::EVENT;

    fn decode(decoder: &mut Decoder, row: &Row<'_>) -> Result<Self, StoreError> {
        decoder.event(row)
    }
}

impl StreamRow for StoredPayload {
    const COLUMNS: &'static str = decode::PAYLOAD;

    fn decode(decoder: &mut Decoder, row: &Row<'_>) -> Result<Self, StoreError> {
        decoder.payload(row)
    }
}

/// Up to `limit` rows of one stream from `from_version`, in version order.
pub(super) fn read_stream<T: StreamRow>(
    connection: &Connection,
    stream: &StreamId,
    from_version: u64,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let Some((from, limit)) = window(from_version, limit) else {
        return Ok(Vec::new());
    };
    let mut decoder = Decoder::for_stream(stream);
    query(
        connection,
        &format!(
            "SELECT {} FROM es_events WHERE stream_id = ?1 AND version >= ?2 \
             ORDER BY version LIMIT ?3",
            T::COLUMNS
        ),
        params![stream.as_str(), from, limit],
        EVENTS,
        |row| T::decode(&mut decoder, row),
    )
}

/// The statement of [`command_events`].
///
/// INDEXED BY: without statistics SQLite prefers the stream's unique index here, because it
/// also gives the order, and then reads every event of the stream to compare command ids:
/// each append of a command scanned its stream's whole history. The command index finds the
/// few rows directly; should it ever be unusable, the statement fails instead of silently
/// scanning.
pub(super) fn command_events_sql() -> String {
    format!(
        "SELECT {} FROM es_events INDEXED BY es_events_by_command \
         WHERE command_id = ?1 AND stream_id = ?2 ORDER BY version",
        decode::EVENT
    )
}

/// The events a command appended to `stream`, in order (none if it never ran there).
pub(super) fn command_events(
    connection: &Connection,
    stream: &StreamId,
    command_id: uuid::Uuid,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut decoder = Decoder::for_stream(stream);
    query(
        connection,
        &command_events_sql(),
        params![command_id.to_string(), stream.as_str()],
        EVENTS,
        |row| decoder.event(row),
    )
}

pub(super) fn read_all(
    connection: &Connection,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM es_events WHERE position >= ?1 ORDER BY position LIMIT ?2",
        decode::EVENT
    );
    log_events(connection, &sql, from_position, limit, &[])
}

pub(super) fn read_aggregate_type(
    connection: &Connection,
    aggregate_type: &str,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = aggregate_type_sql();
    log_events(connection, &sql, from_position, limit, &[&aggregate_type])
}

/// Served by `es_events_by_aggregate_type`: a seek, then a walk in position order (a test
/// checks SQLite's plan says so).
pub(super) fn aggregate_type_sql() -> String {
    format!(
        "SELECT {} FROM es_events WHERE aggregate_type = ?3 AND position >= ?1 \
         ORDER BY position LIMIT ?2",
        decode::EVENT
    )
}

/// Up to `limit` events of any stream from `from_position`, in position order, by `sql`:
/// `?1` is the position, `?2` the limit, and `filter` binds what follows.
fn log_events(
    connection: &Connection,
    sql: &str,
    from_position: u64,
    limit: usize,
    filter: &[&dyn ToSql],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let Some((from, limit)) = window(from_position, limit) else {
        return Ok(Vec::new());
    };
    let window: [&dyn ToSql; 2] = [&from, &limit];
    let params: Vec<&dyn ToSql> = window.into_iter().chain(filter.iter().copied()).collect();
    let mut decoder = Decoder::default();
    query(connection, sql, params.as_slice(), EVENTS, |row| {
        decoder.event(row)
    })
}

/// The version of the stream's last event, 0 when it has none. Reads only the naming
/// columns of one row, through the unique index: the append path calls it on every write.
pub(super) fn stream_version(
    connection: &Connection,
    stream: &StreamId,
) -> Result<u64, StoreError> {
    last_row(
        connection,
        &format!(
            "SELECT {} FROM es_events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1",
            decode::LOCATE
        ),
        [stream.as_str()],
        |row| Ok(decode::locate(row)?.version),
    )
}

/// The position of the log's last event, 0 when it is empty.
pub(super) fn head_position(connection: &Connection) -> Result<u64, StoreError> {
    last_row(
        connection,
        &format!(
            "SELECT {} FROM es_events ORDER BY position DESC LIMIT 1",
            decode::LOCATE
        ),
        [],
        |row| Ok(decode::locate(row)?.position),
    )
}

/// The number `decode` reads from the one row `sql` returns, 0 when it returns none.
fn last_row(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnMut(&Row<'_>) -> Result<u64, StoreError>,
) -> Result<u64, StoreError> {
    let found = query(connection, sql, params, "reading a SQLite version", decode)?;
    Ok(found.first().copied().unwrap_or(0))
}
