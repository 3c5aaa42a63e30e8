//! Time travel, history, rollback, snapshots and the aggregate cache, on every store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use counting::CountingStore;
use es_core::{
    aggregate, Change, Event, EventLogExt, EventStore, Payload, RecordedEvent, Repository,
    RolledBack, Snapshot, StreamId,
};
use es_tests::bank::*;
use es_tests::{counting, stores};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

type Store = Arc<dyn EventStore>;

macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        mod memory { $( #[tokio::test(flavor = "multi_thread")] async fn $case() { if let Some(store) = super::stores::memory().await { super::$case(store).await } } )* }
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $case() { if let Some(store) = super::stores::sqlite().await { super::$case(store).await } } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $case() {
            if let Some(store) = super::stores::postgres_store().await {
                super::$case(std::sync::Arc::new(store.clone())).await;
                store.drop_schema().await.unwrap();
            }
        } )* }
    };
}

on_every_store!(
    loads_as_of_a_version_and_as_of_a_time,
    history_lists_every_event_with_versions_times_and_metadata,
    rollback_returns_to_an_earlier_state_and_loses_nothing,
    rollback_to_the_current_version_or_later_is_refused,
    a_stream_with_fifty_rollbacks_loads_in_reads_linear_in_its_length,
    snapshots_are_taken_every_n_events_and_load_equals_full_replay,
    a_snapshot_of_another_shape_or_unreadable_is_ignored,
    a_stale_cached_copy_is_dropped_on_conflict,
    a_rejection_from_a_stale_cached_copy_is_decided_again,
    a_retry_after_a_conflict_reads_only_the_events_it_missed,
    a_retry_after_a_conflict_over_a_rollback_rebuilds_the_state,
);

fn id(text: &str) -> String {
    text.to_owned()
}

async fn open_account(accounts: &Repository<Account>, name: &str) {
    accounts
        .execute(&id(name), Open { owner: name.into() })
        .await
        .unwrap();
}

async fn loads_as_of_a_version_and_as_of_a_time(store: Store) {
    let accounts = Repository::<Account>::new(store);
    open_account(&accounts, "a").await;
    accounts
        .execute(&id("a"), Deposit { amount: 10 })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    accounts
        .execute(&id("a"), Deposit { amount: 20 })
        .await
        .unwrap();

    let at_two = accounts.load_at_version(&id("a"), 2).await.unwrap();
    assert_eq!((at_two.version, at_two.state.balance), (2, 10));
    let at_one = accounts.load_at_version(&id("a"), 1).await.unwrap();
    assert_eq!(
        (at_one.version, at_one.state.balance, at_one.state.open),
        (1, 0, true)
    );
    let beyond = accounts.load_at_version(&id("a"), 99).await.unwrap();
    assert_eq!((beyond.version, beyond.state.balance), (3, 30));
    let then = accounts.load_as_of(&id("a"), between).await.unwrap();
    assert_eq!((then.version, then.state.balance), (2, 10));
    let before_anything = accounts
        .load_as_of(&id("a"), between - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        (before_anything.version, before_anything.state.open),
        (0, false)
    );
}

async fn history_lists_every_event_with_versions_times_and_metadata(store: Store) {
    let accounts = Repository::<Account>::new(store);
    let metadata = es_core::CommandMetadata::new().with("user", "ann");
    accounts
        .execute_with(
            &id("h"),
            Open {
                owner: "ann".into(),
            },
            metadata,
        )
        .await
        .unwrap();
    accounts
        .execute(&id("h"), Deposit { amount: 3 })
        .await
        .unwrap();
    let history = accounts.history(&id("h")).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        history[0].event,
        Change::Event(
            Opened {
                owner: "ann".into()
            }
            .into()
        )
    );
    assert_eq!(
        history[0].metadata.extra.get("user").map(String::as_str),
        Some("ann")
    );
    assert!(history[0].recorded_at <= history[1].recorded_at);
    assert_eq!(&*history[1].event_name, "account.deposited");
}

