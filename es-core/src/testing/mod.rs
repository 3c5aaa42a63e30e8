//! The store conformance suite: what every [`EventStore`] must do, as executable cases.
//!
//! A store proves itself with one macro call in a test file; each case becomes its own test:
//!
//! ```ignore
//! es_core::store_conformance_tests!(async { Some(my_crate::MyStore::new()) });
//! ```
//!
//! The expression is a future evaluated once per case, returning `Some(store)` or `None` to
//! skip (print why, e.g. "no database URL set"). Each case gets a fresh store. An optional
//! `after = |store| async { ... }` cleans up after a case that passed (e.g. drops its schema).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)] // failed assertions are the point

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use uuid::Uuid;

pub use crate::schema_guard::SchemaGuard;

mod idempotency;
pub mod read;

pub use idempotency::*;

use crate::envelope::{Metadata, NewEvent, Payload, RecordedEvent};
use crate::error::{Conflict, StoreError};
use crate::repository::{Repository, RetryPolicy};
use crate::store::{EventLogExt, EventStore, ExpectedVersion, Snapshot};
use crate::stream::StreamId;

/// Generates one `#[test]` per conformance case for the store made by `$new_store`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($new_store:expr $(, after = $after:expr)?) => {
        $crate::__conformance_cases!(
            $new_store, [$($after)?], dyn $crate::EventStore, $crate::testing;
            appends_with_each_expected_version,
            a_conflict_appends_nothing,
            a_batch_is_seen_whole_or_not_at_all,
            versions_are_gapless_and_positions_increase_in_commit_order,
            reads_a_stream_from_a_version,
            reads_all_from_a_position_with_a_limit_across_batches,
            one_writer_wins_each_round_of_sixteen,
            sixteen_tasks_of_fifty_commands_end_at_version_800,
            read_all_never_skips_an_event_while_writers_commit,
            appends_8001_events_in_one_batch,
            streams_100000_events_in_pages,
            odd_strings_round_trip_unchanged,
            keeps_the_latest_snapshot,
            unknown_streams_are_empty,
            stream_identities_never_meet,
            refuses_what_breaks_a_limit,
            reads_all_events_of_one_aggregate_type,
            a_wrapped_store_answers_the_same,
            reports_the_head_position,
            appending_one_command_twice_appends_once,
            streams_may_reuse_a_command_id,
            a_command_id_on_a_no_stream_append,
            concurrent_runs_of_one_command_append_once,
            refuses_a_batch_of_mixed_command_ids,
        );
    };
}

/// One `#[test]` per case: each runs `$cases::$case` on a fresh store from `$new_store`
/// (shared as `Arc<$shared>`), then `$after` on it, if given. Both suites' macros expand
/// to this.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($new_store:expr, [], $shared:ty, $cases:path; $($case:ident),* $(,)?) => {
        $crate::__conformance_cases!(
            $new_store, [|_store| async {}], $shared, $cases; $($case),*
        );
    };
    ($new_store:expr, [$after:expr], $shared:ty, $cases:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                use $cases as cases;
                $crate::testing::run(async {
                    if let Some(store) = $new_store.await {
                        let shared: ::std::sync::Arc<$shared> =
                            ::std::sync::Arc::new(::core::clone::Clone::clone(&store));
                        cases::$case(shared).await;
                        ($after)(store).await;
                    }
                });
            }
        )*
    };
}

/// Runs a case on a fresh multi-threaded runtime (so concurrency cases are really concurrent).
pub fn run(case: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance case")
        .block_on(case);
}

type Store = Arc<dyn EventStore>;

/// A new event named `name` whose payload is `{"n": n}`.
pub fn event(name: &str, n: u64) -> NewEvent {
    NewEvent {
        event_name: name.into(),
        schema_version: 1,
        metadata: Metadata::new(Uuid::now_v7()),
        payload: Payload::encode(&serde_json::json!({ "n": n })).expect("json"),
    }
}

