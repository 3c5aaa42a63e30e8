//! Times reading and replaying a 10,000-event stream from PostgreSQL, for profiling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared with the benchmark, which uses all of it
#[path = "../benches/compare/ours.rs"]
mod ours;

use es_core::postgres::{PostgresConfig, PostgresStore};
use es_core::EventLog;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = std::env::var("ES_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let store = PostgresStore::connect_with(PostgresConfig::new(url).schema("profile_load"))
            .await
            .unwrap();
        let repository = es_core::Repository::<ours::Account>::new(store.clone()).without_cache();
        let id = "long".to_owned();
        let stream = es_core::StreamId::new("account", &id).unwrap();
        if store.stream_version(&stream).await.unwrap() == 0 {
            for _ in 0..10 {
                repository
                    .execute(&id, ours::DepositMany { count: 1000 })
                    .await
                    .unwrap();
            }
        }
        for page in [512usize, 2048, 10_000] {
            let started = std::time::Instant::now();
            let mut from = 1;
            loop {
                let events = store.read_stream(&stream, from, page).await.unwrap();
                if events.len() < page {
                    break;
                }
                from = events.last().unwrap().version + 1;
            }
            println!(
                "read pages of {page}: {:.2} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let loaded = repository.load(&id).await.unwrap();
            println!(
                "load: {:.2} ms (balance {})",
                started.elapsed().as_secs_f64() * 1e3,
                loaded.state.balance()
            );
        }
    });
}
