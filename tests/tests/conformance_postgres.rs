//! The store conformance suite on PostgreSQL (fails under CI without a server; skipped with a
//! printed line elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use es_core::postgres::PostgresStore;
use es_tests::stores;

es_core::store_conformance_tests!(
    stores::postgres_store(),
    after = |store: PostgresStore| async move {
        store.drop_schema().await.expect("drop the test schema");
    }
);
es_core::read_model_conformance_tests!(
    stores::postgres_store(),
    after = |store: PostgresStore| async move {
        store.drop_schema().await.expect("drop the test schema");
    }
);
