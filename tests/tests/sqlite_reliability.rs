//! SQLite behaviour beyond the conformance suite: state kept across reopening, the
//! append-only table, corrupt rows, files from newer code, paths that cannot be opened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use es_core::sqlite::SqliteStore;
use es_core::testing::event;
use es_core::{CorruptRecord, EventLog, ExpectedVersion, StoreError, StreamId};

fn fresh_path(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-reliability");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{label}-{}.db", uuid::Uuid::new_v4().simple()))
}

fn stream(id: &str) -> StreamId {
    StreamId::new("test", id).unwrap()
}

#[tokio::test]
async fn a_reopened_store_has_everything_the_first_wrote() {
    let path = fresh_path("reopen");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .append(
                &stream("s"),
                ExpectedVersion::NoStream,
                vec![event("test.one", 1), event("test.two", 2)],
            )
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.stream_version(&stream("s")).await.unwrap(), 2);
    let next = store
        .append(
            &stream("s"),
            ExpectedVersion::Exact(2),
            vec![event("test.three", 3)],
        )
        .await
        .unwrap();
    assert_eq!((next[0].version, next[0].position), (3, 3));
}

#[tokio::test]
async fn the_events_table_refuses_update_and_delete() {
    let path = fresh_path("append-only");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append(
            &stream("s"),
            ExpectedVersion::NoStream,
            vec![event("test.kept", 1)],
        )
        .await
        .unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    for statement in [
        "UPDATE es_events SET event_name = 'changed'",
        "DELETE FROM es_events",
    ] {
        let error = connection.execute(statement, []).unwrap_err().to_string();
        assert!(
            error.contains("es_events is append-only"),
            "{statement}: {error}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_stream_version_and_event_and_stops_nothing_else() {
    let path = fresh_path("corrupt");
    let store = SqliteStore::open(&path).await.unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute(
            "INSERT INTO es_events (stream_id, version, event_name, schema_version, recorded_at_us, event_id, correlation_id, payload)
             VALUES ('post/3', 1, 'post.drafted', 1, 0, 'not-a-uuid', 'also-not', '{}')",
            [],
        )
        .unwrap();
    let post = StreamId::new("post", "3").unwrap();
    match store.read_stream(&post, 1, 10).await {
        Err(StoreError::Corrupt(corrupt)) => {
            let CorruptRecord {
                stream,
                version,
                event_name,
                ..
            } = &*corrupt;
            assert_eq!(
                (stream.as_str(), *version, event_name.as_deref()),
                ("post/3", Some(1), Some("post.drafted"))
            );
            assert!(corrupt.to_string().contains("event_id"), "{corrupt}");
        }
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }
    store
        .append(
            &stream("fine"),
            ExpectedVersion::NoStream,
            vec![event("test.ok", 1)],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .read_stream(&stream("fine"), 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_file_from_newer_code_is_refused_with_a_clear_error() {
    let path = fresh_path("newer");
    drop(SqliteStore::open(&path).await.unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let error = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(
        error.contains("layout 99, newer than layout") && error.contains("upgrade es-core"),
        "{error}"
    );
}

#[tokio::test]
async fn a_path_that_cannot_be_opened_is_a_clear_error() {
    let error = SqliteStore::open("/nonexistent-directory/blog.db")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent-directory/blog.db"), "{error}");
}
