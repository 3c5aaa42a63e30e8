//! The PostgreSQL store: one database shared by many processes.
//!
//! Optimistic concurrency is enforced by the database: `(stream_id, version)` is the primary
//! key, so two writers that expect the same version cannot both commit, in one process or many.
//!
//! # Read-all without skipped events
//!
//! Positions come from the appending transaction's id: `(xid << 20) + index in batch`.
//! Transaction ids are taken in start order but transactions commit in any order, so a reader
//! must not pass a position whose transaction may still commit. Read-all therefore only
//! returns events of transactions older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): everything below that bound is committed or
//! never will be. Positions are strictly increasing and unique, but not dense. The price: a
//! long-running transaction anywhere in the cluster holds read-all back until it ends.
//!
//! Each append is one statement (one round trip): it reads the stream's version, checks the
//! expectation, and inserts the batch.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::envelope::{Metadata, NewEvent, Payload, RecordedEvent};
use crate::error::StoreError;
use crate::store::{EventStore, ExpectedVersion, Snapshot, StoredPayload};

/// The schema this code writes, recorded in `es_schema_version`.
const SCHEMA_VERSION: i32 = 1;

/// Bits of a position that number the events of one transaction.
const BATCH_BITS: u32 = 20;
/// The most events one append may hold.
pub const MAX_BATCH: usize = (1 << BATCH_BITS) - 1;

/// How to reach the database and where to keep the tables.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// e.g. `postgres://postgres@127.0.0.1:5432/app`.
    pub url: String,
    /// The PostgreSQL schema (namespace) holding the tables; created if missing.
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long to wait for a connection to the server.
    pub connect_timeout: Duration,
}

impl PostgresConfig {
    /// The tables in schema `public`, a pool of 16 connections, a 5 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "public".into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Keeps the tables in another schema (e.g. one per test, or per tenant).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }
}

/// An event store in a PostgreSQL database.
///
/// ```no_run
/// # async fn demo() -> Result<(), es_core::StoreError> {
/// use es_core::store::postgres::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/app").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    sql: std::sync::Arc<Statements>,
    schema: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// SQL text with the schema name filled in once (a validated identifier, never a value).
#[derive(Debug)]
struct Statements {
    append: String,
    /// The same for exactly one event, with scalar parameters: no arrays to encode and unnest.
    append_one: String,
    stream_version: String,
    head_position: String,
    read_stream: String,
    read_stream_payloads: String,
    read_all: String,
    load_snapshot: String,
    save_snapshot: String,
    load_checkpoint: String,
    save_checkpoint: String,
}

const COLUMNS: &str = "position, stream_id, version, aggregate_type, event_name, schema_version, recorded_at, event_id, correlation_id, causation_id, extra, payload";

/// A `json` column read as the text it holds. PostgreSQL sends `json` as its text in binary
/// mode too, so no server-side cast and no parsing are needed here.
struct JsonText(std::sync::Arc<str>);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonText(std::sync::Arc::from(std::str::from_utf8(raw)?)))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSON || *ty == tokio_postgres::types::Type::TEXT
    }
}

