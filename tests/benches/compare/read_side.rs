//! Figures 8 and 9: the read side. How fast the daemon catches a document read model up,
//! against the raw read-all rate of the same store in the same run; and how long the blog
//! takes to start and print its post list with a small and a large log (nothing is replayed
//! at start, so the two should be close).

use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::sqlite::{Durability, SqliteStore};
use es_core::{
    projection, Daemon, Docs, Envelope, Event, EventLog, EventLogExt, ExpectedVersion, Metadata,
    NewEvent, Payload, Projections, Store, StreamId,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::report::{median, Better, Row};
use crate::Settings;

/// The event the catch-up figure projects.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "bench.happened")]
pub struct Happened {
    pub amount: u64,
}

/// Per stream: events and their sum.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sums {
    pub events: u64,
    pub total: u64,
}

#[projection(name = "bench_sums", per_stream)]
#[derive(Debug)]
pub struct BenchSums;

#[projection]
impl BenchSums {
    #[on]
    fn happened(&self, event: &Envelope<Happened>, docs: &mut Docs<Sums>) {
        docs.upsert(event.aggregate_id(), |sums| {
            sums.events += 1;
            sums.total += event.event.amount;
        });
    }
}

/// Appends `events` events over `streams` streams, 100 per append.
pub async fn fill(store: &dyn EventLog, streams: u64, events: u64, prefix: &str) {
    let per_stream = events / streams;
    for stream in 0..streams {
        let id = StreamId::new("bench", &format!("{prefix}{stream}")).expect("stream id");
        let mut written = 0;
        while written < per_stream {
            let count = (per_stream - written).min(100);
            let batch = (0..count)
                .map(|n| NewEvent {
                    event_name: Happened::NAME.into(),
                    schema_version: 1,
                    metadata: Metadata::new(uuid::Uuid::now_v7()),
                    payload: Payload::encode(&Happened { amount: n }).expect("json"),
                })
                .collect();
            store
                .append(&id, ExpectedVersion::Exact(written), batch)
                .await
                .expect("append");
            written += count;
        }
    }
}

/// Events per second of a full read-all, and of catching `bench_sums` up from position 1,
/// on `store` holding `events` events: medians of `rounds`, alternating the two. The first
/// catch-up is the daemon's; later ones are rebuilds into a new generation (the same loop).
async fn catch_up_rates(store: Arc<dyn Store>, events: u64, rounds: usize) -> (f64, f64) {
    let mut read_all_rates = Vec::new();
    let mut catch_up_rates = Vec::new();
    let projections = Projections::new().with(BenchSums);
    for round in 0..rounds.max(1) {
        let started = Instant::now();
        let read: usize = store
            .stream_all(1)
            .try_fold(0, |count, _| async move { Ok(count + 1) })
            .await
            .expect("read all");
        read_all_rates.push(read as f64 / started.elapsed().as_secs_f64());
        let started = Instant::now();
        if round == 0 {
            let head = store.head_position().await.expect("head");
            let daemon = Daemon::start(store.clone(), projections.clone())
                .await
                .expect("daemon");
            let reached = daemon
                .wait_for("bench_sums", head, Duration::from_secs(600))
                .await
                .expect("wait");
            assert!(reached, "the daemon caught up");
            catch_up_rates.push(events as f64 / started.elapsed().as_secs_f64());
            daemon.shutdown().await;
        } else {
            es_core::rebuild(&*store, &projections, "bench_sums", |_| {})
                .await
                .expect("rebuild");
            catch_up_rates.push(events as f64 / started.elapsed().as_secs_f64());
        }
    }
    (median(catch_up_rates), median(read_all_rates))
}

fn catch_up_row(store: &str, events: u64, catch_up: f64, read_all: f64) -> Row {
    Row::new(
        "8",
        format!("{store}: catch-up into documents, {events} events"),
        "events/s",
        Better::Higher,
    )
    .ours(catch_up)
    .theirs(read_all)
    .against("raw read-all")
    .note("ratio = catch-up's share of the store's raw read-all rate; 1,000 streams, batches of 1,000, the next read while one applies")
}

