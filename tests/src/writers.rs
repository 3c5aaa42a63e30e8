//! Commands that keep coming while something else happens (a rebuild, a swap), and the
//! whole log to compare the outcome with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{EventLogExt, RecordedEvent, Repository, Store};
use futures::TryStreamExt;

use crate::bank::{Account, Deposit};

/// A writer's pause between commands: a steady stream of commands, not a flood that would
/// keep a rebuild (which reads the whole log) from ever catching up.
const PACE: Duration = Duration::from_millis(2);

/// What a writer did.
#[derive(Debug, Default)]
pub struct Written {
    /// Deposits made, each of 3.
    pub deposits: u64,
    /// The slowest command.
    pub slowest: Duration,
}

impl Written {
    /// Both writers' work together.
    pub fn add(&mut self, other: Written) {
        self.deposits += other.deposits;
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// Deposits 3 into each of `ids` in turn through `accounts`, round after round, until `stop`
/// is set; fails the test on any command that fails.
pub async fn deposit_until(
    accounts: Repository<Account>,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Written {
    let mut written = Written::default();
    while !stop.load(Ordering::Relaxed) {
        for id in &ids {
            let started = Instant::now();
            if let Err(error) = accounts.execute(id, Deposit { amount: 3 }).await {
                panic!("a deposit into {id} failed while a rebuild ran: {error}");
            }
            written.slowest = written.slowest.max(started.elapsed());
            written.deposits += 1;
            tokio::time::sleep(PACE).await;
        }
    }
    written
}

/// Every event of the log, read until the head: on PostgreSQL read-all holds back events
/// of transactions still running anywhere in the cluster, so wait (up to 30 s) for them.
pub async fn whole_log(store: &dyn Store) -> Vec<RecordedEvent> {
    let head = store.head_position().await.expect("the head position");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log: Vec<RecordedEvent> = store
            .stream_all(1)
            .try_collect()
            .await
            .expect("the whole log");
        if log.last().map_or(0, |event| event.position) >= head {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "read-all did not reach head {head} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
