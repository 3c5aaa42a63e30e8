//! SQL projections, the escape hatch: tables of their own, written through the batch
//! transaction on SQLite and PostgreSQL; exactly once, failure policies under a savepoint,
//! blue/green rebuilds with views over the live generation, and a clear refusal elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use es_core::sql::{self, SqlProjection, SqlRows, SqlTx, SqlValue};
use es_core::{
    rebuild, BoxError, Daemon, Event, HealthState, MemoryStore, OnFailure, ProjectionError,
    Projections, ReadStore, RecordedEvent, Repository, RolledBack, Store,
};
use es_tests::bank::*;
use es_tests::stores;

/// Accounts and their movements, in two tables of its own. Fails, for the tests of failure
/// policies, on a deposit of `refuse` (after writing its movement, which must not stay).
#[derive(Debug, Default)]
struct Ledger {
    refuse: Option<u64>,
}

fn amount(value: u64) -> SqlValue {
    SqlValue::try_from(value).unwrap()
}

impl Ledger {
    async fn apply_to(&self, event: &RecordedEvent, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        let account: SqlValue = event.aggregate_id().into();
        let position = SqlValue::try_from(event.position)?;
        if let Some(opened) = event.decode_as::<Opened>()? {
            sql.execute(
                "INSERT INTO {accounts} (account, owner, balance, movements) VALUES ($1, $2, 0, 0)",
                &[account, opened.owner.into()],
            )
            .await?;
        } else if let Some(deposited) = event.decode_as::<Deposited>()? {
            self.move_money(sql, position, account, i64::try_from(deposited.amount)?)
                .await?;
            if self.refuse == Some(deposited.amount) {
                return Err(format!("the ledger refuses deposits of {}", deposited.amount).into());
            }
        } else if let Some(withdrawn) = event.decode_as::<Withdrawn>()? {
            self.move_money(sql, position, account, -i64::try_from(withdrawn.amount)?)
                .await?;
        } else if event.decode_as::<RolledBack>()?.is_some() {
            return Err("the ledger cannot follow a rollback".into());
        }
        Ok(())
    }

    async fn move_money(
        &self,
        sql: &mut SqlTx<'_>,
        position: SqlValue,
        account: SqlValue,
        amount: i64,
    ) -> Result<(), BoxError> {
        sql.execute(
            "INSERT INTO {movements} (position, account, amount) VALUES ($1, $2, $3)",
            &[position, account.clone(), amount.into()],
        )
        .await?;
        // `$2` before `$1`: parameters are numbered, not taken in order of appearance.
        sql.execute(
            "UPDATE {accounts} SET balance = balance + $2, movements = movements + 1 WHERE account = $1",
            &[account, amount.into()],
        )
        .await?;
        Ok(())
    }

    async fn create(sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        sql.execute(
            "CREATE TABLE {accounts} (account TEXT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL, movements BIGINT NOT NULL)",
            &[],
        )
        .await?;
        sql.execute(
            "CREATE TABLE {movements} (position BIGINT PRIMARY KEY, account TEXT NOT NULL, amount BIGINT NOT NULL)",
            &[],
        )
        .await?;
        sql.execute(
            "CREATE INDEX movements_by_account_{gen} ON {movements} (account)",
            &[],
        )
        .await?;
        Ok(())
    }
}

const LEDGER_EVENTS: &[&str] = &[
    Opened::NAME,
    Deposited::NAME,
    Withdrawn::NAME,
    RolledBack::NAME,
];

#[async_trait]
impl SqlProjection for Ledger {
    const NAME: &'static str = "ledger";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = LEDGER_EVENTS;
    const TABLES: &'static [&'static str] = &["accounts", "movements"];

    async fn create_tables(&self, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        Ledger::create(sql).await
    }

    async fn apply(&self, event: &RecordedEvent, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        self.apply_to(event, sql).await
    }
}

/// The same ledger, setting failed events aside instead of stopping.
#[derive(Debug)]
struct SkippingLedger(Ledger);

#[async_trait]
impl SqlProjection for SkippingLedger {
    const NAME: &'static str = "ledger_skipping";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = LEDGER_EVENTS;
    const TABLES: &'static [&'static str] = &["skipping_accounts", "skipping_movements"];
    const ON_FAILURE: OnFailure = OnFailure::Skip;

    async fn create_tables(&self, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        // The same statements, on this projection's own table names.
        for statement in [
            "CREATE TABLE {skipping_accounts} (account TEXT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL, movements BIGINT NOT NULL)",
            "CREATE TABLE {skipping_movements} (position BIGINT PRIMARY KEY, account TEXT NOT NULL, amount BIGINT NOT NULL)",
        ] {
            sql.execute(statement, &[]).await?;
        }
        Ok(())
    }

    async fn apply(&self, event: &RecordedEvent, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        // Same handler, with `{accounts}` and `{movements}` read as this projection's tables.
        let mut renamed = Renamed(sql);
        renamed.apply(&self.0, event).await
    }
}

/// Runs the ledger's handler against the skipping projection's tables.
struct Renamed<'s, 't>(&'s mut SqlTx<'t>);

