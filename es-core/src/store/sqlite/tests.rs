//! What a user of the SQLite store relies on: odd text round-trips, conflicts say why,
//! versions are gapless under concurrent writers, corrupt rows are named not clamped, files
//! of another layout are refused, and any number of openers may create a file at once.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)] // failed assertions are the point

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use chrono::{TimeZone, Utc};
use rusqlite::Connection;
use uuid::Uuid;

use super::{decode, read, LayoutError, SqliteStore};
use crate::envelope::{Metadata, NewEvent, Payload, RecordedEvent};
use crate::error::{Corruption, StoreError};
use crate::store::{EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload};
use crate::stream::StreamId;

/// A directory of its own per test, removed with everything SQLite put in it (-wal, -shm).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "es-core-sqlite-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stream(aggregate_type: &str, aggregate_id: &str) -> StreamId {
    StreamId::new(aggregate_type, aggregate_id).unwrap()
}

fn event(name: &str, payload: &str) -> NewEvent {
    NewEvent {
        event_name: name.into(),
        schema_version: 1,
        metadata: Metadata::new(Uuid::now_v7()),
        payload: Payload::from_json_text(payload),
    }
}

fn events(count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|n| event("test.happened", &format!("{{\"n\":{n}}}")))
        .collect()
}

/// A raw connection, to write what the store never would.
fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn corruption(result: Result<impl std::fmt::Debug, StoreError>) -> crate::CorruptRecord {
    match result {
        Err(StoreError::Corrupt(record)) => *record,
        other => panic!("expected a corrupt record error, got {other:?}"),
    }
}

fn layout_error(result: Result<SqliteStore, StoreError>) -> LayoutError {
    match result {
        Err(StoreError::Backend { source, .. }) => match source.downcast::<LayoutError>() {
            Ok(layout) => *layout,
            Err(other) => panic!("expected a layout error, got {other}"),
        },
        other => panic!("expected a layout error, got {other:?}"),
    }
}

#[tokio::test]
async fn odd_text_round_trips_through_every_read() {
    let dir = TempDir::new("odd-text");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let streams = [
        stream("post", "42"),
        stream("order.line-item_v2", "a/b/c"),
        stream("x", "'; DROP TABLE es_events; --"),
        stream("x", "日本語 🦀 \"quoted\" \\ back\nnew line\ttab"),
        stream("y", &"é".repeat(crate::limits::MAX_AGGREGATE_ID_BYTES / 2)),
    ];
    let mut appended: Vec<RecordedEvent> = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let mut odd = event(
            "名前.changed 🦀",
            r#"{"text":"\u0000 ünïcødé 🦀 \"q\" \\","n":-1.5e300,"nested":{"a":[null,true]}}"#,
        );
        odd.metadata.causation_id = Some(Uuid::now_v7());
        odd.metadata.extra = BTreeMap::from([
            ("user".to_owned(), "ada ✓".to_owned()),
            ("quote\"key".to_owned(), "line\nbreak".to_owned()),
            (String::new(), String::new()),
        ]);
        let plain = event("plain", "{}");
        let recorded = store
            .append(stream, ExpectedVersion::NoStream, vec![odd.clone(), plain])
            .await
            .unwrap();
        assert_eq!(recorded.len(), 2, "stream {index}");
        assert_eq!(recorded[0].metadata, odd.metadata);
        assert_eq!(recorded[0].event, odd.payload);
        appended.extend(recorded);
    }

    // Reopened: nothing depends on what the writer connection remembers.
    drop(store);
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    for stream in &streams {
        let expected: Vec<_> = appended
            .iter()
            .filter(|event| &event.stream == stream)
            .cloned()
            .collect();
        assert_eq!(store.read_stream(stream, 1, 100).await.unwrap(), expected);
        assert_eq!(
            store.read_stream_payloads(stream, 1, 100).await.unwrap(),
            expected
                .iter()
                .cloned()
                .map(StoredPayload::from)
                .collect::<Vec<_>>()
        );
        assert_eq!(store.stream_version(stream).await.unwrap(), 2);
    }
    assert_eq!(store.read_all(1, 100).await.unwrap(), appended);
    assert_eq!(
        store.read_aggregate_type("x", 1, 100).await.unwrap(),
        appended
            .iter()
            .filter(|event| event.aggregate_type() == "x")
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        store.head_position().await.unwrap(),
        appended.last().unwrap().position
    );
}