fn batch(count: u64) -> Vec<NewEvent> {
    (0..count).map(|n| event("test.happened", n)).collect()
}

/// Starts `stream` (which must not exist yet) with a batch of `count` events.
async fn start_stream(store: &Store, stream: &StreamId, count: u64) -> Vec<RecordedEvent> {
    store
        .append(stream, ExpectedVersion::NoStream, batch(count))
        .await
        .unwrap()
}

/// Appends `rounds` batches of `size` events to the new `stream`, each expecting the version
/// the one before left; returns the positions of every event appended, in order.
async fn append_rounds(store: &Store, stream: &StreamId, rounds: u64, size: u64) -> Vec<u64> {
    let mut positions = Vec::new();
    for round in 0..rounds {
        let recorded = store
            .append(stream, ExpectedVersion::Exact(round * size), batch(size))
            .await
            .unwrap();
        positions.extend(recorded.iter().map(|e| e.position));
    }
    positions
}

/// A stream of aggregate type `test` that no other case uses, so cases can share a database.
pub fn unique_stream(label: &str) -> StreamId {
    StreamId::new("test", &format!("{label}-{}", Uuid::new_v4().simple()))
        .expect("a valid stream id")
}

async fn read_all_events(store: &Store) -> Vec<RecordedEvent> {
    store.stream_all(1).try_collect().await.expect("read all")
}

/// Read-all may trail the latest commits (a store may hold back events until every earlier
/// transaction has finished, so that nothing is skipped); wait until `done` holds, or fail.
async fn read_all_until(
    store: &Store,
    what: &str,
    done: impl Fn(&[RecordedEvent]) -> bool,
) -> Vec<RecordedEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let events = read_all_events(store).await;
        if done(&events) {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "read-all never caught up: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn count_in(events: &[RecordedEvent], stream: &StreamId) -> usize {
    events.iter().filter(|e| e.stream == *stream).count()
}

async fn read_whole_stream(store: &Store, stream: &StreamId) -> Vec<RecordedEvent> {
    store
        .stream_events(stream, 1)
        .try_collect()
        .await
        .expect("read stream")
}

fn expect_conflict(
    result: Result<Vec<RecordedEvent>, StoreError>,
    expected: ExpectedVersion,
    actual: u64,
) {
    match result {
        Err(StoreError::Conflict(error)) => {
            let Conflict {
                expected: e,
                actual: a,
                ..
            } = &error;
            assert_eq!(
                (*e, *a),
                (expected, actual),
                "conflict reports expected and actual: {error}"
            );
            let text = error.to_string();
            assert!(
                text.contains(&expected.to_string()) && text.contains(&format!("version {actual}")),
                "message says both: {text}"
            );
        }
        other => panic!("expected a conflict ({expected} vs {actual}), got {other:?}"),
    }
}

/// `NoStream`, `Exact(n)` and `Any` each accept the right versions and refuse the rest.
pub async fn appends_with_each_expected_version(store: Store) {
    let stream = unique_stream("modes");
    let first = start_stream(&store, &stream, 1).await;
    assert_eq!(first[0].version, 1);
    expect_conflict(
        store
            .append(&stream, ExpectedVersion::NoStream, batch(1))
            .await,
        ExpectedVersion::NoStream,
        1,
    );
    let second = store
        .append(&stream, ExpectedVersion::Exact(1), batch(2))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3]);
    expect_conflict(
        store
            .append(&stream, ExpectedVersion::Exact(1), batch(1))
            .await,
        ExpectedVersion::Exact(1),
        3,
    );
    expect_conflict(
        store
            .append(&stream, ExpectedVersion::Exact(7), batch(1))
            .await,
        ExpectedVersion::Exact(7),
        3,
    );
    let any = store
        .append(&stream, ExpectedVersion::Any, batch(1))
        .await
        .unwrap();
    assert_eq!(any[0].version, 4);
    let fresh = unique_stream("modes-fresh");
    assert_eq!(
        store
            .append(&fresh, ExpectedVersion::Exact(0), batch(1))
            .await
            .unwrap()[0]
            .version,
        1
    );
    assert_eq!(
        store
            .append(&unique_stream("modes-any"), ExpectedVersion::Any, batch(1))
            .await
            .unwrap()[0]
            .version,
        1
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), 4);
}

