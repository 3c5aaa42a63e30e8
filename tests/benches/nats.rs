//! The outbox publisher against raw async-nats JetStream publishes of the same messages, in
//! one run: `cargo bench -p es-tests --bench nats` (`-- --quick` for a smoke run). NATS is
//! looked for at `ES_TEST_NATS_URL` (default `127.0.0.1:4222`); without it the bench says so
//! and stops.
//!
//! Both sides publish the same payloads with the same headers to a fresh stream, pipelined in
//! windows of the publisher's batch size and waiting for every ack; the publisher also reads
//! the log and moves its checkpoint after each window. The figure that matters is the ratio.
//!
//! Then the end-to-end latency: one command at a time, from the call to the moment another
//! service's read model (fed by a subscription) shows its event, through the outbox
//! publisher and JetStream; median and p99, on memory stores (the framework and the broker)
//! and on SQLite files (with their commits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use es_core::nats::{
    headers, subject_for, ProjectionHandler, Publisher, PublisherConfig, Subscription,
    SubscriptionConfig,
};
use es_core::{
    projection, DaemonConfig, Docs, Documents, Envelope, EventLog, ExpectedVersion, MemoryStore,
    RecordedEvent, Repository, Store, StreamId,
};
use es_tests::bank::{Account, Deposit, Deposited, Open};
use serde::{Deserialize, Serialize};

fn raw_headers(event: &RecordedEvent) -> HeaderMap {
    let mut map = HeaderMap::new();
    let id = event.metadata.event_id.to_string();
    for (name, value) in [
        (headers::MSG_ID, id.clone()),
        (headers::EVENT_ID, id),
        (headers::POSITION, event.position.to_string()),
        (headers::AGGREGATE_TYPE, event.aggregate_type().to_owned()),
        (headers::AGGREGATE_ID, event.aggregate_id().to_owned()),
        (headers::VERSION, event.version.to_string()),
        (headers::EVENT_NAME, event.event_name.to_string()),
        (headers::SCHEMA_VERSION, event.schema_version.to_string()),
        (headers::RECORDED_AT, event.recorded_at.to_rfc3339()),
        (
            headers::CORRELATION_ID,
            event.metadata.correlation_id.to_string(),
        ),
    ] {
        map.insert(
            name.parse::<async_nats::header::HeaderName>().unwrap(),
            value,
        );
    }
    map
}

async fn fresh_stream(context: &async_nats::jetstream::Context, prefix: &str) -> String {
    let config = PublisherConfig::new("bench").subject_prefix(prefix);
    es_core::nats::ensure_stream(context, &config)
        .await
        .unwrap();
    config.stream
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|argument| argument == "--quick");
    let (events_count, rounds) = if quick { (2_000, 2) } else { (20_000, 5) };
    let Some(context) = es_tests::nats::jetstream().await else {
        println!("nats bench: no NATS with JetStream, nothing measured");
        return;
    };
    let store = Arc::new(MemoryStore::new());
    let per_stream = 100;
    for stream_index in 0..events_count / per_stream {
        let stream = StreamId::new("bench", &stream_index.to_string()).unwrap();
        let events = (0..per_stream)
            .map(|n| es_core::testing::event("bench.happened", n as u64))
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    let log = store.read_all(1, usize::MAX).await.unwrap();
    let head = store.head_position().await.unwrap();
    let batch_size = PublisherConfig::new("bench").batch_size;

    let mut raw_rates = Vec::new();
    let mut ours_rates = Vec::new();
    for round in 0..rounds {
        // Alternate which side goes first, so neither always meets a cold server.
        if round % 2 == 0 {
            raw_rates.push(raw(&context, &log, batch_size, round).await);
            ours_rates.push(ours(&context, &store, head, log.len(), round).await);
        } else {
            ours_rates.push(ours(&context, &store, head, log.len(), round).await);
            raw_rates.push(raw(&context, &log, batch_size, round).await);
        }
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(|a, b| a.total_cmp(b));
        rates[rates.len() / 2]
    };
    let raw = median(&mut raw_rates);
    let ours = median(&mut ours_rates);
    println!(
        "| publishing {} events to JetStream (median of {rounds}) | events/s |",
        log.len()
    );
    println!("|---|---:|");
    println!("| raw async-nats, same messages, windows of {batch_size} | {raw:.0} |");
    println!("| es-core outbox publisher (memory store) | {ours:.0} |");
    println!(
        "nats bench: publisher {ours:.0} events/s, raw {raw:.0} events/s, ratio {:.2}",
        ours / raw
    );

    let commands = if quick { 100 } else { 1_000 };
    println!();
    println!("| command to another service's read model, through JetStream ({commands} commands, one at a time) | median | p99 |");
    println!("|---|---:|---:|");
    for (label, source, target) in [
        (
            "memory store to memory store",
            Arc::new(MemoryStore::new()) as Arc<dyn Store>,
            Arc::new(MemoryStore::new()) as Arc<dyn Store>,
        ),
        (
            "SQLite file to SQLite file",
            Arc::new(es_tests::stores::sqlite_store().await) as Arc<dyn Store>,
            Arc::new(es_tests::stores::sqlite_store().await) as Arc<dyn Store>,
        ),
    ] {
        let (median, p99) = latency(&context, source, target, commands, label).await;
        println!("| {label} | {median:.2} ms | {p99:.2} ms |");
    }
}

/// Deposits seen, per account: the other service's read model.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Seen {
    deposits: u64,
}

