//! Read models beside the events: projection generations (checkpoints), their document
//! tables, dead letters and leases, behind [`ReadStore`].
//!
//! A batch is one [`PgTransaction`](super::PgTransaction) on one pooled connection
//! ([`tx::PgReadTx`]); its checkpoint moves by compare-and-set, so of two workers racing on
//! a projection the second blocks on the generation's row, then finds it moved.
//! Creating and promoting generations take a per-projection advisory lock, so two processes
//! doing it at once take turns. Transactions that write a projection's live generation inline
//! take the same lock shared ([`ReadTx::live_generation`]): they never wait for each other,
//! but a promotion waits for those under way, and new ones wait for the promotion, so a
//! rebuild's swap sees every event written to the generation it retires.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::connection::{self, QueryError};
use super::{PostgresStore, Shared};
use crate::error::StoreError;
use crate::read::{
    DeadLetter, DocumentRow, DocumentTable, GenerationState, GenerationStatus, ListQuery,
    ReadStore, ReadTx, Stopped,
};
use crate::stream::StreamId;

mod documents;
mod tx;

use documents::TableName;
use tx::PgReadTx;

/// The SQL of the read-model statements, with the schema filled in.
#[derive(Debug)]
pub(super) struct Sql {
    lock_projection: String,
    /// The same lock, shared: taken by every transaction that writes a projection's live
    /// generation inline, so a swap (which takes it exclusively) waits for them, and they
    /// for it.
    lock_projection_shared: String,
    live_generation: String,
    generations: String,
    generation: String,
    create_generation: String,
    table_exists: &'static str,
    other_generations: String,
    make_live: String,
    delete_others: String,
    advance: String,
    checkpoint: String,
    set_stopped: String,
    dead_letters: String,
    add_dead_letter: String,
    remove_dead_letter: String,
    acquire_lease: String,
    current_holder: String,
    lease_holder: String,
    release_lease: String,
}

/// The read-model queries whose one parameter is a projection's name.
#[derive(Clone, Copy)]
enum ByProjection {
    Generations,
    DeadLetters,
    /// The lease's holder, expired or not.
    CurrentHolder,
    /// The lease's holder while the lease lasts.
    LeaseHolder,
}

impl Sql {
    /// The statement of `query`, and what running it is, for its error.
    fn by_projection(&self, query: ByProjection) -> (&str, &'static str) {
        match query {
            ByProjection::Generations => (
                &self.generations,
                "reading PostgreSQL projection generations",
            ),
            ByProjection::DeadLetters => (&self.dead_letters, "reading PostgreSQL dead letters"),
            ByProjection::CurrentHolder => (
                &self.current_holder,
                "reading a PostgreSQL projection lease",
            ),
            ByProjection::LeaseHolder => {
                (&self.lease_holder, "reading a PostgreSQL projection lease")
            }
        }
    }
}

/// The rows `query` selects for `projection`, on a pooled connection, outside any
/// transaction.
async fn by_projection(
    shared: &Shared,
    query: ByProjection,
    projection: &str,
) -> Result<Vec<Row>, StoreError> {
    let (sql, context) = shared.sql.read_models.by_projection(query);
    connection::query_pooled(&shared.pool, &shared.timeouts, sql, &[&projection], context).await
}

