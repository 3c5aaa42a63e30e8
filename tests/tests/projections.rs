//! Projections declared with the macro, run by the daemon on the memory store: discovery,
//! documents and indexes, lookups across keys, configuration, rollback, and commands that
//! never wait for or fail on an async projection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use es_core::{
    project_in_memory, projection, Daemon, Docs, Documents, Envelope, EventLog, EventLogExt,
    HealthState, MemoryStore, Projection, Projections, ReadStore, Repository, RolledBack,
};
use es_tests::bank::*;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

/// Per account: its owner and balance. Keyed by account id, from that account's events only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    pub owner: String,
    pub balance: u64,
    pub positions: Vec<u64>,
}

#[projection(name = "balances", index(owner), per_stream)]
#[derive(Debug)]
pub struct Balances;

#[projection]
impl Balances {
    #[on]
    fn opened(&self, event: &Envelope<Opened>, docs: &mut Docs<Balance>) {
        docs.insert(
            event.aggregate_id(),
            Balance {
                owner: event.event.owner.clone(),
                ..Balance::default()
            },
        );
    }

    #[on]
    fn deposited(&self, event: &Envelope<Deposited>, docs: &mut Docs<Balance>) {
        docs.update(event.aggregate_id(), |doc| {
            doc.balance += event.event.amount;
            doc.positions.push(event.position);
        });
    }

    #[on]
    fn withdrawn(&self, event: &Envelope<Withdrawn>, docs: &mut Docs<Balance>) {
        docs.update(event.aggregate_id(), |doc| {
            doc.balance -= event.event.amount
        });
    }
}

/// Per owner: the sum of their accounts' balances. Needs each account's owner, kept under
/// `account:{id}`, to know whose total a deposit adds to: a lookup across keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnerEntry {
    pub owner: String,
    pub total: u64,
}

/// Holds configuration, so it is added by hand rather than discovered.
#[projection(name = "owner_totals", on_failure = skip)]
#[derive(Debug)]
pub struct OwnerTotals {
    /// Deposits above this are refused (to see the skip policy).
    pub largest_deposit: u64,
}

#[projection]
impl OwnerTotals {
    #[on]
    fn opened(&self, event: &Envelope<Opened>, docs: &mut Docs<OwnerEntry>) {
        docs.insert(
            &format!("account:{}", event.aggregate_id()),
            OwnerEntry {
                owner: event.event.owner.clone(),
                total: 0,
            },
        );
    }

    #[on]
    fn deposited(
        &self,
        event: &Envelope<Deposited>,
        docs: &mut Docs<OwnerEntry>,
    ) -> Result<(), String> {
        if event.event.amount > self.largest_deposit {
            return Err(format!("a deposit of {} is too large", event.event.amount));
        }
        let Some(account) = docs.get(&format!("account:{}", event.aggregate_id())) else {
            return Err("deposit to an unknown account".into());
        };
        let owner = account.owner.clone();
        docs.upsert(&format!("owner:{owner}"), |entry| {
            entry.owner = owner.clone();
            entry.total += event.event.amount;
        });
        Ok(())
    }

    #[on]
    fn rolled_back(
        &self,
        _: &Envelope<RolledBack>,
        _: &mut Docs<OwnerEntry>,
    ) -> Result<(), String> {
        Err("owner totals do not follow rollbacks".into())
    }
}

#[test]
fn projections_declared_with_the_macro_are_discovered_unless_they_need_arguments() {
    let names = Projections::discover().names();
    assert!(names.contains(&"balances"), "{names:?}");
    assert!(!names.contains(&"owner_totals"), "{names:?}");
}

#[test]
fn a_projection_without_a_version_gets_a_fingerprint_of_its_handlers() {
    assert!(<Balances as Projection>::VERSION.starts_with("fp-"));
    assert_eq!(
        <Balances as Projection>::EVENTS,
        ["account.opened", "account.deposited", "account.withdrawn"]
    );
    assert_eq!(<Balances as Projection>::INDEXES, ["owner"]);
}