impl Renamed<'_, '_> {
    async fn apply(&mut self, ledger: &Ledger, event: &RecordedEvent) -> Result<(), BoxError> {
        let account: SqlValue = event.aggregate_id().into();
        if let Some(opened) = event.decode_as::<Opened>()? {
            self.0
                .execute(
                    "INSERT INTO {skipping_accounts} (account, owner, balance, movements) VALUES ($1, $2, 0, 0)",
                    &[account, opened.owner.into()],
                )
                .await?;
        } else if let Some(deposited) = event.decode_as::<Deposited>()? {
            self.0
                .execute(
                    "INSERT INTO {skipping_movements} (position, account, amount) VALUES ($1, $2, $3)",
                    &[SqlValue::try_from(event.position)?, account.clone(), amount(deposited.amount)],
                )
                .await?;
            if ledger.refuse == Some(deposited.amount) {
                return Err(format!("the ledger refuses deposits of {}", deposited.amount).into());
            }
            self.0
                .execute(
                    "UPDATE {skipping_accounts} SET balance = balance + $2, movements = movements + 1 WHERE account = $1",
                    &[account, amount(deposited.amount)],
                )
                .await?;
        }
        Ok(())
    }
}

// ---- helpers ----

async fn settle(daemon: &Daemon, store: &dyn Store, projection: &str) {
    let head = store.head_position().await.unwrap();
    assert!(
        daemon
            .wait_for(projection, head, Duration::from_secs(20))
            .await
            .unwrap(),
        "{projection} did not reach {head}: {:?}",
        daemon.health().await
    );
}

/// `(account, balance, movements)` rows, in account order.
fn balances(rows: &SqlRows) -> Vec<(String, i64, i64)> {
    (0..rows.len())
        .map(|row| {
            (
                rows.get(row, "account")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                rows.get(row, "balance").unwrap().as_i64().unwrap(),
                rows.get(row, "movements").unwrap().as_i64().unwrap(),
            )
        })
        .collect()
}

async fn ledger_balances(store: &dyn ReadStore) -> Vec<(String, i64, i64)> {
    let rows = sql::query::<Ledger>(
        store,
        "SELECT account, balance, movements FROM {accounts} ORDER BY account",
        &[],
    )
    .await
    .unwrap();
    balances(&rows)
}

async fn open_and_move(accounts: &Repository<Account>, deposits: &[(&str, u64)]) {
    for (account, owner) in [("a", "ann"), ("b", "bob")] {
        accounts
            .execute(
                &account.to_owned(),
                Open {
                    owner: owner.into(),
                },
            )
            .await
            .unwrap();
    }
    for (account, amount) in deposits {
        accounts
            .execute(&(*account).to_owned(), Deposit { amount: *amount })
            .await
            .unwrap();
    }
}

// ---- the scenarios, on SQLite and PostgreSQL ----

/// Tables made once, filled exactly once, readable through `sql::query` and the views;
/// a rebuild fills new tables, swaps them in and drops the old ones.
async fn tables_views_and_rebuilds(store: Arc<dyn Store>) {
    let accounts = Repository::<Account>::new(store.clone());
    open_and_move(&accounts, &[("a", 10), ("a", 20), ("b", 7)]).await;
    accounts
        .execute(&"a".to_owned(), Withdraw { amount: 5 })
        .await
        .unwrap();
    let projections = Projections::new().with_sql(Ledger::default());
    let daemon = Daemon::start(store.clone(), projections.clone())
        .await
        .unwrap();
    settle(&daemon, &*store, "ledger").await;
    let expected = vec![("a".to_owned(), 25, 3), ("b".to_owned(), 7, 1)];
    assert_eq!(ledger_balances(&*store).await, expected);

    // While it runs: each new event once.
    accounts
        .execute(&"b".to_owned(), Deposit { amount: 1 })
        .await
        .unwrap();
    settle(&daemon, &*store, "ledger").await;
    assert_eq!(
        ledger_balances(&*store).await,
        vec![("a".to_owned(), 25, 3), ("b".to_owned(), 8, 2)]
    );

    // Other tools read the views under the plain names.
    let view = store.sql_table_name("movements").unwrap();
    let count = store
        .query_sql(
            &format!("SELECT count(*) AS n FROM {view} WHERE account = $1"),
            &["a".into()],
        )
        .await
        .unwrap();
    assert_eq!(count.get(0, "n").unwrap().as_i64(), Some(3));
    daemon.shutdown().await;

    let rebuilt = rebuild(&*store, &projections, "ledger", |_| {})
        .await
        .unwrap();
    assert_eq!(rebuilt.generation, 2);
    assert_eq!(
        ledger_balances(&*store).await,
        vec![("a".to_owned(), 25, 3), ("b".to_owned(), 8, 2)],
        "the rebuilt tables hold the same"
    );
    let view_rows = store
        .query_sql(&format!("SELECT count(*) AS n FROM {view}"), &[])
        .await
        .unwrap();
    assert_eq!(
        view_rows.get(0, "n").unwrap().as_i64(),
        Some(5),
        "the view follows the swap"
    );
    let old = store.sql_table_name("movements__g1").unwrap();
    assert!(
        store
            .query_sql(&format!("SELECT * FROM {old}"), &[])
            .await
            .is_err(),
        "the old generation's tables are dropped"
    );

    // A restarted daemon makes nothing twice: the tables exist, the checkpoint holds.
    let daemon = Daemon::start(store.clone(), projections).await.unwrap();
    settle(&daemon, &*store, "ledger").await;
    assert_eq!(ledger_balances(&*store).await.len(), 2);
    daemon.shutdown().await;
}

