//! The store and read-model conformance suites, run against SQLite inside this crate, so a
//! change here is checked by `cargo test -p es-core --features sqlite,testing` alone.

use super::super::SqliteStore;

async fn fresh_store() -> Option<SqliteStore> {
    let dir = std::env::temp_dir().join("es-core-sqlite-conformance");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    Some(SqliteStore::open(&path).await.unwrap())
}

/// Removes a passed case's files (a failed case's stay, to look at).
async fn remove(store: SqliteStore) {
    let path = store.path().to_path_buf();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

crate::store_conformance_tests!(fresh_store(), after = remove);
crate::read_model_conformance_tests!(fresh_store(), after = remove);
