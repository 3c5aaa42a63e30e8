//! The store conformance suite on the SQLite store, one file per case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::store::sqlite::SqliteStore;

async fn new_store() -> Option<SqliteStore> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-sqlite");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()));
    Some(SqliteStore::open(&path).await.expect("open a SQLite store"))
}

es_core::store_conformance_tests!(
    new_store(),
    after = |store: SqliteStore| async move {
        let path = store.path().to_path_buf();
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
);
