//! SIGKILL at random moments, on each durable store: a child process appending batches, and a
//! child process running the projection daemon. At least 20 cycles each in CI
//! (`ES_CRASH_CYCLES` for more). Afterwards every acknowledged batch is in the log whole,
//! no batch is partial, versions have no gap, new appends succeed, and the read model equals
//! a count computed from the log: every event applied exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use es_core::{Daemon, EventLogExt, ExpectedVersion, Store, StreamId};
use es_tests::crash::Appended;
use es_tests::stores;
use futures::TryStreamExt;

const CHILD: &str = env!("CARGO_BIN_EXE_es-crash-child");

fn cycles() -> u64 {
    std::env::var("ES_CRASH_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20)
}

/// A pseudo-random pause from 30 to 250 ms, different each cycle.
fn pause(cycle: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(30 + (nanos ^ cycle.wrapping_mul(2_654_435_761)) % 220)
}

/// Runs the appender child, kills it after a while, and returns the acknowledged
/// `(batch, version)` pairs it printed.
fn append_until_killed(spec: &str, stream: &str, cycle: u64) -> Vec<(u64, u64)> {
    let mut child = Command::new(CHILD)
        .args(["append", spec, stream])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(pause(cycle));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some("ack")).then_some(())?;
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect()
}

/// The log holds every acknowledged batch whole, no partial batch, no gap.
async fn check_log(store: &Arc<dyn Store>, stream: &StreamId, acknowledged: &[(u64, u64)]) -> u64 {
    let events: Vec<_> = store.stream_events(stream, 1).try_collect().await.unwrap();
    let mut batches: BTreeMap<u64, (u64, Vec<u64>)> = BTreeMap::new();
    for event in &events {
        let appended: Appended = event.event.decode().unwrap();
        let entry = batches
            .entry(appended.batch)
            .or_insert((appended.size, Vec::new()));
        entry.1.push(appended.index);
    }
    for (batch, (size, indexes)) in &batches {
        assert_eq!(
            indexes,
            &(0..*size).collect::<Vec<_>>(),
            "batch {batch} is whole and in order"
        );
    }
    for (batch, version) in acknowledged {
        assert!(
            batches.contains_key(batch),
            "acknowledged batch {batch} is in the log"
        );
        assert!(*version <= events.len() as u64);
    }
    events.len() as u64
}

async fn crash_appender(spec: &str, store: Arc<dyn Store>, label: &str) {
    let stream_id = format!("appender-{}", uuid::Uuid::new_v4().simple());
    let stream = StreamId::new("crash", &stream_id).unwrap();
    let mut acknowledged = Vec::new();
    for cycle in 0..cycles() {
        acknowledged.extend(append_until_killed(spec, &stream_id, cycle));
        check_log(&store, &stream, &acknowledged).await;
    }
    let length = check_log(&store, &stream, &acknowledged).await;
    // New appends succeed after the last kill.
    store
        .append(
            &stream,
            ExpectedVersion::Exact(length),
            vec![es_core::testing::event("crash.after", 1)],
        )
        .await
        .unwrap();
    println!(
        "crash appender on {label}: cycles {}, acknowledged batches {}, events checked {length}, lost 0, partial 0",
        cycles(),
        acknowledged.len()
    );
}

async fn crash_projection(spec: &str, store: Arc<dyn Store>, label: &str) {
    let stream_id = format!("projected-{}", uuid::Uuid::new_v4().simple());
    // Cycles in which a killed daemon had moved the checkpoint: proof the kills hit real work.
    let mut cycles_with_progress = 0;
    let mut last_checkpoint = 0;
    for cycle in 0..cycles() {
        // Events keep arriving while the daemon is killed at random moments.
        let writer = std::thread::spawn({
            let (spec, stream_id) = (spec.to_owned(), stream_id.clone());
            move || append_until_killed(&spec, &stream_id, cycle + 1000)
        });
        let mut child = Command::new(CHILD)
            .args(["project", spec])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Long enough for the previous child's lease (150 ms) to expire and work to happen.
        std::thread::sleep(Duration::from_millis(200) + pause(cycle));
        child.kill().unwrap();
        child.wait().unwrap();
        writer.join().unwrap();
        let reported = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("checkpoint ")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        if reported > last_checkpoint {
            cycles_with_progress += 1;
            last_checkpoint = reported;
        }
    }
    assert!(
        cycles_with_progress >= cycles() / 2,
        "the killed daemons applied batches in only {cycles_with_progress} of {} cycles",
        cycles()
    );
    // Finish in this process and compare with a count from the log.
    let daemon = Daemon::start(store.clone(), es_tests::crash::crash_projections())
        .await
        .unwrap();
    let head = es_tests::crash::settled_head(&*store).await;
    for projection in ["crash_tallies", "crash_sql_tallies"] {
        assert!(daemon
            .wait_for(projection, head, Duration::from_secs(60))
            .await
            .unwrap());
    }
    daemon.shutdown().await;
    let expected = es_tests::crash::logged_tally(&*store, &stream_id).await;
    let (tally, sql_tally) = es_tests::crash::projected_tallies(&*store, &stream_id).await;
    assert_eq!(tally, expected, "every event applied exactly once");
    assert_eq!(
        sql_tally, expected,
        "every event applied exactly once to the SQL table too"
    );
    println!(
        "crash projection on {label}: cycles {} ({cycles_with_progress} killed mid-work), events checked {}, applied twice 0, lost 0",
        cycles(),
        expected.events
    );
}

fn sqlite_spec() -> String {
    let dir = std::env::temp_dir().join("es-crash");
    std::fs::create_dir_all(&dir).unwrap();
    format!(
        "sqlite:{}",
        dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()))
            .display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_survives_sigkill_of_an_appender() {
    let spec = sqlite_spec();
    let store = es_tests::crash::open(&spec).await;
    crash_appender(&spec, store, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_projection_applies_each_event_once_across_sigkills() {
    let spec = sqlite_spec();
    let store = es_tests::crash::open(&spec).await;
    crash_projection(&spec, store, "sqlite").await;
}

async fn postgres_spec() -> Option<(String, es_core::postgres::PostgresStore)> {
    let store = stores::postgres_store_with_prefix("es_crash_").await?;
    let url = stores::postgres_url().await?;
    Some((format!("postgres:{url}#{}", store.schema()), store))
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_survives_sigkill_of_an_appender() {
    let Some((spec, store)) = postgres_spec().await else {
        return;
    };
    crash_appender(&spec, Arc::new(store.clone()), "postgres").await;
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_projection_applies_each_event_once_across_sigkills() {
    let Some((spec, store)) = postgres_spec().await else {
        return;
    };
    crash_projection(&spec, Arc::new(store.clone()), "postgres").await;
    store.drop_schema().await.unwrap();
}