/// A refused batch leaves no trace, in the stream or in read-all.
pub async fn a_conflict_appends_nothing(store: Store) {
    let stream = unique_stream("refused");
    start_stream(&store, &stream, 2).await;
    expect_conflict(
        store
            .append(&stream, ExpectedVersion::Exact(1), batch(10))
            .await,
        ExpectedVersion::Exact(1),
        2,
    );
    assert_eq!(read_whole_stream(&store, &stream).await.len(), 2);
    assert_eq!(store.stream_version(&stream).await.unwrap(), 2);
    // A later append shows read-all has passed the refused one, which left nothing behind.
    let marker = unique_stream("refused-marker");
    start_stream(&store, &marker, 1).await;
    let events = read_all_until(&store, "the marker", |events| {
        count_in(events, &marker) == 1
    })
    .await;
    assert_eq!(count_in(&events, &stream), 2);
}

/// A reader watching a stream while batches of 50 land sees only multiples of 50.
pub async fn a_batch_is_seen_whole_or_not_at_all(store: Store) {
    let stream = unique_stream("atomic");
    let done = Arc::new(AtomicBool::new(false));
    // The reader's observations so far: each append waits for one more, so reads interleave
    // with the appends even when the writer could finish before the reader is first polled.
    let observed = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (store, stream) = (Arc::clone(&store), stream.clone());
        let (done, observed) = (Arc::clone(&done), Arc::clone(&observed));
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let seen = store.read_stream(&stream, 1, 10_000).await.unwrap().len();
                assert_eq!(seen % 50, 0, "saw {seen} events: part of a batch");
                let version = store.stream_version(&stream).await.unwrap();
                assert_eq!(
                    version % 50,
                    0,
                    "stream at version {version}: part of a batch"
                );
                observed.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    for round in 0..20 {
        let wanted = round as usize + 1;
        let waited = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while observed.load(Ordering::SeqCst) < wanted && !reader.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the reader made no observation in 30 s");
        store
            .append(&stream, ExpectedVersion::Exact(round * 50), batch(50))
            .await
            .unwrap();
    }
    done.store(true, Ordering::SeqCst);
    reader.await.unwrap();
    assert!(observed.load(Ordering::SeqCst) >= 20);
    assert_eq!(store.stream_version(&stream).await.unwrap(), 1000);
}

/// Versions count 1, 2, 3... per stream; positions only grow, in the order appends committed.
pub async fn versions_are_gapless_and_positions_increase_in_commit_order(store: Store) {
    let streams: Vec<StreamId> = (0..3)
        .map(|i| unique_stream(&format!("order{i}")))
        .collect();
    let mut committed_positions = Vec::new();
    for round in 0..5 {
        for stream in &streams {
            let recorded = store
                .append(stream, ExpectedVersion::Any, batch(round % 3 + 1))
                .await
                .unwrap();
            committed_positions.extend(recorded.iter().map(|e| e.position));
        }
    }
    assert!(
        committed_positions.windows(2).all(|w| w[0] < w[1]),
        "positions grow in commit order: {committed_positions:?}"
    );
    for stream in &streams {
        let versions: Vec<u64> = read_whole_stream(&store, stream)
            .await
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    }
    let total = committed_positions.len();
    let mine: Vec<u64> = read_all_until(&store, "every append", |events| {
        events
            .iter()
            .filter(|e| streams.contains(&e.stream))
            .count()
            == total
    })
    .await
    .into_iter()
    .filter(|e| streams.contains(&e.stream))
    .map(|e| e.position)
    .collect();
    assert_eq!(
        mine, committed_positions,
        "read-all returns events in commit order"
    );
}

