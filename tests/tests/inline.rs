//! Inline projections on every store: applied in the append's transaction, so a read after
//! the command sees them at once, and a refusal rejects the command with nothing appended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use es_core::{
    projection, Docs, Envelope, EventLog, Projections, ReadStoreExt, Repository, RepositoryError,
    Store, StreamId,
};
use es_tests::bank::{Account, AccountError, Deposit, Deposited, Open, Opened};
use es_tests::stores;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub owner: String,
    pub total: u64,
}

/// Refuses deposits over 1,000: the command is rejected, not the read model left behind.
#[projection(name = "inline_ledgers", inline, per_stream)]
#[derive(Debug)]
pub struct Ledgers;

#[projection]
impl Ledgers {
    #[on]
    fn opened(&self, event: &Envelope<Opened>, docs: &mut Docs<Ledger>) {
        docs.upsert(event.aggregate_id(), |ledger| {
            ledger.owner = event.event.owner.clone()
        });
    }

    #[on]
    fn deposited(
        &self,
        event: &Envelope<Deposited>,
        docs: &mut Docs<Ledger>,
    ) -> Result<(), String> {
        if event.event.amount > 1_000 {
            return Err(format!(
                "a deposit of {} needs a review",
                event.event.amount
            ));
        }
        docs.upsert(event.aggregate_id(), |ledger| {
            ledger.total += event.event.amount
        });
        Ok(())
    }
}

async fn case(store: Arc<dyn Store>) {
    let accounts = Repository::<Account>::new(store.clone())
        .inline(store.clone(), Projections::new().with(Ledgers));
    let id = format!("inline-{}", uuid::Uuid::new_v4().simple());
    accounts
        .execute(
            &id,
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    accounts.execute(&id, Deposit { amount: 40 }).await.unwrap();
    // No daemon, no wait: the documents were written with the events.
    let ledger = store
        .documents::<Ledgers>()
        .get(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ledger,
        Ledger {
            owner: "ann".into(),
            total: 40
        }
    );

    let refused = accounts
        .execute(&id, Deposit { amount: 5_000 })
        .await
        .unwrap_err();
    match &refused {
        RepositoryError::<AccountError>::InlineProjection {
            projection,
            version,
            event_name,
            error,
            ..
        } => {
            assert_eq!(
                (*projection, *version, event_name.as_str()),
                ("inline_ledgers", 3, "account.deposited")
            );
            assert!(error.contains("needs a review"), "{error}");
        }
        other => panic!("expected an inline projection's refusal, got {other:?}"),
    }
    assert!(
        refused.to_string().contains("appended nothing"),
        "{refused}"
    );
    let stream = StreamId::new("account", &id).unwrap();
    assert_eq!(
        store.stream_version(&stream).await.unwrap(),
        2,
        "nothing was appended"
    );
    assert_eq!(
        store
            .documents::<Ledgers>()
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .total,
        40
    );
    // The aggregate goes on from where it was.
    accounts.execute(&id, Deposit { amount: 2 }).await.unwrap();
    assert_eq!(accounts.load(&id).await.unwrap().state.balance, 42);
    assert_eq!(
        store
            .documents::<Ledgers>()
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .total,
        42
    );
}

#[tokio::test]
async fn inline_on_memory() {
    case(Arc::new(es_core::MemoryStore::new())).await;
}

#[tokio::test]
async fn inline_on_sqlite() {
    let store = stores::sqlite_store().await;
    case(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test]
async fn inline_on_postgres() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    case(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_daemon_reports_inline_projections_and_leaves_them_to_commands() {
    let store = Arc::new(es_core::MemoryStore::new());
    let daemon = es_core::Daemon::start(store.clone(), Projections::new().with(Ledgers))
        .await
        .unwrap();
    // An event appended without the projection (no command applying it inline): the daemon
    // does not apply it either; an inline projection is the commands' to write.
    let plain = Repository::<Account>::new(store.clone());
    plain
        .execute(
            &"plain".to_owned(),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        store.documents::<Ledgers>().get("plain").await.unwrap(),
        None
    );
    let health = daemon.health().await.unwrap();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].name, "inline_ledgers");
    assert_eq!(health[0].state, es_core::HealthState::Inline);
    assert_eq!(health[0].lag_events, 0);
    daemon.shutdown().await;
}