impl Statements {
    fn new(schema: &str) -> Self {
        let events = format!("\"{schema}\".es_events");
        Statements {
            append: format!(
                "WITH current AS (
                    SELECT coalesce(max(version), 0) AS version FROM {events} WHERE stream_id = $1
                 ), inserted AS (
                    INSERT INTO {events} (position, stream_id, version, aggregate_type, event_name, schema_version,
                                          event_id, correlation_id, causation_id, extra, payload)
                    SELECT (pg_current_xact_id()::text::bigint << {BATCH_BITS}) + batch.ord, $1, current.version + batch.ord, $2,
                           batch.event_name, batch.schema_version, batch.event_id, batch.correlation_id,
                           batch.causation_id, batch.extra::json, batch.payload::json
                    FROM current,
                         unnest($3::text[], $4::int[], $5::uuid[], $6::uuid[], $7::uuid[], $8::text[], $9::text[])
                            WITH ORDINALITY AS batch(event_name, schema_version, event_id, correlation_id, causation_id, extra, payload, ord)
                    WHERE $10::bigint IS NULL OR current.version = $10::bigint
                    RETURNING position, version, recorded_at
                 )
                 SELECT current.version, inserted.position, inserted.version, inserted.recorded_at
                 FROM current LEFT JOIN inserted ON true
                 ORDER BY inserted.version"
            ),
            append_one: format!(
                "WITH current AS (
                    SELECT coalesce(max(version), 0) AS version FROM {events} WHERE stream_id = $1
                 ), inserted AS (
                    INSERT INTO {events} (position, stream_id, version, aggregate_type, event_name, schema_version,
                                          event_id, correlation_id, causation_id, extra, payload)
                    SELECT (pg_current_xact_id()::text::bigint << {BATCH_BITS}) + 1, $1, current.version + 1, $2,
                           $3, $4, $5, $6, $7, $8::text::json, $9::text::json
                    FROM current
                    WHERE $10::bigint IS NULL OR current.version = $10::bigint
                    RETURNING position, version, recorded_at
                 )
                 SELECT current.version, inserted.position, inserted.version, inserted.recorded_at
                 FROM current LEFT JOIN inserted ON true"
            ),
            head_position: format!("SELECT coalesce(max(position), 0) FROM {events}"),
            stream_version: format!("SELECT coalesce(max(version), 0) FROM {events} WHERE stream_id = $1"),
            read_stream: format!(
                "SELECT {COLUMNS} FROM {events} WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3"
            ),
            read_stream_payloads: format!(
                "SELECT version, event_name, schema_version, payload, recorded_at FROM {events}
                 WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3"
            ),
            read_all: format!(
                "SELECT {COLUMNS} FROM {events}
                 WHERE position >= $1
                   AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {BATCH_BITS})
                 ORDER BY position LIMIT $2"
            ),
            load_snapshot: format!(
                "SELECT aggregate_type, version, state_fingerprint, state, taken_at FROM \"{schema}\".es_snapshots WHERE stream_id = $1"
            ),
            save_snapshot: format!(
                "INSERT INTO \"{schema}\".es_snapshots AS existing (stream_id, aggregate_type, version, state_fingerprint, state, taken_at)
                 VALUES ($1, $2, $3, $4, $5::text::json, $6)
                 ON CONFLICT (stream_id) DO UPDATE SET
                    aggregate_type = excluded.aggregate_type, version = excluded.version,
                    state_fingerprint = excluded.state_fingerprint, state = excluded.state, taken_at = excluded.taken_at
                 WHERE excluded.version >= existing.version"
            ),
            load_checkpoint: format!("SELECT next_position FROM \"{schema}\".es_checkpoints WHERE projection = $1"),
            save_checkpoint: format!(
                "INSERT INTO \"{schema}\".es_checkpoints (projection, next_position) VALUES ($1, $2)
                 ON CONFLICT (projection) DO UPDATE SET next_position = excluded.next_position"
            ),
        }
    }
}

fn migrations(schema: &str) -> [String; 1] {
    [format!(
        "-- Fixed-width columns first, widest first, so rows carry no alignment padding.
         -- correlation_id is NULL when it equals event_id (a command that started a correlation).
         CREATE TABLE \"{schema}\".es_events (
            position        bigint      NOT NULL,
            version         bigint      NOT NULL,
            recorded_at     timestamptz NOT NULL DEFAULT now(),
            schema_version  int         NOT NULL,
            event_id        uuid        NOT NULL,
            correlation_id  uuid,
            causation_id    uuid,
            stream_id       text        NOT NULL,
            aggregate_type  text        NOT NULL,
            event_name      text        NOT NULL,
            extra           json,
            payload         json        NOT NULL,
            PRIMARY KEY (stream_id, version)
         );
         CREATE UNIQUE INDEX es_events_position ON \"{schema}\".es_events (position);
         CREATE FUNCTION \"{schema}\".es_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'es_events is append-only: % refused', TG_OP; END $$;
         CREATE TRIGGER es_events_append_only BEFORE UPDATE OR DELETE ON \"{schema}\".es_events
            FOR EACH ROW EXECUTE FUNCTION \"{schema}\".es_refuse_change();
         CREATE TRIGGER es_events_no_truncate BEFORE TRUNCATE ON \"{schema}\".es_events
            FOR EACH STATEMENT EXECUTE FUNCTION \"{schema}\".es_refuse_change();
         CREATE TABLE \"{schema}\".es_snapshots (
            stream_id          text        PRIMARY KEY,
            aggregate_type     text        NOT NULL,
            version            bigint      NOT NULL,
            state_fingerprint  text        NOT NULL,
            state              json        NOT NULL,
            taken_at           timestamptz NOT NULL
         );
         CREATE TABLE \"{schema}\".es_checkpoints (
            projection     text   PRIMARY KEY,
            next_position  bigint NOT NULL
         );"
    )]
}

