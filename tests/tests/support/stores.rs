//! Runs one test body on every store: memory, a SQLite file, and PostgreSQL when
//! `ES_TEST_POSTGRES_URL` is set (skipped with a printed line otherwise).
#![allow(dead_code)]

use std::sync::Arc;

use es_core::store::postgres::{PostgresConfig, PostgresStore};
use es_core::store::sqlite::SqliteStore;
use es_core::{EventStore, MemoryStore};

pub async fn memory() -> Option<Arc<dyn EventStore>> {
    Some(Arc::new(MemoryStore::new()))
}

pub async fn sqlite() -> Option<Arc<dyn EventStore>> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stores");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    Some(Arc::new(
        SqliteStore::open(&path).await.expect("open SQLite"),
    ))
}

pub async fn postgres() -> Option<Arc<dyn EventStore>> {
    Some(Arc::new(postgres_store().await?))
}

/// A PostgreSQL store in a fresh schema; drop it with `drop_schema` when done.
pub async fn postgres_store() -> Option<PostgresStore> {
    postgres_store_with_prefix("es_test_").await
}

/// A PostgreSQL store in a fresh schema named `{prefix}{random}`.
pub async fn postgres_store_with_prefix(prefix: &str) -> Option<PostgresStore> {
    let Ok(url) = std::env::var("ES_TEST_POSTGRES_URL") else {
        println!("skipped: ES_TEST_POSTGRES_URL is not set, so this PostgreSQL test did not run");
        return None;
    };
    let schema = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
    Some(
        PostgresStore::connect_with(PostgresConfig::new(url).schema(schema))
            .await
            .expect("connect to PostgreSQL"),
    )
}

/// Drops every schema whose name starts with `prefix` (for tests that make many).
pub async fn drop_postgres_schemas(prefix: &str) {
    let Ok(url) = std::env::var("ES_TEST_POSTGRES_URL") else {
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
