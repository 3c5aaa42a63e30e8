//! Appends and reads: round trips, conflicts, limits, gapless versions, reading by type,
//! snapshots.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::{corruption, event, events, fresh_store, raw, stream, TempDir};
use crate::envelope::{Payload, RecordedEvent};
use crate::error::{Corruption, StoreError};
use crate::sqlite::{read, SqliteStore};
use crate::store::{EventLog, ExpectedVersion, Snapshot, SnapshotStore, StoredPayload};

#[tokio::test]
async fn odd_text_round_trips_through_every_read() {
    let (dir, store) = fresh_store("odd-text").await;
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
    let store = SqliteStore::open(dir.store_path()).await.unwrap();
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
    let (_dir, store) = fresh_store("conflict").await;
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
    let (_dir, store) = fresh_store("limits").await;
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

#[tokio::test]
async fn reading_by_aggregate_type_seeks_an_index_in_position_order() {
    let (dir, store) = fresh_store("aggregate-type").await;
    let path = dir.store_path();
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
        .query_map(rusqlite::params![1, 100, "post"], |row| row.get(3))
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

#[tokio::test]
async fn snapshots_keep_the_latest_and_refuse_a_corrupt_one() {
    let (dir, store) = fresh_store("snapshots").await;
    let path = dir.store_path();
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
