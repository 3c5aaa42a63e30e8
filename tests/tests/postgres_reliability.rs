//! PostgreSQL behaviour beyond the conformance suite: read-all with a transaction held open,
//! the append-only table, corrupt rows, unreachable servers, concurrent migrations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::testing::{event, unique_stream};
use es_core::{
    CorruptRecord, Corruption, EventLog, ExpectedVersion, RecordedEvent, StoreError, StreamId,
};
use es_tests::stores;

fn stream(id: &str) -> StreamId {
    StreamId::new("test", id).unwrap()
}

async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn read_all_until(store: &PostgresStore, count: usize) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = store.read_all(1, 1000).await.unwrap();
        if events.len() >= count {
            return events;
        }
        assert!(Instant::now() < deadline, "read-all never caught up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A transaction that took its position first but commits last must not be skipped: while it
/// is open, read-all stops before it, even though a later position is already committed.
#[tokio::test]
async fn read_all_waits_for_a_transaction_that_took_an_earlier_position() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let mut transaction = store.transaction().await.unwrap();
    let early = transaction
        .append(
            &stream("early"),
            ExpectedVersion::NoStream,
            vec![event("test.early", 1)],
        )
        .await
        .unwrap();
    let late = store
        .append(
            &stream("late"),
            ExpectedVersion::NoStream,
            vec![event("test.late", 2)],
        )
        .await
        .unwrap();
    assert!(
        early[0].position < late[0].position,
        "the open transaction holds the earlier position"
    );

    // The later event is committed, but returning it now would let a reader's checkpoint pass
    // the earlier one, which is about to commit.
    for _ in 0..20 {
        let visible = store.read_all(1, 100).await.unwrap();
        assert!(
            visible.is_empty(),
            "read-all returned {visible:?} while an earlier position was uncommitted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    transaction.commit().await.unwrap();
    let events = read_all_until(&store, 2).await;
    let names: Vec<&str> = events.iter().map(|e| &*e.event_name).collect();
    assert_eq!(
        names,
        ["test.early", "test.late"],
        "both, in position order, once"
    );
    store.drop_schema().await.unwrap();
}

/// A rolled-back append leaves a hole in the positions that read-all steps over.
#[tokio::test]
async fn a_rolled_back_append_is_never_seen() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let mut transaction = store.transaction().await.unwrap();
    transaction
        .append(
            &stream("ghost"),
            ExpectedVersion::NoStream,
            vec![event("test.ghost", 1)],
        )
        .await
        .unwrap();
    store
        .append(
            &stream("real"),
            ExpectedVersion::NoStream,
            vec![event("test.real", 2)],
        )
        .await
        .unwrap();
    transaction.rollback().await.unwrap();
    let events = read_all_until(&store, 1).await;
    assert_eq!(
        events.iter().map(|e| &*e.event_name).collect::<Vec<_>>(),
        ["test.real"]
    );
    assert_eq!(store.stream_version(&stream("ghost")).await.unwrap(), 0);
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_events_table_refuses_update_delete_and_truncate() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    store
        .append(
            &stream("s"),
            ExpectedVersion::NoStream,
            vec![event("test.kept", 1)],
        )
        .await
        .unwrap();
    let client = raw_client(&stores::postgres_url().await.unwrap()).await;
    let schema = store.schema();
    for statement in [
        format!("UPDATE \"{schema}\".es_events SET event_name = 'changed'"),
        format!("DELETE FROM \"{schema}\".es_events"),
        format!("TRUNCATE \"{schema}\".es_events"),
    ] {
        let error = client.batch_execute(&statement).await.unwrap_err();
        let message = error
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert!(
            message.contains("es_events is append-only"),
            "{statement}: {message}"
        );
    }
    assert_eq!(
        &*store.read_stream(&stream("s"), 1, 10).await.unwrap()[0].event_name,
        "test.kept"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_stream_version_and_event() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    store
        .append(
            &stream("7"),
            ExpectedVersion::NoStream,
            vec![event("test.fine", 1)],
        )
        .await
        .unwrap();
    let client = raw_client(&stores::postgres_url().await.unwrap()).await;
    // Metadata that is not an object: written around the store, as a broken tool would.
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".es_events DISABLE TRIGGER USER;
             UPDATE \"{schema}\".es_events SET metadata = '[1, 2]';",
            schema = store.schema()
        ))
        .await
        .unwrap();
    match store.read_stream(&stream("7"), 1, 10).await {
        Err(StoreError::Corrupt(corrupt)) => {
            let CorruptRecord {
                stream: key,
                version,
                event_name,
                problem,
            } = *corrupt;
            assert_eq!(
                (key.as_str(), version, event_name.as_deref()),
                ("test/7", Some(1), Some("test.fine"))
            );
            assert!(
                matches!(problem, Corruption::Unreadable { .. }),
                "{problem}"
            );
        }
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }
    // Another stream still reads.
    store
        .append(
            &stream("8"),
            ExpectedVersion::NoStream,
            vec![event("test.fine", 1)],
        )
        .await
        .unwrap();
    assert_eq!(
        store.read_stream(&stream("8"), 1, 10).await.unwrap().len(),
        1
    );
    store.drop_schema().await.unwrap();
}

