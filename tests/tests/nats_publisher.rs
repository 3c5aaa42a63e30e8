//! The outbox publisher against a real NATS JetStream (127.0.0.1:4222, `ES_TEST_NATS_URL`):
//! what goes out, on which subject, with which headers; and SIGKILL at random moments while
//! another process keeps appending: afterwards JetStream holds each chosen event exactly once,
//! in log order per aggregate stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use es_core::nats::{self, EventFilter, Publisher, PublisherConfig};
use es_core::{
    DaemonConfig, EventLog, ExpectedVersion, HealthState, MemoryStore, ReadStore, Store, StreamId,
};
use es_tests::nats::{crash_publisher, jetstream, read_stream, unique_prefix};
use es_tests::stores;

const CRASH_CHILD: &str = env!("CARGO_BIN_EXE_es-crash-child");
const NATS_CHILD: &str = env!("CARGO_BIN_EXE_es-nats-child");

fn cycles() -> u64 {
    std::env::var("ES_CRASH_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20)
}

/// A pseudo-random pause from 50 to 400 ms, different each cycle.
fn pause(cycle: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(50 + (nanos ^ cycle.wrapping_mul(2_654_435_761)) % 350)
}

fn quick(config: PublisherConfig) -> PublisherConfig {
    PublisherConfig {
        pacing: DaemonConfig {
            poll_interval: Duration::from_millis(20),
            ..DaemonConfig::default()
        },
        ..config
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publishes_chosen_events_on_their_subjects_with_their_envelope() {
    let Some(context) = jetstream().await else {
        return;
    };
    let store = Arc::new(MemoryStore::new());
    let post = StreamId::new("post", "1").unwrap();
    let author = StreamId::new("author", "ann").unwrap();
    let draft = StreamId::new("draft", "9").unwrap();
    let t = es_core::testing::event;
    store
        .append(
            &post,
            ExpectedVersion::NoStream,
            vec![
                t("post.published", 1),
                t("post.edited", 2),
                t("post.published", 3),
            ],
        )
        .await
        .unwrap();
    store
        .append(&draft, ExpectedVersion::NoStream, vec![t("draft.saved", 4)])
        .await
        .unwrap();
    store
        .append(
            &author,
            ExpectedVersion::NoStream,
            vec![t("author.renamed", 5)],
        )
        .await
        .unwrap();
    let prefix = unique_prefix("shape");
    let config = quick(
        PublisherConfig::new("public")
            .subject_prefix(&prefix)
            .filter(
                EventFilter::none()
                    .event("post.published")
                    .aggregate_type("author"),
            ),
    );
    let stream = config.stream.clone();
    let publisher = Publisher::start(store.clone(), context.clone(), config.clone())
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();
    assert!(publisher
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap());
    let health = publisher.health().await.unwrap();
    assert_eq!((health.lag_events, health.checkpoint), (0, head + 1));
    assert_eq!(health.state, HealthState::CaughtUp);
    publisher.shutdown().await;

    let log = store.read_all(1, 100).await.unwrap();
    let chosen: Vec<_> = log
        .iter()
        .filter(|event| {
            &*event.event_name == "post.published" || event.aggregate_type() == "author"
        })
        .cloned()
        .collect();
    let published = read_stream(&context, &stream).await;
    let events: Vec<_> = published.iter().map(|(_, event)| event.clone()).collect();
    assert_eq!(events, chosen, "the chosen events, whole, in log order");

    // Subjects: prefix, aggregate type, event name with its dot escaped.
    let raw = context.get_stream(&stream).await.unwrap();
    let first = raw.get_raw_message(1).await.unwrap();
    assert_eq!(
        first.subject.as_str(),
        format!("{prefix}.post.post~2Epublished")
    );
    assert_eq!(
        first
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str(),
        chosen[0].metadata.event_id.to_string()
    );

    // A second start resumes from the checkpoint: nothing is sent twice, new events go out.
    store
        .append(
            &post,
            ExpectedVersion::Exact(3),
            vec![t("post.published", 6)],
        )
        .await
        .unwrap();
    let publisher = Publisher::start(store.clone(), context.clone(), config)
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();
    assert!(publisher
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap());
    publisher.shutdown().await;
    let published = read_stream(&context, &stream).await;
    assert_eq!(published.len(), chosen.len() + 1);
    context.delete_stream(&stream).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_publishers_of_one_name_take_turns_and_publish_each_event_once() {
    let Some(context) = jetstream().await else {
        return;
    };
    let store = Arc::new(MemoryStore::new());
    let prefix = unique_prefix("lease");
    let config = |holder: &str| {
        let mut config = quick(PublisherConfig::new("shared").subject_prefix(&prefix));
        config.pacing.holder = holder.to_owned();
        config.pacing.lease_ttl = Duration::from_millis(300);
        config
    };
    let stream_name = config("a").stream;
    let first = Publisher::start(store.clone(), context.clone(), config("a"))
        .await
        .unwrap();
    let second = Publisher::start(store.clone(), context.clone(), config("b"))
        .await
        .unwrap();
    let t = es_core::testing::event;
    for n in 0..20 {
        let stream = StreamId::new("item", &(n % 4).to_string()).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![t("item.added", n)])
            .await
            .unwrap();
    }
    let head = store.head_position().await.unwrap();
    assert!(first.wait_for(head, Duration::from_secs(20)).await.unwrap());
    let states = [
        first.health().await.unwrap().state,
        second.health().await.unwrap().state,
    ];
    assert!(
        states
            .iter()
            .any(|state| matches!(state, HealthState::Standby { .. })),
        "one of them waits: {states:?}"
    );
    // One stops (giving its lease up if it held it); the other holds it now, and goes on.
    first.shutdown().await;
    for n in 20..30 {
        let stream = StreamId::new("item", &(n % 4).to_string()).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![t("item.added", n)])
            .await
            .unwrap();
    }
    let head = store.head_position().await.unwrap();
    assert!(second
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap());
    second.shutdown().await;
    let published = read_stream(&context, &stream_name).await;
    let positions: Vec<u64> = published.iter().map(|(_, event)| event.position).collect();
    assert_eq!(
        positions,
        (1..=30).collect::<Vec<_>>(),
        "each event once, in log order"
    );
    context.delete_stream(&stream_name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_name_or_prefix_is_refused_before_anything_runs() {
    let Some(context) = jetstream().await else {
        return;
    };
    let store: Arc<dyn ReadStore> = Arc::new(MemoryStore::new());
    let error = Publisher::start(
        store.clone(),
        context.clone(),
        PublisherConfig::new("Bad-Name"),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`Bad-Name` cannot name a publisher"),
        "{error}"
    );
    let error = Publisher::start(
        store,
        context,
        PublisherConfig::new("fine").subject_prefix("es.>"),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("`es.>` cannot prefix subjects"),
        "{error}"
    );
}

/// Whether the last message in the stream is at or past the publisher's stored checkpoint.
async fn stream_ahead_of_checkpoint(
    context: &async_nats::jetstream::Context,
    store: &dyn ReadStore,
    stream: &str,
) -> bool {
    let Ok(mut stream) = context.get_stream(stream).await else {
        return false;
    };
    let last = stream.info().await.unwrap().state.last_sequence;
    if last == 0 {
        return false;
    }
    let message = stream.get_raw_message(last).await.unwrap();
    let position: u64 = message
        .headers
        .get(
            "Es-Position"
                .parse::<async_nats::header::HeaderName>()
                .unwrap(),
        )
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    let checkpoint = nats::publisher_health(store, "crash")
        .await
        .unwrap()
        .checkpoint;
    position >= checkpoint
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
async fn publisher_killed_at_random_moments_publishes_each_event_exactly_once_in_order() {
    let Some(context) = jetstream().await else {
        return;
    };
    let spec = sqlite_spec();
    let store: Arc<dyn Store> = es_tests::crash::open(&spec).await;
    crash_publisher_cycles(&context, &spec, store, "sqlite").await;
    remove_sqlite(&spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn publisher_on_postgres_killed_at_random_moments_publishes_each_event_exactly_once() {
    let Some(context) = jetstream().await else {
        return;
    };
    let Some(store) = stores::postgres_store_with_prefix("es_nats_crash_").await else {
        return;
    };
    let url = stores::postgres_url().await.unwrap();
    let spec = format!("postgres:{url}#{}", store.schema());
    crash_publisher_cycles(&context, &spec, Arc::new(store.clone()), "postgres").await;
    store.drop_schema().await.unwrap();
}

async fn crash_publisher_cycles(
    context: &async_nats::jetstream::Context,
    spec: &str,
    store: Arc<dyn Store>,
    label: &str,
) {
    let context = context.clone();
    let spec = spec.to_owned();
    let prefix = unique_prefix("crashpub");
    let config = crash_publisher(&prefix);
    let stream_name = config.stream.clone();
    let appended_stream = format!("published-{}", uuid::Uuid::new_v4().simple());
    let ignored = StreamId::new("ignored", "1").unwrap();
    // Kills that left JetStream ahead of the stored checkpoint: the next publisher sends
    // those events again, and only the message id keeps them from being stored twice.
    let mut kills_ahead_of_checkpoint = 0;
    for cycle in 0..cycles() {
        // Another process keeps appending while the publisher is killed at random moments;
        // events the filter leaves out are interleaved with them.
        let mut appender = Command::new(CRASH_CHILD)
            .args(["append", &spec, &appended_stream])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut publisher = Command::new(NATS_CHILD)
            .args(["publish", &spec, &prefix])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        store
            .append(
                &ignored,
                ExpectedVersion::Exact(cycle),
                vec![es_core::testing::event("ignored.happened", cycle)],
            )
            .await
            .unwrap();
        tokio::time::sleep(pause(cycle)).await;
        publisher.kill().unwrap(); // SIGKILL
        publisher.wait().unwrap();
        if stream_ahead_of_checkpoint(&context, &*store, &stream_name).await {
            kills_ahead_of_checkpoint += 1;
        }
        tokio::time::sleep(pause(cycle + 7) / 4).await;
        appender.kill().unwrap();
        appender.wait().unwrap();
    }
    // Finish in this process, then compare JetStream with the log.
    let publisher = Publisher::start(store.clone(), context.clone(), config)
        .await
        .unwrap();
    let head = es_tests::crash::settled_head(&*store).await;
    assert!(publisher
        .wait_for(head, Duration::from_secs(120))
        .await
        .unwrap());
    publisher.shutdown().await;

    let log = store.read_all(1, usize::MAX).await.unwrap();
    let chosen: Vec<_> = log
        .iter()
        .filter(|event| &*event.event_name == "crash.appended")
        .collect();
    let published = read_stream(&context, &stream_name).await;
    let mut copies: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (_, event) in &published {
        *copies.entry(event.metadata.event_id).or_default() += 1;
    }
    let duplicates = copies.values().filter(|count| **count > 1).count();
    assert_eq!(duplicates, 0, "no event is in the stream twice");
    let missing = chosen
        .iter()
        .filter(|event| !copies.contains_key(&event.metadata.event_id))
        .count();
    assert_eq!(missing, 0, "every chosen event is in the stream");
    assert_eq!(
        published.len(),
        chosen.len(),
        "nothing else is in the stream"
    );
    // Per aggregate stream, the stream holds versions 1, 2, 3, ... in stream order.
    let mut versions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, event) in &published {
        versions
            .entry(event.stream.to_string())
            .or_default()
            .push(event.version);
    }
    let out_of_order = versions
        .values()
        .filter(|versions| **versions != (1..=versions.len() as u64).collect::<Vec<_>>())
        .count();
    assert_eq!(out_of_order, 0, "each aggregate stream in log order");
    for (_, event) in published.iter().take(50) {
        let original = chosen
            .iter()
            .find(|original| original.metadata.event_id == event.metadata.event_id)
            .unwrap();
        assert_eq!(event, *original, "the envelope survives the trip");
    }
    context.delete_stream(&stream_name).await.unwrap();
    println!(
        "nats publisher under SIGKILL on {label}: cycles {}, events in log {}, chosen {}, filtered out {}, in stream {}, kills between ack and checkpoint {kills_ahead_of_checkpoint}, duplicates 0, lost 0, out of order 0",
        cycles(),
        log.len(),
        chosen.len(),
        log.len() - chosen.len(),
        published.len()
    );
}
