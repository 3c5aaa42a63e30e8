//! The daemon's part in inline projections, on every store: it builds an inline projection
//! first made on a log that already has events, and rebuilds one whose code version
//! changed, while commands keep writing it; the generation swapped in equals a replay of the
//! whole log, and health says where it stands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{
    project_in_memory, projection, Daemon, DaemonConfig, Docs, Documents, Envelope, HealthState,
    Projection, Projections, Repository, Store,
};
use es_tests::bank::{Account, Deposit, Deposited, Open, Opened};
use es_tests::stores;
use es_tests::writers::{deposit_until, whole_log, Written};
use serde::{Deserialize, Serialize};

const NAME: &str = "inline_daemon_tallies";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub owner: String,
    pub deposits: u64,
    /// Version 1 sums the amounts; version 2 sums them doubled, so a document shows which
    /// code built it.
    pub total: u64,
}

fn opened(event: &Envelope<Opened>, docs: &mut Docs<Tally>) {
    docs.upsert(event.aggregate_id(), |tally| {
        tally.owner = event.event.owner.clone()
    });
}

/// Counts the deposit and adds its amount times `factor` (the versions' one difference).
fn deposited(event: &Envelope<Deposited>, docs: &mut Docs<Tally>, factor: u64) {
    docs.upsert(event.aggregate_id(), |tally| {
        tally.deposits += 1;
        tally.total += factor * event.event.amount;
    });
}

/// Version 1: counts an account's deposits and sums them.
#[projection(name = "inline_daemon_tallies", inline, per_stream, version = 1)]
#[derive(Debug)]
pub struct TalliesV1;

#[projection]
impl TalliesV1 {
    #[on]
    fn opened(&self, event: &Envelope<Opened>, docs: &mut Docs<Tally>) {
        opened(event, docs);
    }

    #[on]
    fn deposited(&self, event: &Envelope<Deposited>, docs: &mut Docs<Tally>) {
        deposited(event, docs, 1);
    }
}

/// Version 2 of the same projection: the amounts doubled.
#[projection(name = "inline_daemon_tallies", inline, per_stream, version = 2)]
#[derive(Debug)]
pub struct TalliesV2;

#[projection]
impl TalliesV2 {
    #[on]
    fn opened(&self, event: &Envelope<Opened>, docs: &mut Docs<Tally>) {
        opened(event, docs);
    }

    #[on]
    fn deposited(&self, event: &Envelope<Deposited>, docs: &mut Docs<Tally>) {
        deposited(event, docs, 2);
    }
}

const ACCOUNTS: usize = 6;
/// Deposits made before the projection exists, per account.
const EARLIER_DEPOSITS: usize = 40;