/// `read_stream` starts at a version and honours its limit.
pub async fn reads_a_stream_from_a_version(store: Store) {
    let stream = unique_stream("from");
    append_rounds(&store, &stream, 10, 3).await;
    let page = store.read_stream(&stream, 5, 7).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.version).collect::<Vec<_>>(),
        (5..12).collect::<Vec<_>>()
    );
    assert_eq!(store.read_stream(&stream, 30, 10).await.unwrap().len(), 1);
    assert!(store.read_stream(&stream, 31, 10).await.unwrap().is_empty());
    let payload: serde_json::Value = page[0].event.decode().unwrap();
    assert_eq!(
        payload,
        serde_json::json!({ "n": 1 }),
        "version 5 is the second event of the second batch"
    );
}

/// Paging through read-all with a small limit sees every event once, in order, across batches.
pub async fn reads_all_from_a_position_with_a_limit_across_batches(store: Store) {
    let stream = unique_stream("paged");
    let positions = append_rounds(&store, &stream, 6, 5).await;
    read_all_until(&store, "every batch", |events| {
        count_in(events, &stream) == 30
    })
    .await;
    let mut seen = Vec::new();
    let mut next = positions[3];
    loop {
        let page = store.read_all(next, 4).await.unwrap();
        assert!(page.len() <= 4, "a page respects its limit");
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        seen.extend(
            page.iter()
                .filter(|e| e.stream == stream)
                .map(|e| e.position),
        );
    }
    assert_eq!(seen, positions[3..].to_vec());
}

/// Sixteen writers expecting the same version: exactly one wins each round.
pub async fn one_writer_wins_each_round_of_sixteen(store: Store) {
    let stream = unique_stream("race");
    for round in 0..10u64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, stream, barrier) =
                    (Arc::clone(&store), stream.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .append(&stream, ExpectedVersion::Exact(round), batch(1))
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(recorded) => {
                    wins += 1;
                    assert_eq!(recorded[0].version, round + 1);
                }
                Err(StoreError::Conflict(Conflict {
                    expected, actual, ..
                })) => {
                    assert_eq!(
                        (expected, actual),
                        (ExpectedVersion::Exact(round), round + 1)
                    );
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one writer wins");
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), 10);
}

mod counter {
    //! A one-event aggregate for the concurrency case, written by hand rather than with the
    //! macros: its types then stay out of the "other types implement `Event`" lists that
    //! rustc prints in users' error messages when this feature is on.
    use crate::envelope::Payload;
    use crate::event::{DecodeFailure, EventSet};
    use crate::Aggregate;

    #[derive(Clone, Debug, PartialEq)]
    pub struct Incremented {
        pub by_task: u32,
    }

    const NAME: &str = "conformance.incremented";

    impl EventSet for Incremented {
        const EVENT_NAMES: &'static [&'static str] = &[NAME];

        fn event_name(&self) -> &'static str {
            NAME
        }

        fn schema_version(&self) -> u32 {
            1
        }

        fn encode(&self) -> Result<Payload, serde_json::Error> {
            Payload::encode(&serde_json::json!({ "by_task": self.by_task }))
        }

        fn decode(event_name: &str, _: u32, payload: &Payload) -> Result<Self, DecodeFailure> {
            if event_name != NAME {
                return Err(DecodeFailure::UnknownEvent { known: NAME.into() });
            }
            let value: serde_json::Value = payload.decode().map_err(DecodeFailure::Malformed)?;
            let by_task = value["by_task"].as_u64().unwrap_or(u64::MAX) as u32;
            Ok(Incremented { by_task })
        }
    }

    #[derive(Clone, Debug)]
    pub struct Increment {
        pub by_task: u32,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    pub struct Never;

    #[derive(Default, Debug)]
    pub struct Counter {
        pub count: u64,
    }

    impl Aggregate for Counter {
        const NAME: &'static str = "conformance_counter";
        const SNAPSHOT_EVERY: Option<u64> = None;
        type Id = String;
        type Event = Incremented;
        type Command = Increment;
        type Error = Never;
        type Services = ();

        fn apply(&mut self, _: &Incremented) {
            self.count += 1;
        }

        fn handle(
            &self,
            command: Increment,
            _: &crate::Context<'_, ()>,
        ) -> Result<Vec<Incremented>, Never> {
            Ok(vec![Incremented {
                by_task: command.by_task,
            }])
        }
    }
}