async fn open(accounts: &Repository<Account>, id: &str, owner: &str) {
    accounts
        .execute(
            &id.to_owned(),
            Open {
                owner: owner.into(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn documents_follow_commits_and_filter_on_their_index() {
    let store = Arc::new(MemoryStore::new());
    let daemon = Daemon::start(store.clone(), Projections::new().with(Balances))
        .await
        .unwrap();
    let accounts = Repository::<Account>::new(store.clone());
    open(&accounts, "a", "ann").await;
    open(&accounts, "b", "bob").await;
    open(&accounts, "c", "ann").await;
    accounts
        .execute(&"a".to_owned(), Deposit { amount: 10 })
        .await
        .unwrap();
    let last = accounts
        .execute(&"a".to_owned(), Withdraw { amount: 3 })
        .await
        .unwrap();
    assert!(daemon
        .wait_for("balances", last[0].position, Duration::from_secs(10))
        .await
        .unwrap());
    let balances = Documents::<Balances>::of(&*store);
    let a = balances.get("a").await.unwrap().unwrap();
    assert_eq!((a.owner.as_str(), a.balance), ("ann", 7));
    let anns = balances.where_eq("owner", "ann").all().await.unwrap();
    assert_eq!(
        anns.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    let unknown = Documents::<Balances>::of(&*store)
        .where_eq("balance", 7)
        .list()
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("no index on `balance`"),
        "{unknown}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_handler_can_look_up_another_document_and_a_failure_skips_only_that_event() {
    let store = Arc::new(MemoryStore::new());
    let accounts = Repository::<Account>::new(store.clone());
    open(&accounts, "a", "ann").await;
    open(&accounts, "b", "ann").await;
    for (id, amount) in [("a", 5), ("b", 7), ("a", 1_000), ("b", 1)] {
        accounts
            .execute(&id.to_owned(), Deposit { amount })
            .await
            .unwrap();
    }
    let projections = Projections::new().with(OwnerTotals {
        largest_deposit: 100,
    });
    let daemon = Daemon::start(store.clone(), projections).await.unwrap();
    let head = store.head_position().await.unwrap();
    assert!(daemon
        .wait_for("owner_totals", head, Duration::from_secs(10))
        .await
        .unwrap());
    let ann = Documents::<OwnerTotals>::of(&*store)
        .get("owner:ann")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ann.total, 13,
        "the large deposit was set aside, the rest applied once"
    );
    let letters = store.dead_letters("owner_totals").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("a deposit of 1000 is too large"),
        "{}",
        letters[0].error
    );
    let health = daemon.health().await.unwrap();
    assert_eq!(health[0].dead_letters, 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn commands_neither_wait_for_nor_fail_on_a_stopped_projection() {
    /// Fails on every deposit, under the default stop policy.
    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    pub struct Nothing;

    #[projection(name = "always_failing", per_stream)]
    #[derive(Debug)]
    pub struct AlwaysFailing;

    #[projection]
    impl AlwaysFailing {
        #[on]
        fn deposited(&self, _: &Deposited, _: &mut Docs<Nothing>) -> Result<(), String> {
            Err("broken read model".into())
        }
    }

    let store = Arc::new(MemoryStore::new());
    let daemon = Daemon::start(store.clone(), Projections::new().with(AlwaysFailing))
        .await
        .unwrap();
    let accounts = Repository::<Account>::new(store.clone());
    open(&accounts, "a", "ann").await;
    for amount in 1..=20 {
        accounts
            .execute(&"a".to_owned(), Deposit { amount })
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = daemon.health().await.unwrap();
        if let HealthState::Stopped(stopped) = &health[0].state {
            assert!(
                stopped.error.contains("broken read model"),
                "{}",
                stopped.error
            );
            assert!(
                stopped.error.contains("account/a"),
                "names the stream: {}",
                stopped.error
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the projection never stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Still accepting commands.
    accounts
        .execute(&"a".to_owned(), Deposit { amount: 1 })
        .await
        .unwrap();
    assert_eq!(
        accounts.load(&"a".to_owned()).await.unwrap().state.balance,
        211
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn after_a_rollback_a_per_stream_read_model_equals_a_rebuild() {
    let store = Arc::new(MemoryStore::new());
    let projections = Projections::new().with(Balances);
    let daemon = Daemon::start(store.clone(), projections.clone())
        .await
        .unwrap();
    let accounts = Repository::<Account>::new(store.clone());
    open(&accounts, "a", "ann").await;
    for amount in [10, 20, 30] {
        accounts
            .execute(&"a".to_owned(), Deposit { amount })
            .await
            .unwrap();
    }
    let marker = accounts
        .rollback(&"a".to_owned(), 2, "ops", "undo")
        .await
        .unwrap();
    accounts
        .execute(&"a".to_owned(), Deposit { amount: 5 })
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();
    assert!(daemon
        .wait_for("balances", head, Duration::from_secs(10))
        .await
        .unwrap());
    daemon.shutdown().await;
    let live = Documents::<Balances>::of(&*store)
        .get("a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        live.balance, 15,
        "10 survives the rollback to version 2, then 5"
    );
    assert!(marker.position < head);
    // The same as a rebuild, and as the projection applied in memory to the whole log.
    es_core::rebuild(&*store, &projections, "balances", |_| {})
        .await
        .unwrap();
    let rebuilt = Documents::<Balances>::of(&*store)
        .get("a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rebuilt, live);
    let log: Vec<_> = store.stream_all(1).try_collect().await.unwrap();
    assert_eq!(project_in_memory(&Balances, &log).unwrap()["a"], live);
}

#[tokio::test]
async fn a_cross_stream_projection_must_handle_rollbacks() {
    // OwnerTotals handles rollback markers by failing: its skip policy sets them aside.
    let store = Arc::new(MemoryStore::new());
    let accounts = Repository::<Account>::new(store.clone());
    open(&accounts, "a", "ann").await;
    accounts
        .execute(&"a".to_owned(), Deposit { amount: 5 })
        .await
        .unwrap();
    accounts
        .rollback(&"a".to_owned(), 1, "ops", "undo")
        .await
        .unwrap();
    let daemon = Daemon::start(
        store.clone(),
        Projections::new().with(OwnerTotals {
            largest_deposit: 100,
        }),
    )
    .await
    .unwrap();
    let head = store.head_position().await.unwrap();
    assert!(daemon
        .wait_for("owner_totals", head, Duration::from_secs(10))
        .await
        .unwrap());
    let letters = store.dead_letters("owner_totals").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event_name, "es.rolled_back");
    daemon.shutdown().await;
}
