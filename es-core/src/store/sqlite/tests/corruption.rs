//! Rows the store would never write are named, never clamped, by every read path.

use std::path::Path;

use rusqlite::Connection;
use uuid::Uuid;

use super::{corruption, events, fresh_store, raw, stream};
use crate::error::Corruption;
use crate::sqlite::decode;
use crate::store::{EventLog, ExpectedVersion};

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
    let (dir, store) = fresh_store("corrupt").await;
    let path = dir.store_path();
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
        let (dir, store) = fresh_store("corrupt-case").await;
        let path = dir.store_path();
        insert_raw(&path, stream_id, 1, column, value);
        let record = corruption(store.read_all(1, 10).await);
        assert_eq!(record.stream, stream_id);
        assert_eq!(record.version, Some(1), "{record}");
        assert_eq!(record.event_name.as_deref(), Some("post.published"));
        assert!(expected(&record.problem), "{stream_id}: {record}");
    }

    // A negative version: never read as 0, not even by the cheap version lookups.
    let (dir, store) = fresh_store("corrupt-version").await;
    let path = dir.store_path();
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
                '00000000-0000-0000-0000-000000000002', NULL, NULL, '{}', NULL";
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
