//! The read side: batches commit whole or not at all, checkpoints move by compare-and-set,
//! promotion retires old tables, filtered pages seek an index, leases expire, dead letters
//! are kept, and appends wake a daemon.

use std::time::Duration;

use chrono::Utc;

use super::{events, raw, stream, TempDir};
use crate::envelope::Payload;
use crate::error::StoreError;
use crate::read::{
    DeadLetter, DocumentTable, DocumentWrite, GenerationStatus, ListQuery, ReadStore, Stopped,
};
use crate::sqlite::{read_models::documents, schema, SqliteStore};
use crate::store::{EventLog, ExpectedVersion};

fn posts(generation: u32) -> DocumentTable {
    DocumentTable {
        projection: "posts".to_owned(),
        generation,
        indexes: vec!["author".to_owned(), "tag".to_owned()],
    }
}

fn put(key: &str, author: &str, tag: Option<&str>) -> DocumentWrite {
    DocumentWrite {
        key: key.to_owned(),
        body: Some(Payload::from_json_text(format!(
            r#"{{"key":"{key}","author":"{author}"}}"#
        ))),
        index_values: vec![Some(author.to_owned()), tag.map(str::to_owned)],
    }
}

fn letter(position: u64) -> DeadLetter {
    DeadLetter {
        projection: "posts".to_owned(),
        position,
        stream: stream("post", &position.to_string()),
        version: 3,
        event_name: "post.published".to_owned(),
        error: format!("no title at {position}"),
        // Stored in microseconds: a value already truncated reads back equal.
        failed_at: chrono::TimeZone::timestamp_micros(&Utc, 1_700_000_000_123_456).unwrap(),
    }
}

async fn checkpoint(store: &SqliteStore, table: &DocumentTable) -> Option<u64> {
    store
        .generations(&table.projection)
        .await
        .unwrap()
        .into_iter()
        .find(|state| state.generation == table.generation)
        .map(|state| state.checkpoint)
}

fn keys(rows: &[crate::read::DocumentRow]) -> Vec<&str> {
    rows.iter().map(|row| row.key.as_str()).collect()
}

#[tokio::test]
async fn a_moved_checkpoint_refuses_the_whole_batch() {
    let dir = TempDir::new("cas");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let table = posts(1);
    store.create_generation(&table, "v1").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.write(&table, vec![put("a", "ann", None)]).await.unwrap();
    tx.advance(&table, 1, 5).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(checkpoint(&store, &table).await, Some(5));

    // A second worker that read the checkpoint at 1 loses, and its documents with it, even
    // when it ignores the refusal and commits anyway.
    let mut tx = store.begin().await.unwrap();
    tx.write(&table, vec![put("b", "bob", None)]).await.unwrap();
    match tx.advance(&table, 1, 7).await {
        Err(StoreError::CheckpointMoved {
            expected: 1,
            actual: Some(5),
            ..
        }) => {}
        other => panic!("expected the checkpoint to have moved to 5, got {other:?}"),
    }
    assert!(matches!(
        tx.commit().await,
        Err(StoreError::CheckpointMoved { .. })
    ));
    assert_eq!(checkpoint(&store, &table).await, Some(5));
    assert!(store.get_document(&table, "b").await.unwrap().is_none());

    // A generation that is gone has no checkpoint at all.
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.advance(&posts(9), 1, 2).await,
        Err(StoreError::CheckpointMoved { actual: None, .. })
    ));
}

