//! The store conformance suite on the SQLite store, one file per case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::sqlite::SqliteStore;
use es_tests::stores;

es_core::store_conformance_tests!(
    async { Some(stores::sqlite_store().await) },
    after = |store: SqliteStore| async move { stores::remove_sqlite(store) }
);
es_core::read_model_conformance_tests!(
    async { Some(stores::sqlite_store().await) },
    after = |store: SqliteStore| async move { stores::remove_sqlite(store) }
);