/// Waits until the daemon's health shows the projection inline again at `version`, with a
/// live generation after `after` (a rebuild swapped in); returns that generation.
async fn wait_until_inline(daemon: &Daemon, version: &str, after: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = daemon.health().await.unwrap();
        let ours = health
            .iter()
            .find(|projection| projection.name == NAME)
            .unwrap();
        eprintln!(
            "DEBUG {:?} gen {} v {} ",
            ours.state, ours.generation, ours.version
        );
        if ours.state == HealthState::Inline && ours.version == version && ours.generation > after {
            assert_eq!(ours.lag_events, 0, "an inline projection is never behind");
            assert_eq!(ours.checkpoint, ours.head + 1);
            return ours.generation;
        }
        assert!(
            !matches!(ours.state, HealthState::Stopped(_)),
            "the rebuild stopped: {}",
            ours.state
        );
        assert!(
            Instant::now() < deadline,
            "the daemon did not swap in version {version} within 60 s: {ours:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The documents equal a replay of the whole log by `projection`.
async fn assert_replayed<P>(store: &dyn Store, projection: &P, when: &str)
where
    P: Projection<Document = Tally>,
{
    let documents: BTreeMap<String, Tally> = Documents::<P>::of(store)
        .all()
        .await
        .unwrap()
        .into_iter()
        .collect();
    let replayed = project_in_memory(projection, &whole_log(store).await).unwrap();
    assert_eq!(
        documents, replayed,
        "{when}: the documents equal a replay of the log"
    );
}

/// Starts writers on the accounts through an inline repository of `projections`.
fn start_writers(
    store: &Arc<dyn Store>,
    projections: Projections,
    ids: &[String],
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Written>> {
    let accounts = Repository::<Account>::new(store.clone()).inline(store.clone(), projections);
    ids.chunks(2)
        .map(|ids| {
            tokio::spawn(deposit_until(
                accounts.clone(),
                ids.to_vec(),
                Arc::clone(stop),
            ))
        })
        .collect()
}

async fn stop_writers(stop: &AtomicBool, writers: Vec<tokio::task::JoinHandle<Written>>) -> u64 {
    stop.store(true, Ordering::Relaxed);
    let mut made = 0;
    for writer in writers {
        made += writer.await.unwrap().deposits;
    }
    made
}

async fn case(store: Arc<dyn Store>, label: &str) {
    let config = || DaemonConfig {
        poll_interval: Duration::from_millis(50),
        ..DaemonConfig::default()
    };
    // A log with history before the projection exists.
    let plain = Repository::<Account>::new(store.clone());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|n| format!("{}-{n}", &run[..8]))
        .collect();
    for id in &ids {
        let owner = format!("owner of {id}");
        plain.execute(id, Open { owner }).await.unwrap();
        for _ in 0..EARLIER_DEPOSITS {
            plain.execute(id, Deposit { amount: 5 }).await.unwrap();
        }
    }

    // Version 1 arrives: commands write it inline at once, and the daemon fills it with
    // the history before it, while they do.
    let v1 = Projections::new().with(TalliesV1);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(&store, v1.clone(), &ids, &stop);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let daemon = Daemon::start_with(store.clone(), v1.clone(), config())
        .await
        .unwrap();
    // Generation 1 went live empty when the first command (or the daemon) made it; the
    // history comes with generation 2.
    let first = wait_until_inline(&daemon, "1", 1).await;
    let made = Arc::new(AtomicU64::new(stop_writers(&stop, writers).await));
    assert_replayed(&*store, &TalliesV1, "version 1 built from history").await;
    let position = store.head_position().await.unwrap();
    assert!(
        daemon
            .wait_for(NAME, position, Duration::from_millis(1))
            .await
            .unwrap(),
        "waiting for an inline projection returns at once: commands applied it"
    );
    daemon.shutdown().await;

    // Version 2 is deployed: the daemon rebuilds it beside version 1, which commands go on
    // writing, and swaps it in.
    let v2 = Projections::new().with(TalliesV2);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(&store, v2.clone(), &ids, &stop);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let daemon = Daemon::start_with(store.clone(), v2.clone(), config())
        .await
        .unwrap();
    let second = wait_until_inline(&daemon, "2", first).await;
    made.fetch_add(stop_writers(&stop, writers).await, Ordering::Relaxed);
    assert_replayed(&*store, &TalliesV2, "version 2 rebuilt").await;
    let counted: u64 = Documents::<TalliesV2>::of(&*store)
        .all()
        .await
        .unwrap()
        .iter()
        .map(|(_, tally)| tally.deposits)
        .sum();
    assert_eq!(
        counted,
        (ACCOUNTS * EARLIER_DEPOSITS) as u64 + made.load(Ordering::Relaxed),
        "every deposit counted once"
    );
    daemon.shutdown().await;

    // Started again with the same version, the daemon has nothing to rebuild.
    let daemon = Daemon::start_with(store.clone(), v2, config())
        .await
        .unwrap();
    let health = daemon.health().await.unwrap();
    assert_eq!(health[0].state, HealthState::Inline);
    assert_eq!(health[0].generation, second);
    daemon.shutdown().await;
    println!(
        "{label}: inline projection built from {} earlier deposits and rebuilt for a new version, with {} deposits made meanwhile",
        ACCOUNTS * EARLIER_DEPOSITS,
        made.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_builds_and_rebuilds_an_inline_projection_on_memory() {
    case(Arc::new(es_core::MemoryStore::new()), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_builds_and_rebuilds_an_inline_projection_on_sqlite() {
    let store = stores::sqlite_store().await;
    case(Arc::new(store.clone()), "SQLite").await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_builds_and_rebuilds_an_inline_projection_on_postgres() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    case(Arc::new(store.clone()), "PostgreSQL").await;
    store.drop_schema().await.unwrap();
}