#[tokio::test]
async fn a_wrong_expectation_is_a_conflict_and_writes_nothing() {
    let dir = TempDir::new("conflict");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let post = stream("post", "1");
    assert!(store
        .append(&post, ExpectedVersion::Exact(0), vec![])
        .await
        .unwrap()
        .is_empty());
    store
        .append(&post, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();

    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(1)] {
        for batch in [events(3), vec![]] {
            let error = store
                .append(&post, expected, batch)
                .await
                .expect_err("the stream is at version 2");
            let conflict = error.as_conflict().expect("a conflict");
            assert_eq!(
                (&conflict.stream, conflict.expected, conflict.actual),
                (&post, expected, 2)
            );
        }
    }
    assert_eq!(store.stream_version(&post).await.unwrap(), 2);
    assert_eq!(store.head_position().await.unwrap(), 2);

    // A satisfied expectation with nothing to append is a no-op, not an error.
    assert!(store
        .append(&post, ExpectedVersion::Exact(2), vec![])
        .await
        .unwrap()
        .is_empty());
    let next = store
        .append(&post, ExpectedVersion::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!((next[0].version, next[0].position), (3, 3));
}

#[tokio::test]
async fn refuses_what_the_limits_refuse_before_writing() {
    let dir = TempDir::new("limits");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let post = stream("post", "1");
    let error = store
        .append(&post, ExpectedVersion::Any, vec![event("", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Refused { .. }), "{error:?}");
    assert_eq!(store.head_position().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_stay_gapless_with_writers_racing_on_one_file() {
    let dir = TempDir::new("gapless");
    let path = dir.file("store.db");
    let counter = stream("counter", "shared");
    // Four stores on one file stand for four processes: only SQLite's lock orders them.
    let mut writers = Vec::new();
    for writer in 0..4 {
        let store = SqliteStore::open(&path).await.unwrap();
        let counter = counter.clone();
        writers.push(tokio::spawn(async move {
            let mut written = 0;
            for round in 0..20 {
                let count = 1 + (writer + round) % 3;
                store
                    .append(&counter, ExpectedVersion::Any, events(count))
                    .await
                    .unwrap();
                written += count as u64;
            }
            written
        }));
    }
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let read = store.read_stream(&counter, 1, 10_000).await.unwrap();
    let versions: Vec<u64> = read.iter().map(|event| event.version).collect();
    assert_eq!(versions, (1..=total).collect::<Vec<_>>());
    assert!(read
        .windows(2)
        .all(|pair| pair[0].position < pair[1].position));
    assert_eq!(store.stream_version(&counter).await.unwrap(), total);
    assert_eq!(store.read_all(1, 10_000).await.unwrap(), read);

    // Windows of a stream.
    let window = store.read_stream(&counter, 3, 2).await.unwrap();
    assert_eq!(
        window.iter().map(|event| event.version).collect::<Vec<_>>(),
        [3, 4]
    );
    assert!(store.read_stream(&counter, 1, 0).await.unwrap().is_empty());
    assert!(store
        .read_stream(&counter, u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.read_all(u64::MAX, 10).await.unwrap().is_empty());
}

#[test]
fn eight_threads_can_open_one_new_file_at_once() {
    for round in 0..5 {
        let dir = TempDir::new("concurrent-open");
        let path = Arc::new(dir.file("store.db"));
        let openers = 8;
        let barrier = Arc::new(Barrier::new(openers));
        let threads: Vec<_> = (0..openers)
            .map(|opener| {
                let path = Arc::clone(&path);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        barrier.wait();
                        let store = SqliteStore::open(&*path).await?;
                        let own = stream("opener", &opener.to_string());
                        store
                            .append(&own, ExpectedVersion::NoStream, events(1))
                            .await
                    })
                })
            })
            .collect();
        for (opener, thread) in threads.into_iter().enumerate() {
            let result = thread.join().expect("the opener thread panicked");
            assert!(
                result.is_ok(),
                "round {round}, opener {opener}: {:?}",
                result.err()
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = SqliteStore::open(&*path).await.unwrap();
            assert_eq!(store.head_position().await.unwrap(), openers as u64);
            let journal_mode: String = raw(&path)
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .unwrap();
            assert_eq!(journal_mode, "wal", "round {round}");
            assert_eq!(
                store
                    .read_aggregate_type("opener", 1, 100)
                    .await
                    .unwrap()
                    .len(),
                openers
            );
        });
    }
}

#[tokio::test]
async fn reading_by_aggregate_type_seeks_an_index_in_position_order() {
    let dir = TempDir::new("aggregate-type");
    let path = dir.file("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    // `post` is a prefix of `posting`: the split is at the '/', not a LIKE.
    for (aggregate_type, id) in [
        ("post", "1"),
        ("posting", "1"),
        ("post", "2"),
        ("user", "1"),
    ] {
        store
            .append(&stream(aggregate_type, id), ExpectedVersion::Any, events(2))
            .await
            .unwrap();
    }
    let posts = store.read_aggregate_type("post", 1, 100).await.unwrap();
    assert_eq!(
        posts
            .iter()
            .map(|event| (event.stream.as_str(), event.position))
            .collect::<Vec<_>>(),
        [("post/1", 1), ("post/1", 2), ("post/2", 5), ("post/2", 6)]
    );
    let page = store.read_aggregate_type("post", 2, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|event| event.position).collect::<Vec<_>>(),
        [2, 5]
    );
    assert!(store
        .read_aggregate_type("nothing", 1, 100)
        .await
        .unwrap()
        .is_empty());

    let connection = raw(&path);
    let mut plan = connection
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            read::aggregate_type_sql()
        ))
        .unwrap();
    let details: Vec<String> = plan
        .query_map(rusqlite::params!["post", 1, 100], |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = details.join("; ");
    assert!(
        plan.contains("SEARCH es_events USING INDEX es_events_by_aggregate_type"),
        "{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "sorts instead of walking: {plan}"
    );
}

