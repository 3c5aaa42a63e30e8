//! A batch transaction: one [`PgTransaction`] on one pooled connection, holding documents,
//! the checkpoint's compare-and-set, the stop record and dead letters of one batch.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::documents::{Changes, TableName};
use super::{generation_param, is_undefined_table, position_param, Shared};
use crate::error::StoreError;
use crate::postgres::connection;
use crate::postgres::PgTransaction;
use crate::read::{DeadLetter, DocumentRow, DocumentTable, DocumentWrite, ReadTx, Stopped};

/// A batch transaction. Dropping it without [`commit`](ReadTx::commit) rolls it back: its
/// connection is closed rather than returned to the pool mid-transaction.
pub(in crate::postgres) struct PgReadTx {
    tx: PgTransaction,
    shared: Arc<Shared>,
    /// The generation [`ReadTx::promote`] makes live when this transaction commits.
    promotion: Option<DocumentTable>,
}

impl PgReadTx {
    pub(super) async fn begin(shared: &Arc<Shared>) -> Result<Self, StoreError> {
        Ok(PgReadTx {
            tx: PgTransaction::begin(Arc::clone(shared)).await?,
            shared: Arc::clone(shared),
            promotion: None,
        })
    }

    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs one statement in the transaction. Nothing commits by itself here, so a lost
    /// connection is a plain error (and the server rolls everything back).
    pub(super) async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        self.try_query(sql, params)
            .await
            .map_err(|error| error.into_store(context, &self.shared.timeouts))
    }

    async fn try_query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, connection::QueryError> {
        let timeouts = self.shared.timeouts;
        let client = match self.tx.open_client() {
            Ok(client) => client,
            Err(_) => return Err(connection::QueryError::NoReply(timeouts.reply())),
        };
        let result = connection::query_once(client, sql, params, &timeouts).await;
        if let Err(error) = &result {
            if error.poisons_connection() {
                self.tx.discard_connection();
            }
        }
        result
    }

    /// Runs simple-protocol SQL (DDL) in the transaction.
    pub(super) async fn batch(
        &mut self,
        sql: &str,
        context: &'static str,
    ) -> Result<(), StoreError> {
        let timeouts = self.shared.timeouts;
        let client = self.tx.open_client()?;
        let result = connection::execute_batch(client, sql, &timeouts).await;
        match result {
            Ok(()) => Ok(()),
            Err(error) => {
                if error.poisons_connection() {
                    self.tx.discard_connection();
                }
                Err(error.into_store(context, &timeouts))
            }
        }
    }

    /// A statement on a document table. A table that is gone was dropped by a promotion:
    /// this batch's generation is no more, which is what a checkpoint that moved reports.
    async fn on_documents(
        &mut self,
        table: &DocumentTable,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        match self.try_query(sql, params).await {
            Ok(rows) => Ok(rows),
            Err(error) if is_undefined_table(&error) => Err(StoreError::CheckpointMoved {
                projection: table.projection.clone(),
                generation: table.generation,
                expected: 0,
                actual: None,
            }),
            Err(error) => Err(error.into_store(context, &self.shared.timeouts)),
        }
    }

    /// Commits, swapping generations first when [`ReadTx::promote`] was called.
    pub(super) async fn commit_store(mut self) -> Result<(), StoreError> {
        if let Some(table) = self.promotion.take() {
            super::swap(&mut self, &table).await?;
        }
        self.tx.commit().await
    }

    pub(super) async fn rollback_store(self) -> Result<(), StoreError> {
        self.tx.rollback().await
    }
}

#[async_trait]
impl crate::sql::SqlExecutor for PgReadTx {
    fn table_name(&self, name: &str) -> String {
        crate::postgres::sql::qualified(&self.shared.schema, name)
    }

    async fn execute(
        &mut self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<(), StoreError> {
        let params = crate::postgres::sql::params(params);
        self.query(
            sql,
            &params,
            "running a SQL projection's statement on PostgreSQL",
        )
        .await
        .map(|_| ())
    }

    async fn query(
        &mut self,
        sql: &str,
        params: &[crate::sql::SqlValue],
    ) -> Result<crate::sql::SqlRows, StoreError> {
        let params = crate::postgres::sql::params(params);
        let rows = PgReadTx::query(
            self,
            sql,
            &params,
            "running a SQL projection's query on PostgreSQL",
        )
        .await?;
        crate::postgres::sql::rows(&rows)
    }
}

#[async_trait]
impl ReadTx for PgReadTx {
    fn sql(&mut self) -> Option<&mut dyn crate::sql::SqlExecutor> {
        Some(self)
    }

