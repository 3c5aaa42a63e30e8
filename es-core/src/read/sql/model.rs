//! A [`SqlProjection`] as the runtime runs it: batches under a savepoint, tables made once per
//! generation, views over the live generation.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::envelope::{Payload, RecordedEvent};
use crate::error::{ProjectionError, StoreError};
use crate::read::batch::{declared_constants, BatchOutcome, ErasedProjection};
use crate::read::projection::OnFailure;
use crate::read::sql::names::{generation_table, valid_table, SqlTx};
use crate::read::sql::{unsupported, SqlProjection};
use crate::read::store::{DocumentTable, DocumentWrite, ReadStore, ReadTx};
use crate::read::table_of;
use crate::store::EventLog;
use crate::{Event, RolledBack};

/// The document, in the generation's own document table, that says its SQL tables exist:
/// written in the transaction that creates them, so they are made exactly once.
const TABLES_MADE: &str = "es_sql_tables";

/// How often making the tables and views is tried before its failure counts.
const PUBLISH_ATTEMPTS: u32 = 4;

/// Where a batch goes back to when an event fails.
const SAVEPOINT: &str = "es_sql_batch";

/// Where making the tables goes back to when it fails, to look for the marker again.
const TABLES_SAVEPOINT: &str = "es_sql_tables";

/// A SQL projection's `create_tables` failed: which projection, which generation, and why.
#[derive(Debug, thiserror::Error)]
#[error("projection `{projection}`, generation {generation}: {source}")]
struct TablesNotMade {
    projection: &'static str,
    generation: u32,
    #[source]
    source: crate::error::BoxError,
}