/// The columns of a generation row, in [`generation_state`]'s order.
const GENERATION_COLUMNS: &str =
    "projection, generation, version, checkpoint, status, stopped_position, stopped_error";

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let generations = format!("\"{schema}\".es_projection_generations");
        let dead_letters = format!("\"{schema}\".es_dead_letters");
        let leases = format!("\"{schema}\".es_projection_leases");
        let this_generation = "projection = $1::text AND generation = $2::int";
        Sql {
            lock_projection: format!(
                "SELECT pg_advisory_xact_lock(hashtext('es-core read models {schema} ' || $1::text))"
            ),
            lock_projection_shared: format!(
                "SELECT pg_advisory_xact_lock_shared(hashtext('es-core read models {schema} ' || $1::text))"
            ),
            live_generation: format!(
                "SELECT generation FROM {generations} WHERE projection = $1::text AND status = 'live'"
            ),
            generations: format!(
                "SELECT {GENERATION_COLUMNS} FROM {generations} WHERE projection = $1::text ORDER BY generation"
            ),
            generation: format!(
                "SELECT {GENERATION_COLUMNS} FROM {generations} WHERE {this_generation}"
            ),
            // Under the projection's lock, so "first" is decided by one creator at a time.
            create_generation: format!(
                "INSERT INTO {generations} (projection, generation, version, checkpoint, status)
                 SELECT $1::text, $2::int, $3::text, 1,
                        CASE WHEN EXISTS (SELECT FROM {generations} WHERE projection = $1::text)
                             THEN 'building' ELSE 'live' END
                 ON CONFLICT (projection, generation) DO NOTHING"
            ),
            table_exists: "SELECT to_regclass($1::text) IS NOT NULL AS present",
            other_generations: format!(
                "SELECT generation FROM {generations} WHERE projection = $1::text AND generation <> $2::int"
            ),
            make_live: format!(
                "UPDATE {generations} SET status = 'live' WHERE {this_generation} RETURNING generation"
            ),
            delete_others: format!(
                "DELETE FROM {generations} WHERE projection = $1::text AND generation <> $2::int"
            ),
            advance: format!(
                "UPDATE {generations} SET checkpoint = $4::bigint
                 WHERE {this_generation} AND checkpoint = $3::bigint RETURNING checkpoint"
            ),
            checkpoint: format!(
                "SELECT checkpoint FROM {generations} WHERE {this_generation}"
            ),
            set_stopped: format!(
                "UPDATE {generations} SET stopped_position = $3::bigint, stopped_error = $4::text
                 WHERE {this_generation}"
            ),
            dead_letters: format!(
                "SELECT projection, position, stream_id, version, event_name, error, failed_at
                 FROM {dead_letters} WHERE projection = $1::text ORDER BY position"
            ),
            add_dead_letter: format!(
                "INSERT INTO {dead_letters} (projection, position, stream_id, version, event_name, error, failed_at)
                 VALUES ($1::text, $2::bigint, $3::text, $4::bigint, $5::text, $6::text, $7::timestamptz)
                 ON CONFLICT (projection, position) DO UPDATE SET
                    stream_id = excluded.stream_id, version = excluded.version,
                    event_name = excluded.event_name, error = excluded.error,
                    failed_at = excluded.failed_at"
            ),
            remove_dead_letter: format!(
                "DELETE FROM {dead_letters} WHERE projection = $1::text AND position = $2::bigint
                 RETURNING position"
            ),
            // Takes a free, expired or own lease; returns nothing when another holds it.
            acquire_lease: format!(
                "INSERT INTO {leases} AS lease (projection, holder, expires_at)
                 VALUES ($1::text, $2::text, now() + $3::bigint * interval '1 microsecond')
                 ON CONFLICT (projection) DO UPDATE SET
                    holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE lease.holder = excluded.holder OR lease.expires_at <= now()
                 RETURNING holder"
            ),
            current_holder: format!("SELECT holder FROM {leases} WHERE projection = $1::text"),
            lease_holder: format!(
                "SELECT holder FROM {leases} WHERE projection = $1::text AND expires_at > now()"
            ),
            release_lease: format!(
                "DELETE FROM {leases} WHERE projection = $1::text AND holder = $2::text"
            ),
        }
    }
}

#[async_trait]
impl ReadStore for PostgresStore {
    async fn generations(&self, projection: &str) -> Result<Vec<GenerationState>, StoreError> {
        let rows = by_projection(&self.shared, ByProjection::Generations, projection).await?;
        rows.iter().map(generation_state).collect()
    }

    async fn create_generation(
        &self,
        table: &DocumentTable,
        version: &str,
    ) -> Result<GenerationState, StoreError> {
        create_generation(&self.shared, table, version).await
    }

    async fn promote(&self, table: &DocumentTable) -> Result<(), StoreError> {
        promote(&self.shared, table).await
    }