/// Inserts an event row the store would never write, bypassing the CHECK constraints the
/// way another tool editing the file could.
fn insert_raw(
    path: &Path,
    stream_id: &str,
    version: i64,
    column: &str,
    value: rusqlite::types::Value,
) {
    let connection = raw(path);
    connection
        .execute_batch("PRAGMA ignore_check_constraints = ON")
        .unwrap();
    let mut row: Vec<(&str, rusqlite::types::Value)> = vec![
        ("stream_id", stream_id.to_owned().into()),
        ("version", version.into()),
        ("event_name", "post.published".to_owned().into()),
        ("schema_version", 1_i64.into()),
        ("recorded_at_us", 1_700_000_000_000_000_i64.into()),
        ("event_id", Uuid::now_v7().to_string().into()),
        ("correlation_id", Uuid::now_v7().to_string().into()),
        ("payload", "{}".to_owned().into()),
    ];
    match row.iter_mut().find(|(name, _)| *name == column) {
        Some(slot) => slot.1 = value,
        None => row.push((column, value)),
    }
    let columns: Vec<&str> = row.iter().map(|(name, _)| *name).collect();
    let placeholders: Vec<String> = (1..=row.len()).map(|n| format!("?{n}")).collect();
    connection
        .execute(
            &format!(
                "INSERT INTO es_events ({}) VALUES ({})",
                columns.join(", "),
                placeholders.join(", ")
            ),
            rusqlite::params_from_iter(row.into_iter().map(|(_, value)| value)),
        )
        .unwrap();
}

