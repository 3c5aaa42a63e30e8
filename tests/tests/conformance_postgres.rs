//! The store conformance suite on PostgreSQL (needs `ES_TEST_POSTGRES_URL`; skipped without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/postgres.rs"]
mod postgres;

use es_core::store::postgres::PostgresStore;

es_core::store_conformance_tests!(
    postgres::new_store(),
    after = |store: PostgresStore| async move {
        store.drop_schema().await.expect("drop the test schema");
    }
);