    async fn append(
        &mut self,
        stream: &crate::stream::StreamId,
        expected: crate::store::ExpectedVersion,
        events: Vec<crate::envelope::NewEvent>,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError> {
        self.tx.append(stream, expected, events).await
    }

    async fn load(
        &mut self,
        table: &DocumentTable,
        keys: &[String],
    ) -> Result<Vec<DocumentRow>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let name = TableName::new(&self.shared.schema, table)?;
        let rows = self
            .on_documents(
                table,
                &name.load(),
                &[&keys],
                "loading PostgreSQL documents",
            )
            .await?;
        rows.iter()
            .map(|row| super::documents::row(row, table))
            .collect()
    }

    async fn write(
        &mut self,
        table: &DocumentTable,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), StoreError> {
        let name = TableName::new(&self.shared.schema, table)?;
        let changes = Changes::new(table, writes);
        let context = "writing PostgreSQL documents";
        if !changes.keys.is_empty() {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&changes.keys, &changes.bodies];
            for values in &changes.index_values {
                params.push(values);
            }
            self.on_documents(table, &name.upsert(table), &params, context)
                .await?;
        }
        if !changes.deleted.is_empty() {
            self.on_documents(table, &name.delete(), &[&changes.deleted], context)
                .await?;
        }
        Ok(())
    }

    async fn advance(
        &mut self,
        table: &DocumentTable,
        from: u64,
        to: u64,
    ) -> Result<(), StoreError> {
        let sql = &self.shared.sql.read_models;
        let (advance, checkpoint) = (sql.advance.clone(), sql.checkpoint.clone());
        let projection = table.projection.as_str();
        let generation = generation_param(table)?;
        let (expected, next) = (
            position_param(from, "checkpoint")?,
            position_param(to, "checkpoint")?,
        );
        let context = "moving a PostgreSQL projection checkpoint";
        // Another batch holding the row makes this wait for it, then find the row moved.
        let moved = self
            .query(
                &advance,
                &[&projection, &generation, &expected, &next],
                context,
            )
            .await?;
        if !moved.is_empty() {
            return Ok(());
        }
        // A new statement sees what the other batch committed.
        let rows = self
            .query(&checkpoint, &[&projection, &generation], context)
            .await?;
        let actual = match rows.first() {
            Some(row) => Some(super::unsigned(
                super::required(row, "checkpoint", super::GENERATIONS, projection)?,
                super::GENERATIONS,
                projection,
                "checkpoint",
            )?),
            None => None,
        };
        Err(StoreError::CheckpointMoved {
            projection: table.projection.clone(),
            generation: table.generation,
            expected: from,
            actual,
        })
    }

    async fn live_generation(&mut self, projection: &str) -> Result<Option<u32>, StoreError> {
        super::live_generation(self, projection).await
    }

    async fn read_all(
        &mut self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = self.shared.sql.read.read_all_committed.clone();
        let from = i64::try_from(from_position).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &sql,
                &[&from, &limit],
                "reading all PostgreSQL events in a transaction",
            )
            .await?;
        crate::postgres::read::decode_any_stream(&rows)
    }

    async fn promote(&mut self, table: &DocumentTable) -> Result<(), StoreError> {
        super::lock_for_swap(self, table).await?;
        self.promotion = Some(table.clone());
        Ok(())
    }

    async fn set_stopped(
        &mut self,
        table: &DocumentTable,
        stopped: Option<&Stopped>,
    ) -> Result<(), StoreError> {
        let sql = self.shared.sql.read_models.set_stopped.clone();
        let projection = table.projection.as_str();
        let generation = generation_param(table)?;
        let position = stopped
            .map(|stopped| position_param(stopped.position, "stopped position"))
            .transpose()?;
        let error = stopped.map(|stopped| stopped.error.as_str());
        self.query(
            &sql,
            &[&projection, &generation, &position, &error],
            "recording where a PostgreSQL projection stopped",
        )
        .await?;
        Ok(())
    }

    async fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        let sql = self.shared.sql.read_models.add_dead_letter.clone();
        let position = position_param(letter.position, "dead letter position")?;
        let version = position_param(letter.version, "dead letter version")?;
        self.query(
            &sql,
            &[
                &letter.projection,
                &position,
                &letter.stream.as_str(),
                &version,
                &letter.event_name,
                &letter.error,
                &letter.failed_at,
            ],
            "recording a PostgreSQL dead letter",
        )
        .await?;
        Ok(())
    }

    async fn remove_dead_letter(
        &mut self,
        projection: &str,
        position: u64,
    ) -> Result<bool, StoreError> {
        let sql = self.shared.sql.read_models.remove_dead_letter.clone();
        let Ok(position) = i64::try_from(position) else {
            // No dead letter is stored beyond the bigint range.
            return Ok(false);
        };
        let removed = self
            .query(
                &sql,
                &[&projection, &position],
                "removing a PostgreSQL dead letter",
            )
            .await?;
        Ok(!removed.is_empty())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.commit_store().await
    }
}