/// With the repository's retry, 16 tasks × 50 commands on one stream all land: version 800,
/// no gap, no duplicate.
pub async fn sixteen_tasks_of_fifty_commands_end_at_version_800(store: Store) {
    let id = Uuid::new_v4().simple().to_string();
    let repository =
        Repository::<counter::Counter>::new(Arc::clone(&store)).with_retry(RetryPolicy {
            max_attempts: 500,
            initial_backoff: std::time::Duration::from_millis(1),
            max_backoff: std::time::Duration::from_millis(20),
        });
    let tasks: Vec<_> = (0..16u32)
        .map(|task| {
            let (repository, id) = (repository.clone(), id.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    repository
                        .execute(&id, counter::Increment { by_task: task })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = repository.load(&id).await.unwrap();
    assert_eq!((loaded.version, loaded.state.count), (800, 800));
    let stream = StreamId::new("conformance_counter", &id).unwrap();
    let events = read_whole_stream(&store, &stream).await;
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=800).collect::<Vec<_>>()
    );
    let mut per_task: HashMap<u64, usize> = HashMap::new();
    for event in &events {
        let payload: serde_json::Value = event.event.decode().unwrap();
        *per_task
            .entry(payload["by_task"].as_u64().unwrap())
            .or_default() += 1;
    }
    assert!(
        per_task.values().all(|&count| count == 50),
        "each task's 50 commands landed once: {per_task:?}"
    );
}

/// A reader polling read-all while eight writers commit sees every event exactly once, in
/// increasing position order.
pub async fn read_all_never_skips_an_event_while_writers_commit(store: Store) {
    let start = read_all_events(&store)
        .await
        .last()
        .map_or(1, |e| e.position + 1);
    let prefix = unique_stream("poll").aggregate_id().to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done, prefix) = (Arc::clone(&store), Arc::clone(&done), prefix.clone());
        tokio::spawn(async move {
            let mut seen: BTreeMap<(StreamId, u64), u64> = BTreeMap::new();
            let mut next = start;
            let mut last_position = 0;
            let started = std::time::Instant::now();
            loop {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "read-all did not return every event within a minute (seen {})",
                    seen.len()
                );
                let finished = done.load(Ordering::SeqCst);
                let page = store.read_all(next, 100).await.unwrap();
                for event in &page {
                    assert!(event.position > last_position, "positions increase");
                    last_position = event.position;
                    next = event.position + 1;
                    if event.aggregate_id().starts_with(&prefix) {
                        let previous =
                            seen.insert((event.stream.clone(), event.version), event.position);
                        assert!(
                            previous.is_none(),
                            "event seen twice: {} v{}",
                            event.stream,
                            event.version
                        );
                    }
                }
                if finished && page.is_empty() && seen.len() == 8 * 25 * 2 {
                    return seen;
                }
                if page.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        })
    };
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let stream = StreamId::new("test", &format!("{prefix}-{writer}")).unwrap();
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                append_rounds(&store, &stream, 25, 2).await;
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    assert_eq!(seen.len(), 8 * 25 * 2, "every event seen exactly once");
}