async fn rollback_returns_to_an_earlier_state_and_loses_nothing(store: Store) {
    let accounts = Repository::<Account>::new(Arc::clone(&store));
    open_account(&accounts, "r").await;
    accounts
        .execute(&id("r"), Deposit { amount: 10 })
        .await
        .unwrap();
    accounts
        .execute(&id("r"), Deposit { amount: 20 })
        .await
        .unwrap();
    let marker = accounts
        .rollback(&id("r"), 2, "ops@example.com", "double charge")
        .await
        .unwrap();
    assert_eq!((marker.version, marker.event.to_version), (4, 2));
    assert_eq!(
        marker
            .metadata
            .extra
            .get("rollback.reason")
            .map(String::as_str),
        Some("double charge")
    );

    // The state is the state at version 2, for this repository and a fresh one alike.
    assert_eq!(accounts.load(&id("r")).await.unwrap().state.balance, 10);
    let fresh = Repository::<Account>::new(Arc::clone(&store)).without_cache();
    assert_eq!(fresh.load(&id("r")).await.unwrap().state.balance, 10);
    // Commands continue from there.
    accounts
        .execute(&id("r"), Withdraw { amount: 4 })
        .await
        .unwrap();
    let loaded = fresh.load(&id("r")).await.unwrap();
    assert_eq!((loaded.version, loaded.state.balance), (5, 6));

    // Nothing is lost: the rolled-back deposit and the marker stay in the history, and the
    // past stays reachable.
    let history = accounts.history(&id("r")).await.unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(
        history[2].event,
        Change::Event(Deposited { amount: 20 }.into())
    );
    match &history[3].event {
        Change::RolledBack(RolledBack {
            to_version,
            by,
            reason,
        }) => {
            assert_eq!(
                (*to_version, by.as_str(), reason.as_str()),
                (2, "ops@example.com", "double charge")
            );
        }
        other => panic!("expected the marker, got {other:?}"),
    }
    assert_eq!(
        accounts
            .load_at_version(&id("r"), 3)
            .await
            .unwrap()
            .state
            .balance,
        30
    );
    assert_eq!(
        accounts
            .load_at_version(&id("r"), 4)
            .await
            .unwrap()
            .state
            .balance,
        10
    );

    // A second rollback, to before the first one's target, honours both.
    accounts
        .rollback(&id("r"), 1, "ops", "start over")
        .await
        .unwrap();
    assert_eq!(fresh.load(&id("r")).await.unwrap().state.balance, 0);
    accounts
        .rollback(&id("r"), 5, "ops", "undo the start over")
        .await
        .unwrap();
    assert_eq!(fresh.load(&id("r")).await.unwrap().state.balance, 6);
}

/// Each rollback marker used to replay the stream again from the start, recursively: 20
/// markers cost a million reads. A load now reads each event at most a few times.
async fn a_stream_with_fifty_rollbacks_loads_in_reads_linear_in_its_length(store: Store) {
    let counting = Arc::new(CountingStore::new(store));
    let accounts = Repository::<Account>::new(Arc::clone(&counting)).without_cache();
    open_account(&accounts, "many").await;
    let mut expected_balance = 0;
    for round in 1..=50u64 {
        for _ in 0..3 {
            accounts
                .execute(&id("many"), Deposit { amount: round })
                .await
                .unwrap();
        }
        // Undo the round's last deposit.
        let version = accounts.load(&id("many")).await.unwrap().version;
        accounts
            .rollback(&id("many"), version - 1, "ops", "undo one")
            .await
            .unwrap();
        expected_balance += 2 * round;
    }
    let length = accounts.history(&id("many")).await.unwrap().len() as u64;
    assert_eq!(length, 1 + 50 * 4);
    let before = counting.events_read();
    let loaded = accounts.load(&id("many")).await.unwrap();
    let read = counting.events_read() - before;
    assert_eq!(loaded.state.balance, expected_balance);
    assert_eq!(loaded.version, length);
    assert!(
        read <= 2 * length,
        "a load of {length} events with 50 rollbacks read {read} events"
    );
    println!("stream of {length} events, 50 rollbacks: one load read {read} events");
}

async fn rollback_to_the_current_version_or_later_is_refused(store: Store) {
    let accounts = Repository::<Account>::new(store);
    open_account(&accounts, "f").await;
    let error = accounts
        .rollback(&id("f"), 1, "ops", "nothing")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot roll `account/f` back to version 1: it is at version 1"),
        "{error}"
    );
    assert_eq!(accounts.history(&id("f")).await.unwrap().len(), 1);
}

