//! PostgreSQL behaviour beyond the conformance suite: read-all with a transaction held open,
//! the append-only table, corrupt rows, unreachable servers, concurrent migrations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]


use std::time::{Duration, Instant};

use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::testing::{event, unique_stream};
use es_core::{EventStore, ExpectedVersion, RecordedEvent, StoreError};

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
    let Some(store) = postgres::new_store().await else {
        return;
    };
    let url = postgres::url().unwrap();
    let mut client = raw_client(&url).await;
    let transaction = client.transaction().await.unwrap();
    let early = store
        .append_in(
            &transaction,
            "early",
            "test",
            ExpectedVersion::NoStream,
            vec![event("test.early", 1)],
        )
        .await
        .unwrap();
    let late = store
        .append(
            "late",
            "test",
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
    let names: Vec<&str> = events.iter().map(|e| e.event_name.as_str()).collect();
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
    let Some(store) = postgres::new_store().await else {
        return;
    };
    let mut client = raw_client(&postgres::url().unwrap()).await;
    let transaction = client.transaction().await.unwrap();
    store
        .append_in(
            &transaction,
            "ghost",
            "test",
            ExpectedVersion::NoStream,
            vec![event("test.ghost", 1)],
        )
        .await
        .unwrap();
    store
        .append(
            "real",
            "test",
            ExpectedVersion::NoStream,
            vec![event("test.real", 2)],
        )
        .await
        .unwrap();
    transaction.rollback().await.unwrap();
    let events = read_all_until(&store, 1).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_name.as_str())
            .collect::<Vec<_>>(),
        ["test.real"]
    );
    assert_eq!(store.stream_version("ghost").await.unwrap(), 0);
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_events_table_refuses_update_delete_and_truncate() {
    let Some(store) = postgres::new_store().await else {
        return;
    };
    store
        .append(
            "s",
            "test",
            ExpectedVersion::NoStream,
            vec![event("test.kept", 1)],
        )
        .await
        .unwrap();
    let client = raw_client(&postgres::url().unwrap()).await;
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
        store.read_stream("s", 1, 10).await.unwrap()[0].event_name,
        "test.kept"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_stream_and_version() {
    let Some(store) = postgres::new_store().await else {
        return;
    };
    let client = raw_client(&postgres::url().unwrap()).await;
    client
        .execute(
            &format!(
                "INSERT INTO \"{}\".es_events (position, stream_id, version, aggregate_type, event_name, schema_version, event_id, correlation_id, extra, payload)
                 VALUES (1, 'post-7', 1, 'post', 'post.drafted', 1, gen_random_uuid(), gen_random_uuid(), '[1, 2]', '{{}}')",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    match store.read_stream("post-7", 1, 10).await {
        Err(StoreError::Corrupt {
            stream_id,
            version,
            reason,
        }) => {
            assert_eq!((stream_id.as_str(), version), ("post-7", 1));
            assert!(reason.contains("metadata"), "{reason}");
        }
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }
    store.drop_schema().await.unwrap();
}

/// Two pools are two independent sets of sessions, as two processes would have: the database,
/// not a lock in one process, decides who wins.
#[tokio::test]
async fn two_stores_on_one_schema_never_both_win() {
    let Some(first) = postgres::new_store().await else {
        return;
    };
    let config = PostgresConfig::new(postgres::url().unwrap()).schema(first.schema());
    let second = PostgresStore::connect_with(config).await.unwrap();
    let stream = unique_stream("shared");
    for round in 0..20u64 {
        let (a, b) = tokio::join!(
            first.append(
                &stream,
                "test",
                ExpectedVersion::Exact(round),
                vec![event("test.a", round)]
            ),
            second.append(
                &stream,
                "test",
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
    let Some(url) = postgres::url() else { return };
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
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(2),
        ..PostgresConfig::new("postgres://postgres@127.0.0.1:1/test")
    };
    let error = PostgresStore::connect_with(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("cannot connect to PostgreSQL"), "{error}");
    let error = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/db?sslmode=bogus")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("invalid PostgreSQL URL"), "{error}");
    let error = PostgresStore::connect_with(
        PostgresConfig::new("postgres://x@127.0.0.1/y").schema("Robert'); DROP TABLE"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("schema name"), "{error}");
}

/// Counts events named `test.*` it has seen.
#[derive(Debug, Default)]
struct SeenCount(u64);

impl es_core::Projection for SeenCount {
    fn name(&self) -> &'static str {
        "seen_count"
    }
    fn apply(&mut self, _: &RecordedEvent) -> Result<(), es_core::ProjectionError> {
        self.0 += 1;
        Ok(())
    }
}

/// A command returns once its read models show it, even when an earlier transaction holds
/// read-all back for a while.
#[tokio::test]
async fn a_command_waits_for_its_read_models_behind_a_slow_transaction() {
    let Some(store) = postgres::new_store().await else {
        return;
    };
    let projections = es_core::Projections::new().with(SeenCount::default());
    let repository =
        es_core::Repository::<Counter>::new(store.clone()).with_projections(projections.clone());
    let mut client = raw_client(&postgres::url().unwrap()).await;
    let transaction = client.transaction().await.unwrap();
    store
        .append_in(
            &transaction,
            "slow",
            "test",
            ExpectedVersion::NoStream,
            vec![event("test.slow", 1)],
        )
        .await
        .unwrap();
    let release = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        transaction.commit().await.unwrap();
    };
    let command = async {
        let started = Instant::now();
        repository
            .execute(&"c".to_owned(), Increment)
            .await
            .unwrap();
        started.elapsed()
    };
    let (took, ()) = tokio::join!(command, release);
    assert!(
        took >= Duration::from_millis(150),
        "it waited for the earlier transaction ({took:?})"
    );
    assert_eq!(
        projections.query(|seen: &SeenCount| seen.0).unwrap(),
        2,
        "both events, in order, when the command returns"
    );
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