#[tokio::test]
async fn a_corrupt_row_is_named_by_every_read_never_clamped() {
    use rusqlite::types::Value;
    let dir = TempDir::new("corrupt");
    let path = dir.file("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let post = stream("post", "1");
    store
        .append(&post, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();

    // A time no calendar holds: read_stream, read-all and replay all refuse it.
    insert_raw(
        &path,
        "post/1",
        2,
        "recorded_at_us",
        Value::Integer(i64::MAX),
    );
    for record in [
        corruption(store.read_stream(&post, 1, 10).await),
        corruption(store.read_all(1, 10).await),
        corruption(store.read_stream_payloads(&post, 1, 10).await),
        corruption(store.read_aggregate_type("post", 1, 10).await),
    ] {
        assert_eq!(record.stream, "post/1");
        assert_eq!(record.version, Some(2));
        assert_eq!(record.event_name.as_deref(), Some("post.published"));
        assert!(
            matches!(
                record.problem,
                Corruption::OutOfRange {
                    column: "recorded_at_us",
                    value: i64::MAX
                }
            ),
            "{record}"
        );
    }
    // The good event before it still reads.
    assert_eq!(store.read_stream(&post, 1, 1).await.unwrap().len(), 1);

    // (stream key, column, what to store in it, the problem the read must report)
    type Case = (&'static str, &'static str, Value, fn(&Corruption) -> bool);
    let cases: Vec<Case> = vec![
        (
            "bad/uuid",
            "event_id",
            Value::Text("not-a-uuid".into()),
            |problem| {
                matches!(
                    problem,
                    Corruption::Unreadable {
                        column: "event_id",
                        ..
                    }
                )
            },
        ),
        (
            "bad/causation",
            "causation_id",
            Value::Text("nope".into()),
            |problem| {
                matches!(
                    problem,
                    Corruption::Unreadable {
                        column: "causation_id",
                        ..
                    }
                )
            },
        ),
        (
            "bad/metadata",
            "extra",
            Value::Text(r#"{"n": 1}"#.into()),
            |problem| {
                matches!(
                    problem,
                    Corruption::Unreadable {
                        column: "extra",
                        ..
                    }
                )
            },
        ),
        (
            "bad/schema",
            "schema_version",
            Value::Integer(-1),
            |problem| {
                matches!(
                    problem,
                    Corruption::OutOfRange {
                        column: "schema_version",
                        value: -1
                    }
                )
            },
        ),
        (
            "Bad Type/1",
            "payload",
            Value::Text("{}".into()),
            |problem| matches!(problem, Corruption::StreamKey(_)),
        ),
    ];
    for (stream_id, column, value, expected) in cases {
        let dir = TempDir::new("corrupt-case");
        let path = dir.file("store.db");
        let store = SqliteStore::open(&path).await.unwrap();
        insert_raw(&path, stream_id, 1, column, value);
        let record = corruption(store.read_all(1, 10).await);
        assert_eq!(record.stream, stream_id);
        assert_eq!(record.version, Some(1), "{record}");
        assert_eq!(record.event_name.as_deref(), Some("post.published"));
        assert!(expected(&record.problem), "{stream_id}: {record}");
    }

    // A negative version: never read as 0, not even by the cheap version lookups.
    let dir = TempDir::new("corrupt-version");
    let path = dir.file("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    insert_raw(&path, "post/1", -3, "payload", Value::Text("{}".into()));
    for record in [
        corruption(store.read_all(1, 10).await),
        corruption(store.stream_version(&post).await),
        corruption(store.head_position().await),
        corruption(store.append(&post, ExpectedVersion::Any, events(1)).await),
    ] {
        assert_eq!((record.stream.as_str(), record.version), ("post/1", None));
        assert!(
            matches!(
                record.problem,
                Corruption::OutOfRange {
                    column: "version",
                    value: -3
                }
            ),
            "{record}"
        );
    }
}

#[test]
fn the_decoder_refuses_nulls_and_wrong_types() {
    // Rows SQLite's STRICT tables would refuse, made up in a SELECT: the decoder must not
    // rely on the table to have refused them.
    let connection = Connection::open_in_memory().unwrap();
    let decode = |columns: &str| {
        connection
            .query_row(&format!("SELECT {columns}"), [], |row| {
                Ok(decode::Decoder::default().event(row))
            })
            .unwrap()
    };
    let good = "1, 'post/1', 1, 'e', 1, 0, '00000000-0000-0000-0000-000000000001', \
                '00000000-0000-0000-0000-000000000002', NULL, NULL, '{}'";
    decode(good).unwrap();

    let null_schema = good.replacen(", 1, 0,", ", NULL, 0,", 1);
    let record = corruption(decode(&null_schema));
    assert!(matches!(
        record.problem,
        Corruption::Null {
            column: "schema_version"
        }
    ));
    assert_eq!(record.version, Some(1));

    let text_version = good.replacen("'post/1', 1,", "'post/1', 'one',", 1);
    let record = corruption(decode(&text_version));
    assert!(matches!(
        record.problem,
        Corruption::Unreadable {
            column: "version",
            ..
        }
    ));
    assert_eq!(record.version, None);

    let real_position = good.replacen("1,", "1.5,", 1);
    let record = corruption(decode(&real_position));
    assert!(matches!(
        record.problem,
        Corruption::Unreadable {
            column: "position",
            ..
        }
    ));

    let null_stream = good.replacen("'post/1'", "NULL", 1);
    let record = corruption(decode(&null_stream));
    assert!(matches!(
        record.problem,
        Corruption::Null {
            column: "stream_id"
        }
    ));
    assert_eq!(record.stream, "<unreadable stream key at position 1>");
    assert_eq!(record.event_name.as_deref(), Some("e"));

    let blob_payload = good.replacen("'{}'", "x'7b7d'", 1);
    let record = corruption(decode(&blob_payload));
    assert!(matches!(
        record.problem,
        Corruption::Unreadable {
            column: "payload",
            ..
        }
    ));

    let huge_schema = good.replacen(", 1, 0,", ", 4294967296, 0,", 1);
    let record = corruption(decode(&huge_schema));
    assert!(matches!(
        record.problem,
        Corruption::OutOfRange {
            column: "schema_version",
            value: 4_294_967_296
        }
    ));
}

#[tokio::test]
async fn snapshots_keep_the_latest_and_refuse_a_corrupt_one() {
    let dir = TempDir::new("snapshots");
    let path = dir.file("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let post = stream("post", "a/b ✓");
    let snapshot = |version: u64, state: &str| Snapshot {
        stream: post.clone(),
        version,
        state_fingerprint: "fp:v1".to_owned(),
        state: Payload::from_json_text(state),
        taken_at: Utc.timestamp_micros(1_700_000_000_123_456).unwrap(),
    };
    assert_eq!(store.load_snapshot(&post).await.unwrap(), None);
    store
        .save_snapshot(snapshot(3, r#"{"n":3}"#))
        .await
        .unwrap();
    store
        .save_snapshot(snapshot(2, r#"{"n":2}"#))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot(&post).await.unwrap(),
        Some(snapshot(3, r#"{"n":3}"#))
    );
    store
        .save_snapshot(snapshot(5, r#"{"n":5}"#))
        .await
        .unwrap();
    assert_eq!(
        store.load_snapshot(&post).await.unwrap(),
        Some(snapshot(5, r#"{"n":5}"#))
    );
    assert_eq!(
        store.load_snapshot(&stream("post", "other")).await.unwrap(),
        None
    );
    assert!(store.save_snapshot(snapshot(u64::MAX, "{}")).await.is_err());

    let other = stream("post", "corrupt");
    raw(&path)
        .execute(
            "INSERT INTO es_snapshots VALUES (?1, 4, 'fp', '{}', ?2)",
            rusqlite::params![other.as_str(), i64::MIN],
        )
        .unwrap();
    let record = corruption(store.load_snapshot(&other).await);
    assert_eq!(
        (record.stream.as_str(), record.version),
        ("post/corrupt", Some(4))
    );
    assert!(matches!(
        record.problem,
        Corruption::OutOfRange {
            column: "taken_at_us",
            ..
        }
    ));
}

#[tokio::test]
async fn a_file_of_another_layout_is_refused_not_read() {
    let dir = TempDir::new("layout");

    let foreign = dir.file("foreign.db");
    raw(&foreign)
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    assert!(matches!(
        layout_error(SqliteStore::open(&foreign).await),
        LayoutError::Foreign {
            application_id: 0,
            user_version: 0,
            tables: 1
        }
    ));

    // What the unreleased es-core wrote: user_version 1, like layout 1, but no application id.
    let unreleased = dir.file("unreleased.db");
    raw(&unreleased)
        .execute_batch(
            "CREATE TABLE es_events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL); \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    assert!(matches!(
        layout_error(SqliteStore::open(&unreleased).await),
        LayoutError::Foreign {
            user_version: 1,
            ..
        }
    ));

    let newer = dir.file("newer.db");
    drop(SqliteStore::open(&newer).await.unwrap());
    raw(&newer)
        .execute_batch("PRAGMA user_version = 2")
        .unwrap();
    assert!(matches!(
        layout_error(SqliteStore::open(&newer).await),
        LayoutError::Newer {
            found: 2,
            supported: 1
        }
    ));

    // The refusals wrote nothing: the foreign file is as it was.
    let tables: i64 = raw(&foreign)
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}
