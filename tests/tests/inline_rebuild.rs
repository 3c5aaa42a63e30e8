//! Rebuilding an inline projection while commands keep appending, on every store: the
//! generation swapped in holds exactly what a replay of the whole log gives (no event
//! missed, none applied twice), and no command fails because of the rebuild.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{
    project_in_memory, projection, Docs, Documents, Envelope, Projections, ReadStore, Repository,
    Store,
};
use es_tests::bank::{Account, Deposited, Open, Opened};
use es_tests::latency::Latency;
use es_tests::stores;
use es_tests::writers::{deposit_until, whole_log, Written};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub owner: String,
    pub deposits: u64,
    pub total: u64,
}

/// Counts every deposit of an account: a missed event leaves a count short, one applied
/// twice leaves it long.
#[projection(name = "inline_tallies", inline, per_stream)]
#[derive(Debug)]
pub struct Tallies;

#[projection]
impl Tallies {
    #[on]
    fn opened(&self, event: &Envelope<Opened>, docs: &mut Docs<Tally>) {
        docs.upsert(event.aggregate_id(), |tally| {
            tally.owner = event.event.owner.clone()
        });
    }

    #[on]
    fn deposited(&self, event: &Envelope<Deposited>, docs: &mut Docs<Tally>) {
        docs.upsert(event.aggregate_id(), |tally| {
            tally.deposits += 1;
            tally.total += event.event.amount;
        });
    }
}

/// Tasks appending at once, each to accounts of its own.
const WRITERS: usize = 4;
const ACCOUNTS_PER_WRITER: usize = 5;
/// Rounds of rebuilding, at least this many for at least [`RACING`]: in each, writers
/// append throughout one rebuild, then stop, and the documents are checked. Checked after
/// every round, because the next rebuild would replay whatever this one's swap lost.
const ROUNDS: usize = 5;
const RACING: Duration = Duration::from_millis(500);
/// One rebuild while the writers deposit; returns what they did once they stopped.
async fn rebuild_under_writes(
    store: &dyn Store,
    accounts: &Repository<Account>,
    projections: &Projections,
    by_writer: &[Vec<String>],
) -> Written {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = by_writer
        .iter()
        .map(|ids| {
            tokio::spawn(deposit_until(
                accounts.clone(),
                ids.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    // Let the writers get going, so the whole rebuild races them.
    tokio::time::sleep(Duration::from_millis(10)).await;
    es_core::rebuild(store, projections, "inline_tallies", |_| {})
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut written = Written::default();
    for writer in writers {
        written.add(writer.await.unwrap());
    }
    written
}

/// The documents equal a replay of the whole log, and count `deposits` deposits.
async fn assert_exact(store: &dyn Store, deposits: u64, round: usize) {
    let documents: BTreeMap<String, Tally> = Documents::<Tallies>::of(store)
        .all()
        .await
        .unwrap()
        .into_iter()
        .collect();
    let replayed = project_in_memory(&Tallies, &whole_log(store).await).unwrap();
    let counted: u64 = documents.values().map(|tally| tally.deposits).sum();
    assert_eq!(
        counted, deposits,
        "after rebuild {round}, the documents count every deposit the commands made, once"
    );
    let differing: Vec<_> = replayed
        .iter()
        .filter(|(key, tally)| documents.get(*key) != Some(tally))
        .map(|(key, tally)| {
            let stored = documents.get(key).map(|doc| doc.deposits);
            (key, tally.deposits, stored)
        })
        .collect();
    assert!(
        differing.is_empty(),
        "after rebuild {round}, documents differ from a replay of the whole log (key, replayed deposits, stored): {differing:?}"
    );
    assert_eq!(documents, replayed);
}

/// Commands write through `inline_store` (the store itself, or a wrapper of it).
async fn case(store: Arc<dyn Store>, inline_store: Arc<dyn ReadStore>, label: &str) {
    let projections = Projections::new().with(Tallies);
    let accounts =
        Repository::<Account>::new(store.clone()).inline(inline_store, projections.clone());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut by_writer = Vec::new();
    for writer in 0..WRITERS {
        let mut ids = Vec::new();
        for account in 0..ACCOUNTS_PER_WRITER {
            let id = format!("{}-{writer}-{account}", &run[..8]);
            let owner = format!("owner {writer}/{account}");
            accounts.execute(&id, Open { owner }).await.unwrap();
            ids.push(id);
        }
        by_writer.push(ids);
    }
    let started = Instant::now();
    let mut total = Written::default();
    let mut rounds = 0;
    while rounds < ROUNDS || started.elapsed() < RACING {
        rounds += 1;
        let written = rebuild_under_writes(&*store, &accounts, &projections, &by_writer).await;
        total.add(written);
        assert_exact(&*store, total.deposits, rounds).await;
    }
    println!(
        "{label}: {rounds} rebuilds in {:?}, each raced by {WRITERS} writers; {} deposits; slowest command {:?}",
        started.elapsed(),
        total.deposits,
        total.slowest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilding_an_inline_projection_under_writes_on_memory() {
    let store: Arc<dyn Store> = Arc::new(es_core::MemoryStore::new());
    // Round trips of a millisecond, as a database's: a memory store's transactions take
    // microseconds, too short for a swap to land in the middle of one often enough to see.
    let slow = Arc::new(Latency::new(store.clone(), Duration::from_millis(1)));
    case(store, slow, "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilding_an_inline_projection_under_writes_on_sqlite() {
    let store = stores::sqlite_store().await;
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    case(shared.clone(), shared, "SQLite").await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilding_an_inline_projection_under_writes_on_postgres() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    case(shared.clone(), shared, "PostgreSQL").await;
    store.drop_schema().await.unwrap();
}
