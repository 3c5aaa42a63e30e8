//! Repository behaviour on the memory store: commands, rejections, metadata, retries, errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use es_core::{
    CommandMetadata, Conflict, EventLog, EventStore, ExpectedVersion, GivenExt, MemoryStore,
    Metadata, NewEvent, Payload, RecordedEvent, Repository, RepositoryError, RetryPolicy, Snapshot,
    SnapshotStore, StoreError, StreamId,
};
use es_tests::bank::*;
use es_tests::faults::{LosesReplies, Lost};
use uuid::Uuid;

fn id(text: &str) -> String {
    text.to_owned()
}

#[tokio::test]
async fn a_command_appends_its_events_and_the_state_is_rebuilt_from_them() {
    let accounts = Repository::<Account>::new(MemoryStore::new());
    accounts
        .execute(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    let committed = accounts
        .execute(&id("a"), Deposit { amount: 40 })
        .await
        .unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        (
            committed[0].version,
            committed[0].aggregate_type(),
            committed[0].aggregate_id()
        ),
        (2, "account", "a")
    );
    assert_eq!(
        committed[0].event,
        AccountEvent::Deposited(Deposited { amount: 40 })
    );
    let loaded = accounts.load(&id("a")).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (40, 2));
}

#[tokio::test]
async fn a_rejected_command_returns_the_domain_error_and_appends_nothing() {
    let store = MemoryStore::new();
    let accounts = Repository::<Account>::new(store.clone());
    accounts
        .execute(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    let error = accounts
        .execute(&id("a"), Withdraw { amount: 5 })
        .await
        .unwrap_err();
    assert_eq!(
        error.rejection(),
        Some(&AccountError::InsufficientFunds {
            balance: 0,
            requested: 5
        })
    );
    assert_eq!(
        store
            .stream_version(&StreamId::new("account", "a").unwrap())
            .await
            .unwrap(),
        1
    );
    assert!(store.read_all(1, 100).await.unwrap().len() == 1);
}

#[tokio::test]
async fn metadata_passed_with_a_command_reaches_every_event_with_one_correlation_id() {
    let accounts = Repository::<Account>::new(MemoryStore::new());
    let correlation = Uuid::now_v7();
    let causation = Uuid::now_v7();
    let metadata = CommandMetadata::new()
        .correlation_id(correlation)
        .causation_id(causation)
        .with("user", "ann");
    accounts
        .execute_with(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
            metadata.clone(),
        )
        .await
        .unwrap();
    let committed = accounts
        .execute_with(&id("a"), Deposit { amount: 1 }, metadata)
        .await
        .unwrap();
    let history = accounts
        .store()
        .read_stream(&StreamId::new("account", "a").unwrap(), 1, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    for event in &history {
        assert_eq!(event.metadata.correlation_id, correlation);
        assert_eq!(event.metadata.causation_id, Some(causation));
        assert_eq!(
            event.metadata.extra.get("user").map(String::as_str),
            Some("ann")
        );
    }
    assert_ne!(history[0].metadata.event_id, history[1].metadata.event_id);
    assert_eq!(committed[0].metadata, history[1].metadata);
}

#[tokio::test]
async fn without_a_correlation_id_each_command_gets_its_own() {
    let accounts = Repository::<Account>::new(MemoryStore::new());
    let first = accounts
        .execute(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    let second = accounts
        .execute(&id("a"), Deposit { amount: 1 })
        .await
        .unwrap();
    assert_ne!(
        first[0].metadata.correlation_id,
        second[0].metadata.correlation_id
    );
}

#[tokio::test]
async fn concurrent_commands_on_one_stream_all_land_through_retries() {
    let store = MemoryStore::new();
    let accounts = Repository::<Account>::new(store.clone()).with_retry(RetryPolicy {
        max_attempts: 1000,
        ..RetryPolicy::default()
    });
    accounts
        .execute(
            &id("shared"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                accounts
                    .execute(&id("shared"), Deposit { amount: 1 })
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = accounts.load(&id("shared")).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (160, 161));
}

/// A store that always reports a conflict, to see the policy give up.
#[derive(Debug)]
struct AlwaysConflicting(MemoryStore);

#[async_trait::async_trait]
impl EventLog for AlwaysConflicting {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        _: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(Conflict {
            stream: stream.clone(),
            expected,
            actual: 99,
        }
        .into())
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, from, limit).await
    }
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(from, limit).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.0.stream_version(stream).await
    }
}

#[async_trait::async_trait]
impl SnapshotStore for AlwaysConflicting {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.0.load_snapshot(stream).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.0.save_snapshot(snapshot).await
    }
}