    async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        Ok(Box::new(PgReadTx::begin(&self.shared).await?))
    }

    fn sql_table_name(&self, name: &str) -> Option<String> {
        Some(crate::postgres::sql::qualified(&self.shared.schema, name))
    }

    async fn query_sql(
        &self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<crate::sql::SqlRows, StoreError> {
        let shared = &self.shared;
        let client = connection::checkout(&shared.pool, &shared.timeouts).await?;
        let params = crate::postgres::sql::params(params);
        match connection::query(&client, sql, &params, &shared.timeouts).await {
            Ok(rows) => crate::postgres::sql::rows(&rows),
            Err(error) => {
                if error.poisons_connection() {
                    drop(deadpool_postgres::Object::take(client));
                }
                Err(error.into_store("querying a SQL projection on PostgreSQL", &shared.timeouts))
            }
        }
    }

    async fn get_document(
        &self,
        table: &DocumentTable,
        key: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        let name = TableName::new(&self.shared.schema, table)?;
        let rows = documents_or_none(&self.shared, &name.get(), &[&key]).await?;
        rows.first()
            .map(|row| documents::row(row, table))
            .transpose()
    }

    async fn list_documents(
        &self,
        table: &DocumentTable,
        query: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let filter_index = query.filter.as_ref().map(|(index, _)| *index);
        let order_index = query.order.as_ref().map(|order| order.index);
        if filter_index
            .into_iter()
            .chain(order_index)
            .any(|index| index >= table.indexes.len())
        {
            // No such field is stored, so no document has a value for it.
            return Ok(Vec::new());
        }
        let name = TableName::new(&self.shared.schema, table)?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&limit];
        if let Some((_, value)) = &query.filter {
            params.push(value);
        }
        match &query.order {
            Some(order) => {
                if let Some((value, key)) = &order.after {
                    params.push(value);
                    params.push(key);
                }
            }
            None => {
                if let Some(after) = &query.after {
                    params.push(after);
                }
            }
        }
        let rows = documents_or_none(&self.shared, &name.list(query), &params).await?;
        rows.iter().map(|row| documents::row(row, table)).collect()
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = by_projection(&self.shared, ByProjection::DeadLetters, projection).await?;
        rows.iter().map(dead_letter).collect()
    }

    async fn acquire_lease(
        &self,
        projection: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let shared = &self.shared;
        let sql = &shared.sql.read_models;
        let ttl_micros = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        // The holder can change (be released) between the two statements: then try again.
        for _ in 0..LEASE_ATTEMPTS {
            let taken = connection::query_pooled(
                &shared.pool,
                &shared.timeouts,
                &sql.acquire_lease,
                &[&projection, &holder, &ttl_micros],
                "taking a PostgreSQL projection lease",
            )
            .await?;
            if let Some(row) = taken.first() {
                return text(row, "holder", LEASES, projection);
            }
            let current = by_projection(shared, ByProjection::CurrentHolder, projection).await?;
            if let Some(row) = current.first() {
                return text(row, "holder", LEASES, projection);
            }
        }
        Err(StoreError::backend(
            "taking a PostgreSQL projection lease",
            LeaseChurn {
                projection: projection.to_owned(),
            },
        ))
    }

    async fn lease_holder(&self, projection: &str) -> Result<Option<String>, StoreError> {
        let rows = by_projection(&self.shared, ByProjection::LeaseHolder, projection).await?;
        rows.first()
            .map(|row| text(row, "holder", LEASES, projection))
            .transpose()
    }

    async fn release_lease(&self, projection: &str, holder: &str) -> Result<(), StoreError> {
        let shared = &self.shared;
        connection::query_pooled(
            &shared.pool,
            &shared.timeouts,
            &shared.sql.read_models.release_lease,
            &[&projection, &holder],
            "releasing a PostgreSQL projection lease",
        )
        .await?;
        Ok(())
    }

    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.shared.listener.subscribe())
    }
}

/// How often taking a lease tries again when its holder changes under it; each retry means
/// another process took or released it in between.
const LEASE_ATTEMPTS: usize = 10;

const GENERATIONS: &str = "es_projection_generations";
const DEAD_LETTERS: &str = "es_dead_letters";
const LEASES: &str = "es_projection_leases";

