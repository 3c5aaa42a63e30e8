//! The read side in SQLite: projection documents, checkpoints, dead letters and leases in the
//! same file as the events.
//!
//! - **Tables.** `es_projection_generations`, `es_dead_letters` and `es_projection_leases`
//!   belong to the layout (see `schema/`); each generation of each projection gets a
//!   document table of its own, `es_doc_{projection}_{generation}`, made at run time from
//!   `read_models/document_table.sql`, with a column `idx_{n}` and an index on
//!   `(idx_{n}, key)` per indexed field, so a filtered page is an index seek, never a scan.
//! - **A batch is one transaction.** [`begin`](ReadStore::begin) takes the writer connection
//!   and opens `BEGIN IMMEDIATE` on it; see `tx.rs`. While a batch is open, appends and other
//!   writes through this store wait their turn for the writer connection, and other
//!   processes wait for SQLite's write lock (for at most their busy timeout, then "database
//!   is locked"): batches are short, so commands are delayed by at most one batch, never
//!   deadlocked. The one way to deadlock is to write through the same store from the task
//!   that holds an open batch, which would wait for itself; the runtime never does.
//! - **Reads** of documents, generations and dead letters run on reader connections, so
//!   queries never wait for a batch.
//! - **Appends signal.** Every append through this store (and its clones) sends its last
//!   position to [`append_signal`](ReadStore::append_signal) receivers, so an idle daemon
//!   wakes at once; appends by other processes are found by polling.

use std::time::Duration;

use async_trait::async_trait;

use super::{decode, SqliteStore};
use crate::error::StoreError;
use crate::read::{
    DeadLetter, DocumentRow, DocumentTable, GenerationState, ListQuery, ReadStore, ReadTx,
};

pub(super) mod documents;
mod state;
mod tx;

use state::Listing;

pub(super) use tx::reset;

#[async_trait]
impl ReadStore for SqliteStore {
    async fn generations(&self, projection: &str) -> Result<Vec<GenerationState>, StoreError> {
        let projection = projection.to_owned();
        self.read(move |connection| state::generations(connection, &projection))
            .await
    }

    async fn create_generation(
        &self,
        table: &DocumentTable,
        version: &str,
    ) -> Result<GenerationState, StoreError> {
        let table = table.clone();
        let version = version.to_owned();
        self.write(move |connection| state::create_generation(connection, &table, &version))
            .await
    }

    async fn promote(&self, table: &DocumentTable) -> Result<(), StoreError> {
        let table = table.clone();
        self.write(move |connection| state::promote(connection, &table))
            .await
    }

    async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        let writer = self.lock_writer().await;
        Ok(Box::new(tx::SqliteReadTx::begin(writer).await?))
    }

    fn sql_table_name(&self, name: &str) -> Option<String> {
        Some(super::sql::quote(name))
    }

    async fn query_sql(
        &self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<crate::sql::SqlRows, StoreError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.read(move |connection| super::sql::query(connection, &sql, &params))
            .await
    }

    async fn get_document(
        &self,
        table: &DocumentTable,
        key: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        let table = table.clone();
        let key = key.to_owned();
        self.read(move |connection| documents::get(connection, &table, &key))
            .await
    }

    async fn list_documents(
        &self,
        table: &DocumentTable,
        query: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let table = table.clone();
        let query = query.clone();
        self.read(move |connection| documents::list(connection, &table, &query))
            .await
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let projection = projection.to_owned();
        self.read(move |connection| {
            state::list(
                connection,
                Listing::DeadLetters,
                &projection,
                decode::dead_letter,
            )
        })
        .await
    }

    async fn acquire_lease(
        &self,
        projection: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let projection = projection.to_owned();
        let holder = holder.to_owned();
        self.write(move |connection| state::acquire_lease(connection, &projection, &holder, ttl))
            .await
    }

    async fn lease_holder(&self, projection: &str) -> Result<Option<String>, StoreError> {
        let projection = projection.to_owned();
        self.read(move |connection| state::lease_holder(connection, &projection))
            .await
    }

    async fn release_lease(&self, projection: &str, holder: &str) -> Result<(), StoreError> {
        let projection = projection.to_owned();
        let holder = holder.to_owned();
        self.write(move |connection| state::release_lease(connection, &projection, &holder))
            .await
    }

    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.inner.appended.subscribe())
    }
}