fn backend(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |error| StoreError::backend(context, DriverError::from(error))
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        // The driver's own error says why (refused, auth failed...); deadpool's wrapper adds nothing.
        deadpool_postgres::PoolError::Backend(error) => {
            StoreError::backend("cannot connect to PostgreSQL", DriverError::from(error))
        }
        other => StoreError::backend("cannot get a PostgreSQL connection", other),
    }
}

/// A driver error that says why. tokio-postgres displays a server error as just "db error"
/// and a failed connection as "error connecting to server", keeping the reason (the server's
/// message, "connection refused") in its source; users print the top line, so it goes there.
#[derive(Debug)]
struct DriverError {
    description: String,
    source: tokio_postgres::Error,
}

impl From<tokio_postgres::Error> for DriverError {
    fn from(source: tokio_postgres::Error) -> Self {
        let description = match source.as_db_error() {
            Some(db) => {
                let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
                if let Some(detail) = db.detail() {
                    text.push_str(&format!(" ({detail})"));
                }
                if let Some(hint) = db.hint() {
                    text.push_str(&format!("; hint: {hint}"));
                }
                text
            }
            None => {
                let mut text = source.to_string();
                let mut cause = std::error::Error::source(&source);
                while let Some(inner) = cause {
                    text.push_str(&format!(": {inner}"));
                    cause = inner.source();
                }
                text
            }
        };
        DriverError {
            description,
            source,
        }
    }
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Schema names are put into SQL text, so only plain identifiers are accepted.
fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
}