/// One append of 8,001 events.
pub async fn appends_8001_events_in_one_batch(store: Store) {
    let stream = unique_stream("large");
    let recorded = start_stream(&store, &stream, 8001).await;
    assert_eq!((recorded.len(), recorded[8000].version), (8001, 8001));
    assert_eq!(store.stream_version(&stream).await.unwrap(), 8001);
    let events = read_whole_stream(&store, &stream).await;
    assert_eq!(events.len(), 8001);
    assert_eq!(
        events[8000].event.decode::<serde_json::Value>().unwrap()["n"],
        8000
    );
}

/// A stream of 100,000 events read back as a stream, a page at a time, never collected whole.
pub async fn streams_100000_events_in_pages(store: Store) {
    let stream = unique_stream("long");
    append_rounds(&store, &stream, 100, 1000).await;
    let mut events = store.stream_events(&stream, 1);
    let mut expected_version = 1;
    while let Some(event) = events.try_next().await.unwrap() {
        assert_eq!(event.version, expected_version);
        expected_version += 1;
    }
    assert_eq!(expected_version - 1, 100_000);
}

/// Stream ids, names and metadata with quotes, semicolons, backslashes, unicode and 1 KB of
/// text are stored and read back byte for byte.
pub async fn odd_strings_round_trip_unchanged(store: Store) {
    let odd =
        "it's \"quoted\"; DROP TABLE es_events; -- \\ back\\slash \u{1F980} Ünïcødé 日本語 \t\n";
    let long = "x".repeat(1024);
    let stream =
        StreamId::new("odd_type-1.x", &format!("{odd}{}", Uuid::new_v4().simple())).unwrap();
    let mut event = event("test.odd;'\"", 1);
    event.metadata.extra.insert("odd".into(), odd.into());
    event.metadata.extra.insert(odd.into(), long.clone());
    event.metadata.causation_id = Some(Uuid::now_v7());
    event.payload = Payload::encode(&serde_json::json!({ "text": odd, "long": long })).unwrap();
    let sent = event.clone();
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let read = read_whole_stream(&store, &stream).await;
    assert_eq!(read.len(), 1);
    let read = &read[0];
    assert_eq!(read.stream, stream);
    assert_eq!(read.aggregate_type(), "odd_type-1.x");
    assert_eq!(read.aggregate_id(), stream.aggregate_id());
    assert_eq!(read.event_name, sent.event_name);
    assert_eq!(read.metadata, sent.metadata);
    assert_eq!(
        read.event.decode::<serde_json::Value>().unwrap(),
        sent.payload.decode::<serde_json::Value>().unwrap()
    );
    let events = read_all_until(&store, "the odd event", |events| {
        count_in(events, &stream) == 1
    })
    .await;
    let from_all = events.iter().find(|e| e.stream == stream).unwrap();
    assert_eq!(from_all.aggregate_id(), stream.aggregate_id());
    assert_eq!(
        from_all.metadata, sent.metadata,
        "read-all returns it unchanged too"
    );
}

/// Only the newest snapshot of a stream is kept; an older one never replaces it.
pub async fn keeps_the_latest_snapshot(store: Store) {
    let stream = unique_stream("snap");
    assert!(store.load_snapshot(&stream).await.unwrap().is_none());
    let snapshot = |version: u64, state: &str| Snapshot {
        stream: stream.clone(),
        version,
        state_fingerprint: "v1".into(),
        state: Payload::encode(&serde_json::json!({ "state": state })).unwrap(),
        taken_at: chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
            .unwrap(),
    };
    store.save_snapshot(snapshot(10, "ten")).await.unwrap();
    store.save_snapshot(snapshot(20, "twenty")).await.unwrap();
    store.save_snapshot(snapshot(15, "fifteen")).await.unwrap();
    let loaded = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(loaded.version, 20);
    assert_eq!(
        loaded.state.decode::<serde_json::Value>().unwrap()["state"],
        "twenty"
    );
    assert_eq!(loaded.state_fingerprint, "v1");
}

