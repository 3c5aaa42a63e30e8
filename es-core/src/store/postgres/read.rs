//! Reading: one stream, the whole log, one aggregate type, the head; every row through the
//! strict decoder.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::append::INDEX_BITS;
use super::connection;
use super::decode::{self, Names, EVENT_COLUMNS, PAYLOAD_COLUMNS};
use super::Shared;
use crate::envelope::RecordedEvent;
use crate::error::StoreError;
use crate::store::StoredPayload;
use crate::stream::StreamId;

/// The SQL of the reads, with the schema filled in.
#[derive(Debug)]
pub(super) struct Sql {
    read_stream: String,
    read_stream_payloads: String,
    read_all: String,
    /// Every committed event from a position, running transactions or not: for a swap, which
    /// holds the lock that the transactions it must see take (see `ReadTx::read_all`).
    pub(super) read_all_committed: String,
    read_aggregate_type: String,
    head_position: String,
    blocker: String,
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let events = format!("\"{schema}\".es_events");
        // Only transactions older than the oldest one still running are certain: a younger
        // one may still commit a lower position than one already visible. See the module docs.
        let settled = format!(
            "position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {INDEX_BITS})"
        );
        Sql {
            read_stream: format!(
                "SELECT {EVENT_COLUMNS} FROM {events}
                 WHERE stream_id = $1::text AND version >= $2::bigint ORDER BY version LIMIT $3::bigint"
            ),
            read_stream_payloads: format!(
                "SELECT {PAYLOAD_COLUMNS} FROM {events}
                 WHERE stream_id = $1::text AND version >= $2::bigint ORDER BY version LIMIT $3::bigint"
            ),
            read_all: format!(
                "SELECT stream_id, {EVENT_COLUMNS} FROM {events}
                 WHERE position >= $1::bigint AND {settled}
                 ORDER BY position LIMIT $2::bigint"
            ),
            read_all_committed: format!(
                "SELECT stream_id, {EVENT_COLUMNS} FROM {events}
                 WHERE position >= $1::bigint ORDER BY position LIMIT $2::bigint"
            ),
            // Walks the position index from `$1` and filters on the key's prefix, so no
            // extra index (about 32 bytes per event) is kept for it. It reads events of
            // other types on the way, on the server, and returns none of them.
            read_aggregate_type: format!(
                "SELECT stream_id, {EVENT_COLUMNS} FROM {events}
                 WHERE position >= $1::bigint AND {settled} AND starts_with(stream_id, $3::text)
                 ORDER BY position LIMIT $2::bigint"
            ),
            head_position: format!(
                "SELECT coalesce(max(position), 0)::bigint AS position FROM {events}"
            ),
            // The oldest transaction with an id, in any database of the cluster: the one
            // whose xid bounds read-all.
            blocker: "SELECT pid::bigint, extract(epoch FROM now() - xact_start)::float8 AS age,
                             coalesce(state, '') AS state, left(coalesce(query, ''), 120) AS query
                      FROM pg_stat_activity
                      WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
                      ORDER BY age(backend_xid) DESC LIMIT 1"
                .to_owned(),
        }
    }
}

/// A bound for a query: past `i64::MAX` there is nothing stored, so the largest bound reads
/// the same rows.
fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Runs one read on a pooled connection.
async fn rows(
    shared: &Shared,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &'static str,
) -> Result<Vec<Row>, StoreError> {
    connection::query_pooled(&shared.pool, &shared.timeouts, sql, params, context).await
}

pub(super) async fn read_stream(
    shared: &Shared,
    stream: &StreamId,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (key, from, limit) = (stream.as_str(), bound(from_version), bound(limit as u64));
    let rows = rows(
        shared,
        &shared.sql.read.read_stream,
        &[&key, &from, &limit],
        "reading a PostgreSQL stream",
    )
    .await?;
    let mut names = Names::default();
    rows.iter()
        .map(|row| decode::recorded_event(row, Some(stream), &mut names))
        .collect()
}

pub(super) async fn read_stream_payloads(
    shared: &Shared,
    stream: &StreamId,
    from_version: u64,
    limit: usize,
) -> Result<Vec<StoredPayload>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (key, from, limit) = (stream.as_str(), bound(from_version), bound(limit as u64));
    let rows = rows(
        shared,
        &shared.sql.read.read_stream_payloads,
        &[&key, &from, &limit],
        "reading a PostgreSQL stream",
    )
    .await?;
    let mut names = Names::default();
    rows.iter()
        .map(|row| decode::stored_payload(row, stream, &mut names))
        .collect()
}

pub(super) async fn read_all(
    shared: &Shared,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (from, limit) = (bound(from_position), bound(limit as u64));
    let rows = rows(
        shared,
        &shared.sql.read.read_all,
        &[&from, &limit],
        "reading all PostgreSQL events",
    )
    .await?;
    decode_any_stream(&rows)
}

pub(super) async fn read_aggregate_type(
    shared: &Shared,
    aggregate_type: &str,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (from, limit) = (bound(from_position), bound(limit as u64));
    // `starts_with`, not LIKE: `_` in a type name is not a wildcard.
    let prefix = format!("{aggregate_type}/");
    let rows = rows(
        shared,
        &shared.sql.read.read_aggregate_type,
        &[&from, &limit, &prefix],
        "reading PostgreSQL events of one aggregate type",
    )
    .await?;
    decode_any_stream(&rows)
}

pub(super) fn decode_any_stream(rows: &[Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut names = Names::default();
    rows.iter()
        .map(|row| decode::recorded_event(row, None, &mut names))
        .collect()
}

pub(super) async fn stream_version(shared: &Shared, stream: &StreamId) -> Result<u64, StoreError> {
    let key = stream.as_str();
    let rows = rows(
        shared,
        shared.sql.append.stream_version(),
        &[&key],
        "reading a PostgreSQL stream version",
    )
    .await?;
    match rows.first() {
        Some(row) => decode::count(row, Some(stream), "version"),
        None => Ok(0),
    }
}

pub(super) async fn head_position(shared: &Shared) -> Result<u64, StoreError> {
    // Every committed position, including ones read-all still holds back.
    let rows = rows(
        shared,
        &shared.sql.read.head_position,
        &[],
        "reading the PostgreSQL head position",
    )
    .await?;
    match rows.first() {
        Some(row) => decode::count(row, None, "position"),
        None => Ok(0),
    }
}

pub(super) async fn read_all_blocker(
    shared: &Shared,
) -> Result<Option<crate::store::Blocker>, StoreError> {
    let rows = rows(
        shared,
        &shared.sql.read.blocker,
        &[],
        "looking for the transaction that holds read-all back",
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let unreadable =
        |error: tokio_postgres::Error| StoreError::backend("reading pg_stat_activity", error);
    let age: f64 = row.try_get("age").map_err(unreadable)?;
    Ok(Some(crate::store::Blocker {
        pid: row.try_get("pid").map_err(unreadable)?,
        age: std::time::Duration::from_secs_f64(age.max(0.0)),
        state: row.try_get("state").map_err(unreadable)?,
        query: row.try_get("query").map_err(unreadable)?,
    }))
}