/// A read of a document table; a table that does not exist (a generation never created,
/// or dropped by a promotion) holds no documents.
async fn documents_or_none(
    shared: &Shared,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let client = connection::checkout(&shared.pool, &shared.timeouts).await?;
    match connection::query(&client, sql, params, &shared.timeouts).await {
        Ok(rows) => Ok(rows),
        Err(error) if is_undefined_table(&error) => Ok(Vec::new()),
        Err(error) => {
            if error.poisons_connection() {
                drop(deadpool_postgres::Object::take(client));
            }
            Err(error.into_store("reading PostgreSQL documents", &shared.timeouts))
        }
    }
}

pub(super) fn is_undefined_table(error: &QueryError) -> bool {
    error.code() == Some(&SqlState::UNDEFINED_TABLE)
}

async fn create_generation(
    shared: &Arc<Shared>,
    table: &DocumentTable,
    version: &str,
) -> Result<GenerationState, StoreError> {
    let name = TableName::new(&shared.schema, table)?;
    let sql = &shared.sql.read_models;
    let projection = table.projection.as_str();
    let generation = generation_param(table)?;
    let mut tx = PgReadTx::begin(shared).await?;
    let context = "creating a PostgreSQL projection generation";
    tx.query(&sql.lock_projection, &[&projection], context)
        .await?;
    let exists = tx
        .query(sql.table_exists, &[&name.quoted], context)
        .await?
        .first()
        .is_some_and(|row| matches!(row.try_get("present"), Ok(true)));
    if !exists {
        // Indexes are created with the table only: they are unnamed, so "if not exists"
        // cannot be said of them, and the lock makes this the only creator.
        tx.batch(&name.create(table), context).await?;
    }
    tx.query(
        &sql.create_generation,
        &[&projection, &generation, &version],
        context,
    )
    .await?;
    let rows = tx
        .query(&sql.generation, &[&projection, &generation], context)
        .await?;
    let state = match rows.first() {
        Some(row) => generation_state(row)?,
        None => {
            return Err(StoreError::backend(
                context,
                CorruptState::missing(table, "the generation row vanished after its insert"),
            ))
        }
    };
    tx.commit_store().await?;
    Ok(state)
}

async fn promote(shared: &Arc<Shared>, table: &DocumentTable) -> Result<(), StoreError> {
    let mut tx = PgReadTx::begin(shared).await?;
    match ReadTx::promote(&mut tx, table).await {
        // Commits the swap itself (see `swap`).
        Ok(()) => tx.commit_store().await,
        Err(error) => {
            tx.rollback_store().await?;
            Err(error)
        }
    }
}

const PROMOTING: &str = "promoting a PostgreSQL projection generation";

/// The first half of a promotion, at `ReadTx::promote`: the projection's lock, exclusively
/// (so transactions writing its live generation inline have ended, and new ones wait for
/// this one), and a check that the generation is still there.
async fn lock_for_swap(tx: &mut PgReadTx, table: &DocumentTable) -> Result<(), StoreError> {
    let sql = &tx.shared().sql.read_models;
    let (lock, generation_row) = (sql.lock_projection.clone(), sql.generation.clone());
    let projection = table.projection.as_str();
    let generation = generation_param(table)?;
    tx.query(&lock, &[&projection], PROMOTING).await?;
    let rows = tx
        .query(&generation_row, &[&projection, &generation], PROMOTING)
        .await?;
    if rows.is_empty() {
        // Another process promoted a newer generation (and dropped this one) first.
        return Err(StoreError::CheckpointMoved {
            projection: table.projection.clone(),
            generation: table.generation,
            expected: 0,
            actual: None,
        });
    }
    Ok(())
}