/// Two pools are two independent sets of sessions, as two processes would have: the database,
/// not a lock in one process, decides who wins.
#[tokio::test]
async fn two_stores_on_one_schema_never_both_win() {
    let Some(first) = stores::postgres_store().await else {
        return;
    };
    let config = PostgresConfig::new(stores::postgres_url().await.unwrap()).schema(first.schema());
    let second = PostgresStore::connect_with(config).await.unwrap();
    let stream = unique_stream("shared");
    for round in 0..20u64 {
        let (a, b) = tokio::join!(
            first.append(
                &stream,
                ExpectedVersion::Exact(round),
                vec![event("test.a", round)]
            ),
            second.append(
                &stream,
                ExpectedVersion::Exact(round),
                vec![event("test.b", round)]
            ),
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: exactly one wins ({a:?} / {b:?})"
        );
    }
    assert_eq!(first.stream_version(&stream).await.unwrap(), 20);
    first.drop_schema().await.unwrap();
}

#[tokio::test]
async fn concurrent_migrations_of_one_schema_all_succeed() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let schema = format!("es_test_{}", uuid::Uuid::new_v4().simple());
    let opens = (0..4).map(|_| {
        PostgresStore::connect_with(PostgresConfig::new(url.clone()).schema(schema.clone()))
    });
    let stores = futures::future::join_all(opens).await;
    for store in &stores {
        assert!(store.is_ok(), "{store:?}");
    }
    stores[0].as_ref().unwrap().drop_schema().await.unwrap();
}

/// These need no server: they show what a user sees when the server is not there.
#[tokio::test]
async fn an_unreachable_server_or_bad_url_is_a_clear_error() {
    let config = PostgresConfig::new("postgres://postgres@127.0.0.1:1/test")
        .connect_timeout(Duration::from_secs(2));
    let error = PostgresStore::connect_with(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("connecting to PostgreSQL") && error.contains("refused"),
        "{error}"
    );
    let error = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/db?sslmode=bogus")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("parsing the PostgreSQL URL") && error.contains("sslmode"),
        "{error}"
    );
    let error = PostgresStore::connect_with(
        PostgresConfig::new("postgres://x@127.0.0.1/y").schema("Robert'); DROP TABLE"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("schema name"), "{error}");
}

/// Counts `test.incremented` events, in one document.
#[derive(Debug)]
struct SeenCount;

impl es_core::Projection for SeenCount {
    type Document = u64;
    const NAME: &'static str = "seen_count";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = &["test.incremented", "test.slow"];
    const PER_STREAM: bool = true;

