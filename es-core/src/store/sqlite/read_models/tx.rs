//! A projection batch: one SQLite transaction on the writer connection, held across the
//! batch's `.await`s.
//!
//! The transaction owns the writer connection (the store's async mutex guard) from `begin`
//! to `commit` or drop, and `BEGIN IMMEDIATE` holds SQLite's write lock for as long, so its
//! documents, dead letters, stop record and checkpoint commit together, and a checkpoint
//! compare-and-set cannot race another process. Each operation runs on tokio's blocking pool
//! with the connection moved in and back out.

use rusqlite::Connection;
use tokio::sync::OwnedMutexGuard;

use super::super::backend;
use super::{documents, state};
use crate::error::StoreError;
use crate::read::{DeadLetter, DocumentRow, DocumentTable, DocumentWrite, ReadTx, Stopped};

/// The writer connection with a transaction open on it. Dropped uncommitted (the batch was
/// abandoned, or a blocking task it was lent to finished after its caller went away) it
/// rolls back before the connection goes back to the store.
struct OpenTransaction(OwnedMutexGuard<Connection>);

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            // Nobody is left to tell; should ROLLBACK itself fail, the next user of the
            // writer finds the transaction still open and rolls it back (see `reset`).
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// Rolls back a transaction left open on the writer connection, so whoever takes the
/// connection next starts clean.
pub(in super::super) fn reset(connection: &Connection) -> Result<(), StoreError> {
    if connection.is_autocommit() {
        return Ok(());
    }
    connection
        .execute_batch("ROLLBACK")
        .map_err(backend("rolling back an abandoned SQLite transaction"))
}

/// Why a checkpoint could not move; kept so that `commit` refuses too, even when the caller
/// went on after the failed [`ReadTx::advance`].
struct Refused {
    projection: String,
    generation: u32,
    expected: u64,
    actual: Option<u64>,
}

impl Refused {
    fn to_error(&self) -> StoreError {
        StoreError::CheckpointMoved {
            projection: self.projection.clone(),
            generation: self.generation,
            expected: self.expected,
            actual: self.actual,
        }
    }
}

/// A batch transaction of a [`SqliteStore`](crate::sqlite::SqliteStore).
pub(in super::super) struct SqliteReadTx {
    /// `None` while an operation runs on the blocking pool, and for good once one was
    /// abandoned half-way (its transaction then rolled back when it finished).
    open: Option<OpenTransaction>,
    refused: Option<Refused>,
}

/// An earlier operation of this batch was cancelled mid-way; its transaction is gone.
#[derive(Debug, thiserror::Error)]
#[error("an earlier operation of this batch was cancelled; the batch was rolled back")]
struct Abandoned;

impl SqliteReadTx {
    /// Opens the transaction on the writer connection, waiting for SQLite's write lock (held
    /// by another process at most for one of its own transactions) up to the busy timeout.
    pub(in super::super) async fn begin(
        writer: OwnedMutexGuard<Connection>,
    ) -> Result<Self, StoreError> {
        let open = tokio::task::spawn_blocking(move || {
            reset(&writer)?;
            writer
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(backend("starting a SQLite projection batch"))?;
            Ok::<_, StoreError>(OpenTransaction(writer))
        })
        .await
        .map_err(|error| StoreError::backend("SQLite batch task", error))??;
        Ok(SqliteReadTx {
            open: Some(open),
            refused: None,
        })
    }

    /// Runs `work` on the transaction's connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let open = self
            .open
            .take()
            .ok_or_else(|| StoreError::backend("using a SQLite projection batch", Abandoned))?;
        let (open, result) = tokio::task::spawn_blocking(move || {
            let result = work(&open.0);
            (open, result)
        })
        .await
        .map_err(|error| StoreError::backend("SQLite batch task", error))?;
        self.open = Some(open);
        result
    }
}

