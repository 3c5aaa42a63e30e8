//! Behaviour of the PostgreSQL store a user relies on, against the real server at
//! `ES_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`). Each test uses a
//! fresh schema. When the server is unreachable a test prints a skip line, or fails when
//! the `CI` environment variable is set.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)] // failed assertions are the point

use std::time::Duration;

use uuid::Uuid;

use super::*;
use crate::envelope::{Metadata, Payload};
use crate::error::Corruption;

fn url() -> String {
    std::env::var("ES_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A raw connection for setting up and inspecting, or `None` (after a skip line) when the
/// server is unreachable outside CI.
async fn raw(test: &str) -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("{test}: PostgreSQL at {} is unreachable: {error}", url())
        }
        Err(error) => {
            eprintln!(
                "skipping {test}: PostgreSQL at {} is unreachable: {error}",
                url()
            );
            None
        }
    }
}

/// A schema name no other test (or run) uses.
fn fresh_schema(test: &str) -> String {
    format!("es_test_{test}_{}", Uuid::new_v4().simple())
}

async fn store_with(
    test: &str,
    configure: impl FnOnce(PostgresConfig) -> PostgresConfig,
) -> Option<(PostgresStore, tokio_postgres::Client)> {
    let raw = raw(test).await?;
    let config = configure(PostgresConfig::new(url()).schema(fresh_schema(test)));
    let store = PostgresStore::connect_with(config)
        .await
        .expect("connect and create the tables");
    Some((store, raw))
}

fn event(name: &str, n: u64) -> NewEvent {
    NewEvent {
        event_name: name.into(),
        schema_version: 1,
        metadata: Metadata::new(Uuid::now_v7()),
        payload: Payload::encode(&serde_json::json!({ "n": n })).unwrap(),
    }
}

