//! Fresh stores for tests: memory, a SQLite file, and PostgreSQL.
//!
//! PostgreSQL is looked for at `ES_TEST_POSTGRES_URL`, else at the machine's default
//! (`postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, a test under CI
//! (`CI` set, as `.ci/run` runs) fails; a plain `cargo test` elsewhere prints a line saying
//! the test was skipped and passes.

use std::sync::Arc;

use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::sqlite::SqliteStore;
use es_core::{EventStore, MemoryStore};

/// The variable that names the test server; `.ci/run` sets it.
pub const POSTGRES_URL_VARIABLE: &str = "ES_TEST_POSTGRES_URL";

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A new in-memory store.
pub async fn memory() -> Option<Arc<dyn EventStore>> {
    Some(Arc::new(MemoryStore::new()))
}

/// A new SQLite file under the system's temporary directory.
pub async fn sqlite() -> Option<Arc<dyn EventStore>> {
    Some(Arc::new(sqlite_store().await))
}

/// A new SQLite store in a file of its own.
pub async fn sqlite_store() -> SqliteStore {
    let dir = std::env::temp_dir().join("es-tests-stores");
    std::fs::create_dir_all(&dir).expect("a directory for test databases");
    let path = dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    SqliteStore::open(&path).await.expect("open SQLite")
}

/// Deletes a SQLite store's files.
pub fn remove_sqlite(store: SqliteStore) {
    let path = store.path().to_path_buf();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A PostgreSQL store in a fresh schema, shared as a trait object.
pub async fn postgres() -> Option<Arc<dyn EventStore>> {
    Some(Arc::new(postgres_store().await?))
}

/// Whether this run must have every service (set by `.ci/run`).
pub fn services_required() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty())
}

/// The PostgreSQL URL tests use, or `None` after printing why PostgreSQL tests are skipped.
/// Under CI an unreachable server is a failure, never a skip.
pub async fn postgres_url() -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await;
    match probe {
        Ok(Ok(_)) => Some(url),
        Ok(Err(error)) if !services_required() => {
            println!("skipped: PostgreSQL at {url} cannot be reached ({error}), so this PostgreSQL test did not run");
            None
        }
        Err(_) if !services_required() => {
            println!("skipped: PostgreSQL at {url} did not answer within 5 s, so this PostgreSQL test did not run");
            None
        }
        Ok(Err(error)) => panic!("CI needs PostgreSQL at {url}, but it cannot be reached: {error}"),
        Err(_) => panic!("CI needs PostgreSQL at {url}, but it did not answer within 5 s"),
    }
}

/// A PostgreSQL store in a fresh schema; drop it with `drop_schema` when done.
pub async fn postgres_store() -> Option<PostgresStore> {
    postgres_store_with_prefix("es_test_").await
}

/// A PostgreSQL store in a fresh schema named `{prefix}{random}`.
pub async fn postgres_store_with_prefix(prefix: &str) -> Option<PostgresStore> {
    let url = postgres_url().await?;
    let schema = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
    let config = PostgresConfig::new(url).schema(schema).pool_size(20);
    Some(
        PostgresStore::connect_with(config)
            .await
            .expect("connect to PostgreSQL"),
    )
}

/// Drops every schema whose name starts with `prefix` (for tests that make many).
pub async fn drop_postgres_schemas(prefix: &str) {
    let Some(url) = postgres_url().await else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let pattern = format!("{prefix}%");
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
            &[&pattern],
        )
        .await
        .expect("list schemas");
    for row in rows {
        let schema: String = row.get(0);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("drop a schema");
    }
}