impl Drop for SqliteReadTx {
    fn drop(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        // Roll back off the async runtime when there is one; without one, here.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(open));
            }
            Err(_) => drop(open),
        }
    }
}

#[async_trait::async_trait]
impl crate::sql::SqlExecutor for SqliteReadTx {
    fn table_name(&self, name: &str) -> String {
        super::super::sql::quote(name)
    }

    async fn execute(
        &mut self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<(), StoreError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.run(move |connection| super::super::sql::execute(connection, &sql, &params))
            .await
    }

    async fn query(
        &mut self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<crate::sql::SqlRows, StoreError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.run(move |connection| super::super::sql::query(connection, &sql, &params))
            .await
    }
}

#[async_trait::async_trait]
impl ReadTx for SqliteReadTx {
    fn sql(&mut self) -> Option<&mut dyn crate::sql::SqlExecutor> {
        Some(self)
    }

    async fn append(
        &mut self,
        stream: &crate::stream::StreamId,
        expected: crate::store::ExpectedVersion,
        events: Vec<crate::envelope::NewEvent>,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError> {
        crate::limits::check_append(stream, &events)?;
        let stream = stream.clone();
        self.run(move |connection| {
            crate::sqlite::append::append_in(connection, &stream, expected, events)
        })
        .await
    }

    async fn load(
        &mut self,
        table: &DocumentTable,
        keys: &[String],
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let table = table.clone();
        let keys = keys.to_vec();
        self.run(move |connection| documents::load(connection, &table, &keys))
            .await
    }

    async fn write(
        &mut self,
        table: &DocumentTable,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), StoreError> {
        let table = table.clone();
        self.run(move |connection| documents::write(connection, &table, &writes))
            .await
    }

    async fn advance(
        &mut self,
        table: &DocumentTable,
        from: u64,
        to: u64,
    ) -> Result<(), StoreError> {
        let owned = table.clone();
        let result = self
            .run(move |connection| state::advance(connection, &owned, from, to))
            .await;
        if let Err(StoreError::CheckpointMoved { actual, .. }) = &result {
            self.refused = Some(Refused {
                projection: table.projection.clone(),
                generation: table.generation,
                expected: from,
                actual: *actual,
            });
        }
        result
    }

    // The transaction holds the writer connection and SQLite's write lock from `begin`: an
    // inline append and a swap can only take turns, whole.
    async fn live_generation(&mut self, projection: &str) -> Result<Option<u32>, StoreError> {
        let projection = projection.to_owned();
        self.run(move |connection| state::live_generation(connection, &projection))
            .await
    }

    async fn read_all(
        &mut self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError> {
        self.run(move |connection| crate::sqlite::read::read_all(connection, from_position, limit))
            .await
    }

    async fn promote(&mut self, table: &DocumentTable) -> Result<(), StoreError> {
        let table = table.clone();
        self.run(move |connection| state::promote_in(connection, &table))
            .await
    }

    async fn set_stopped(
        &mut self,
        table: &DocumentTable,
        stopped: Option<&Stopped>,
    ) -> Result<(), StoreError> {
        let table = table.clone();
        let stopped = stopped.cloned();
        self.run(move |connection| state::set_stopped(connection, &table, stopped.as_ref()))
            .await
    }

    async fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        let letter = letter.clone();
        self.run(move |connection| state::add_dead_letter(connection, &letter))
            .await
    }

    async fn remove_dead_letter(
        &mut self,
        projection: &str,
        position: u64,
    ) -> Result<bool, StoreError> {
        let projection = projection.to_owned();
        self.run(move |connection| state::remove_dead_letter(connection, &projection, position))
            .await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Some(refused) = &self.refused {
            // Dropping `self` rolls everything back.
            return Err(refused.to_error());
        }
        self.run(|connection| {
            connection
                .execute_batch("COMMIT")
                .map_err(backend("committing a SQLite projection batch"))
        })
        .await
    }
}
