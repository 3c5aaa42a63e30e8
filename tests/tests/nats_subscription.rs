//! Subscriptions against a real NATS JetStream: a republished event and a batch whose handler
//! failed are applied once; and SIGKILL at random moments of a subscriber while events keep
//! being appended and published: afterwards the read model equals the count from the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use es_core::nats::{
    ProjectionHandler, Publisher, Subscription, SubscriptionHandler, SubscriptionHealth,
};
use es_core::{
    BoxError, Documents, Event, EventLog, EventLogExt, ExpectedVersion, MemoryStore, Metadata,
    NewEvent, Payload, ReadStore, ReadTx, RecordedEvent, Store, StoreError, StreamId,
};
use es_tests::crash::{Appended, Tallies, Tally};
use es_tests::nats::{crash_publisher, crash_subscription, jetstream, unique_prefix};
use es_tests::stores;
use futures::TryStreamExt;

const CRASH_CHILD: &str = env!("CARGO_BIN_EXE_es-crash-child");
const NATS_CHILD: &str = env!("CARGO_BIN_EXE_es-nats-child");

fn cycles() -> u64 {
    std::env::var("ES_CRASH_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20)
}

/// A pseudo-random pause from 200 to 1000 ms, different each cycle: long enough for a child
/// to start, wait out what the previous one left unacknowledged, and work.
fn pause(cycle: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(200 + (nanos ^ cycle.wrapping_mul(2_654_435_761)) % 800)
}

fn appended(batch: u64) -> NewEvent {
    NewEvent {
        event_name: Appended::NAME.into(),
        schema_version: 1,
        metadata: Metadata::new(uuid::Uuid::now_v7()),
        payload: Payload::encode(&Appended {
            batch,
            size: 1,
            index: 0,
        })
        .unwrap(),
    }
}

/// Waits until JetStream holds nothing undelivered or unacknowledged for the subscription.
async fn drained(subscription: &Subscription, timeout: Duration) -> SubscriptionHealth {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let health = subscription.health().await.unwrap();
        if health.pending == 0 && health.unacknowledged == 0 {
            return health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription did not drain: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tally a count of the log gives for one stream.
async fn tally_from_log(store: &dyn EventLog, stream: &StreamId) -> Tally {
    let events: Vec<RecordedEvent> = store.stream_events(stream, 1).try_collect().await.unwrap();
    Tally {
        events: events.len() as u64,
        batch_sum: events
            .iter()
            .map(|event| event.event.decode::<Appended>().unwrap().batch)
            .sum(),
    }
}

/// Fails its first call after writing, to show the writes roll back with it.
struct FailsOnce {
    inner: ProjectionHandler<Tallies>,
    calls: AtomicUsize,
}

#[async_trait]
impl SubscriptionHandler for FailsOnce {
    async fn prepare(&self, store: &dyn ReadStore) -> Result<(), StoreError> {
        self.inner.prepare(store).await
    }

    async fn handle(
        &self,
        store: &dyn ReadStore,
        tx: &mut (dyn ReadTx + '_),
        events: &[RecordedEvent],
    ) -> Result<(), BoxError> {
        self.inner.handle(store, tx, events).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err("the first batch fails after its writes".into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_republished_event_and_a_failed_batch_are_applied_once() {
    let Some(context) = jetstream().await else {
        return;
    };
    let source = Arc::new(MemoryStore::new());
    let stream = StreamId::new("crash", "once").unwrap();
    source
        .append(
            &stream,
            ExpectedVersion::NoStream,
            (1..=10).map(appended).collect(),
        )
        .await
        .unwrap();
    let prefix = unique_prefix("once");
    let publisher_config = crash_publisher(&prefix);
    let stream_name = publisher_config.stream.clone();
    let publisher = Publisher::start(source.clone(), context.clone(), publisher_config)
        .await
        .unwrap();
    let head = source.head_position().await.unwrap();
    assert!(publisher
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap());
    publisher.shutdown().await;

    // The same event once more, as a publisher down longer than the duplicate window would
    // send it: same headers, but JetStream is not asked to drop it.
    let js_stream = context.get_stream(&stream_name).await.unwrap();
    let first = js_stream.get_raw_message(1).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    for (name, values) in first.headers.iter() {
        if *name != async_nats::header::NATS_MESSAGE_ID {
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    context
        .publish_with_headers(first.subject.clone(), headers, first.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();

    let target = Arc::new(MemoryStore::new());
    let mut config = crash_subscription(&stream_name);
    config.retry_after = Duration::from_millis(50);
    let handler = FailsOnce {
        inner: ProjectionHandler::new(Tallies),
        calls: AtomicUsize::new(0),
    };
    let subscription = Subscription::start(target.clone(), context.clone(), config, handler)
        .await
        .unwrap();
    let health = drained(&subscription, Duration::from_secs(30)).await;
    subscription.shutdown().await;
    let tally = Documents::<Tallies>::of(&*target)
        .get("once")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(tally, tally_from_log(&*source, &stream).await);
    assert_eq!((health.applied, health.duplicates), (10, 1));
    context.delete_stream(&stream_name).await.unwrap();
}

/// The last `duplicates` figure a subscriber child printed before it was killed.
fn last_duplicates(stdout: std::process::ChildStdout) -> u64 {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| line.rsplit_once("duplicates ")?.1.parse().ok())
        .last()
        .unwrap_or(0)
}

/// Deletes a SQLite store's files once a test passed (a failed one leaves them to look at).
fn remove_sqlite(spec: &str) {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}

fn sqlite_spec() -> String {
    let dir = std::env::temp_dir().join("es-nats-crash");
    std::fs::create_dir_all(&dir).unwrap();
    format!(
        "sqlite:{}",
        dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()))
            .display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_killed_at_random_moments_applies_each_event_exactly_once() {
    let Some(context) = jetstream().await else {
        return;
    };
    let target_spec = sqlite_spec();
    let target = es_tests::crash::open(&target_spec).await;
    crash_subscription_cycles(context, &target_spec, target, "sqlite").await;
    remove_sqlite(&target_spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_into_postgres_killed_at_random_moments_applies_each_event_exactly_once() {
    let Some(context) = jetstream().await else {
        return;
    };
    let Some(store) = stores::postgres_store_with_prefix("es_nats_sub_").await else {
        return;
    };
    let url = stores::postgres_url().await.unwrap();
    let spec = format!("postgres:{url}#{}", store.schema());
    crash_subscription_cycles(context, &spec, Arc::new(store.clone()), "postgres").await;
    store.drop_schema().await.unwrap();
}

/// Events appended to a SQLite log by a child and published by this process; a subscriber
/// child feeding `target` killed at random moments.
async fn crash_subscription_cycles(
    context: async_nats::jetstream::Context,
    target_spec: &str,
    target: Arc<dyn Store>,
    label: &str,
) {
    let source_spec = sqlite_spec();
    let source: Arc<dyn Store> = es_tests::crash::open(&source_spec).await;
    let prefix = unique_prefix("crashsub");
    let publisher_config = crash_publisher(&prefix);
    let stream_name = publisher_config.stream.clone();
    // This process publishes what a child keeps appending; another child subscribes and is
    // killed at random moments.
    let publisher = Publisher::start(source.clone(), context.clone(), publisher_config)
        .await
        .unwrap();
    let stream_id = format!("subscribed-{}", uuid::Uuid::new_v4().simple());
    let mut recognised_by_children = 0;
    for cycle in 0..cycles() {
        let mut appender = Command::new(CRASH_CHILD)
            .args(["append", &source_spec, &stream_id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut subscriber = Command::new(NATS_CHILD)
            .args(["subscribe", target_spec, &stream_name])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(pause(cycle)).await;
        subscriber.kill().unwrap(); // SIGKILL
        subscriber.wait().unwrap();
        recognised_by_children += last_duplicates(subscriber.stdout.take().unwrap());
        appender.kill().unwrap();
        appender.wait().unwrap();
    }
    let head = es_tests::crash::settled_head(&*source).await;
    assert!(publisher
        .wait_for(head, Duration::from_secs(120))
        .await
        .unwrap());
    publisher.shutdown().await;

    // Finish in this process: what the children left unacknowledged comes back after the
    // ack wait and must be recognised, not applied again.
    let subscription = Subscription::start(
        target.clone(),
        context.clone(),
        crash_subscription(&stream_name),
        ProjectionHandler::new(Tallies),
    )
    .await
    .unwrap();
    let health = drained(&subscription, Duration::from_secs(120)).await;
    subscription.shutdown().await;
    let stream = StreamId::new("crash", &stream_id).unwrap();
    let expected = tally_from_log(&*source, &stream).await;
    let tally = Documents::<Tallies>::of(&*target)
        .get(&stream_id)
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(tally, expected, "every event applied exactly once");
    let inbox = target.generations("inbox_crash_tallies_in").await.unwrap();
    assert_eq!(inbox.len(), 1, "the inbox table exists");
    context.delete_stream(&stream_name).await.unwrap();
    remove_sqlite(&source_spec);
    println!(
        "nats subscription under SIGKILL into {label}: cycles {}, events in log {}, applied {} (by the children {}, by the last run {}), redeliveries recognised by the children at least {recognised_by_children} and by the last run {}, applied twice 0, lost 0",
        cycles(),
        expected.events,
        tally.events,
        tally.events - health.applied,
        health.applied,
        health.duplicates
    );
}