/// The second half, just before the commit: drops the other generations' tables, makes
/// this one live and deletes the others' rows. Last, so readers of the old table wait for
/// its drop only as long as the commit takes.
async fn swap(tx: &mut PgReadTx, table: &DocumentTable) -> Result<(), StoreError> {
    let shared = Arc::clone(tx.shared());
    let sql = &shared.sql.read_models;
    let projection = table.projection.as_str();
    let generation = generation_param(table)?;
    let others = tx
        .query(
            &sql.other_generations,
            &[&projection, &generation],
            PROMOTING,
        )
        .await?;
    // Tables first: dropping one waits for batches still writing to it, and those never
    // wait for anything this transaction locks before (the generation rows come after).
    let mut drops = String::new();
    for row in &others {
        let other = u32::try_from(int(row, "generation", GENERATIONS, projection)?)
            .map_err(|_| corrupt_column(GENERATIONS, projection, "generation", "out of range"))?;
        let old = DocumentTable {
            generation: other,
            ..table.clone()
        };
        drops.push_str(&format!(
            "DROP TABLE IF EXISTS {};\n",
            TableName::new(&shared.schema, &old)?.quoted
        ));
    }
    if !drops.is_empty() {
        tx.batch(&drops, PROMOTING).await?;
    }
    let promoted = tx
        .query(&sql.make_live, &[&projection, &generation], PROMOTING)
        .await?;
    if promoted.is_empty() {
        return Err(StoreError::CheckpointMoved {
            projection: table.projection.clone(),
            generation: table.generation,
            expected: 0,
            actual: None,
        });
    }
    tx.query(&sql.delete_others, &[&projection, &generation], PROMOTING)
        .await?;
    Ok(())
}

/// The live generation of `projection`, read after taking its lock shared (see
/// `ReadTx::live_generation`): a statement of its own, so it sees a swap that committed
/// while the lock was awaited.
async fn live_generation(tx: &mut PgReadTx, projection: &str) -> Result<Option<u32>, StoreError> {
    let sql = &tx.shared().sql.read_models;
    let (lock, live) = (
        sql.lock_projection_shared.clone(),
        sql.live_generation.clone(),
    );
    let context = "reading the live generation of a PostgreSQL projection";
    tx.query(&lock, &[&projection], context).await?;
    let rows = tx.query(&live, &[&projection], context).await?;
    rows.first()
        .map(|row| {
            u32::try_from(int(row, "generation", GENERATIONS, projection)?)
                .map_err(|_| corrupt_column(GENERATIONS, projection, "generation", "out of range"))
        })
        .transpose()
}

/// A generation as the `int` column holds it.
fn generation_param(table: &DocumentTable) -> Result<i32, StoreError> {
    i32::try_from(table.generation).map_err(|_| {
        StoreError::backend(
            "writing a PostgreSQL projection generation",
            OutOfRange {
                what: "generation",
                value: u64::from(table.generation),
            },
        )
    })
}

/// A position or checkpoint as the `bigint` columns hold it.
fn position_param(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::backend(
            "writing PostgreSQL read-model state",
            OutOfRange { what, value },
        )
    })
}

fn generation_state(row: &Row) -> Result<GenerationState, StoreError> {
    let projection = text(row, "projection", GENERATIONS, "?")?;
    let p = projection.as_str();
    let generation = u32::try_from(int(row, "generation", GENERATIONS, p)?)
        .map_err(|_| corrupt_column(GENERATIONS, p, "generation", "out of range"))?;
    let status_text = text(row, "status", GENERATIONS, p)?;
    let status = GenerationStatus::parse(&status_text).ok_or_else(|| {
        corrupt_column(
            GENERATIONS,
            p,
            "status",
            &format!("`{status_text}` is neither `live` nor `building`"),
        )
    })?;
    let stopped_position: Option<i64> = optional(row, "stopped_position", GENERATIONS, p)?;
    let stopped_error: Option<String> = optional(row, "stopped_error", GENERATIONS, p)?;
    let stopped = match (stopped_position, stopped_error) {
        (Some(position), Some(error)) => Some(Stopped {
            position: unsigned(position, GENERATIONS, p, "stopped_position")?,
            error,
        }),
        (None, None) => None,
        _ => {
            return Err(corrupt_column(
                GENERATIONS,
                p,
                "stopped_error",
                "stopped_position and stopped_error must both be set or both be NULL",
            ))
        }
    };
    Ok(GenerationState {
        version: text(row, "version", GENERATIONS, p)?,
        checkpoint: unsigned(
            int(row, "checkpoint", GENERATIONS, p)?,
            GENERATIONS,
            p,
            "checkpoint",
        )?,
        status,
        stopped,
        generation,
        projection,
    })
}

