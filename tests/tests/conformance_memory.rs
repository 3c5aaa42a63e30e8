//! The store conformance suite on the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

es_core::store_conformance_tests!(async { Some(es_core::MemoryStore::new()) });
es_core::read_model_conformance_tests!(async { Some(es_core::MemoryStore::new()) });