    fn apply(
        &self,
        _: &RecordedEvent,
        docs: &mut es_core::Docs<u64>,
    ) -> Result<(), es_core::ProjectionError> {
        docs.upsert("all", |count| *count += 1);
        Ok(())
    }
}

/// A command does not wait for read models, even when an earlier transaction holds read-all
/// back; the daemon shows both events, in order, once that transaction commits.
#[tokio::test]
async fn commands_do_not_wait_for_read_models_behind_a_slow_transaction() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let shared: std::sync::Arc<dyn es_core::Store> = std::sync::Arc::new(store.clone());
    let daemon =
        es_core::Daemon::start(shared.clone(), es_core::Projections::new().with(SeenCount))
            .await
            .unwrap();
    let repository = es_core::Repository::<Counter>::new(store.clone());
    let mut transaction = store.transaction().await.unwrap();
    transaction
        .append(
            &stream("slow"),
            ExpectedVersion::NoStream,
            vec![event("test.slow", 1)],
        )
        .await
        .unwrap();
    let committed = repository
        .execute(&"c".to_owned(), Increment)
        .await
        .unwrap();
    let position = committed[0].position;
    assert!(
        !daemon
            .wait_for("seen_count", position, Duration::from_millis(300))
            .await
            .unwrap(),
        "read-all holds the command's event back behind the open transaction"
    );
    transaction.commit().await.unwrap();
    assert!(daemon
        .wait_for("seen_count", position, Duration::from_secs(30))
        .await
        .unwrap());
    let count = es_core::Documents::<SeenCount>::of(&*shared)
        .get("all")
        .await
        .unwrap();
    assert_eq!(count, Some(2), "both events, once each");
    daemon.shutdown().await;
    store.drop_schema().await.unwrap();
}

#[derive(es_core::Event, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[event(name = "test.incremented")]
pub struct Incremented;

#[derive(es_core::Command, Clone, Debug)]
pub struct Increment;

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

#[es_core::aggregate(name = "counter", id = String, error = Never)]
#[derive(Debug, Default)]
pub struct Counter {
    count: u32,
}

#[es_core::aggregate]
impl Counter {
    #[handle]
    fn increment(&self, _: Increment) -> Result<Incremented, Never> {
        Ok(Incremented)
    }

    #[apply]
    fn incremented(&mut self, _: &Incremented) {
        self.count += 1;
    }
}

/// A store in a fresh schema whose connections carry a unique application name, so another
/// session can find them in `pg_stat_activity`; and that name.
async fn named_store() -> Option<(PostgresStore, String)> {
    let url = stores::postgres_url().await?;
    let application = format!("es_idempotency_{}", uuid::Uuid::new_v4().simple());
    let separator = if url.contains('?') { '&' } else { '?' };
    let config = PostgresConfig::new(format!("{url}{separator}application_name={application}"))
        .schema(format!("es_test_{}", uuid::Uuid::new_v4().simple()));
    Some((
        PostgresStore::connect_with(config).await.unwrap(),
        application,
    ))
}