fn dead_letter(row: &Row) -> Result<DeadLetter, StoreError> {
    let projection = text(row, "projection", DEAD_LETTERS, "?")?;
    let p = projection.as_str();
    let stream_key = text(row, "stream_id", DEAD_LETTERS, p)?;
    let stream = StreamId::parse(&stream_key)
        .map_err(|refusal| corrupt_column(DEAD_LETTERS, p, "stream_id", &refusal.to_string()))?;
    Ok(DeadLetter {
        position: unsigned(
            int(row, "position", DEAD_LETTERS, p)?,
            DEAD_LETTERS,
            p,
            "position",
        )?,
        stream,
        version: unsigned(
            int(row, "version", DEAD_LETTERS, p)?,
            DEAD_LETTERS,
            p,
            "version",
        )?,
        event_name: text(row, "event_name", DEAD_LETTERS, p)?,
        error: text(row, "error", DEAD_LETTERS, p)?,
        failed_at: required(row, "failed_at", DEAD_LETTERS, p)?,
        projection,
    })
}

pub(super) fn optional<T>(
    row: &Row,
    column: &'static str,
    table: &str,
    projection: &str,
) -> Result<Option<T>, StoreError>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    row.try_get::<_, Option<T>>(column)
        .map_err(|error| corrupt_column(table, projection, column, &error.to_string()))
}

pub(super) fn required<T>(
    row: &Row,
    column: &'static str,
    table: &str,
    projection: &str,
) -> Result<T, StoreError>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    optional(row, column, table, projection)?
        .ok_or_else(|| corrupt_column(table, projection, column, "NULL"))
}

fn text(
    row: &Row,
    column: &'static str,
    table: &'static str,
    projection: &str,
) -> Result<String, StoreError> {
    required(row, column, table, projection)
}

/// An `int` or `bigint` column.
fn int(
    row: &Row,
    column: &'static str,
    table: &'static str,
    projection: &str,
) -> Result<i64, StoreError> {
    match row
        .columns()
        .iter()
        .find(|c| c.name() == column)
        .map(|c| c.type_().clone())
    {
        Some(tokio_postgres::types::Type::INT4) => {
            required::<i32>(row, column, table, projection).map(i64::from)
        }
        _ => required::<i64>(row, column, table, projection),
    }
}

fn unsigned(
    value: i64,
    table: &'static str,
    projection: &str,
    column: &'static str,
) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| corrupt_column(table, projection, column, &format!("{value} is negative")))
}

fn corrupt_column(table: &str, projection: &str, column: &'static str, detail: &str) -> StoreError {
    StoreError::backend(
        "reading PostgreSQL read-model state",
        CorruptState {
            table: table.to_owned(),
            key: projection.to_owned(),
            column,
            detail: detail.to_owned(),
        },
    )
}

/// A read-model row (a generation, a dead letter, a lease, a document) that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("row `{key}` of `{table}`: column `{column}` cannot be read: {detail}")]
pub(super) struct CorruptState {
    pub(super) table: String,
    /// The projection (or the document key).
    pub(super) key: String,
    pub(super) column: &'static str,
    pub(super) detail: String,
}

impl CorruptState {
    fn missing(table: &DocumentTable, detail: &str) -> Self {
        CorruptState {
            table: GENERATIONS.to_owned(),
            key: table.projection.clone(),
            column: "generation",
            detail: detail.to_owned(),
        }
    }
}

/// A number beyond what the columns hold.
#[derive(Debug, thiserror::Error)]
#[error("{what} {value} is beyond what PostgreSQL stores")]
struct OutOfRange {
    what: &'static str,
    value: u64,
}

/// Taking a lease kept losing to others taking and releasing it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the lease on projection `{projection}` changed hands {LEASE_ATTEMPTS} times while taking it"
)]
struct LeaseChurn {
    projection: String,
}