impl PostgresStore {
    /// Connects with [`PostgresConfig::new`] defaults and creates or upgrades the schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects with explicit settings and creates or upgrades the schema.
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, StoreError> {
        if !valid_schema(&config.schema) {
            return Err(StoreError::InvalidRequest(format!(
                "schema name `{}` must be lowercase letters, digits and `_`, starting with a letter or `_`",
                config.schema
            )));
        }
        let mut pg_config: tokio_postgres::Config = config.url.parse().map_err(|error| {
            StoreError::backend(
                format!("invalid PostgreSQL URL `{}`", config.url),
                DriverError::from(error),
            )
        })?;
        pg_config.connect_timeout(config.connect_timeout);
        // Every statement here is prepared once per connection and its best plan does not
        // depend on the parameters (index lookups by stream id or position). Without this,
        // PostgreSQL re-plans the first executions, and planning the append costs more
        // than executing it.
        let options = pg_config
            .get_options()
            .map(str::to_owned)
            .unwrap_or_default();
        pg_config.options(format!("{options} -c plan_cache_mode=force_generic_plan").trim());
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("es-core");
        }
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(config.connect_timeout))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|error| StoreError::backend("cannot build the PostgreSQL pool", error))?;
        let store = PostgresStore {
            pool,
            sql: std::sync::Arc::new(Statements::new(&config.schema)),
            schema: config.schema,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema holding this store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool, for projections that write to the same database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates or upgrades the tables. Safe to run from many processes at once: they take turns
    /// on an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let transaction = client
            .transaction()
            .await
            .map_err(backend("starting the PostgreSQL migration"))?;
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext('es-core migrate'))",
                &[],
            )
            .await
            .map_err(backend("locking for the PostgreSQL migration"))?;
        let schema = &self.schema;
        transaction
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 CREATE TABLE IF NOT EXISTS \"{schema}\".es_schema_version (version int NOT NULL);"
            ))
            .await
            .map_err(backend("creating the PostgreSQL schema"))?;
        let current: i32 = transaction
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM \"{schema}\".es_schema_version"),
                &[],
            )
            .await
            .map_err(backend("reading the PostgreSQL schema version"))?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::InvalidRequest(format!(
                "the PostgreSQL schema `{schema}` is at version {current}, newer than this code's {SCHEMA_VERSION}; upgrade es-core"
            )));
        }
        for (index, migration) in migrations(schema)
            .iter()
            .enumerate()
            .skip(current.max(0) as usize)
        {
            transaction
                .batch_execute(migration)
                .await
                .map_err(backend("migrating the PostgreSQL schema"))?;
            let version = index as i32 + 1;
            transaction
                .execute(
                    &format!("INSERT INTO \"{schema}\".es_schema_version (version) VALUES ($1)"),
                    &[&version],
                )
                .await
                .map_err(backend("recording the PostgreSQL schema version"))?;
        }
        transaction
            .commit()
            .await
            .map_err(backend("committing the PostgreSQL migration"))
    }

    /// Appends inside the caller's transaction, so the events commit (or roll back) together
    /// with the caller's own writes, e.g. a read model in the same database.
    ///
    /// Within a transaction a lost race cannot be retried (PostgreSQL aborts the transaction),
    /// so it is reported as a conflict whatever `expected` was.
    pub async fn append_in(
        &self,
        transaction: &tokio_postgres::Transaction<'_>,
        stream_id: &str,
        aggregate_type: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let statement = transaction
            .prepare(self.append_sql(events.len()))
            .await
            .map_err(backend("preparing a PostgreSQL append"))?;
        match self
            .append_with(
                transaction,
                &statement,
                stream_id,
                aggregate_type,
                expected,
                &events,
            )
            .await?
        {
            AppendOutcome::Appended(rows) => {
                Ok(recorded_from(rows, stream_id, aggregate_type, events))
            }
            AppendOutcome::LostRace => {
                let actual = self.current_version(stream_id).await?;
                Err(StoreError::Conflict {
                    stream_id: stream_id.to_owned(),
                    expected,
                    actual,
                })
            }
        }
    }

    /// The append statement for a batch of `count` events (see `append_one`).
    fn append_sql(&self, count: usize) -> &str {
        if count == 1 {
            &self.sql.append_one
        } else {
            &self.sql.append
        }
    }

    /// One append statement on `client`: a conflict is an error, a unique violation a lost race.
    async fn append_with<C: tokio_postgres::GenericClient + Sync>(
        &self,
        client: &C,
        statement: &tokio_postgres::Statement,
        stream_id: &str,
        aggregate_type: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        crate::store::require_stream_id(stream_id)?;
        if events.len() > MAX_BATCH {
            return Err(StoreError::InvalidRequest(format!(
                "one append holds at most {MAX_BATCH} events, not {}",
                events.len()
            )));
        }
        let expected_version: Option<i64> = match expected {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(version) => Some(to_i64(version, "expected version")?),
        };
        let columns = Columns::new(events)?;
        let result = match (events.len(), columns.payloads.first()) {
            // The single-event statement takes the first element of each column.
            (1, Some(payload)) => {
                client
                    .query(
                        statement,
                        &[
                            &stream_id,
                            &aggregate_type,
                            &columns.names[0],
                            &columns.schema_versions[0],
                            &columns.event_ids[0],
                            &columns.correlation_ids[0],
                            &columns.causation_ids[0],
                            &columns.extras[0],
                            payload,
                            &expected_version,
                        ],
                    )
                    .await
            }
            _ => {
                client
                    .query(
                        statement,
                        &[
                            &stream_id,
                            &aggregate_type,
                            &columns.names,
                            &columns.schema_versions,
                            &columns.event_ids,
                            &columns.correlation_ids,
                            &columns.causation_ids,
                            &columns.extras,
                            &columns.payloads,
                            &expected_version,
                        ],
                    )
                    .await
            }
        };
        let rows = match result {
            Ok(rows) => rows,
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Ok(AppendOutcome::LostRace)
            }
            Err(error) => return Err(backend("appending to PostgreSQL")(error)),
        };
        let read =
            |error: tokio_postgres::Error| backend("reading a PostgreSQL append result")(error);
        let Some(first) = rows.first() else {
            return Err(StoreError::backend(
                "appending to PostgreSQL",
                "the append returned no row",
            ));
        };
        let current: i64 = first.try_get(0).map_err(read)?;
        let inserted: Option<i64> = first.try_get(1).map_err(read)?;
        if inserted.is_none() && !(events.is_empty() && expected.accepts(current.max(0) as u64)) {
            return Err(StoreError::Conflict {
                stream_id: stream_id.to_owned(),
                expected,
                actual: current.max(0) as u64,
            });
        }
        rows.iter()
            .filter(|row| matches!(row.try_get::<_, Option<i64>>(1), Ok(Some(_))))
            .map(|row| {
                Ok(AppendedRow {
                    position: row.try_get::<_, i64>(1).map_err(read)?.max(0) as u64,
                    version: row.try_get::<_, i64>(2).map_err(read)?.max(0) as u64,
                    recorded_at: row.try_get(3).map_err(read)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(AppendOutcome::Appended)
    }

    /// Runs one cached statement on a pooled connection: the shape of every call below.
    async fn run<'a, T, F, Fut>(
        &'a self,
        sql: &'a str,
        context: &'static str,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_postgres::Object, tokio_postgres::Statement) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(backend("preparing a PostgreSQL statement"))?;
        call(client, statement).await.map_err(backend(context))
    }

    /// Drops this store's schema and everything in it. For tests and for removing a tenant.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .map_err(backend("dropping the PostgreSQL schema"))
    }

    async fn current_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        let version: i64 = self
            .run(&self.sql.stream_version, "reading a PostgreSQL stream version", |client, statement| async move { client.query_one(&statement, &[&stream_id]).await })
            .await?
            .get(0);
        Ok(version.max(0) as u64)
    }
}