/// Figure 8 on SQLite and (when it answers) PostgreSQL.
pub async fn figure_8(
    settings: &Settings,
    dir: &std::path::Path,
    pg_url: Option<&str>,
) -> Vec<Row> {
    let events = settings.catch_up_events;
    let mut rows = Vec::new();
    let path = dir.join(format!("bench-read-{}.db", std::process::id()));
    let sqlite = SqliteStore::open(&path).await.expect("open SQLite");
    fill(&sqlite, 1_000, events, "s").await;
    let (catch_up, read_all) = catch_up_rates(Arc::new(sqlite), events, settings.rounds).await;
    rows.push(catch_up_row("SQLite", events, catch_up, read_all));
    remove_sqlite(&path);
    if let Some(url) = pg_url {
        let schema = format!("bench_read_{}", std::process::id());
        match es_core::postgres::PostgresStore::connect_with(
            es_core::postgres::PostgresConfig::new(url).schema(schema),
        )
        .await
        {
            Ok(pg) => {
                fill(&pg, 1_000, events, "p").await;
                let (catch_up, read_all) =
                    catch_up_rates(Arc::new(pg.clone()), events, settings.rounds).await;
                rows.push(catch_up_row("PostgreSQL", events, catch_up, read_all));
                let _ = pg.drop_schema().await;
            }
            Err(error) => println!("skipped: PostgreSQL catch-up figure: {error}"),
        }
    }
    rows
}

/// Seconds from opening the blog's SQLite file to its printed post list, with the read
/// models already caught up by an earlier run (as a restarted service would find them).
async fn start_and_list(path: &std::path::Path) -> f64 {
    let started = Instant::now();
    let store = SqliteStore::open(path).await.expect("open");
    let blog = blog::app::Blog::open(Arc::new(store)).await.expect("blog");
    let list = blog::report::published_posts(&blog).await.expect("list");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(list.contains("published posts"));
    blog.close().await;
    elapsed
}

/// A blog log of about `events` events (`blog seed`: posts with a draft, a publication, an
/// edit and comments), with its read models and janitor caught up, as the service's earlier
/// run would have left them.
async fn blog_log(path: &std::path::Path, events: u64) {
    let store = SqliteStore::open_with(path, Durability::Normal)
        .await
        .expect("open");
    let blog = blog::app::Blog::open(Arc::new(store)).await.expect("blog");
    blog::seed::seed(&blog, events, "").await.expect("seed");
    blog::seed::catch_up(&blog).await.expect("catch up");
    blog.close().await;
}

/// Figure 9: blog start-and-list at a small and a large log.
pub async fn figure_9(settings: &Settings, dir: &std::path::Path) -> Vec<Row> {
    let small_path = dir.join(format!("bench-blog-small-{}.db", std::process::id()));
    let large_path = dir.join(format!("bench-blog-large-{}.db", std::process::id()));
    blog_log(&small_path, 1_000).await;
    blog_log(&large_path, settings.large_blog_events).await;
    let mut small = Vec::new();
    let mut large = Vec::new();
    for _ in 0..settings.rounds.max(3) {
        small.push(start_and_list(&small_path).await * 1e3);
        large.push(start_and_list(&large_path).await * 1e3);
    }
    remove_sqlite(&small_path);
    remove_sqlite(&large_path);
    vec![Row::new(
        "9",
        format!(
            "SQLite: blog start and list, {} events vs 1,000",
            settings.large_blog_events
        ),
        "ms",
        Better::Lower,
    )
    .ours(median(large))
    .theirs(median(small))
    .against("same, 1,000 events")
    .note("read models caught up by an earlier run; ratio near 1: nothing is replayed at start")]
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