#[projection(name = "latency_deposits", per_stream)]
#[derive(Debug)]
struct DepositsSeen;

#[projection]
impl DepositsSeen {
    #[on]
    fn deposited(&self, event: &Envelope<Deposited>, docs: &mut Docs<Seen>) {
        docs.upsert(event.aggregate_id(), |seen| seen.deposits += 1);
    }
}

/// Median and p99, in milliseconds, of `commands` deposits each awaited until the
/// subscriber's read model shows it.
async fn latency(
    context: &async_nats::jetstream::Context,
    source: Arc<dyn Store>,
    target: Arc<dyn Store>,
    commands: u64,
    label: &str,
) -> (f64, f64) {
    let prefix = format!(
        "esbench_latency_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let publisher_config = PublisherConfig::new("latency").subject_prefix(&prefix);
    let stream = publisher_config.stream.clone();
    es_core::nats::ensure_stream(context, &publisher_config)
        .await
        .unwrap();
    let publisher = Publisher::start(source.clone(), context.clone(), publisher_config)
        .await
        .unwrap();
    let subscription = Subscription::start(
        target.clone(),
        context.clone(),
        SubscriptionConfig::new("latency_in", &stream),
        ProjectionHandler::new(DepositsSeen),
    )
    .await
    .unwrap();
    let accounts = Repository::<Account>::new(source);
    let account = "latency".to_owned();
    accounts
        .execute(
            &account,
            Open {
                owner: "bench".into(),
            },
        )
        .await
        .unwrap();
    let read_model = Documents::<DepositsSeen>::of(&*target);
    let mut millis = Vec::with_capacity(commands as usize);
    for done in 1..=commands {
        let started = Instant::now();
        accounts
            .execute(&account, Deposit { amount: 1 })
            .await
            .unwrap();
        // Look every 50 µs: fine enough for millisecond figures, cheap on both stores.
        let give_up = started + Duration::from_secs(10);
        loop {
            let seen = read_model.get(&account).await.unwrap().unwrap_or_default();
            if seen.deposits >= done {
                break;
            }
            assert!(
                Instant::now() < give_up,
                "{label}: deposit {done} never arrived"
            );
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        if done % (commands / 4).max(1) == 0 {
            eprintln!("latency, {label}: {done}/{commands} commands");
        }
    }
    subscription.shutdown().await;
    publisher.shutdown().await;
    context.delete_stream(&stream).await.unwrap();
    millis.sort_by(|a, b| a.total_cmp(b));
    let at = |share: f64| millis[((millis.len() - 1) as f64 * share).round() as usize];
    (at(0.5), at(0.99))
}

/// Raw: the same messages, pipelined per window, every ack awaited. Events per second.
async fn raw(
    context: &async_nats::jetstream::Context,
    log: &[RecordedEvent],
    batch_size: usize,
    round: usize,
) -> f64 {
    let prefix = format!("esbench_raw_{round}_{}", std::process::id());
    let stream = fresh_stream(context, &prefix).await;
    // On a runtime worker, as the publisher's task is: `main`'s own future is polled by the
    // blocking thread, and every ack would cross threads to reach it.
    let started = Instant::now();
    tokio::spawn({
        let (context, log) = (context.clone(), log.to_vec());
        async move {
            for window in log.chunks(batch_size) {
                let mut acks = Vec::with_capacity(window.len());
                for event in window {
                    let subject = subject_for(&prefix, event.aggregate_type(), &event.event_name);
                    let message = PublishMessage::build()
                        .payload(bytes_of(event))
                        .headers(raw_headers(event));
                    acks.push(context.send_publish(subject, message).await.unwrap());
                }
                for ack in acks {
                    ack.await.unwrap();
                }
            }
        }
    })
    .await
    .unwrap();
    let rate = log.len() as f64 / started.elapsed().as_secs_f64();
    assert_eq!(stored(context, &stream).await, log.len() as u64);
    context.delete_stream(&stream).await.unwrap();
    rate
}

/// Ours: a publisher from checkpoint 1 to the head. Events per second.
async fn ours(
    context: &async_nats::jetstream::Context,
    store: &Arc<MemoryStore>,
    head: u64,
    events: usize,
    round: usize,
) -> f64 {
    let prefix = format!("esbench_ours_{round}_{}", std::process::id());
    let mut config = PublisherConfig::new(format!("bench_{round}")).subject_prefix(&prefix);
    config.pacing = DaemonConfig {
        poll_interval: Duration::from_millis(1),
        ..DaemonConfig::default()
    };
    let stream = config.stream.clone();
    es_core::nats::ensure_stream(context, &config)
        .await
        .unwrap();
    let started = Instant::now();
    let publisher = Publisher::start(store.clone(), context.clone(), config)
        .await
        .unwrap();
    assert!(publisher
        .wait_for(head, Duration::from_secs(300))
        .await
        .unwrap());
    let rate = events as f64 / started.elapsed().as_secs_f64();
    publisher.shutdown().await;
    assert_eq!(stored(context, &stream).await, events as u64);
    context.delete_stream(&stream).await.unwrap();
    rate
}

/// How many messages `stream` holds: both sides must have published everything.
async fn stored(context: &async_nats::jetstream::Context, stream: &str) -> u64 {
    let mut stream = context.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.messages
}

fn bytes_of(event: &RecordedEvent) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(event.event.as_str().as_bytes())
}