/// Like `Account`, with a snapshot every 5 events.
#[aggregate(name = "snapshotted", id = String, error = AccountError, snapshot_every = 5)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshotted {
    balance: u64,
    deposits: u32,
}

#[aggregate]
impl Snapshotted {
    #[handle]
    fn deposit(&self, command: Deposit) -> Result<Deposited, AccountError> {
        Ok(Deposited {
            amount: command.amount,
        })
    }

    #[apply]
    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
        self.deposits += 1;
    }
}

async fn full_replay(store: &Store, id: &str) -> Snapshotted {
    let stream = &StreamId::new("snapshotted", id).unwrap();
    let events: Vec<RecordedEvent> = store.stream_events(stream, 1).try_collect().await.unwrap();
    let mut state = Snapshotted::default();
    for record in &events {
        let event = es_core::decode_event::<SnapshottedEvent>(record).unwrap();
        es_core::Aggregate::apply(&mut state, &event);
    }
    state
}

async fn snapshots_are_taken_every_n_events_and_load_equals_full_replay(store: Store) {
    let repository = Repository::<Snapshotted>::new(Arc::clone(&store)).without_cache();
    for amount in 1..=12 {
        repository
            .execute(&id("s"), Deposit { amount })
            .await
            .unwrap();
    }
    let snapshot = store
        .load_snapshot(&StreamId::new("snapshotted", "s").unwrap())
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(snapshot.version, 10);
    assert_eq!(
        snapshot.state_fingerprint,
        <Snapshotted as es_core::Aggregate>::STATE_FINGERPRINT
    );
    let loaded = repository.load(&id("s")).await.unwrap();
    assert_eq!(loaded.version, 12);
    assert_eq!(loaded.state, full_replay(&store, "s").await);
    assert_eq!(
        repository
            .load_at_version(&id("s"), 7)
            .await
            .unwrap()
            .state
            .balance,
        (1..=7).sum::<u64>()
    );
}

async fn a_snapshot_of_another_shape_or_unreadable_is_ignored(store: Store) {
    let repository = Repository::<Snapshotted>::new(Arc::clone(&store)).without_cache();
    for amount in 1..=3 {
        repository
            .execute(&id("x"), Deposit { amount })
            .await
            .unwrap();
    }
    let lying = |fingerprint: &str, state: &str| Snapshot {
        stream: StreamId::new("snapshotted", "x").unwrap(),
        version: 3,
        state_fingerprint: fingerprint.into(),
        state: Payload::from_json_text(state.to_owned()),
        taken_at: chrono::Utc::now(),
    };
    store
        .save_snapshot(lying(
            "Snapshotted:an-older-shape",
            r#"{"balance":999,"deposits":1}"#,
        ))
        .await
        .unwrap();
    assert_eq!(repository.load(&id("x")).await.unwrap().state.balance, 6);
    store
        .save_snapshot(lying(
            <Snapshotted as es_core::Aggregate>::STATE_FINGERPRINT,
            r#"{"nonsense":true}"#,
        ))
        .await
        .unwrap();
    assert_eq!(repository.load(&id("x")).await.unwrap().state.balance, 6);
}

async fn a_stale_cached_copy_is_dropped_on_conflict(store: Store) {
    // Two repositories: two service instances, each with its own cache.
    let first = Repository::<Account>::new(Arc::clone(&store));
    let second = Repository::<Account>::new(Arc::clone(&store));
    open_account(&first, "c").await;
    first
        .execute(&id("c"), Deposit { amount: 1 })
        .await
        .unwrap();
    second
        .execute(&id("c"), Deposit { amount: 10 })
        .await
        .unwrap();
    let committed = first
        .execute(&id("c"), Deposit { amount: 100 })
        .await
        .unwrap();
    assert_eq!(committed[0].version, 4);
    assert_eq!(second.load(&id("c")).await.unwrap().state.balance, 111);
}

