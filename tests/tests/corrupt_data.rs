//! Corrupt and unknown data, written around the store as a broken tool or an older or newer
//! version of the code would: malformed payloads, unknown event names, a schema version newer
//! than the code, another aggregate's event, a version gap, negative numbers. Each load is a
//! typed error naming stream, version and event name; other streams still load; nothing
//! panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use es_core::{EventStore, Repository, RepositoryError, StoreError};
use es_tests::bank::{Account, AccountError, Deposit, Open};
use es_tests::stores;

/// One kind of bad row: what to write, and what the error must say.
struct Case {
    name: &'static str,
    event_name: &'static str,
    schema_version: i64,
    payload: &'static str,
    /// Stream versions to give the bad rows (a gap is two rows).
    versions: &'static [i64],
    /// Parts the error message must contain, besides the stream.
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "wrong-shape",
        event_name: "account.deposited",
        schema_version: 1,
        payload: r#"{"amount": "a lot"}"#,
        versions: &[2],
        says: &["account.deposited", "version 2"],
    },
    Case {
        name: "unknown-name",
        event_name: "account.frozen",
        schema_version: 1,
        payload: "{}",
        versions: &[2],
        says: &["account.frozen", "version 2"],
    },
    Case {
        name: "newer-schema",
        event_name: "account.deposited",
        schema_version: 9,
        payload: r#"{"amount": 1}"#,
        versions: &[2],
        says: &["account.deposited", "schema version 9", "version 2"],
    },
    Case {
        name: "other-aggregate",
        event_name: "post.drafted",
        schema_version: 1,
        payload: r#"{"author": "x", "title": "t", "content": "c", "tags": []}"#,
        versions: &[2],
        says: &["post.drafted", "version 2"],
    },
    Case {
        name: "gap",
        event_name: "account.deposited",
        schema_version: 1,
        payload: r#"{"amount": 1}"#,
        versions: &[3],
        says: &["expected version 2, found version 3"],
    },
];

async fn check(store: Arc<dyn EventStore>, write_bad_row: impl AsyncFn(&str, &Case, i64)) {
    let accounts = Repository::<Account>::new(Arc::clone(&store)).without_cache();
    let mut checked = 0;
    for case in CASES {
        let id = format!("{}-{}", case.name, uuid::Uuid::new_v4().simple());
        accounts
            .execute(
                &id,
                Open {
                    owner: "ann".into(),
                },
            )
            .await
            .unwrap();
        for &version in case.versions {
            write_bad_row(&format!("account/{id}"), case, version).await;
        }
        let error = accounts.load(&id).await.unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(
                error,
                RepositoryError::<AccountError>::Decode(_)
                    | RepositoryError::Store(StoreError::Corrupt(_))
            ),
            "{}: a typed error, got {error:?}",
            case.name
        );
        assert!(
            text.contains(&format!("account/{id}")),
            "{}: names the stream: {text}",
            case.name
        );
        for part in case.says {
            assert!(
                text.contains(part),
                "{}: `{part}` missing from: {text}",
                case.name
            );
        }
        // A command on that stream is refused the same way, and appends nothing.
        assert!(accounts.execute(&id, Deposit { amount: 1 }).await.is_err());
        checked += 1;
    }
    // Other streams load and take commands.
    accounts
        .execute(
            &"healthy".to_owned(),
            Open {
                owner: "bob".into(),
            },
        )
        .await
        .unwrap();
    accounts
        .execute(&"healthy".to_owned(), Deposit { amount: 5 })
        .await
        .unwrap();
    assert_eq!(
        accounts
            .load(&"healthy".to_owned())
            .await
            .unwrap()
            .state
            .balance,
        5
    );
    println!("corrupt rows checked: {checked} kinds, typed errors {checked}, panics 0, other streams fine");
}

#[tokio::test]
async fn sqlite_reports_each_kind_of_bad_row() {
    let store = stores::sqlite_store().await;
    let path = store.path().to_path_buf();
    check(Arc::new(store.clone()), async |stream: &str, case: &Case, version: i64| {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute(
                "INSERT INTO es_events (stream_id, version, event_name, schema_version, recorded_at_us, event_id, correlation_id, payload)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?6)",
                rusqlite::params![
                    stream,
                    version,
                    case.event_name,
                    case.schema_version,
                    uuid::Uuid::now_v7().to_string(),
                    case.payload
                ],
            )
            .unwrap();
    })
    .await;
    stores::remove_sqlite(store);
}

#[tokio::test]
async fn sqlite_reports_malformed_json_and_a_bad_uuid() {
    let store = stores::sqlite_store().await;
    let path = store.path().to_path_buf();
    let accounts = Repository::<Account>::new(store.clone()).without_cache();
    for (label, payload, event_id) in [
        ("json", "{not json", uuid::Uuid::now_v7().to_string()),
        ("uuid", r#"{"amount": 1}"#, "not-a-uuid".to_owned()),
    ] {
        let id = format!("{label}-{}", uuid::Uuid::new_v4().simple());
        accounts
            .execute(
                &id,
                Open {
                    owner: "ann".into(),
                },
            )
            .await
            .unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO es_events (stream_id, version, event_name, schema_version, recorded_at_us, event_id, correlation_id, payload)
                 VALUES (?1, 2, 'account.deposited', 1, 0, ?2, ?2, ?3)",
                rusqlite::params![format!("account/{id}"), event_id, payload],
            )
            .unwrap();
        // A load reads only what replay needs (not the ids); the history reads the whole row.
        let text = match label {
            "json" => accounts.load(&id).await.unwrap_err().to_string(),
            _ => accounts.history(&id).await.unwrap_err().to_string(),
        };
        assert!(
            text.contains(&format!("account/{id}"))
                && text.contains("version 2")
                && text.contains("account.deposited"),
            "{label}: {text}"
        );
    }
    stores::remove_sqlite(store);
}

#[tokio::test]
async fn postgres_reports_each_kind_of_bad_row_and_negative_numbers() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let url = stores::postgres_url().await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    let schema = store.schema().to_owned();
    let insert = format!(
        "INSERT INTO \"{schema}\".es_events (position, version, schema_version, event_id, stream_id, event_name, payload, metadata)
         VALUES ((SELECT coalesce(max(position), 0) + 1 FROM \"{schema}\".es_events), $1, $2, gen_random_uuid(), $3, $4, $5::text::json, '{{}}')"
    );
    check(
        Arc::new(store.clone()),
        async |stream: &str, case: &Case, version: i64| {
            client
                .execute(
                    &insert,
                    &[
                        &version,
                        &(case.schema_version as i32),
                        &stream,
                        &case.event_name,
                        &case.payload,
                    ],
                )
                .await
                .unwrap();
        },
    )
    .await;
    // A negative schema version, as only a hand-edited row can hold.
    let accounts = Repository::<Account>::new(store.clone()).without_cache();
    accounts
        .execute(
            &"negative".to_owned(),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    client
        .execute(
            &insert,
            &[
                &2i64,
                &-5i32,
                &"account/negative",
                &"account.deposited",
                &r#"{"amount": 1}"#,
            ],
        )
        .await
        .unwrap();
    let error = accounts.load(&"negative".to_owned()).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, RepositoryError::Store(StoreError::Corrupt(_))),
        "{error:?}"
    );
    assert!(
        text.contains("account/negative") && text.contains("version 2") && text.contains("-5"),
        "{text}"
    );
    store.drop_schema().await.unwrap();
}