#[tokio::test]
async fn the_retry_policy_is_bounded_and_the_conflict_says_expected_and_actual() {
    let store: Arc<dyn EventStore> = Arc::new(AlwaysConflicting(MemoryStore::new()));
    let accounts = Repository::<Account>::new(store).with_retry(RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    });
    let error = accounts
        .execute(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap_err();
    match &error {
        RepositoryError::Conflict { conflict, attempts } => {
            assert_eq!(
                (
                    conflict.expected,
                    conflict.actual,
                    *attempts,
                    conflict.stream.as_str()
                ),
                (ExpectedVersion::Exact(0), 99, 3, "account/a")
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("expected version 0, but the stream is at version 99"),
        "{error}"
    );
}

async fn append_raw(store: &MemoryStore, name: &str, schema_version: u32, payload: &str) {
    let event = NewEvent {
        event_name: name.into(),
        schema_version,
        metadata: Metadata::new(Uuid::now_v7()),
        payload: Payload::from_json_text(payload),
    };
    store
        .append(
            &StreamId::new("account", "x").unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_stored_event_is_an_error_naming_stream_version_and_name() {
    let store = MemoryStore::new();
    append_raw(&store, "account.opened", 1, r#"{"owner":"x"}"#).await;
    append_raw(&store, "account.frozen", 1, "{}").await;
    let error = Repository::<Account>::new(store)
        .load(&id("x"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, RepositoryError::Decode(_)), "{error:?}");
    for part in [
        "account.frozen",
        "version 2",
        "account/x",
        "account.opened, account.deposited",
    ] {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
}

#[tokio::test]
async fn a_corrupt_payload_is_an_error_naming_stream_version_and_name() {
    let store = MemoryStore::new();
    append_raw(&store, "account.opened", 1, r#"{"owner":"x"}"#).await;
    append_raw(&store, "account.deposited", 1, r#"{"amount":"lots"}"#).await;
    let error = Repository::<Account>::new(store)
        .load(&id("x"))
        .await
        .unwrap_err()
        .to_string();
    for part in [
        "account.deposited",
        "version 2",
        "account/x",
        "does not deserialize",
    ] {
        assert!(error.contains(part), "`{part}` missing from: {error}");
    }
}

#[tokio::test]
async fn an_event_newer_than_the_code_is_an_error_naming_both_versions() {
    let store = MemoryStore::new();
    append_raw(&store, "account.opened", 3, r#"{"owner":"x"}"#).await;
    let error = Repository::<Account>::new(store)
        .load(&id("x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("stored schema version 3 is newer than this code's version 1"),
        "{error}"
    );
}

#[test]
fn the_fixture_checks_events_and_errors() {
    Account::given([])
        .when(Open {
            owner: "ann".into(),
        })
        .then([Opened {
            owner: "ann".into(),
        }
        .into()]);
    Account::given([
        Opened {
            owner: "ann".into(),
        }
        .into(),
        Deposited { amount: 5 }.into(),
    ])
    .when(Withdraw { amount: 6 })
    .then_error(AccountError::InsufficientFunds {
        balance: 5,
        requested: 6,
    });
    let state = Account::given([Opened {
        owner: "ann".into(),
    }
    .into()])
    .when(Deposit { amount: 7 })
    .then([Deposited { amount: 7 }.into()]);
    assert_eq!(state.balance, 7);
}

#[test]
#[should_panic(expected = "the command emitted other events than expected")]
fn the_fixture_fails_when_other_events_are_emitted() {
    Account::given([Opened {
        owner: "ann".into(),
    }
    .into()])
    .when(Deposit { amount: 7 })
    .then([Deposited { amount: 8 }.into()]);
}

/// A repository over the memory store whose next append loses its reply `lost`, and an open
/// account `a` in it.
async fn losing_replies(
    lost: Lost,
    retry: RetryPolicy,
) -> (Arc<LosesReplies>, Repository<Account>) {
    let store = Arc::new(LosesReplies::new(Arc::new(MemoryStore::new()), lost));
    let accounts = Repository::<Account>::new(Arc::clone(&store)).with_retry(retry);
    accounts
        .execute(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    (store, accounts)
}

/// The connection drops after COMMIT was sent and the append had committed: the repository
/// sends it again with the same command id, and the store answers with the first outcome.
#[tokio::test]
async fn an_append_committed_before_its_reply_was_lost_is_applied_once() {
    let (store, accounts) = losing_replies(Lost::AfterCommit, RetryPolicy::default()).await;
    store.lose_next(1);
    let committed = accounts
        .execute(&id("a"), Deposit { amount: 100 })
        .await
        .unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].version, 2);
    let stored = store
        .read_stream(&committed[0].stream, 1, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "one deposit stored: {stored:?}");
    assert_eq!(stored[1].metadata.event_id, committed[0].metadata.event_id);
    assert_eq!(
        accounts.load(&id("a")).await.unwrap().state.balance,
        100,
        "credited once"
    );
    // The cached state is right too: the next command sees one deposit.
    accounts
        .execute(&id("a"), Withdraw { amount: 100 })
        .await
        .unwrap();
    assert_eq!(accounts.load(&id("a")).await.unwrap().state.balance, 0);
    assert_eq!(store.replies_lost(), 1);
    println!(
        "retried {}, appended once",
        store.appends() - 3 // open, deposit, withdraw
    );
}

/// The connection drops before the append committed: the same append sent again appends.
#[tokio::test]
async fn an_append_lost_before_commit_is_sent_again_and_applied_once() {
    let (store, accounts) = losing_replies(Lost::BeforeCommit, RetryPolicy::default()).await;
    store.lose_next(2);
    let committed = accounts
        .execute(&id("a"), Deposit { amount: 100 })
        .await
        .unwrap();
    assert_eq!(committed[0].version, 2);
    assert_eq!(accounts.load(&id("a")).await.unwrap().state.balance, 100);
    assert_eq!(store.stream_version(&committed[0].stream).await.unwrap(), 2);
    println!("retried {}, appended once", store.appends() - 2);
}

/// A caller that gave the command an id and lost the reply (the retry policy gave up) runs
/// it again with the same id: it gets the first run's events, and the account is credited
/// once, in the store and in the cache.
#[tokio::test]
async fn a_caller_retry_with_the_same_command_id_returns_the_first_outcome() {
    let (store, accounts) = losing_replies(Lost::AfterCommit, RetryPolicy::none()).await;
    let command_id = Uuid::now_v7();
    store.lose_next(1);
    let lost = accounts
        .execute_with(
            &id("a"),
            Deposit { amount: 100 },
            CommandMetadata::new().command_id(command_id),
        )
        .await;
    assert!(
        matches!(
            lost,
            Err(RepositoryError::Store(StoreError::OutcomeUnknown { .. }))
        ),
        "{lost:?}"
    );
    // The caller retries the same command: the aggregate decides a deposit again on a state
    // that already holds the first one, and the store answers with the first outcome.
    let again = accounts
        .execute_with(
            &id("a"),
            Deposit { amount: 100 },
            CommandMetadata::new().command_id(command_id),
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].version, &again[0].event),
        (2, &AccountEvent::Deposited(Deposited { amount: 100 }))
    );
    assert_eq!(again[0].metadata.command_id, Some(command_id));
    let once_more = accounts
        .execute_with(
            &id("a"),
            Deposit { amount: 100 },
            CommandMetadata::new().command_id(command_id),
        )
        .await
        .unwrap();
    assert_eq!(once_more, again, "every retry returns the first outcome");
    assert_eq!(store.stream_version(&again[0].stream).await.unwrap(), 2);
    // The cache did not apply the deposit twice: a withdrawal of 101 is refused.
    let refused = accounts
        .execute(&id("a"), Withdraw { amount: 101 })
        .await
        .unwrap_err();
    assert_eq!(
        refused.rejection(),
        Some(&AccountError::InsufficientFunds {
            balance: 100,
            requested: 101
        })
    );
    println!("retried 2, appended once");
}

/// Without a caller's id each call is its own command, but all events of one call share one.
#[tokio::test]
async fn each_call_gets_its_own_command_id_shared_by_its_events() {
    let accounts = Repository::<Account>::new(MemoryStore::new());
    let opened = accounts
        .execute(
            &id("a"),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    let first = accounts
        .execute(&id("a"), Deposit { amount: 1 })
        .await
        .unwrap();
    let second = accounts
        .execute(&id("a"), Deposit { amount: 1 })
        .await
        .unwrap();
    let ids = [&opened[0], &first[0], &second[0]].map(|event| event.metadata.command_id);
    assert!(ids.iter().all(Option::is_some));
    assert_ne!(ids[1], ids[2], "two calls are two commands");
    assert_eq!(accounts.load(&id("a")).await.unwrap().state.balance, 2);
}