/// Read-all holds back events while any transaction in the cluster that started before
/// them still runs (other tests run concurrently): waits, boundedly, for `count` events.
async fn settled(store: &PostgresStore, from: u64, count: usize) -> Vec<RecordedEvent> {
    for _ in 0..500 {
        let all = store.read_all(from, 100).await.unwrap();
        if all.len() >= count {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("read-all never returned {count} events");
}

fn stream(id: &str) -> StreamId {
    StreamId::new("account", id).unwrap()
}

/// Starts `stream` with one event named `name`.
async fn start(
    store: &PostgresStore,
    stream: &StreamId,
    name: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    store
        .append(stream, ExpectedVersion::NoStream, vec![event(name, 1)])
        .await
}

/// SQL inserting an event row by hand, past the store's checks: `event_name` NULL when
/// `None`, `metadata` as JSON text.
fn insert_row(
    schema: &str,
    (position, version): (i64, i64),
    stream: &str,
    schema_version: i64,
    event_name: Option<&str>,
    metadata: &str,
) -> String {
    let event_name = event_name.map_or("NULL".to_owned(), |name| format!("'{name}'"));
    format!(
        "INSERT INTO \"{schema}\".es_events (position, version, schema_version, event_id, stream_id, event_name, payload, metadata)
         VALUES ({position}, {version}, {schema_version}, gen_random_uuid(), '{stream}', {event_name}, '{{}}', '{metadata}')"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_events_metadata_and_snapshots() {
    let Some((store, _raw)) = store_with("round_trip", |config| config).await else {
        return;
    };
    let alice = stream("alice/1");
    let mut first = event("account.opened", 1);
    first.metadata.causation_id = Some(Uuid::now_v7());
    first.metadata.extra.insert("user".into(), "ada".into());
    let mut second = event("account.deposited", 2);
    second.metadata.correlation_id = first.metadata.event_id;
    let appended = store
        .append(&alice, ExpectedVersion::NoStream, vec![first, second])
        .await
        .unwrap();
    assert_eq!(
        appended.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2]
    );
    let read = store.read_stream(&alice, 1, 10).await.unwrap();
    assert_eq!(read, appended);
    let all = settled(&store, 1, appended.len()).await;
    assert_eq!(all, appended);
    assert_eq!(
        store.read_aggregate_type("account", 1, 10).await.unwrap(),
        appended
    );
    assert!(store
        .read_aggregate_type("accoun", 1, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.stream_version(&alice).await.unwrap(), 2);
    assert_eq!(store.head_position().await.unwrap(), appended[1].position);
    let payloads = store.read_stream_payloads(&alice, 2, 10).await.unwrap();
    assert_eq!(payloads, vec![StoredPayload::from(appended[1].clone())]);

    let snapshot = Snapshot {
        stream: alice.clone(),
        version: 2,
        state_fingerprint: "v1".into(),
        state: Payload::from_json_text(r#"{"balance":3}"#),
        taken_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    };
    store.save_snapshot(snapshot.clone()).await.unwrap();
    store
        .save_snapshot(Snapshot {
            version: 1,
            ..snapshot.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.load_snapshot(&alice).await.unwrap(), Some(snapshot));
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_appends_check_the_expectation_and_write_nothing() {
    let Some((store, _raw)) = store_with("empty", |config| config).await else {
        return;
    };
    let bob = stream("bob");
    assert!(store
        .append(&bob, ExpectedVersion::NoStream, vec![])
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .append(&bob, ExpectedVersion::Any, vec![])
        .await
        .unwrap()
        .is_empty());
    let error = store
        .append(&bob, ExpectedVersion::Exact(3), vec![])
        .await
        .unwrap_err();
    assert_eq!(error.as_conflict().map(|c| c.actual), Some(0));
    assert_eq!(store.head_position().await.unwrap(), 0);
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_appends_in_one_transaction_commit_together() {
    let Some((store, _raw)) = store_with("transaction", |config| config).await else {
        return;
    };
    let (order, stock) = (stream("order-1"), stream("stock-1"));
    let mut transaction = store.transaction().await.unwrap();
    let placed = transaction
        .append(
            &order,
            ExpectedVersion::NoStream,
            vec![event("order.placed", 1)],
        )
        .await
        .unwrap();
    let reserved = transaction
        .append(
            &stock,
            ExpectedVersion::NoStream,
            vec![event("stock.reserved", 1), event("stock.reserved", 2)],
        )
        .await
        .unwrap();
    let more = transaction
        .append(
            &order,
            ExpectedVersion::Exact(1),
            vec![event("order.paid", 2)],
        )
        .await
        .unwrap();
    // A conflict inside the transaction is rolled back to just before it.
    let conflict = transaction
        .append(
            &order,
            ExpectedVersion::NoStream,
            vec![event("order.placed", 3)],
        )
        .await
        .unwrap_err();
    assert_eq!(conflict.as_conflict().map(|c| c.actual), Some(2));
    assert_eq!(
        store.stream_version(&order).await.unwrap(),
        0,
        "nothing visible before commit"
    );
    transaction.commit().await.unwrap();

    let positions: Vec<u64> = placed
        .iter()
        .chain(&reserved)
        .chain(&more)
        .map(|e| e.position)
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{positions:?}"
    );
    assert_eq!(store.stream_version(&order).await.unwrap(), 2);
    assert_eq!(store.stream_version(&stock).await.unwrap(), 2);
    let all = settled(&store, 1, positions.len()).await;
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committing_a_failed_transaction_is_an_error_and_writes_nothing() {
    let Some((store, _raw)) = store_with("failed_commit", |config| config).await else {
        return;
    };
    let order = stream("order-2");
    let mut transaction = store.transaction().await.unwrap();
    transaction
        .append(
            &order,
            ExpectedVersion::NoStream,
            vec![event("order.placed", 1)],
        )
        .await
        .unwrap();
    // The caller's own statement fails: PostgreSQL would answer COMMIT with a ROLLBACK.
    assert!(transaction
        .client()
        .unwrap()
        .batch_execute("SELECT 1/0")
        .await
        .is_err());
    let error = transaction.commit().await.unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error}");
    assert_eq!(store.stream_version(&order).await.unwrap(), 0);
    // The connection went back to the pool clean.
    start(&store, &order, "order.placed").await.unwrap();
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_writers_on_a_pool_of_four_get_conflicts_not_timeouts() {
    let Some((store, _raw)) = store_with("writers", |config| config.pool_size(4)).await else {
        return;
    };
    let hot = stream("hot");
    let writers = (0..32).map(|writer| {
        let (store, hot) = (store.clone(), hot.clone());
        tokio::spawn(async move {
            let (mut appended, mut conflicts) = (0, 0);
            for round in 0..5 {
                let version = store.stream_version(&hot).await?;
                match store
                    .append(
                        &hot,
                        ExpectedVersion::Exact(version),
                        vec![event("hot.hit", writer * 100 + round)],
                    )
                    .await
                {
                    Ok(_) => appended += 1,
                    Err(StoreError::Conflict(conflict)) => {
                        assert!(conflict.actual > version);
                        conflicts += 1;
                    }
                    Err(other) => return Err(other),
                }
            }
            Ok::<_, StoreError>((appended, conflicts))
        })
    });
    let mut total_appended = 0;
    let mut total_conflicts = 0;
    for writer in futures::future::join_all(writers).await {
        let (appended, conflicts) = writer.unwrap().unwrap();
        total_appended += appended;
        total_conflicts += conflicts;
    }
    assert_eq!(total_appended + total_conflicts, 160);
    assert!(total_conflicts > 0);
    assert_eq!(store.stream_version(&hot).await.unwrap(), total_appended);
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_is_a_typed_error_naming_stream_and_version() {
    let Some((store, raw)) = store_with("corrupt", |config| config).await else {
        return;
    };
    let schema = store.schema().to_owned();
    let carol = stream("carol");
    start(&store, &carol, "account.opened").await.unwrap();
    let insert =
        |position: i64, stream: &str, version: i64, schema_version: i64, metadata: &str| {
            let name = Some("account.deposited");
            insert_row(
                &schema,
                (position, version),
                stream,
                schema_version,
                name,
                metadata,
            )
        };
    // A negative schema version at version 2.
    raw.batch_execute(&insert(10, "account/carol", 2, -5, "{}"))
        .await
        .unwrap();
    let problem = |error: StoreError| match error {
        StoreError::Corrupt(record) => *record,
        other => panic!("expected a corrupt record, got {other:?}"),
    };
    let record = problem(store.read_stream(&carol, 1, 10).await.unwrap_err());
    assert_eq!(
        (record.stream.as_str(), record.version),
        ("account/carol", Some(2))
    );
    assert_eq!(record.event_name.as_deref(), Some("account.deposited"));
    assert!(matches!(
        record.problem,
        Corruption::OutOfRange {
            column: "schema_version",
            value: -5
        }
    ));
    let record = problem(store.read_stream_payloads(&carol, 1, 10).await.unwrap_err());
    assert_eq!(record.version, Some(2));

    // Bad metadata JSON, in another stream, read through read-all.
    raw.batch_execute(&insert(11, "account/dave", 1, 1, r#"{"extra": 7}"#))
        .await
        .unwrap();
    let record = problem(store.read_stream(&stream("dave"), 1, 10).await.unwrap_err());
    assert!(
        matches!(
            record.problem,
            Corruption::Unreadable {
                column: "metadata",
                ..
            }
        ),
        "{record}"
    );
    assert_eq!(
        (record.stream.as_str(), record.version),
        ("account/dave", Some(1))
    );

    // A stream key that is not `type/id`, and a negative version.
    raw.batch_execute(&insert(12, "no-separator", 1, 1, "{}"))
        .await
        .unwrap();
    raw.batch_execute(&insert(13, "account/erin", -4, 1, "{}"))
        .await
        .unwrap();
    let mut found = Vec::new();
    for position in [11, 12, 13] {
        // Read-all only returns settled positions; these raw rows have tiny positions.
        let record = problem(store.read_all(position, 1).await.unwrap_err());
        found.push((
            record.stream.clone(),
            record.version,
            format!("{:?}", record.problem),
        ));
    }
    assert!(found[0].2.starts_with("Unreadable"), "{found:?}");
    assert_eq!((found[1].0.as_str(), found[1].1), ("no-separator", Some(1)));
    assert!(found[1].2.starts_with("StreamKey"), "{found:?}");
    assert_eq!(found[2].0, "account/erin");
    assert!(found[2].2.contains("OutOfRange"), "{found:?}");

    // A NULL where a value must be: only possible once the constraint is dropped by hand.
    raw.batch_execute(&format!(
        "ALTER TABLE \"{schema}\".es_events ALTER COLUMN event_name DROP NOT NULL; {}",
        insert_row(&schema, (14, 1), "account/frank", 1, None, "{}")
    ))
    .await
    .unwrap();
    let record = problem(store.read_all(14, 1).await.unwrap_err());
    assert_eq!(
        (record.stream.as_str(), record.version),
        ("account/frank", Some(1))
    );
    assert!(
        matches!(
            record.problem,
            Corruption::Null {
                column: "event_name"
            }
        ),
        "{record}"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_does_not_break_cached_statements() {
    let Some((store, raw)) = store_with("cached_plan", |config| config.pool_size(1)).await else {
        return;
    };
    let schema = store.schema().to_owned();
    let frank = stream("frank");
    start(&store, &frank, "account.opened").await.unwrap();
    // Prepares and caches the reads and the append on the pool's only connection.
    store.read_stream(&frank, 1, 10).await.unwrap();
    store.read_all(1, 10).await.unwrap();
    store.load_snapshot(&frank).await.unwrap();
    // Changes the result type of every cached statement that returns these columns.
    raw.batch_execute(&format!(
        "ALTER TABLE \"{schema}\".es_events ALTER COLUMN event_name TYPE varchar(300);
         ALTER TABLE \"{schema}\".es_events ALTER COLUMN version TYPE integer;
         ALTER TABLE \"{schema}\".es_snapshots ALTER COLUMN state_fingerprint TYPE varchar(300)"
    ))
    .await
    .unwrap();
    let read = store.read_stream(&frank, 1, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(settled(&store, 1, 1).await.len(), 1);
    assert_eq!(store.load_snapshot(&frank).await.unwrap(), None);
    store
        .append(
            &frank,
            ExpectedVersion::Exact(1),
            vec![event("account.deposited", 2)],
        )
        .await
        .unwrap();
    assert_eq!(store.stream_version(&frank).await.unwrap(), 2);
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_schema_version_is_refused_with_a_typed_error() {
    let Some((store, raw)) = store_with("schema_version", |config| config).await else {
        return;
    };
    let schema = store.schema().to_owned();
    raw.batch_execute(&format!(
        "UPDATE \"{schema}\".es_schema_version SET version = 1"
    ))
    .await
    .unwrap();
    let error = PostgresStore::connect_with(PostgresConfig::new(url()).schema(schema.clone()))
        .await
        .unwrap_err();
    let StoreError::Backend { source, .. } = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    match source.downcast_ref::<SetupError>() {
        Some(SetupError::SchemaVersion {
            found: Some(1),
            expected: SCHEMA_VERSION,
            ..
        }) => {}
        other => panic!("expected a schema version error, got {other:?}"),
    }
    assert!(error.to_string().contains("layout version 1"), "{error}");
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_are_bounded_and_say_which_expired() {
    let Some((store, raw)) = store_with("timeouts", |config| {
        config
            .pool_size(1)
            .checkout_timeout(Duration::from_millis(200))
            .statement_timeout(Duration::from_millis(300))
    })
    .await
    else {
        return;
    };
    let schema = store.schema().to_owned();
    let grace = stream("grace");
    // The only connection is held: an operation waits for the checkout timeout.
    let transaction = store.transaction().await.unwrap();
    let error = store.stream_version(&grace).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Timeout { what: "waiting for a pooled PostgreSQL connection", after } if after == Duration::from_millis(200)),
        "{error:?}"
    );
    transaction.rollback().await.unwrap();

    // Another session holds the row the append must insert: the statement times out.
    raw.batch_execute(&format!(
        "BEGIN; {}",
        insert_row(
            &schema,
            (1, 1),
            "account/grace",
            1,
            Some("account.opened"),
            "{}"
        )
    ))
    .await
    .unwrap();
    let error = start(&store, &grace, "account.opened").await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Timeout {
                what: "a PostgreSQL statement",
                ..
            }
        ),
        "{error:?}"
    );
    raw.batch_execute("ROLLBACK").await.unwrap();
    // Nothing was written, and the connection is usable.
    assert_eq!(store.stream_version(&grace).await.unwrap(), 0);

    // A server that accepts connections and never answers: the connect timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let error = PostgresStore::connect_with(
        PostgresConfig::new(format!("postgres://postgres@127.0.0.1:{port}/test"))
            .connect_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Timeout {
                what: "connecting to PostgreSQL",
                ..
            }
        ),
        "{error:?}"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_an_append_is_outcome_unknown() {
    let application = format!("es_core_test_{}", Uuid::new_v4().simple());
    let url_with_name = format!("{}?application_name={application}", url());
    let Some((store, raw)) = store_with("outcome_unknown", |mut config| {
        config.url = url_with_name;
        config.pool_size(1)
    })
    .await
    else {
        return;
    };
    let schema = store.schema().to_owned();
    let heidi = stream("heidi");
    // Another session holds the row the append must insert, so the append waits on the
    // server; then its backend is terminated.
    raw.batch_execute(&format!(
        "BEGIN; {}",
        insert_row(
            &schema,
            (1, 1),
            "account/heidi",
            1,
            Some("account.opened"),
            "{}"
        )
    ))
    .await
    .unwrap();
    let append = tokio::spawn({
        let (store, heidi) = (store.clone(), heidi.clone());
        async move { start(&store, &heidi, "account.opened").await }
    });
    let killer = raw_second(&application).await;
    let error = append.await.unwrap().unwrap_err();
    assert!(
        matches!(error, StoreError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    raw.batch_execute("ROLLBACK").await.unwrap();
    drop(killer);
    // The dead connection left the pool; the next operation opens a new one.
    assert_eq!(store.stream_version(&heidi).await.unwrap(), 0);
    store.drop_schema().await.unwrap();
}

/// Terminates the backend of `application` once it waits on a lock.
async fn raw_second(application: &str) -> tokio_postgres::Client {
    let client = raw("outcome_unknown")
        .await
        .expect("a second raw connection");
    let terminated = until_a_row(
        &client,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND wait_event_type = 'Lock'",
        application,
        (200, Duration::from_millis(20)),
    )
    .await;
    assert!(terminated, "the append never waited on the lock");
    client
}

/// Runs `sql` (with `param` as `$1`) every `pause` until it returns a row (true), at most
/// `tries` times (false): for a test that waits for another connection to reach a state.
async fn until_a_row(
    client: &tokio_postgres::Client,
    sql: &str,
    param: &str,
    (tries, pause): (u32, Duration),
) -> bool {
    for _ in 0..tries {
        if !client.query(sql, &[&param]).await.unwrap().is_empty() {
            return true;
        }
        tokio::time::sleep(pause).await;
    }
    false
}

mod read_models;
