//! Property: for random command sequences, with rollbacks mixed in, loading from the latest
//! snapshot plus the events after it gives exactly the state a full replay gives, and every
//! past version's state stays reachable. On memory, SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use es_core::{aggregate, EventStore, Repository};
use es_tests::bank::{AccountError, Deposit, Deposited, Withdraw, Withdrawn};
use es_tests::stores;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A wallet that snapshots every 3 events...
#[aggregate(name = "wallet", id = String, error = AccountError, snapshot_every = 3)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    balance: u64,
    operations: u32,
}

#[aggregate]
impl Wallet {
    #[handle]
    fn deposit(&self, command: Deposit) -> Result<Deposited, AccountError> {
        Ok(Deposited {
            amount: command.amount,
        })
    }

    #[handle]
    fn withdraw(&self, command: Withdraw) -> Result<Withdrawn, AccountError> {
        if command.amount > self.balance {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: command.amount,
            });
        }
        Ok(Withdrawn {
            amount: command.amount,
        })
    }

    #[apply]
    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
        self.operations += 1;
    }

    #[apply]
    fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
        self.operations += 1;
    }
}

/// ...and the same wallet, stored under the same name, that never snapshots: its load is a
/// full replay of the very same stream.
#[aggregate(name = "wallet", id = String, error = AccountError)]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplayedWallet {
    balance: u64,
    operations: u32,
}

#[aggregate]
impl ReplayedWallet {
    #[apply]
    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
        self.operations += 1;
    }

    #[apply]
    fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
        self.operations += 1;
    }
}

/// Makes a fresh store, or `None` to skip.
type NewStore =
    fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Arc<dyn EventStore>>>>>;

#[derive(Clone, Debug)]
enum Step {
    Deposit(u64),
    Withdraw(u64),
    /// Roll back to this fraction (in 1/8) of the current version.
    Rollback(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1..100u64).prop_map(Step::Deposit),
        3 => (1..150u64).prop_map(Step::Withdraw),
        1 => (0..8u64).prop_map(Step::Rollback),
    ]
}

async fn check(store: Arc<dyn EventStore>, steps: Vec<Step>) {
    let id = "w".to_owned();
    // No cache, so every command loads through snapshots.
    let wallets = Repository::<Wallet>::new(Arc::clone(&store)).without_cache();
    let replayed = Repository::<ReplayedWallet>::new(Arc::clone(&store)).without_cache();
    // The model: the expected state after each version (index 0: nothing yet).
    let mut states: Vec<(u64, u32)> = vec![(0, 0)];
    for step in steps {
        let (balance, operations) = *states.last().unwrap();
        match step {
            Step::Deposit(amount) => {
                wallets.execute(&id, Deposit { amount }).await.unwrap();
                states.push((balance + amount, operations + 1));
            }
            Step::Withdraw(amount) => match wallets.execute(&id, Withdraw { amount }).await {
                Ok(_) => states.push((balance - amount, operations + 1)),
                Err(error) => assert!(amount > balance, "only an overdraft is refused: {error}"),
            },
            Step::Rollback(eighths) => {
                let current = states.len() as u64 - 1;
                let to_version = current * eighths / 8;
                if to_version < current {
                    wallets
                        .rollback(&id, to_version, "property", "random")
                        .await
                        .unwrap();
                    states.push(states[to_version as usize]);
                }
            }
        }
    }
    let loaded = wallets.load(&id).await.unwrap();
    let full = replayed.load(&id).await.unwrap();
    assert_eq!(
        (loaded.state.balance, loaded.state.operations),
        (full.state.balance, full.state.operations)
    );
    assert_eq!(
        (loaded.state.balance, loaded.state.operations),
        *states.last().unwrap()
    );
    assert_eq!(loaded.version, states.len() as u64 - 1);
    for (version, expected) in states.iter().enumerate() {
        let past = wallets.load_at_version(&id, version as u64).await.unwrap();
        assert_eq!(
            (past.state.balance, past.state.operations),
            *expected,
            "state at version {version}"
        );
    }
}

fn run(cases: u32, new_store: NewStore) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if runtime.block_on(new_store()).is_none() {
        return;
    }
    proptest!(ProptestConfig::with_cases(cases), |(steps in prop::collection::vec(step(), 1..40))| {
        runtime.block_on(async {
            let store = new_store().await.unwrap();
            check(store, steps).await;
        });
    });
}

#[test]
fn snapshot_plus_tail_equals_full_replay_in_memory() {
    run(128, || Box::pin(stores::memory()));
}

#[test]
fn snapshot_plus_tail_equals_full_replay_on_sqlite() {
    run(24, || Box::pin(stores::sqlite()));
}

#[test]
fn snapshot_plus_tail_equals_full_replay_on_postgres() {
    run(12, || {
        Box::pin(async {
            Some(
                Arc::new(stores::postgres_store_with_prefix("es_prop_").await?)
                    as Arc<dyn EventStore>,
            )
        })
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(stores::drop_postgres_schemas("es_prop_"));
}