/// Waits until a session of `application` waits on a lock; terminates it when `terminate`.
async fn when_waiting_on_a_lock(
    client: &tokio_postgres::Client,
    application: &str,
    terminate: bool,
) {
    let sql = if terminate {
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND wait_event_type = 'Lock'"
    } else {
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'"
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.query(sql, &[&application]).await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no session of {application} ever waited on a lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The connection of a command's append is killed while the append waits in the server: the
/// caller cannot know whether it committed (`OutcomeUnknown`), so the repository sends it
/// again with the same command id, and the account is credited once. A caller's own retry
/// of the same command id afterwards appends nothing either.
#[tokio::test]
async fn a_command_whose_connection_is_killed_is_retried_and_books_once() {
    use es_tests::bank::{Account, Deposit, Open};
    use es_tests::faults::{LosesReplies, Lost};

    let Some((store, application)) = named_store().await else {
        return;
    };
    // Loses nothing: it counts the repository's appends.
    let counted = std::sync::Arc::new(LosesReplies::new(
        std::sync::Arc::new(store.clone()),
        Lost::AfterCommit,
    ));
    let accounts = es_core::Repository::<Account>::new(counted.clone());
    let id = "k".to_owned();
    accounts
        .execute(
            &id,
            Open {
                owner: "kim".into(),
            },
        )
        .await
        .unwrap();
    // Inserts wait while this session holds the table; reads do not.
    let url = stores::postgres_url().await.unwrap();
    let locker = raw_client(&url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{}\".es_events IN SHARE ROW EXCLUSIVE MODE",
            store.schema()
        ))
        .await
        .unwrap();
    let deposit = tokio::spawn({
        let accounts = accounts.clone();
        let id = id.clone();
        async move { accounts.execute(&id, Deposit { amount: 100 }).await }
    });
    let killer = raw_client(&url).await;
    when_waiting_on_a_lock(&killer, &application, true).await;
    // The resent append waits for the lock too; let it through.
    locker.batch_execute("ROLLBACK").await.unwrap();
    let committed = deposit.await.unwrap().unwrap();
    assert_eq!(committed[0].version, 2);
    let attempts = counted.appends() - 1; // the open
    assert!(
        attempts >= 2,
        "the killed append was sent again ({attempts} attempts)"
    );

    // The caller retries the command by hand, as after a lost reply: nothing is appended.
    let stream = committed[0].stream.clone();
    let mut retry = es_core::testing::event("account.deposited", 100);
    retry.metadata.command_id = committed[0].metadata.command_id;
    let first = store
        .append(&stream, ExpectedVersion::Exact(1), vec![retry])
        .await
        .unwrap();
    assert_eq!(first[0].metadata.event_id, committed[0].metadata.event_id);
    assert_eq!(store.stream_version(&stream).await.unwrap(), 2);
    assert_eq!(accounts.load(&id).await.unwrap().state.balance, 100);
    store.drop_schema().await.unwrap();
    println!("killed 1 backend, retried {}, appended once", attempts - 1);
}

/// The precise fault: the append committed and then the reply was lost (simulated: a real
/// kill cannot be timed between the commit and its reply). The repository's resend gets the
/// first outcome from PostgreSQL, and nothing is appended twice.
#[tokio::test]
async fn a_command_committed_before_its_reply_was_lost_books_once() {
    use es_tests::bank::{Account, Deposit, Open};
    use es_tests::faults::{LosesReplies, Lost};

    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let losing = std::sync::Arc::new(LosesReplies::new(
        std::sync::Arc::new(store.clone()),
        Lost::AfterCommit,
    ));
    let accounts = es_core::Repository::<Account>::new(losing.clone());
    let id = "l".to_owned();
    accounts
        .execute(
            &id,
            Open {
                owner: "lou".into(),
            },
        )
        .await
        .unwrap();
    losing.lose_next(3);
    let committed = accounts
        .execute(&id, Deposit { amount: 100 })
        .await
        .unwrap();
    assert_eq!(committed[0].version, 2);
    assert_eq!(store.stream_version(&committed[0].stream).await.unwrap(), 2);
    assert_eq!(
        es_core::Repository::<Account>::new(store.clone())
            .load(&id)
            .await
            .unwrap()
            .state
            .balance,
        100
    );
    store.drop_schema().await.unwrap();
    println!(
        "lost {} replies, retried {}, appended once",
        losing.replies_lost(),
        losing.appends() - 2
    );
}

/// Two runs of one command race: the second waits on the first's uncommitted version, and
/// when the first commits, the second's unique violation is answered with the first's
/// events, read on the same connection, not returned as an error.
#[tokio::test]
async fn a_concurrent_run_of_one_command_gets_the_first_outcome_not_an_error() {
    let Some((store, application)) = named_store().await else {
        return;
    };
    let stream = unique_stream("race");
    let command_id = uuid::Uuid::now_v7();
    let run = move |n| {
        let mut new = event("test.run", n);
        new.metadata.command_id = Some(command_id);
        vec![new]
    };
    let mut first = store.transaction().await.unwrap();
    let first_run = first
        .append(&stream, ExpectedVersion::NoStream, run(1))
        .await
        .unwrap();
    let second = tokio::spawn({
        let (store, stream) = (store.clone(), stream.clone());
        async move {
            store
                .append(&stream, ExpectedVersion::NoStream, run(2))
                .await
        }
    });
    let watcher = raw_client(&stores::postgres_url().await.unwrap()).await;
    when_waiting_on_a_lock(&watcher, &application, false).await;
    first.commit().await.unwrap();
    let second_run = second
        .await
        .unwrap()
        .expect("the first outcome, not an error");
    assert_eq!(second_run, first_run);
    assert_eq!(store.stream_version(&stream).await.unwrap(), 1);
    store.drop_schema().await.unwrap();
    println!("2 runs, 1 waited on the other, appended once");
}

/// A schema of layout 3 (no command ids) is upgraded in place when opened: its events stay,
/// and commands become idempotent.
#[tokio::test]
async fn a_layout_3_schema_is_upgraded_in_place() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let stream = unique_stream("old");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event("test.old", 1)],
        )
        .await
        .unwrap();
    let url = stores::postgres_url().await.unwrap();
    let client = raw_client(&url).await;
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".es_events DROP COLUMN command_id;
             UPDATE \"{schema}\".es_schema_version SET version = 3;",
            schema = store.schema()
        ))
        .await
        .unwrap();
    let reopened = PostgresStore::connect_with(PostgresConfig::new(url).schema(store.schema()))
        .await
        .unwrap();
    let version: i32 = client
        .query_one(
            &format!(
                "SELECT version FROM \"{}\".es_schema_version",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, es_core::postgres::SCHEMA_VERSION);
    let mut command = event("test.new", 2);
    command.metadata.command_id = Some(uuid::Uuid::now_v7());
    let first = reopened
        .append(&stream, ExpectedVersion::Exact(1), vec![command.clone()])
        .await
        .unwrap();
    let again = reopened
        .append(&stream, ExpectedVersion::Exact(1), vec![command])
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(reopened.stream_version(&stream).await.unwrap(), 2);
    store.drop_schema().await.unwrap();
}

