//! Concurrency soak on every store: 64 tasks × 200 commands over 8 hot streams, through the
//! repository with its retry loop, more tasks than pooled connections. Afterwards every
//! acknowledged command's event is there exactly once, versions are contiguous, each final
//! state equals a sequential replay, and read-all returns each event once in increasing
//! position. `ES_SOAK_COMMANDS` changes the commands per task.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use es_core::{EventLogExt, EventStore, Repository, RetryPolicy, StreamId};
use es_tests::bank::{Account, AccountEvent, Deposit, Open};
use es_tests::stores;
use futures::TryStreamExt;

const TASKS: u64 = 64;
const STREAMS: u64 = 8;

fn commands_per_task() -> u64 {
    std::env::var("ES_SOAK_COMMANDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200)
}

async fn soak(store: Arc<dyn EventStore>, label: &str) {
    let per_task = commands_per_task();
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let stream_id = |n: u64| format!("{prefix}-{n}");
    let accounts = Repository::<Account>::new(Arc::clone(&store)).with_retry(RetryPolicy {
        max_attempts: 10_000,
        initial_backoff: Duration::from_micros(200),
        max_backoff: Duration::from_millis(20),
    });
    for n in 0..STREAMS {
        accounts
            .execute(
                &stream_id(n),
                Open {
                    owner: "soak".into(),
                },
            )
            .await
            .unwrap();
    }
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let accounts = accounts.clone();
            let stream_id = stream_id(task % STREAMS);
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for seq in 0..per_task {
                    // A unique amount per command, so each event can be found again.
                    let amount = task * 1_000_000 + seq + 1;
                    accounts
                        .execute(&stream_id, Deposit { amount })
                        .await
                        .unwrap();
                    acknowledged.push(amount);
                }
                (stream_id, acknowledged)
            })
        })
        .collect();
    let mut acknowledged: HashMap<String, Vec<u64>> = HashMap::new();
    for task in tasks {
        let (stream, amounts) = task.await.unwrap();
        acknowledged.entry(stream).or_default().extend(amounts);
    }
    let elapsed = started.elapsed();
    let mut checked = 0;
    for n in 0..STREAMS {
        let id = stream_id(n);
        let stream = StreamId::new("account", &id).unwrap();
        // Versions contiguous: the paged read refuses a gap or a repeat.
        let events: Vec<_> = store.stream_events(&stream, 1).try_collect().await.unwrap();
        let mut seen: Vec<u64> = events
            .iter()
            .filter(|event| &*event.event_name == "account.deposited")
            .map(|event| {
                event.event.decode::<serde_json::Value>().unwrap()["amount"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let mut expected = acknowledged.remove(&id).unwrap_or_default();
        seen.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            seen, expected,
            "{label}: every acknowledged command once, nothing else"
        );
        checked += events.len();
        let fresh = Repository::<Account>::new(Arc::clone(&store)).without_cache();
        let loaded = fresh.load(&id).await.unwrap();
        let mut replayed = Account::default();
        for event in &events {
            let decoded: AccountEvent = es_core::decode_event(event).unwrap();
            es_core::Aggregate::apply(&mut replayed, &decoded);
        }
        assert_eq!(
            loaded.state, replayed,
            "{label}: the load equals a sequential replay"
        );
        assert_eq!(loaded.version, events.len() as u64);
    }
    // Read-all: each event once, in increasing position.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let all: Vec<_> = store.stream_all(1).try_collect().await.unwrap();
        assert!(all.windows(2).all(|w| w[0].position < w[1].position));
        let mine = all
            .iter()
            .filter(|event| event.aggregate_id().starts_with(&prefix))
            .count();
        if mine == checked {
            break;
        }
        assert!(mine < checked, "{label}: read-all returned an event twice");
        assert!(
            std::time::Instant::now() < deadline,
            "{label}: read-all never showed every event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "soak on {label}: tasks {TASKS}, commands {}, events checked {checked}, lost 0, duplicated 0, in {:.1} s",
        TASKS * per_task,
        elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_memory() {
    soak(stores::memory().await.unwrap(), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_sqlite() {
    let store = stores::sqlite_store().await;
    soak(Arc::new(store.clone()), "sqlite").await;
    stores::remove_sqlite(store);
}

/// A pool of 8 connections for 64 tasks: contention must give conflicts and retries, never
/// pool timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_postgres_with_fewer_connections_than_tasks() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let schema = format!("es_soak_{}", uuid::Uuid::new_v4().simple());
    let store = es_core::postgres::PostgresStore::connect_with(
        es_core::postgres::PostgresConfig::new(url)
            .schema(schema)
            .pool_size(8),
    )
    .await
    .unwrap();
    soak(Arc::new(store.clone()), "postgres (pool of 8)").await;
    store.drop_schema().await.unwrap();
}
