//! Connecting tests to the machine's PostgreSQL: `ES_TEST_POSTGRES_URL`, one schema per test.

use es_core::store::postgres::{PostgresConfig, PostgresStore};

/// The variable that holds the test server's URL; `.ci/run` sets it.
pub const URL_VARIABLE: &str = "ES_TEST_POSTGRES_URL";

/// The server's URL, or `None` after printing that PostgreSQL tests are skipped.
pub fn url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: {URL_VARIABLE} is not set, so this PostgreSQL test did not run");
            None
        }
    }
}

/// A store in a fresh schema of its own, so tests run in parallel without seeing each other.
pub async fn new_store() -> Option<PostgresStore> {
    let url = url()?;
    let schema = format!("es_test_{}", uuid::Uuid::new_v4().simple());
    let config = PostgresConfig::new(url).schema(schema).pool_size(20);
    match PostgresStore::connect_with(config).await {
        Ok(store) => Some(store),
        Err(error) => panic!("{URL_VARIABLE} is set but PostgreSQL cannot be used: {error}"),
    }
}