/// A transaction left open anywhere in the cluster holds read-all back. Commands keep their
/// speed (they never read-all); health names the blocking transaction, its process and age.
#[tokio::test]
async fn a_long_open_transaction_is_named_in_health_and_commands_go_on() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let shared: std::sync::Arc<dyn es_core::Store> = std::sync::Arc::new(store.clone());
    let daemon =
        es_core::Daemon::start(shared.clone(), es_core::Projections::new().with(SeenCount))
            .await
            .unwrap();
    let mut client = raw_client(&stores::postgres_url().await.unwrap()).await;
    let open = client.transaction().await.unwrap();
    let pid: i32 = open
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    open.query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap();
    let repository = es_core::Repository::<Counter>::new(store.clone());
    let started = Instant::now();
    for _ in 0..20 {
        repository
            .execute(&"c".to_owned(), Increment)
            .await
            .unwrap();
    }
    let took = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    let blocker = loop {
        let health = daemon.health().await.unwrap();
        if let es_core::HealthState::HeldBack(blocker) = &health[0].state {
            break blocker.clone();
        }
        assert!(
            Instant::now() < deadline,
            "health never named the blocker: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(blocker.pid, i64::from(pid));
    open.rollback().await.unwrap();
    let head = store.head_position().await.unwrap();
    assert!(daemon
        .wait_for("seen_count", head, Duration::from_secs(30))
        .await
        .unwrap());
    println!(
        "20 commands behind a long-open transaction took {:.1} ms; health named pid {} ({:.1} s old)",
        took.as_secs_f64() * 1e3,
        blocker.pid,
        blocker.age.as_secs_f64()
    );
    daemon.shutdown().await;
    store.drop_schema().await.unwrap();
}