#[tokio::test]
async fn a_batch_dropped_uncommitted_leaves_nothing_and_frees_the_writer() {
    let dir = TempDir::new("rollback");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let table = posts(1);
    store.create_generation(&table, "v1").await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.write(&table, vec![put("a", "ann", Some("rust"))])
        .await
        .unwrap();
    // Inside the batch, its own writes are visible.
    assert_eq!(
        keys(&tx.load(&table, &["a".to_owned()]).await.unwrap()),
        ["a"]
    );
    tx.advance(&table, 1, 9).await.unwrap();
    tx.set_stopped(
        &table,
        Some(&Stopped {
            position: 8,
            error: "boom".to_owned(),
        }),
    )
    .await
    .unwrap();
    tx.add_dead_letter(&letter(4)).await.unwrap();
    // Outside it, nothing is visible before the commit.
    assert!(store.get_document(&table, "a").await.unwrap().is_none());
    drop(tx);

    // The next writer gets the connection back, with nothing of the batch in the file.
    store
        .append(&stream("post", "1"), ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    assert!(store.get_document(&table, "a").await.unwrap().is_none());
    assert!(store.dead_letters("posts").await.unwrap().is_empty());
    let state = &store.generations("posts").await.unwrap()[0];
    assert_eq!((state.checkpoint, &state.stopped), (1, &None));
}

#[tokio::test]
async fn a_committed_batch_keeps_documents_stop_record_and_deletes() {
    let dir = TempDir::new("commit");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let table = posts(1);
    let created = store.create_generation(&table, "v1").await.unwrap();
    assert_eq!(
        (created.checkpoint, created.status),
        (1, GenerationStatus::Live)
    );
    // Creating it again changes nothing.
    assert_eq!(
        store.create_generation(&table, "v2").await.unwrap(),
        created
    );

    let stopped = Stopped {
        position: 3,
        error: "event `x` at position 3: boom".to_owned(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.write(&table, vec![put("a", "ann", None), put("b", "bob", None)])
        .await
        .unwrap();
    tx.set_stopped(&table, Some(&stopped)).await.unwrap();
    tx.commit().await.unwrap();
    let document = store.get_document(&table, "a").await.unwrap().unwrap();
    assert_eq!(document.body.as_str(), r#"{"key":"a","author":"ann"}"#);
    assert_eq!(
        store.generations("posts").await.unwrap()[0].stopped,
        Some(stopped)
    );

    let mut tx = store.begin().await.unwrap();
    let delete = DocumentWrite {
        key: "a".to_owned(),
        body: None,
        index_values: Vec::new(),
    };
    tx.write(&table, vec![delete]).await.unwrap();
    tx.set_stopped(&table, None).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.get_document(&table, "a").await.unwrap().is_none());
    assert!(store.get_document(&table, "b").await.unwrap().is_some());
    assert_eq!(store.generations("posts").await.unwrap()[0].stopped, None);
}

#[tokio::test]
async fn promotion_makes_the_rebuild_live_and_drops_the_old_table() {
    let dir = TempDir::new("promote");
    let path = dir.file("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (old, new) = (posts(1), posts(2));
    store.create_generation(&old, "v1").await.unwrap();
    let building = store.create_generation(&new, "v2").await.unwrap();
    assert_eq!(building.status, GenerationStatus::Building);
    let mut tx = store.begin().await.unwrap();
    tx.write(&old, vec![put("old", "ann", None)]).await.unwrap();
    tx.write(&new, vec![put("new", "ann", None)]).await.unwrap();
    tx.commit().await.unwrap();

    store.promote(&new).await.unwrap();

    let generations = store.generations("posts").await.unwrap();
    assert_eq!(generations.len(), 1);
    assert_eq!(
        (generations[0].generation, generations[0].status),
        (2, GenerationStatus::Live)
    );
    let tables: Vec<String> = raw(&path)
        .prepare(
            "SELECT name FROM sqlite_master WHERE name LIKE 'es_doc_posts_%' AND type = 'table'",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["es_doc_posts_2"]);
    // The dropped generation reads as a projection not yet started, not as an error.
    assert!(store.get_document(&old, "old").await.unwrap().is_none());
    assert!(store.get_document(&new, "new").await.unwrap().is_some());
    // Promoting a generation someone else already retired is refused.
    assert!(matches!(
        store.promote(&old).await,
        Err(StoreError::CheckpointMoved { actual: None, .. })
    ));
}

#[tokio::test]
async fn lists_pages_filtered_on_an_index_after_a_cursor() {
    let dir = TempDir::new("list");
    let path = dir.file("store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let table = posts(1);
    let page = |filter: Option<(usize, &str)>, after: Option<&str>, limit| ListQuery {
        filter: filter.map(|(index, value)| (index, value.to_owned())),
        after: after.map(str::to_owned),
        limit,
        order: None,
    };
    // Not started yet: empty, not an error.
    assert!(store
        .list_documents(&table, &page(None, None, 10))
        .await
        .unwrap()
        .is_empty());

    store.create_generation(&table, "v1").await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.write(
        &table,
        vec![
            put("d", "ann", Some("rust")),
            put("a", "ann", None),
            put("c", "bob", Some("rust")),
            put("b", "ann", Some("sql")),
            put("e", "ann", Some("rust")),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let all = store
        .list_documents(&table, &page(None, None, 10))
        .await
        .unwrap();
    assert_eq!(keys(&all), ["a", "b", "c", "d", "e"]);
    let first = store
        .list_documents(&table, &page(Some((0, "ann")), None, 2))
        .await
        .unwrap();
    assert_eq!(keys(&first), ["a", "b"]);
    let second = store
        .list_documents(&table, &page(Some((0, "ann")), Some("b"), 2))
        .await
        .unwrap();
    assert_eq!(keys(&second), ["d", "e"]);
    let rust = store
        .list_documents(&table, &page(Some((1, "rust")), Some("c"), 10))
        .await
        .unwrap();
    assert_eq!(keys(&rust), ["d", "e"]);
    // A field the table does not index matches nothing.
    assert!(store
        .list_documents(&table, &page(Some((2, "x")), None, 10))
        .await
        .unwrap()
        .is_empty());

    // The filtered page seeks the field's index and walks it in key order: no scan, no sort.
    let plan_of = |sql: String| -> String {
        let connection = raw(&path);
        let mut plan = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        // Bind whichever of the list's parameters this statement names.
        let all: [(&str, &dyn rusqlite::ToSql); 5] = [
            (":value", &"ann"),
            (":after", &"b"),
            (":limit", &2),
            (":after_value", &"rust"),
            (":after_key", &"c"),
        ];
        let used: Vec<&str> = sql
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .collect();
        let named: Vec<(&str, &dyn rusqlite::ToSql)> = all
            .into_iter()
            .filter(|(name, _)| used.contains(name))
            .collect();
        let details: Vec<String> = plan
            .query_map(named.as_slice(), |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        details.join("; ")
    };
    let filtered = ListQuery {
        filter: Some((1, "rust".into())),
        after: Some("b".into()),
        limit: 2,
        order: None,
    };
    let plan = plan_of(documents::list_sql(&table, &filtered));
    let index = documents::index_name(&table, 1);
    assert!(
        plan.contains(&format!(
            "SEARCH es_doc_posts_1 USING INDEX {index} (idx_1=? AND key>?)"
        )),
        "{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "sorts instead of walking: {plan}"
    );

    // An ordered page walks the field's index backwards from its cursor: no sort either.
    let ordered = ListQuery {
        limit: 2,
        order: Some(crate::read::Order {
            index: 1,
            descending: true,
            after: Some(("rust".into(), "c".into())),
        }),
        ..ListQuery::default()
    };
    let plan = plan_of(documents::list_sql(&table, &ordered));
    assert!(plan.contains(&format!("USING INDEX {index}")), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE"),
        "sorts instead of walking: {plan}"
    );
}

#[tokio::test]
async fn leases_are_held_renewed_released_and_expire() {
    let dir = TempDir::new("leases");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let long = Duration::from_secs(60);
    assert_eq!(store.lease_holder("posts").await.unwrap(), None);

    assert_eq!(store.acquire_lease("posts", "a", long).await.unwrap(), "a");
    assert_eq!(store.acquire_lease("posts", "b", long).await.unwrap(), "a");
    assert_eq!(store.acquire_lease("posts", "a", long).await.unwrap(), "a");
    assert_eq!(
        store.lease_holder("posts").await.unwrap().as_deref(),
        Some("a")
    );
    // Only the holder can give it up.
    store.release_lease("posts", "b").await.unwrap();
    assert_eq!(
        store.lease_holder("posts").await.unwrap().as_deref(),
        Some("a")
    );
    store.release_lease("posts", "a").await.unwrap();
    assert_eq!(store.lease_holder("posts").await.unwrap(), None);

    // A lease its holder stopped renewing is no one's, and anyone may take it.
    assert_eq!(
        store
            .acquire_lease("posts", "a", Duration::ZERO)
            .await
            .unwrap(),
        "a"
    );
    assert_eq!(store.lease_holder("posts").await.unwrap(), None);
    assert_eq!(store.acquire_lease("posts", "b", long).await.unwrap(), "b");
    assert_eq!(
        store.lease_holder("posts").await.unwrap().as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn dead_letters_are_kept_in_order_and_removed_once() {
    let dir = TempDir::new("dead-letters");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.add_dead_letter(&letter(9)).await.unwrap();
    tx.add_dead_letter(&letter(4)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.dead_letters("posts").await.unwrap(),
        [letter(4), letter(9)]
    );
    assert!(store.dead_letters("other").await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    assert!(tx.remove_dead_letter("posts", 4).await.unwrap());
    assert!(!tx.remove_dead_letter("posts", 4).await.unwrap());
    assert!(!tx.remove_dead_letter("other", 9).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.dead_letters("posts").await.unwrap(), [letter(9)]);
}

#[tokio::test]
async fn an_append_waits_for_an_open_batch_instead_of_failing() {
    let dir = TempDir::new("append-during-batch");
    let store = SqliteStore::open(dir.file("store.db")).await.unwrap();
    let table = posts(1);
    store.create_generation(&table, "v1").await.unwrap();
    let mut signal = store.append_signal().unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.advance(&table, 1, 2).await.unwrap();
    let appender = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(&stream("post", "1"), ExpectedVersion::NoStream, events(2))
                .await
        })
    };
    tokio::task::yield_now().await;
    tx.commit().await.unwrap();
    let appended = appender.await.unwrap().unwrap();

    // The append woke whoever waits for new events, with its last position.
    signal.changed().await.unwrap();
    assert_eq!(*signal.borrow(), appended[1].position);
    assert_eq!(checkpoint(&store, &table).await, Some(2));
}

#[tokio::test]
async fn a_layout_1_file_is_upgraded_and_keeps_its_events() {
    let dir = TempDir::new("upgrade");
    let path = dir.file("store.db");
    {
        let connection = raw(&path);
        for statement in schema::LAYOUT_1 {
            connection.execute_batch(statement).unwrap();
        }
        connection
            .execute_batch(&format!(
                "PRAGMA application_id = {}; PRAGMA user_version = 1;",
                schema::APPLICATION_ID
            ))
            .unwrap();
        connection
            .execute(
                "INSERT INTO es_events (stream_id, version, event_name, schema_version, \
                 recorded_at_us, event_id, correlation_id, payload) \
                 VALUES ('post/1', 1, 'post.published', 1, 0, ?1, ?1, '{}')",
                [uuid::Uuid::now_v7().to_string()],
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.head_position().await.unwrap(), 1);
    let layout: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(layout, schema::LAYOUT_VERSION);
    let post = crate::StreamId::new("post", "1").unwrap();
    let kept = store.read_stream(&post, 1, 10).await.unwrap();
    assert_eq!(kept[0].metadata.command_id, None);
    // Layout 3 makes commands idempotent on an upgraded file too.
    let mut command = crate::testing::event("post.edited", 1);
    command.metadata.command_id = Some(uuid::Uuid::now_v7());
    let first = store
        .append(&post, ExpectedVersion::Exact(1), vec![command.clone()])
        .await
        .unwrap();
    let again = store
        .append(&post, ExpectedVersion::Exact(1), vec![command])
        .await
        .unwrap();
    assert_eq!(
        (first, store.stream_version(&post).await.unwrap()),
        (again, 2)
    );
    store.create_generation(&posts(1), "v1").await.unwrap();
    drop(store);
    // Opened again, it is simply the current layout.
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.generations("posts").await.unwrap().len(), 1);
}
