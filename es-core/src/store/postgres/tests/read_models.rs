//! The read side on PostgreSQL beyond the conformance suite (which runs from the tests
//! crate): row locks between connections, LISTEN/NOTIFY between store instances, concurrent
//! generation creation.

use std::sync::Arc;

use super::*;
use crate::read::{DocumentTable, DocumentWrite, GenerationStatus, ReadStore};

/// A second store on the same schema: another process, as far as the server can tell.
async fn second_instance(store: &PostgresStore) -> PostgresStore {
    PostgresStore::connect_with(PostgresConfig::new(url()).schema(store.schema()))
        .await
        .unwrap()
}

/// Whether, within five seconds, a statement matching `pattern` (SQL `LIKE`) waits on a
/// lock held by another transaction.
async fn waits_on_a_lock(raw: &tokio_postgres::Client, pattern: &str) -> bool {
    until_a_row(
        raw,
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
        pattern,
        (500, Duration::from_millis(10)),
    )
    .await
}

fn table(generation: u32) -> DocumentTable {
    DocumentTable {
        projection: "balances".into(),
        generation,
        indexes: vec!["currency".into(), "owner".into()],
    }
}

fn write(key: &str) -> DocumentWrite {
    DocumentWrite {
        key: key.into(),
        body: Some(Payload::from_json_text(r#"{"currency":"EUR"}"#)),
        index_values: vec![Some("EUR".into()), None],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_waits_on_the_checkpoint_row_then_finds_it_moved() {
    let Some((store, raw)) = store_with("read_cas", |config| config).await else {
        return;
    };
    let other = second_instance(&store).await;
    let table = table(1);
    store.create_generation(&table, "1").await.unwrap();
    let mut first = store.begin().await.unwrap();
    first.write(&table, vec![write("a")]).await.unwrap();
    first.advance(&table, 1, 7).await.unwrap();
    let second_table = table.clone();
    let second = tokio::spawn(async move {
        let mut second = other.begin().await.unwrap();
        second.write(&second_table, vec![write("b")]).await.unwrap();
        second.advance(&second_table, 1, 7).await
    });
    // The second batch blocks on the generation row the first one updated.
    let schema = store.schema().to_owned();
    assert!(
        waits_on_a_lock(&raw, &format!("%{schema}%es_projection_generations%")).await,
        "the second worker waits for the first one's row lock"
    );
    assert!(!second.is_finished());
    first.commit().await.unwrap();
    match second.await.unwrap() {
        Err(StoreError::CheckpointMoved {
            expected: 1,
            actual: Some(7),
            ..
        }) => {}
        other => panic!("expected the checkpoint to have moved, got {other:?}"),
    }
    assert!(store.get_document(&table, "b").await.unwrap().is_none());
    assert!(store.get_document(&table, "a").await.unwrap().is_some());
    store.drop_schema().await.unwrap();
}

/// A SQL projection with one table, to make a generation's tables.
struct Things;

#[async_trait::async_trait]
impl crate::sql::SqlProjection for Things {
    const NAME: &'static str = "things";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = &["thing.made"];
    const TABLES: &'static [&'static str] = &["things"];

    async fn create_tables(&self, sql: &mut crate::sql::SqlTx<'_>) -> Result<(), crate::BoxError> {
        sql.execute("CREATE TABLE {things} (id TEXT PRIMARY KEY)", &[])
            .await?;
        Ok(())
    }

    async fn apply(
        &self,
        _: &RecordedEvent,
        _: &mut crate::sql::SqlTx<'_>,
    ) -> Result<(), crate::BoxError> {
        Ok(())
    }
}

/// A rebuild and a daemon may start the same new generation at once: both find its SQL
/// tables missing, and the later `CREATE TABLE` waits for the earlier transaction, then
/// fails on the duplicate. The later batch must find the tables made and go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_making_a_generations_sql_tables_at_once_both_go_on() {
    use crate::read::ErasedProjection;

    let Some((store, raw)) = store_with("read_sql_tables", |config| config).await else {
        return;
    };
    let other = second_instance(&store).await;
    let model = Arc::new(crate::read::sql::SqlModel::new(Things));
    let table = DocumentTable {
        projection: "things".into(),
        generation: 1,
        indexes: Vec::new(),
    };
    store.create_generation(&table, "1").await.unwrap();
    let mut first = store.begin().await.unwrap();
    ErasedProjection::apply_batch(&*model, &store, &mut *first, &table, &[])
        .await
        .unwrap();
    let (second_model, second_table) = (model.clone(), table.clone());
    let second = tokio::spawn(async move {
        let mut tx = other.begin().await.unwrap();
        let applied =
            ErasedProjection::apply_batch(&*second_model, &other, &mut *tx, &second_table, &[])
                .await;
        match applied {
            Ok(_) => tx.commit().await,
            Err(error) => Err(error),
        }
    });
    let schema = store.schema().to_owned();
    assert!(
        waits_on_a_lock(&raw, &format!("CREATE TABLE%{schema}%things__g1%")).await,
        "the second batch's CREATE TABLE waits for the first transaction"
    );
    first.commit().await.unwrap();
    second
        .await
        .unwrap()
        .expect("the second batch finds the tables made");
    let made = store
        .query_sql(
            &format!(
                "SELECT count(*) AS n FROM {}",
                store.sql_table_name("things__g1").unwrap()
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(made.get(0, "n").unwrap().as_i64(), Some(0));
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_through_another_instance_wakes_a_listening_receiver() {
    let Some((store, _raw)) = store_with("read_listen", |config| config).await else {
        return;
    };
    let other = second_instance(&store).await;
    let mut appended = store.append_signal().expect("PostgreSQL signals appends");
    // The first wake-up says the listening connection is up (and that anything appended
    // before it may have been missed).
    tokio::time::timeout(Duration::from_secs(30), appended.changed())
        .await
        .expect("the listener connects")
        .unwrap();
    let recorded = other
        .append(
            &stream("listen/1"),
            ExpectedVersion::NoStream,
            vec![event("a", 1), event("b", 2)],
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), appended.changed())
        .await
        .expect("the notification arrives")
        .unwrap();
    assert!(*appended.borrow() >= recorded[1].position);
    // A transaction's appends are announced when it commits.
    let mut transaction = other.transaction().await.unwrap();
    let in_transaction = transaction
        .append(
            &stream("listen/2"),
            ExpectedVersion::NoStream,
            vec![event("c", 3)],
        )
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        appended.wait_for(|position| *position >= in_transaction[0].position),
    )
    .await
    .expect("the commit's notification arrives")
    .unwrap();
    drop(appended);
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generations_created_at_once_by_two_instances_have_one_live() {
    let Some((store, raw)) = store_with("read_create", |config| config).await else {
        return;
    };
    let other = Arc::new(second_instance(&store).await);
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for (instance, generation) in [(&store, 1), (&other, 2), (&store, 2), (&other, 1)] {
        let instance = Arc::clone(instance);
        tasks.push(tokio::spawn(async move {
            instance
                .create_generation(&table(generation), &generation.to_string())
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let generations = store.generations("balances").await.unwrap();
    assert_eq!(generations.len(), 2);
    let live = generations
        .iter()
        .filter(|state| state.status == GenerationStatus::Live)
        .count();
    assert_eq!(live, 1, "{generations:?}");
    // Each indexed field has its own index, on (value, key).
    let indexes = raw
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'es_doc_balances_1'",
            &[&store.schema()],
        )
        .await
        .unwrap();
    let definitions: Vec<String> = indexes.iter().map(|row| row.get(0)).collect();
    for column in ["idx_0", "idx_1"] {
        assert!(
            definitions
                .iter()
                .any(|definition| definition.contains(&format!("({column}, key)"))),
            "{definitions:?}"
        );
    }
    store.drop_schema().await.unwrap();
}