enum AppendOutcome {
    Appended(Vec<AppendedRow>),
    /// Another writer committed the same stream version first (a unique violation).
    LostRace,
}

struct AppendedRow {
    position: u64,
    version: u64,
    recorded_at: DateTime<Utc>,
}

fn recorded_from(
    rows: Vec<AppendedRow>,
    stream_id: &str,
    aggregate_type: &str,
    events: Vec<NewEvent>,
) -> Vec<RecordedEvent> {
    rows.into_iter()
        .zip(events)
        .map(|(row, event)| RecordedEvent {
            stream_id: stream_id.to_owned(),
            aggregate_type: aggregate_type.to_owned(),
            version: row.version,
            position: row.position,
            recorded_at: row.recorded_at,
            event_name: event.event_name,
            schema_version: event.schema_version,
            metadata: event.metadata,
            event: event.payload,
        })
        .collect()
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::InvalidRequest(format!("{what} {value} is out of range")))
}

/// Reads one `COLUMNS` row, naming the stream and version of a row that does not decode.
fn recorded_event(row: &Row) -> Result<RecordedEvent, StoreError> {
    let stream_id: String = row
        .try_get(1)
        .map_err(backend("reading a PostgreSQL event row"))?;
    let version: i64 = row
        .try_get(2)
        .map_err(backend("reading a PostgreSQL event row"))?;
    let corrupt = |reason: String| StoreError::Corrupt {
        stream_id: stream_id.clone(),
        version: version.max(0) as u64,
        reason,
    };
    let column = |error: tokio_postgres::Error| {
        corrupt(format!("unreadable column: {}", DriverError::from(error)))
    };
    let position: i64 = row.try_get(0).map_err(column)?;
    let schema_version: i32 = row.try_get(5).map_err(column)?;
    let extra: Option<JsonText> = row.try_get(10).map_err(column)?;
    let event_id: Uuid = row.try_get(7).map_err(column)?;
    let correlation_id: Option<Uuid> = row.try_get(8).map_err(column)?;
    let metadata = Metadata {
        event_id,
        correlation_id: correlation_id.unwrap_or(event_id),
        causation_id: row.try_get(9).map_err(column)?,
        extra: match extra {
            None => Default::default(),
            Some(JsonText(text)) => serde_json::from_str(&text)
                .map_err(|error| corrupt(format!("metadata is not a map of strings: {error}")))?,
        },
    };
    Ok(RecordedEvent {
        aggregate_type: row.try_get(3).map_err(column)?,
        event_name: row.try_get(4).map_err(column)?,
        recorded_at: row.try_get::<_, DateTime<Utc>>(6).map_err(column)?,
        event: Payload::from_json_text(row.try_get::<_, JsonText>(11).map_err(column)?.0),
        position: u64::try_from(position)
            .map_err(|_| corrupt(format!("position {position} is negative")))?,
        version: u64::try_from(version)
            .map_err(|_| corrupt(format!("version {version} is negative")))?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("schema version {schema_version} is negative")))?,
        metadata,
        stream_id: stream_id.clone(),
    })
}