async fn a_retry_after_a_conflict_reads_only_the_events_it_missed(store: Store) {
    let counting = Arc::new(CountingStore::new(store));
    let store: Store = Arc::clone(&counting) as Store;
    let first = Repository::<Account>::new(Arc::clone(&store));
    let second = Repository::<Account>::new(Arc::clone(&store));
    open_account(&first, "busy").await;
    // 150 deposits: the account snapshots every 100 events, so a full load would start at
    // version 100 and read 52 events; the retry reads the 1 it missed.
    for _ in 0..150 {
        first
            .execute(&id("busy"), Deposit { amount: 1 })
            .await
            .unwrap();
    }
    // Another instance moves the stream on: `first`'s cached copy (version 151) is stale.
    second
        .execute(&id("busy"), Deposit { amount: 10 })
        .await
        .unwrap();
    let read_before = counting.events_read();
    let committed = first
        .execute(&id("busy"), Deposit { amount: 100 })
        .await
        .unwrap();
    assert_eq!(committed[0].version, 153);
    assert_eq!(
        counting.events_read() - read_before,
        1,
        "the retry applies the one event it missed instead of loading the stream again"
    );
    assert_eq!(
        first.load(&id("busy")).await.unwrap().state.balance,
        260,
        "the caught-up state equals a full replay"
    );
}

async fn a_retry_after_a_conflict_over_a_rollback_rebuilds_the_state(store: Store) {
    let first = Repository::<Account>::new(Arc::clone(&store));
    let second = Repository::<Account>::new(Arc::clone(&store));
    open_account(&first, "undone").await;
    first
        .execute(&id("undone"), Deposit { amount: 5 })
        .await
        .unwrap();
    first
        .execute(&id("undone"), Deposit { amount: 7 })
        .await
        .unwrap();
    // Another instance rolls the stream back past `first`'s cached copy (balance 12): a
    // marker cannot be applied on top of a state, so the retry must rebuild.
    second
        .rollback(&id("undone"), 2, "ops", "the second deposit was a mistake")
        .await
        .unwrap();
    first
        .execute(&id("undone"), Deposit { amount: 100 })
        .await
        .unwrap();
    assert_eq!(
        first.load(&id("undone")).await.unwrap().state.balance,
        105,
        "decided on the rolled-back state"
    );
}

async fn a_rejection_from_a_stale_cached_copy_is_decided_again(store: Store) {
    let first = Repository::<Account>::new(Arc::clone(&store));
    let second = Repository::<Account>::new(Arc::clone(&store));
    open_account(&first, "d").await; // `first` caches a balance of 0
    second
        .execute(&id("d"), Deposit { amount: 100 })
        .await
        .unwrap();
    first
        .execute(&id("d"), Withdraw { amount: 50 })
        .await
        .expect("decided on the fresh balance, not the cached 0");
    assert_eq!(second.load(&id("d")).await.unwrap().state.balance, 50);
}

#[tokio::test]
async fn a_cached_aggregate_runs_commands_without_reading_its_stream() {
    let store = Arc::new(CountingStore::new(Arc::new(es_core::MemoryStore::new())));
    let accounts = Repository::<Account>::new(Arc::clone(&store) as Store);
    open_account(&accounts, "hot").await;
    let reads_after_first = store.stream_reads();
    for _ in 0..20 {
        accounts
            .execute(&id("hot"), Deposit { amount: 1 })
            .await
            .unwrap();
    }
    assert_eq!(
        store.stream_reads(),
        reads_after_first,
        "no stream read after the first command"
    );
    let uncached = Repository::<Account>::new(Arc::clone(&store) as Store).without_cache();
    uncached
        .execute(&id("hot"), Deposit { amount: 1 })
        .await
        .unwrap();
    assert!(
        store.stream_reads() > reads_after_first,
        "without the cache, commands replay"
    );
}

#[tokio::test]
async fn the_cache_holds_no_more_than_its_capacity() {
    let accounts = Repository::<Account>::new(es_core::MemoryStore::new()).with_cache(10);
    for n in 0..50 {
        open_account(&accounts, &format!("acct{n}")).await;
    }
    assert_eq!(accounts.cache().map(|cache| cache.len()), Some(10));
}

#[test]
fn the_rollback_marker_is_an_event_projections_can_handle() {
    assert_eq!(<RolledBack as Event>::NAME, "es.rolled_back");
}