/// Whether the generation's marker, as this transaction now sees it, says its tables exist.
async fn tables_made(
    tx: &mut (dyn ReadTx + '_),
    table: &DocumentTable,
) -> Result<bool, StoreError> {
    Ok(!tx.load(table, &[TABLES_MADE.to_owned()]).await?.is_empty())
}

/// A SQL projection in a [`Projections`](crate::Projections) set.
pub(crate) struct SqlModel<P> {
    projection: P,
}

impl<P: SqlProjection> SqlModel<P> {
    pub(crate) fn new(projection: P) -> Self {
        SqlModel { projection }
    }

    /// Creates the generation's tables unless its marker says they exist.
    ///
    /// Two transactions may both find the marker missing: a rebuild and a daemon working on
    /// the same new generation, or two processes starting at once. PostgreSQL makes the
    /// later `CREATE TABLE` wait for the earlier transaction and then fail on the duplicate
    /// name. So a failure is undone to a savepoint and the marker read again: found, the
    /// other transaction made the tables and committed them, and this one goes on.
    async fn ensure_tables(
        &self,
        tx: &mut (dyn ReadTx + '_),
        table: &DocumentTable,
    ) -> Result<(), StoreError> {
        if tables_made(tx, table).await? {
            return Ok(());
        }
        let executor = tx.sql().ok_or_else(unsupported::<P>)?;
        executor
            .execute(&format!("SAVEPOINT {TABLES_SAVEPOINT}"), &[])
            .await?;
        let mut sql = SqlTx::new(&mut *executor, P::TABLES, table.generation);
        if let Err(source) = self.projection.create_tables(&mut sql).await {
            executor
                .execute(&format!("ROLLBACK TO SAVEPOINT {TABLES_SAVEPOINT}"), &[])
                .await?;
            if tables_made(tx, table).await? {
                return Ok(());
            }
            return Err(StoreError::backend(
                "creating a SQL projection's tables",
                TablesNotMade {
                    projection: P::NAME,
                    generation: table.generation,
                    source,
                },
            ));
        }
        executor
            .execute(&format!("RELEASE SAVEPOINT {TABLES_SAVEPOINT}"), &[])
            .await?;
        let marker = Payload::encode(&true).map_err(|error| {
            StoreError::backend("marking a SQL projection's tables made", error)
        })?;
        tx.write(
            table,
            vec![DocumentWrite {
                key: TABLES_MADE.to_owned(),
                body: Some(marker),
                index_values: Vec::new(),
            }],
        )
        .await
    }

    async fn apply_batch(
        &self,
        tx: &mut (dyn ReadTx + '_),
        table: &DocumentTable,
        events: &[RecordedEvent],
    ) -> Result<BatchOutcome, StoreError> {
        self.ensure_tables(tx, table).await?;
        let executor = tx.sql().ok_or_else(unsupported::<P>)?;
        executor
            .execute(&format!("SAVEPOINT {SAVEPOINT}"), &[])
            .await?;
        let mut skipped = BTreeMap::new();
        let mut stopped: Option<(usize, String)> = None;
        loop {
            let end = stopped.as_ref().map_or(events.len(), |(at, _)| *at);
            let mut failure = None;
            for (index, event) in events[..end].iter().enumerate() {
                if skipped.contains_key(&index) || !P::EVENTS.contains(&&*event.event_name) {
                    continue;
                }
                let mut sql = SqlTx::new(&mut *executor, P::TABLES, table.generation);
                if let Err(error) = self.projection.apply(event, &mut sql).await {
                    failure = Some((index, failed_on::<P>(event, &*error)));
                    break;
                }
            }
            let Some((index, error)) = failure else {
                executor
                    .execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}"), &[])
                    .await?;
                return Ok(BatchOutcome { skipped, stopped });
            };
            // Undo the failed pass; a connection that died fails the whole batch here, so a
            // lost connection never sends an event to the dead letters.
            executor
                .execute(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"), &[])
                .await?;
            match P::ON_FAILURE {
                OnFailure::Skip => {
                    skipped.insert(index, error);
                }
                OnFailure::Stop => stopped = Some((index, error)),
            }
        }
    }

    /// Makes the live generation's tables (when missing) and points the views at them.
    ///
    /// Two processes starting at once both replace the views; the database lets one do it
    /// and fails the other (on PostgreSQL, with a duplicate in its catalogue), whose next
    /// attempt goes through. So a failure is tried again a few times before it counts.
    async fn publish(
        &self,
        store: &dyn ReadStore,
        live: u32,
        retire_older: bool,
    ) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            match self.publish_once(store, live, retire_older).await {
                Err(StoreError::Backend { .. }) if attempt < PUBLISH_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt)))
                        .await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn publish_once(
        &self,
        store: &dyn ReadStore,
        live: u32,
        retire_older: bool,
    ) -> Result<(), StoreError> {
        let table = table_of(self, live);
        let mut tx = store.begin().await?;
        self.ensure_tables(&mut *tx, &table).await?;
        let executor = tx.sql().ok_or_else(unsupported::<P>)?;
        for name in P::TABLES {
            let view = executor.table_name(name);
            let current = executor.table_name(&generation_table(name, live));
            executor
                .execute(&format!("DROP VIEW IF EXISTS {view}"), &[])
                .await?;
            executor
                .execute(
                    &format!("CREATE VIEW {view} AS SELECT * FROM {current}"),
                    &[],
                )
                .await?;
            if retire_older {
                for old in 1..live {
                    let old = executor.table_name(&generation_table(name, old));
                    executor
                        .execute(&format!("DROP TABLE IF EXISTS {old}"), &[])
                        .await?;
                }
            }
        }
        tx.commit().await
    }
}

/// The error a SQL projection's failure is recorded with: the event and the cause.
fn failed_on<P: SqlProjection>(
    event: &RecordedEvent,
    error: &(dyn std::error::Error + Send + Sync),
) -> String {
    ProjectionError::Handler {
        projection: P::NAME,
        stream: event.stream.clone(),
        version: event.version,
        event_name: event.event_name.to_string(),
        position: event.position,
        reason: error.to_string(),
    }
    .to_string()
}

impl<P: SqlProjection> ErasedProjection for SqlModel<P> {
    declared_constants!(P);

    fn indexes(&self) -> &'static [&'static str] {
        &[]
    }

    fn inline(&self) -> bool {
        false
    }

    fn apply_batch<'a>(
        &'a self,
        _log: &'a dyn EventLog,
        tx: &'a mut (dyn ReadTx + 'a),
        table: &'a DocumentTable,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<BatchOutcome, StoreError>> {
        Box::pin(self.apply_batch(tx, table, events))
    }

    fn handles_rollback(&self) -> bool {
        P::EVENTS.contains(&RolledBack::NAME)
    }

    fn check(&self) -> Result<(), ProjectionError> {
        match P::TABLES.iter().find(|name| !valid_table(name)) {
            Some(name) => Err(ProjectionError::InvalidSqlTable {
                projection: P::NAME,
                table: (*name).to_owned(),
            }),
            None if P::TABLES.is_empty() => Err(ProjectionError::InvalidSqlTable {
                projection: P::NAME,
                table: String::new(),
            }),
            None => Ok(()),
        }
    }

    fn publish<'a>(
        &'a self,
        store: &'a dyn ReadStore,
        live: u32,
        retire_older: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.publish(store, live, retire_older))
    }
}
