//! Snapshots: the latest one per stream, in `es_snapshots`.

use rusqlite::{params, Connection};

use super::{backend, TooLarge};
use super::{decode, read};
use crate::error::StoreError;
use crate::store::Snapshot;
use crate::stream::StreamId;

pub(super) fn load(
    connection: &Connection,
    stream: &StreamId,
) -> Result<Option<Snapshot>, StoreError> {
    let sql = format!(
        "SELECT {} FROM es_snapshots WHERE stream_id = ?1",
        decode::SNAPSHOT
    );
    // At most one row: the stream is the table's key.
    let mut found = read::query(
        connection,
        &sql,
        [stream.as_str()],
        "reading a SQLite snapshot",
        |row| decode::snapshot(stream, row),
    )?;
    Ok(found.pop())
}

/// Keeps `snapshot` unless the stream already has one of a higher version; one statement,
/// so two savers racing can never leave the older one behind.
pub(super) fn save(connection: &Connection, snapshot: &Snapshot) -> Result<(), StoreError> {
    let version = i64::try_from(snapshot.version).map_err(|_| {
        StoreError::backend(
            "saving a SQLite snapshot",
            TooLarge::new("snapshot version", snapshot.version),
        )
    })?;
    connection
        .prepare_cached(
            "INSERT INTO es_snapshots (stream_id, version, state_fingerprint, state, taken_at_us) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (stream_id) DO UPDATE SET \
                version = excluded.version, \
                state_fingerprint = excluded.state_fingerprint, \
                state = excluded.state, \
                taken_at_us = excluded.taken_at_us \
             WHERE excluded.version >= es_snapshots.version",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                snapshot.stream.as_str(),
                version,
                snapshot.state_fingerprint,
                snapshot.state.as_str(),
                snapshot.taken_at.timestamp_micros(),
            ])
        })
        .map_err(backend("saving a SQLite snapshot"))?;
    Ok(())
}
