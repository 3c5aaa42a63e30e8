//! Figures 3, 4 and bytes per event of 7 with postgres-es, in a schema the bench names.
//!
//! postgres-es does not create its tables, so `setup` creates them as its `db/init.sql` does.
//! The schema lives from the bench's `pg-setup` to its `pg-drop`, across this binary's runs.

use std::sync::Arc;
use std::time::Instant;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, CqrsFramework, EventStore as _};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use sqlx::postgres::PgPoolOptions;

use crate::account::{Account, AccountCommand};
use crate::Error;

/// Events per command when filling a long stream.
const FILL_BATCH: u64 = 1_000;

/// Creates `schema` and postgres-es's two tables in it.
pub async fn setup(url: &str, schema: &str) -> Result<(), Error> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.events (
            aggregate_type text NOT NULL, aggregate_id text NOT NULL,
            sequence bigint CHECK (sequence >= 0) NOT NULL,
            event_type text NOT NULL, event_version text NOT NULL,
            payload json NOT NULL, metadata json NOT NULL,
            PRIMARY KEY (aggregate_type, aggregate_id, sequence));
         CREATE TABLE {schema}.snapshots (
            aggregate_type text NOT NULL, aggregate_id text NOT NULL,
            last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
            current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
            payload json NOT NULL,
            PRIMARY KEY (aggregate_type, aggregate_id, last_sequence));"
    ))
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

pub async fn drop_schema(url: &str, schema: &str) -> Result<(), Error> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// Bytes on disk per stored event (table, indexes and TOAST), and the rows counted.
pub async fn disk(url: &str, schema: &str) -> Result<(f64, i64), Error> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let table = format!("{schema}.events");
    let (bytes, rows): (i64, i64) = sqlx::query_as(&format!(
        "SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})"
    ))
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok((bytes as f64 / rows.max(1) as f64, rows))
}

/// A pool of the bench's size on the bench's schema.
#[derive(Debug)]
pub struct Pg {
    pool: sqlx::PgPool,
    schema: String,
}

impl Pg {
    pub async fn connect(url: &str, schema: &str, size: u32) -> Result<Pg, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .connect(url)
            .await?;
        Ok(Pg {
            pool,
            schema: schema.to_owned(),
        })
    }

    /// Opens the `count` connections a measurement will use before anything is timed: in
    /// the bench's process the pool was shared by all figures, so they were already open.
    /// No more than it uses, so that the bench's next measurement does not share the
    /// machine with PostgreSQL starting and ending backends for nothing.
    async fn warm(&self, count: u64) -> Result<(), Error> {
        let mut open = Vec::new();
        for _ in 0..count {
            let mut connection = self.pool.acquire().await?;
            sqlx::query("SELECT 1").execute(&mut *connection).await?;
            open.push(connection);
        }
        Ok(())
    }

    /// Closes the connections and waits until they are, for the same reason.
    pub async fn close(self) {
        self.pool.close().await;
    }

    fn repository(&self) -> PostgresEventRepository {
        let schema = &self.schema;
        PostgresEventRepository::new(self.pool.clone())
            .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"))
    }

    /// The framework as its documentation sets it up; snapshots every `snapshot_every`
    /// events, or none when 0.
    fn cqrs(&self, snapshot_every: usize) -> PostgresCqrs<Account> {
        CqrsFramework::new(self.store(snapshot_every), vec![], ())
    }

    fn store(
        &self,
        snapshot_every: usize,
    ) -> PersistedEventStore<PostgresEventRepository, Account> {
        if snapshot_every == 0 {
            PersistedEventStore::new_event_store(self.repository())
        } else {
            PersistedEventStore::new_snapshot_store(self.repository(), snapshot_every)
        }
    }

    /// Commands per second: `commands` deposits spread round-robin over `accounts` opened
    /// accounts (ids `{prefix}-a{n}`), by `tasks` concurrent tasks each owning its share.
    pub async fn throughput(
        &self,
        prefix: &str,
        accounts: u64,
        commands: u64,
        tasks: u64,
    ) -> Result<f64, Error> {
        let tasks = tasks.max(1);
        self.warm(tasks).await?;
        let cqrs = Arc::new(self.cqrs(0));
        let ids: Vec<String> = (0..accounts).map(|n| format!("{prefix}-a{n}")).collect();
        for id in &ids {
            cqrs.execute(
                id,
                AccountCommand::Open {
                    owner: "owner".into(),
                },
            )
            .await?;
        }
        let shares: Vec<Vec<String>> = (0..tasks)
            .map(|t| {
                ids.iter()
                    .skip(t as usize)
                    .step_by(tasks as usize)
                    .cloned()
                    .collect()
            })
            .filter(|share: &Vec<String>| !share.is_empty())
            .collect();
        let per_task = commands / tasks;
        let started = Instant::now();
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let cqrs = Arc::clone(&cqrs);
                tokio::spawn(async move {
                    for n in 0..per_task as usize {
                        cqrs.execute(
                            &share[n % share.len()],
                            AccountCommand::Deposit { amount: 1 },
                        )
                        .await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        let spawned = handles.len() as u64;
        for handle in handles {
            handle.await??;
        }
        Ok((per_task * spawned) as f64 / started.elapsed().as_secs_f64())
    }

    /// Milliseconds for one command appending `count` events to `id`.
    pub async fn append_many(&self, id: &str, count: u64) -> Result<f64, Error> {
        self.warm(1).await?;
        let cqrs = self.cqrs(0);
        let started = Instant::now();
        cqrs.execute(id, AccountCommand::DepositMany { count })
            .await?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    }

    /// Appends `length` events to `id`, 1,000 per command, then analyzes both tables.
    pub async fn fill(&self, id: &str, length: u64, snapshot_every: usize) -> Result<(), Error> {
        let cqrs = self.cqrs(snapshot_every);
        for _ in 0..length / FILL_BATCH {
            cqrs.execute(id, AccountCommand::DepositMany { count: FILL_BATCH })
                .await?;
        }
        // Fresh tables have no statistics until autovacuum gets to them, and without
        // statistics the planner sorts instead of walking the primary key: analyze, as
        // autovacuum would (the bench does the same for ours).
        let schema = &self.schema;
        sqlx::raw_sql(&format!(
            "ANALYZE {schema}.events; ANALYZE {schema}.snapshots"
        ))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Milliseconds to load `id`, and the balance loaded. One load first, untimed, so the
    /// timed one runs on a connection that has run the query before, as in a long-lived
    /// process.
    pub async fn load(&self, id: &str, snapshot_every: usize) -> Result<(f64, u64), Error> {
        self.warm(1).await?;
        let store = self.store(snapshot_every);
        store.load_aggregate(id).await?;
        let started = Instant::now();
        let mut loaded = store.load_aggregate(id).await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        Ok((ms, loaded.aggregate().balance()))
    }
}
