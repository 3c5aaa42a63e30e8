//! Reading: one stream, the whole log, one aggregate type, the head; every row through the
//! strict decoder.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::append::INDEX_BITS;
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

/// What a stream read returns: whole events, or only what replay needs of them. One read
/// serves both, so they page and check the same way and differ only in columns.
pub(super) trait StreamRow: Sized {
    /// The statement, selecting the columns `decode` reads.
    fn sql(sql: &Sql) -> &str;

    /// Reads one row of `stream`.
    fn decode(row: &Row, stream: &StreamId, names: &mut Names) -> Result<Self, StoreError>;
}

impl StreamRow for RecordedEvent {
    fn sql(sql: &Sql) -> &str {
        &sql.read_stream
    }

    fn decode(row: &Row, stream: &StreamId, names: &mut Names) -> Result<Self, StoreError> {
        decode::recorded_event(row, Some(stream), names)
    }
}

impl StreamRow for StoredPayload {
    fn sql(sql: &Sql) -> &str {
        &sql.read_stream_payloads
    }

    fn decode(row: &Row, stream: &StreamId, names: &mut Names) -> Result<Self, StoreError> {
        decode::stored_payload(row, stream, names)
    }
}

/// Up to `limit` rows of one stream from `from_version`, in version order.
pub(super) async fn read_stream<T: StreamRow>(
    shared: &Shared,
    stream: &StreamId,
    from_version: u64,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (key, from, limit) = (stream.as_str(), bound(from_version), bound(limit as u64));
    let rows = shared
        .query_pooled(
            T::sql(&shared.sql.read),
            &[&key, &from, &limit],
            "reading a PostgreSQL stream",
        )
        .await?;
    let mut names = Names::default();
    rows.iter()
        .map(|row| T::decode(row, stream, &mut names))
        .collect()
}

pub(super) async fn read_all(
    shared: &Shared,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = &shared.sql.read.read_all;
    let context = "reading all PostgreSQL events";
    log_events(shared, sql, from_position, limit, &[], context).await
}

pub(super) async fn read_aggregate_type(
    shared: &Shared,
    aggregate_type: &str,
    from_position: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    // `starts_with`, not LIKE: `_` in a type name is not a wildcard.
    let prefix = format!("{aggregate_type}/");
    let sql = &shared.sql.read.read_aggregate_type;
    let context = "reading PostgreSQL events of one aggregate type";
    log_events(shared, sql, from_position, limit, &[&prefix], context).await
}

/// Up to `limit` events of any stream from `from_position`, in position order, by `sql`:
/// `$1` is the position, `$2` the limit, and `filter` binds what follows.
async fn log_events(
    shared: &Shared,
    sql: &str,
    from_position: u64,
    limit: usize,
    filter: &[&(dyn ToSql + Sync)],
    context: &'static str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (from, limit) = (bound(from_position), bound(limit as u64));
    let window: [&(dyn ToSql + Sync); 2] = [&from, &limit];
    let params: Vec<_> = window.into_iter().chain(filter.iter().copied()).collect();
    let rows = shared.query_pooled(sql, &params, context).await?;
    decode_any_stream(&rows)
}

pub(super) fn decode_any_stream(rows: &[Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut names = Names::default();
    rows.iter()
        .map(|row| decode::recorded_event(row, None, &mut names))
        .collect()
}

pub(super) async fn stream_version(shared: &Shared, stream: &StreamId) -> Result<u64, StoreError> {
    let sql = shared.sql.append.stream_version();
    let context = "reading a PostgreSQL stream version";
    let key = stream.as_str();
    count(shared, sql, &[&key], Some(stream), "version", context).await
}

pub(super) async fn head_position(shared: &Shared) -> Result<u64, StoreError> {
    // Every committed position, including ones read-all still holds back.
    let sql = &shared.sql.read.head_position;
    let context = "reading the PostgreSQL head position";
    count(shared, sql, &[], None, "position", context).await
}

/// The `column` of the one row `sql` returns, 0 when it returns none; `stream`, when the
/// number is one stream's, is named should the row be corrupt.
async fn count(
    shared: &Shared,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    stream: Option<&StreamId>,
    column: &'static str,
    context: &'static str,
) -> Result<u64, StoreError> {
    let rows = shared.query_pooled(sql, params, context).await?;
    match rows.first() {
        Some(row) => decode::count(row, stream, column),
        None => Ok(0),
    }
}

pub(super) async fn read_all_blocker(
    shared: &Shared,
) -> Result<Option<crate::store::Blocker>, StoreError> {
    let rows = shared
        .query_pooled(
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