/// The batch as column arrays for `unnest`.
struct Columns<'a> {
    names: Vec<&'a str>,
    schema_versions: Vec<i32>,
    event_ids: Vec<Uuid>,
    correlation_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
    extras: Vec<Option<String>>,
    payloads: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn new(events: &'a [NewEvent]) -> Result<Self, StoreError> {
        let mut columns = Columns {
            names: Vec::with_capacity(events.len()),
            schema_versions: Vec::with_capacity(events.len()),
            event_ids: Vec::with_capacity(events.len()),
            correlation_ids: Vec::with_capacity(events.len()),
            causation_ids: Vec::with_capacity(events.len()),
            extras: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
        };
        for event in events {
            columns.names.push(&event.event_name);
            columns
                .schema_versions
                .push(i32::try_from(event.schema_version).map_err(|_| {
                    StoreError::InvalidRequest(format!(
                        "schema version {} is out of range",
                        event.schema_version
                    ))
                })?);
            columns.event_ids.push(event.metadata.event_id);
            columns.correlation_ids.push(
                (event.metadata.correlation_id != event.metadata.event_id)
                    .then_some(event.metadata.correlation_id),
            );
            columns.causation_ids.push(event.metadata.causation_id);
            columns.extras.push(if event.metadata.extra.is_empty() {
                None
            } else {
                Some(
                    serde_json::to_string(&event.metadata.extra).map_err(|error| {
                        StoreError::InvalidRequest(format!("metadata does not serialize: {error}"))
                    })?,
                )
            });
            columns.payloads.push(event.payload.as_str());
        }
        Ok(columns)
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream_id: &str,
        aggregate_type: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        // Prepared once per connection and cached: an append is then a single round trip.
        let statement = client
            .prepare_cached(self.append_sql(events.len()))
            .await
            .map_err(backend("preparing a PostgreSQL append"))?;
        // `Any` can lose the race for the next version to another writer; outside a caller's
        // transaction it simply tries again, since it promised to append whatever the version.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .append_with(
                    &**client,
                    &statement,
                    stream_id,
                    aggregate_type,
                    expected,
                    &events,
                )
                .await?
            {
                AppendOutcome::Appended(rows) => {
                    return Ok(recorded_from(rows, stream_id, aggregate_type, events))
                }
                AppendOutcome::LostRace if expected == ExpectedVersion::Any && attempts < 100 => {
                    continue
                }
                AppendOutcome::LostRace => {
                    let actual = self.current_version(stream_id).await?;
                    return Err(StoreError::Conflict {
                        stream_id: stream_id.to_owned(),
                        expected,
                        actual,
                    });
                }
            }
        }
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = to_i64(from_version, "version")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .run(
                &self.sql.read_stream,
                "reading a PostgreSQL stream",
                |client, statement| async move {
                    client.query(&statement, &[&stream_id, &from, &limit]).await
                },
            )
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn read_stream_payloads(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        let from = to_i64(from_version, "version")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .run(
                &self.sql.read_stream_payloads,
                "reading a PostgreSQL stream",
                |client, statement| async move {
                    client.query(&statement, &[&stream_id, &from, &limit]).await
                },
            )
            .await?;
        rows.iter()
            .map(|row| {
                let version: i64 = row
                    .try_get(0)
                    .map_err(backend("reading a PostgreSQL event row"))?;
                let corrupt = |error: tokio_postgres::Error| StoreError::Corrupt {
                    stream_id: stream_id.to_owned(),
                    version: version.max(0) as u64,
                    reason: format!("unreadable column: {}", DriverError::from(error)),
                };
                let schema_version: i32 = row.try_get(2).map_err(corrupt)?;
                Ok(StoredPayload {
                    version: version.max(0) as u64,
                    event_name: row.try_get(1).map_err(corrupt)?,
                    recorded_at: row.try_get(4).map_err(corrupt)?,
                    schema_version: schema_version.max(0) as u32,
                    payload: Payload::from_json_text(
                        row.try_get::<_, JsonText>(3).map_err(corrupt)?.0,
                    ),
                })
            })
            .collect()
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = to_i64(from_position, "position")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .run(
                &self.sql.read_all,
                "reading all PostgreSQL events",
                |client, statement| async move { client.query(&statement, &[&from, &limit]).await },
            )
            .await?;
        rows.iter().map(recorded_event).collect()
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        // Every committed position, including ones read-all still holds back.
        let head: i64 = self
            .run(
                &self.sql.head_position,
                "reading the PostgreSQL head position",
                |client, statement| async move { client.query_one(&statement, &[]).await },
            )
            .await?
            .get(0);
        Ok(head.max(0) as u64)
    }

    async fn stream_version(&self, stream_id: &str) -> Result<u64, StoreError> {
        self.current_version(stream_id).await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let Some(row) = self
            .run(&self.sql.load_snapshot, "reading a PostgreSQL snapshot", |client, statement| async move { client.query_opt(&statement, &[&stream_id]).await })
            .await?
        else {
            return Ok(None);
        };
        let version: i64 = row
            .try_get(1)
            .map_err(backend("reading a PostgreSQL snapshot"))?;
        let corrupt = |error: tokio_postgres::Error| StoreError::Corrupt {
            stream_id: stream_id.to_owned(),
            version: version.max(0) as u64,
            reason: format!("unreadable snapshot column: {}", DriverError::from(error)),
        };
        Ok(Some(Snapshot {
            stream_id: stream_id.to_owned(),
            aggregate_type: row.try_get(0).map_err(corrupt)?,
            version: version.max(0) as u64,
            state_fingerprint: row.try_get(2).map_err(corrupt)?,
            state: Payload::from_json_text(row.try_get::<_, JsonText>(3).map_err(corrupt)?.0),
            taken_at: row.try_get(4).map_err(corrupt)?,
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(&self.sql.save_snapshot)
            .await
            .map_err(backend("preparing a PostgreSQL write"))?;
        let version = to_i64(snapshot.version, "version")?;
        client
            .execute(
                &statement,
                &[
                    &snapshot.stream_id,
                    &snapshot.aggregate_type,
                    &version,
                    &snapshot.state_fingerprint,
                    &snapshot.state.as_str(),
                    &snapshot.taken_at,
                ],
            )
            .await
            .map_err(backend("saving a PostgreSQL snapshot"))?;
        Ok(())
    }

    async fn load_checkpoint(&self, projection: &str) -> Result<Option<u64>, StoreError> {
        let row = self
            .run(&self.sql.load_checkpoint, "reading a PostgreSQL checkpoint", |client, statement| async move { client.query_opt(&statement, &[&projection]).await })
            .await?;
        row.map(|row| row.try_get::<_, i64>(0).map(|p| p.max(0) as u64))
            .transpose()
            .map_err(backend("reading a PostgreSQL checkpoint"))
    }

    async fn save_checkpoint(
        &self,
        projection: &str,
        next_position: u64,
    ) -> Result<(), StoreError> {
        let next = to_i64(next_position, "position")?;
        self
            .run(&self.sql.save_checkpoint, "saving a PostgreSQL checkpoint", |client, statement| async move { client.execute(&statement, &[&projection, &next]).await })
            .await?;
        Ok(())
    }
}