/// A stream nobody wrote is at version 0 and reads as empty; an empty append writes nothing.
pub async fn unknown_streams_are_empty(store: Store) {
    let stream = unique_stream("nobody");
    assert_eq!(store.stream_version(&stream).await.unwrap(), 0);
    assert!(store.read_stream(&stream, 1, 10).await.unwrap().is_empty());
    assert!(store
        .append(&stream, ExpectedVersion::NoStream, Vec::new())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.stream_version(&stream).await.unwrap(), 0);
}

/// Aggregate `order` with id `line-7` and aggregate `order-line` with id `7` are two streams:
/// neither sees the other's events, and each event says which aggregate wrote it.
pub async fn stream_identities_never_meet(store: Store) {
    let suffix = Uuid::new_v4().simple().to_string();
    let order = StreamId::new(&format!("order{suffix}"), "line-7").unwrap();
    let order_line = StreamId::new(&format!("order{suffix}-line"), "7").unwrap();
    start_stream(&store, &order, 2).await;
    start_stream(&store, &order_line, 1).await;
    assert_eq!(store.stream_version(&order).await.unwrap(), 2);
    assert_eq!(store.stream_version(&order_line).await.unwrap(), 1);
    let read = read_whole_stream(&store, &order_line).await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].aggregate_type(), read[0].aggregate_id()),
        (order_line.aggregate_type(), "7")
    );
}

/// One event like [`event`], with `change` made to it.
fn changed_event(change: impl FnOnce(&mut NewEvent)) -> Vec<NewEvent> {
    let mut changed = event("x", 1);
    change(&mut changed);
    vec![changed]
}

