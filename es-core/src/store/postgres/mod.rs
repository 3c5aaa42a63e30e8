//! The PostgreSQL store: one database shared by many processes.
//!
//! Optimistic concurrency is enforced by the database: `(stream_id, version)` is the primary
//! key, so two writers that expect the same version cannot both commit, in one process or many.
//! Each append is one statement (one round trip) on one pooled connection: it reads the
//! stream's version, checks the expectation, and inserts the batch.
//!
//! # Read-all without skipped events
//!
//! Positions come from the appending transaction's id: `(xid << 20) + n`, `n` counting the
//! events the transaction appended so far (so one [`PgTransaction`] can append many times).
//! Transaction ids are taken in start order but transactions commit in any order, so a
//! reader must not pass a position whose transaction may still commit. Read-all therefore
//! only returns events of transactions older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): everything below that bound is committed or
//! never will be. Positions are strictly increasing and unique, but not dense. The price: a
//! long-running transaction anywhere in the cluster holds read-all back until it ends.
//!
//! # Tables
//!
//! `es_events` (the log), `es_snapshots` (the latest snapshot per stream) and
//! `es_schema_version`, in the schema named by [`PostgresConfig::schema`]. Their SQL is in
//! the `sql/` folder beside this module. A schema created by another layout version is
//! refused with a [`SetupError::SchemaVersion`] (inside [`StoreError::Backend`]).
//!
//! # Waits and failures
//!
//! Connecting, waiting for a pooled connection and running a statement are each bounded
//! ([`PostgresConfig`]); when one expires the error is a [`StoreError::Timeout`] saying which.
//! When the connection is lost while an append (or a [`PgTransaction::commit`]) is in
//! flight, the error is [`StoreError::OutcomeUnknown`]. After a schema change alters a
//! statement's result columns, the statement is prepared again, once, on each connection.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Pool;

mod append;
mod config;
mod connection;
mod decode;
mod listener;
mod read;
mod read_models;
mod schema;
mod snapshots;
mod sql;
#[cfg(test)]
mod tests;

pub use append::PgTransaction;
pub use config::PostgresConfig;
pub use schema::SCHEMA_VERSION;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::StoreError;
use crate::store::{EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload};
use crate::stream::StreamId;

/// Why a PostgreSQL store could not be set up; the source of a [`StoreError::Backend`]
/// returned by [`PostgresStore::connect_with`] (downcast it to tell the cases apart).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configured schema name cannot be used.
    #[error("schema name `{schema}` must be 1 to 63 lowercase ASCII letters, digits and `_`, starting with a letter or `_`")]
    InvalidSchemaName {
        /// The configured name.
        schema: String,
    },
    /// The schema holds tables of another layout than this code's.
    #[error("schema `{schema}` holds es-core tables of layout version {}, but this es-core uses version {expected}; {}",
        found.map_or_else(|| "unknown (no es_schema_version)".to_owned(), |found| found.to_string()),
        advice(*found, *expected))]
    SchemaVersion {
        /// The schema.
        schema: String,
        /// The version recorded there (`None`: tables without a recorded version).
        found: Option<i64>,
        /// The version this code uses ([`SCHEMA_VERSION`]).
        expected: i32,
    },
}

fn advice(found: Option<i64>, expected: i32) -> &'static str {
    match found {
        Some(found) if found > i64::from(expected) => "upgrade es-core",
        _ => "there is no in-place upgrade: use a new schema, or copy the events over",
    }
}

/// An event store in a PostgreSQL database: an [`EventLog`] and a [`SnapshotStore`].
///
/// Clones share the pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), es_core::StoreError> {
/// use es_core::postgres::{PostgresConfig, PostgresStore};
///
/// let store = PostgresStore::connect_with(
///     PostgresConfig::new("postgres://postgres@127.0.0.1:5432/app").schema("billing"),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

/// What every operation needs: the pool, its time bounds and the SQL.
struct Shared {
    pool: Pool,
    timeouts: config::Timeouts,
    schema: String,
    sql: Sql,
    /// Appends heard of, here and (while anyone subscribes) in other processes.
    listener: listener::Listener,
}

impl Shared {
    /// Runs one statement on a pooled connection, outside any transaction: every read and
    /// every write that cannot leave anything half-done goes through here.
    async fn query_pooled(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        context: &'static str,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        connection::query_pooled(&self.pool, &self.timeouts, sql, params, context).await
    }
}

/// SQL text with the schema name filled in once (a checked identifier, never a value).
#[derive(Debug)]
struct Sql {
    append: append::Sql,
    read: read::Sql,
    snapshots: snapshots::Sql,
    read_models: read_models::Sql,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with [`PostgresConfig::new`] defaults and creates the tables if missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects with explicit settings, creates the tables if the schema has none, and
    /// checks that existing ones are of this code's layout ([`SCHEMA_VERSION`]).
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, StoreError> {
        let (pool, timeouts, listener_config) = config::build_pool(&config)?;
        let mut client = connection::checkout(&pool, &timeouts).await?;
        schema::prepare(&mut client, &config.schema, &timeouts).await?;
        drop(client);
        Ok(PostgresStore {
            shared: Arc::new(Shared {
                pool,
                timeouts,
                sql: Sql {
                    append: append::Sql::new(&config.schema),
                    read: read::Sql::new(&config.schema),
                    snapshots: snapshots::Sql::new(&config.schema),
                    read_models: read_models::Sql::new(&config.schema),
                },
                listener: listener::Listener::new(&config.schema, listener_config),
                schema: config.schema,
            }),
        })
    }

    /// The schema holding this store's tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// The connection pool, for projections that write to the same database.
    pub fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    /// Starts a transaction in which several appends, to one stream or several, and the
    /// caller's own statements commit together. See [`PgTransaction`].
    pub async fn transaction(&self) -> Result<PgTransaction, StoreError> {
        PgTransaction::begin(self.shared.clone()).await
    }

    /// Drops this store's schema and everything in it. For tests and for removing a tenant.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        let client = connection::checkout(&self.shared.pool, &self.shared.timeouts).await?;
        connection::execute_batch(
            &client,
            &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.shared.schema),
            &self.shared.timeouts,
        )
        .await
        .map_err(|error| error.into_store("dropping the PostgreSQL schema", &self.shared.timeouts))
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        append::append_alone(&self.shared, stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_stream(&self.shared, stream, from_version, limit).await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&self.shared, from_position, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        read::stream_version(&self.shared, stream).await
    }

    async fn read_stream_payloads(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredPayload>, StoreError> {
        read::read_stream(&self.shared, stream, from_version, limit).await
    }

    async fn read_aggregate_type(
        &self,
        aggregate_type: &str,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_aggregate_type(&self.shared, aggregate_type, from_position, limit).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        read::head_position(&self.shared).await
    }

    async fn read_all_blocker(&self) -> Result<Option<crate::store::Blocker>, StoreError> {
        read::read_all_blocker(&self.shared).await
    }
}

#[async_trait]
impl SnapshotStore for PostgresStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        snapshots::load(&self.shared, stream).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        snapshots::save(&self.shared, snapshot).await
    }
}