/// A failing event is undone to the savepoint: under `stop` the projection halts there with
/// everything before it applied; under `skip` it goes to the dead letters and the rest is
/// applied.
async fn failures_roll_back_to_the_savepoint(store: Arc<dyn Store>) {
    let accounts = Repository::<Account>::new(store.clone());
    open_and_move(&accounts, &[("a", 10), ("a", 13), ("a", 20)]).await;
    // Positions may have gaps (PostgreSQL): find the refused deposit's own.
    let account_a = es_core::StreamId::new("account", "a").unwrap();
    let refused_at = store.read_stream(&account_a, 1, 10).await.unwrap()[2].position;
    let projections = Projections::new()
        .with_sql(Ledger { refuse: Some(13) })
        .with_sql(SkippingLedger(Ledger { refuse: Some(13) }));
    let daemon = Daemon::start(store.clone(), projections).await.unwrap();
    settle(&daemon, &*store, "ledger_skipping").await;
    let mut stopped = None;
    for _ in 0..200 {
        let health = daemon.health().await.unwrap();
        let ledger = health.iter().find(|h| h.name == "ledger").unwrap();
        if let HealthState::Stopped(at) = &ledger.state {
            stopped = Some(at.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let stopped = stopped.expect("the ledger stops at the refused deposit");
    assert_eq!(stopped.position, refused_at);
    assert!(
        stopped.error.contains("refuses deposits of 13")
            && stopped.error.contains("account.deposited"),
        "{}",
        stopped.error
    );
    assert_eq!(
        ledger_balances(&*store).await,
        vec![("a".to_owned(), 10, 1), ("b".to_owned(), 0, 0)],
        "everything before the refused deposit, nothing of it"
    );
    let movements = sql::query::<Ledger>(&*store, "SELECT position FROM {movements}", &[])
        .await
        .unwrap();
    assert_eq!(
        movements.len(),
        1,
        "the refused deposit's movement was undone"
    );

    let skipping = sql::query::<SkippingLedger>(
        &*store,
        "SELECT account, balance, movements FROM {skipping_accounts} ORDER BY account",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        balances(&skipping),
        vec![("a".to_owned(), 30, 2), ("b".to_owned(), 0, 0)]
    );
    let letters = store.dead_letters("ledger_skipping").await.unwrap();
    assert_eq!(
        letters.iter().map(|l| l.position).collect::<Vec<_>>(),
        [refused_at]
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sql_projection_tables_views_and_rebuilds() {
    let store = stores::sqlite_store().await;
    tables_views_and_rebuilds(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sql_projection_tables_views_and_rebuilds() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    tables_views_and_rebuilds(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sql_projection_failures_roll_back_to_the_savepoint() {
    let store = stores::sqlite_store().await;
    failures_roll_back_to_the_savepoint(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sql_projection_failures_roll_back_to_the_savepoint() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    failures_roll_back_to_the_savepoint(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_memory_store_refuses_sql_projections_at_start() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let refused = Daemon::start(store, Projections::new().with_sql(Ledger::default()))
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("projection `ledger` keeps SQL tables, and this store has no SQL"),
        "{refused}"
    );
}

/// Declares a table the runtime could never give it.
struct Misnamed;

#[async_trait]
impl SqlProjection for Misnamed {
    const NAME: &'static str = "misnamed";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = &[RolledBack::NAME];
    const TABLES: &'static [&'static str] = &["es_events"];

    async fn create_tables(&self, _: &mut SqlTx<'_>) -> Result<(), BoxError> {
        Ok(())
    }

    async fn apply(&self, _: &RecordedEvent, _: &mut SqlTx<'_>) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_table_name_of_the_runtimes_is_refused_at_start() {
    let store = stores::sqlite_store().await;
    let refused = Daemon::start(
        Arc::new(store.clone()),
        Projections::new().with_sql(Misnamed),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, ProjectionError::InvalidSqlTable { table, .. } if table == "es_events"),
        "{refused}"
    );
    stores::remove_sqlite(store);
}

/// Two processes starting at once on a fresh schema both find the tables missing; one makes
/// them, the other's next attempt finds them: both start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_daemons_starting_at_once_both_start() {
    for _ in 0..5 {
        let Some(store) = stores::postgres_store().await else {
            return;
        };
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        let projections = Projections::new().with_sql(Ledger::default());
        let (first, second) = tokio::join!(
            Daemon::start(shared.clone(), projections.clone()),
            Daemon::start(shared.clone(), projections.clone()),
        );
        first.unwrap().shutdown().await;
        second.unwrap().shutdown().await;
        store.drop_schema().await.unwrap();
    }
}