/// How a store refused to append `events` to `stream`; fails the case if it did not.
async fn refusal_of(
    store: &Store,
    stream: &StreamId,
    events: Vec<NewEvent>,
) -> crate::error::Refusal {
    match store.append(stream, ExpectedVersion::Any, events).await {
        Err(StoreError::Refused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every store refuses the same requests at the same documented limits
/// ([`crate::limits`]), before writing anything, with a typed refusal.
pub async fn refuses_what_breaks_a_limit(store: Store) {
    use crate::error::{Field, Refusal};
    use crate::limits;
    /// The refusal a request must get: its pattern as text (for the failure message) and
    /// the test of whether a refusal matches it.
    macro_rules! refusal {
        ($pattern:pat) => {
            (
                stringify!($pattern),
                (|refusal| matches!(refusal, $pattern)) as fn(&Refusal) -> bool,
            )
        };
    }
    let stream = unique_stream("limits");
    let refused = [
        (
            changed_event(|e| e.event_name = "n".repeat(limits::MAX_EVENT_NAME_BYTES + 1).into()),
            refusal!(Refusal::TooLong {
                field: Field::EventName,
                ..
            }),
        ),
        (
            changed_event(|e| e.event_name = "a\0b".into()),
            refusal!(Refusal::Character {
                field: Field::EventName,
                character: '\0'
            }),
        ),
        (
            changed_event(|e| e.event_name = "".into()),
            refusal!(Refusal::Empty {
                field: Field::EventName
            }),
        ),
        (
            changed_event(|e| {
                e.metadata.extra.insert("who".into(), "a\0b".into());
            }),
            refusal!(Refusal::Character {
                field: Field::Metadata,
                ..
            }),
        ),
        (
            changed_event(|e| {
                let big = "m".repeat(limits::MAX_METADATA_BYTES);
                e.metadata.extra.insert("big".into(), big);
            }),
            refusal!(Refusal::TooLong {
                field: Field::Metadata,
                ..
            }),
        ),
        (
            changed_event(|e| {
                e.payload = Payload::encode(&"p".repeat(limits::MAX_PAYLOAD_BYTES)).unwrap();
            }),
            refusal!(Refusal::TooLong {
                field: Field::Payload,
                ..
            }),
        ),
        (
            batch(limits::MAX_EVENTS_PER_APPEND as u64 + 1),
            refusal!(Refusal::TooManyEvents { .. }),
        ),
    ];
    for (events, (expected, matches)) in refused {
        let refusal = refusal_of(&store, &stream, events).await;
        assert!(
            matches(&refusal),
            "expected {expected}, refused as {refusal:?}"
        );
    }
    assert_eq!(
        store.stream_version(&stream).await.unwrap(),
        0,
        "nothing was written"
    );
    // At the limit itself, everything is stored: the longest id, name and metadata.
    let longest = StreamId::new(
        &"t".repeat(limits::MAX_AGGREGATE_TYPE_BYTES),
        &format!(
            "{}{}",
            Uuid::new_v4().simple(),
            "i".repeat(limits::MAX_AGGREGATE_ID_BYTES - 32)
        ),
    )
    .unwrap();
    let mut at_limit = event(&"n".repeat(limits::MAX_EVENT_NAME_BYTES), 1);
    at_limit
        .metadata
        .extra
        .insert("m".into(), "m".repeat(limits::MAX_METADATA_BYTES - 1));
    store
        .append(&longest, ExpectedVersion::NoStream, vec![at_limit.clone()])
        .await
        .unwrap();
    let read = read_whole_stream(&store, &longest).await;
    assert_eq!(read[0].stream, longest);
    assert_eq!(read[0].metadata, at_limit.metadata);
}

/// Reading one aggregate type returns its events in position order and no others.
pub async fn reads_all_events_of_one_aggregate_type(store: Store) {
    let kind = format!("kind{}", Uuid::new_v4().simple());
    let other = format!("{kind}x");
    let start = store.head_position().await.unwrap();
    for n in 0..5 {
        let mine = StreamId::new(&kind, &n.to_string()).unwrap();
        let theirs = StreamId::new(&other, &n.to_string()).unwrap();
        start_stream(&store, &mine, 2).await;
        start_stream(&store, &theirs, 1).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let events = loop {
        let events = store.read_aggregate_type(&kind, start, 1000).await.unwrap();
        if events.len() >= 10 || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(events.len(), 10);
    assert!(events.iter().all(|e| e.aggregate_type() == kind));
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    let first_three = store.read_aggregate_type(&kind, start, 3).await.unwrap();
    assert_eq!(first_three.len(), 3, "the limit holds");
    let rest = store
        .read_aggregate_type(&kind, first_three[2].position + 1, 1000)
        .await
        .unwrap();
    assert_eq!(rest.len(), 7, "reading on from a position skips nothing");
}

/// A store behind `Arc`, `Box` or `&` answers exactly as the store itself, fast paths included.
pub async fn a_wrapped_store_answers_the_same(store: Store) {
    let stream = unique_stream("wrapped");
    start_stream(&store, &stream, 4).await;
    let boxed: Box<dyn EventStore> = Box::new(Arc::clone(&store));
    let by_ref: &dyn EventStore = &*store;
    let direct = store.read_stream_payloads(&stream, 2, 10).await.unwrap();
    assert_eq!(
        boxed.read_stream_payloads(&stream, 2, 10).await.unwrap(),
        direct
    );
    assert_eq!(
        by_ref.read_stream_payloads(&stream, 2, 10).await.unwrap(),
        direct
    );
    let head = store.head_position().await.unwrap();
    assert!(boxed.head_position().await.unwrap() >= head);
    assert!(by_ref.head_position().await.unwrap() >= head);
}

/// The head position is the last committed position, and read-all reaches it.
pub async fn reports_the_head_position(store: Store) {
    let stream = unique_stream("head");
    let recorded = start_stream(&store, &stream, 3).await;
    let last = recorded[2].position;
    let head = store.head_position().await.unwrap();
    assert!(
        head >= last,
        "head {head} is at least the last append's position {last}"
    );
    read_all_until(&store, "the head", |events| {
        events.iter().any(|e| e.position == last)
    })
    .await;
}
