//! The read-model conformance suite: what every [`ReadStore`] must do, and what the daemon
//! must do on it (exactly once, failure policies, dead letters, leases, blue/green rebuilds).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{batch, unique_stream};
use crate::envelope::RecordedEvent;
use crate::error::{ProjectionError, StoreError};
use crate::read::{
    rebuild, retry_dead_letter, Daemon, DaemonConfig, Docs, DocumentTable, DocumentWrite,
    Documents, GenerationStatus, HealthState, ListQuery, OnFailure, Projection, Projections,
    ReadStore,
};
use crate::store::ExpectedVersion;
use crate::stream::StreamId;

/// Generates one `#[test]` per read-model case for the store made by `$new_store`.
#[macro_export]
macro_rules! read_model_conformance_tests {
    ($new_store:expr $(, after = $after:expr)?) => {
        $crate::__conformance_cases!(
            $new_store, [$($after)?], dyn $crate::ReadStore, $crate::testing::read;
            keeps_documents_checkpoints_and_dead_letters_in_one_transaction,
            a_checkpoint_moves_for_one_worker_only,
            lists_documents_in_key_order_by_index_and_cursor,
            lists_documents_in_the_order_of_an_indexed_field,
            leases_are_held_renewed_and_taken_over,
            generations_are_built_beside_the_live_one_and_swapped,
            the_daemon_applies_every_event_exactly_once,
            two_daemons_share_the_work_and_apply_each_event_once,
            a_failing_handler_stops_the_projection_and_commands_go_on,
            a_skipping_projection_sets_the_event_aside_for_a_retry,
            a_rebuild_equals_the_incremental_result,
            a_changed_version_rebuilds_by_itself,
            a_swap_takes_turns_with_inline_writes,
        );
    };
}

mod swap;

pub use swap::a_swap_takes_turns_with_inline_writes;

type Store = Arc<dyn ReadStore>;

/// Per stream: how many `test.happened` events, the sum of their `n`, and the parity of the
/// count (indexed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    /// Events seen.
    pub count: u64,
    /// Sum of their `n` (times the projection's factor).
    pub sum: u64,
    /// `"even"` or `"odd"`.
    pub parity: String,
}

/// Counts `test.happened` events per stream; fails on the event whose `n` is `fail_on`.
/// `SKIP` picks the failure policy; `FACTOR` changes what it computes (and its version).
#[derive(Debug)]
pub struct Counts<const SKIP: bool, const FACTOR: u64> {
    /// The prefix of the streams it counts, so cases sharing a database do not mix.
    pub prefix: String,
    /// Fail on the event with this `n`.
    pub fail_on: Option<u64>,
}

impl<const SKIP: bool, const FACTOR: u64> Projection for Counts<SKIP, FACTOR> {
    type Document = Count;
    const NAME: &'static str = "conformance_counts";
    const VERSION: &'static str = if FACTOR == 1 { "1" } else { "2" };
    const EVENTS: &'static [&'static str] = &["test.happened"];
    const INDEXES: &'static [&'static str] = &["parity"];
    const ON_FAILURE: OnFailure = if SKIP {
        OnFailure::Skip
    } else {
        OnFailure::Stop
    };
    const PER_STREAM: bool = true;

    fn apply(&self, event: &RecordedEvent, docs: &mut Docs<Count>) -> Result<(), ProjectionError> {
        if !event.aggregate_id().starts_with(&self.prefix) {
            return Ok(());
        }
        let n = event.event.decode::<serde_json::Value>().unwrap()["n"]
            .as_u64()
            .unwrap();
        if Some(n) == self.fail_on {
            return Err(crate::__private::projection_handler_error(
                Self::NAME,
                event,
                format!("refusing n = {n}"),
            ));
        }
        docs.upsert(event.aggregate_id(), |count| {
            count.count += 1;
            count.sum += n * FACTOR;
            count.parity = if count.count % 2 == 0 { "even" } else { "odd" }.into();
        });
        Ok(())
    }
}

type Stopping = Counts<false, 1>;
type Skipping = Counts<true, 1>;

fn counts<const SKIP: bool, const FACTOR: u64>(
    prefix: &str,
    fail_on: Option<u64>,
) -> Counts<SKIP, FACTOR> {
    Counts {
        prefix: prefix.to_owned(),
        fail_on,
    }
}

fn quick(holder: &str) -> DaemonConfig {
    DaemonConfig {
        holder: holder.to_owned(),
        lease_ttl: Duration::from_millis(400),
        poll_interval: Duration::from_millis(20),
        retry_after: Duration::from_millis(20),
    }
}

/// A fresh projection name space: the streams' id prefix.
fn prefix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn stream(prefix: &str, n: usize) -> StreamId {
    StreamId::new("test", &format!("{prefix}-{n}")).unwrap()
}

/// Appends `per_stream` events to each of `streams` streams, in batches of 1 to 7.
async fn fill(store: &Store, prefix: &str, streams: usize, per_stream: u64) -> u64 {
    let mut last = 0;
    for s in 0..streams {
        let stream = stream(prefix, s);
        let mut written = 0;
        while written < per_stream {
            let size = (written % 7 + 1).min(per_stream - written);
            let events = (written..written + size)
                .map(|n| super::event("test.happened", n))
                .collect();
            let recorded = store
                .append(&stream, ExpectedVersion::Exact(written), events)
                .await
                .unwrap();
            last = recorded.last().unwrap().position;
            written += size;
        }
    }
    last
}

/// What the documents must hold after `per_stream` events `0..per_stream` per stream.
fn expected(per_stream: u64, factor: u64) -> Count {
    Count {
        count: per_stream,
        sum: (0..per_stream).sum::<u64>() * factor,
        parity: if per_stream.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        }
        .into(),
    }
}

/// Starts a daemon that runs `projection` alone on `store`, as `holder`.
async fn start_daemon(store: &Store, projection: impl Projection, holder: &str) -> Daemon {
    Daemon::start_with(
        Arc::clone(store),
        Projections::new().with(projection),
        quick(holder),
    )
    .await
    .unwrap()
}

/// Whether `daemon` brings the projection `name` to `position` within a minute.
async fn reaches(daemon: &Daemon, name: &str, position: u64) -> bool {
    daemon
        .wait_for(name, position, Duration::from_secs(60))
        .await
        .unwrap()
}

async fn documents<P: Projection>(store: &Store) -> Vec<(String, P::Document)> {
    Documents::<P>::of(&**store).all().await.unwrap()
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn table(generation: u32) -> DocumentTable {
    DocumentTable {
        projection: format!("conformance_t{}", &prefix()[..8]),
        generation,
        indexes: vec!["parity".into()],
    }
}

/// A new projection's document table, its first generation created (and so live).
async fn first_generation(store: &Store) -> DocumentTable {
    let table = table(1);
    store.create_generation(&table, "1").await.unwrap();
    table
}

/// Writes documents to `table` in a batch of their own.
async fn commit_writes(store: &Store, table: &DocumentTable, writes: Vec<DocumentWrite>) {
    let mut tx = store.begin().await.unwrap();
    tx.write(table, writes).await.unwrap();
    tx.commit().await.unwrap();
}

fn write(key: &str, parity: &str) -> DocumentWrite {
    DocumentWrite {
        key: key.into(),
        body: Some(crate::Payload::encode(&serde_json::json!({ "parity": parity })).unwrap()),
        index_values: vec![Some(parity.into())],
    }
}

/// A committed batch shows its documents, checkpoint and dead letters; a dropped one none.
pub async fn keeps_documents_checkpoints_and_dead_letters_in_one_transaction(store: Store) {
    let table = table(1);
    let state = store.create_generation(&table, "1").await.unwrap();
    assert_eq!(
        (state.checkpoint, state.status),
        (1, GenerationStatus::Live)
    );
    let letter_stream = unique_stream("letter");
    let letter = |position| crate::read::DeadLetter {
        projection: table.projection.clone(),
        position,
        stream: letter_stream.clone(),
        version: 1,
        event_name: "test.happened".into(),
        error: "it broke".into(),
        failed_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
    };
    {
        let mut tx = store.begin().await.unwrap();
        tx.write(&table, vec![write("a", "odd")]).await.unwrap();
        tx.advance(&table, 1, 10).await.unwrap();
        tx.add_dead_letter(&letter(5)).await.unwrap();
        // Dropped without commit: rolled back.
    }
    assert!(store.get_document(&table, "a").await.unwrap().is_none());
    assert_eq!(
        store.generations(&table.projection).await.unwrap()[0].checkpoint,
        1
    );
    assert!(store
        .dead_letters(&table.projection)
        .await
        .unwrap()
        .is_empty());
    let mut tx = store.begin().await.unwrap();
    tx.write(&table, vec![write("a", "odd"), write("b", "even")])
        .await
        .unwrap();
    tx.advance(&table, 1, 10).await.unwrap();
    tx.add_dead_letter(&letter(5)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.get_document(&table, "a").await.unwrap().unwrap().body,
        write("a", "odd").body.unwrap()
    );
    assert_eq!(
        store.generations(&table.projection).await.unwrap()[0].checkpoint,
        10
    );
    assert_eq!(
        store.dead_letters(&table.projection).await.unwrap(),
        vec![letter(5)]
    );
    let mut tx = store.begin().await.unwrap();
    tx.write(
        &table,
        vec![DocumentWrite {
            key: "a".into(),
            body: None,
            index_values: Vec::new(),
        }],
    )
    .await
    .unwrap();
    assert!(tx.remove_dead_letter(&table.projection, 5).await.unwrap());
    tx.commit().await.unwrap();
    assert!(store.get_document(&table, "a").await.unwrap().is_none());
    assert!(store
        .dead_letters(&table.projection)
        .await
        .unwrap()
        .is_empty());
}

/// Of two batches from the same checkpoint, only the first commits; the second is refused
/// and changes nothing.
pub async fn a_checkpoint_moves_for_one_worker_only(store: Store) {
    let table = first_generation(&store).await;
    let mut first = store.begin().await.unwrap();
    first
        .write(&table, vec![write("first", "odd")])
        .await
        .unwrap();
    first.advance(&table, 1, 5).await.unwrap();
    first.commit().await.unwrap();
    let mut second = store.begin().await.unwrap();
    second
        .write(&table, vec![write("second", "odd")])
        .await
        .unwrap();
    let refused = match second.advance(&table, 1, 5).await {
        Err(error) => Err(error),
        Ok(()) => second.commit().await,
    };
    match refused {
        Err(StoreError::CheckpointMoved {
            expected: 1,
            actual: Some(5),
            ..
        }) => {}
        other => panic!("expected the checkpoint to have moved, got {other:?}"),
    }
    assert!(store
        .get_document(&table, "second")
        .await
        .unwrap()
        .is_none());
}

/// Documents list in key order, a page at a time, filtered on an indexed field.
pub async fn lists_documents_in_key_order_by_index_and_cursor(store: Store) {
    let table = first_generation(&store).await;
    let writes = (0..25)
        .map(|n| write(&format!("k{n:02}"), if n % 2 == 0 { "even" } else { "odd" }))
        .collect();
    commit_writes(&store, &table, writes).await;
    let page = |filter: Option<(usize, String)>, after: Option<String>, limit| ListQuery {
        filter,
        after,
        limit,
        order: None,
    };
    let keys = |rows: Vec<crate::read::DocumentRow>| -> Vec<String> {
        rows.into_iter().map(|row| row.key).collect()
    };
    let first = keys(
        store
            .list_documents(&table, &page(None, None, 10))
            .await
            .unwrap(),
    );
    assert_eq!(
        first,
        (0..10).map(|n| format!("k{n:02}")).collect::<Vec<_>>()
    );
    let next = keys(
        store
            .list_documents(&table, &page(None, Some("k09".into()), 10))
            .await
            .unwrap(),
    );
    assert_eq!(next[0], "k10");
    let odd = keys(
        store
            .list_documents(
                &table,
                &page(Some((0, "odd".into())), Some("k10".into()), 100),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        odd,
        (11..25)
            .step_by(2)
            .map(|n| format!("k{n:02}"))
            .collect::<Vec<_>>()
    );
    let missing = DocumentTable {
        generation: 9,
        ..table.clone()
    };
    assert!(store
        .list_documents(&missing, &page(None, None, 10))
        .await
        .unwrap()
        .is_empty());
}

/// Documents list in the order of an indexed field's value then their key, either way, a
/// page at a time from a (value, key) cursor, filtered or not; those without it are left out.
pub async fn lists_documents_in_the_order_of_an_indexed_field(store: Store) {
    let table = DocumentTable {
        indexes: vec!["parity".into(), "rank".into()],
        ..table(1)
    };
    store.create_generation(&table, "1").await.unwrap();
    // Ranks repeat (ties break by key); every sixth document has none.
    let docs: Vec<(String, &str, Option<String>)> = (0..25)
        .map(|n| {
            let parity = if n % 2 == 0 { "even" } else { "odd" };
            let rank = (n % 6 != 0).then(|| format!("r{}", n % 5));
            (format!("k{n:02}"), parity, rank)
        })
        .collect();
    let writes = docs
        .iter()
        .map(|(key, parity, rank)| DocumentWrite {
            key: key.clone(),
            body: Some(
                crate::Payload::encode(&serde_json::json!({ "parity": parity, "rank": rank }))
                    .unwrap(),
            ),
            index_values: vec![Some((*parity).to_owned()), rank.clone()],
        })
        .collect();
    commit_writes(&store, &table, writes).await;
    for (filter, descending) in [(None, true), (None, false), (Some("odd"), true)] {
        let mut expected: Vec<(String, String)> = docs
            .iter()
            .filter(|(_, parity, _)| filter.is_none_or(|wanted| wanted == *parity))
            .filter_map(|(key, _, rank)| Some((rank.clone()?, key.clone())))
            .collect();
        expected.sort();
        if descending {
            expected.reverse();
        }
        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let query = ListQuery {
                filter: filter.map(|parity| (0, parity.to_owned())),
                limit: 4,
                order: Some(crate::read::Order {
                    index: 1,
                    descending,
                    after: after.clone(),
                }),
                ..ListQuery::default()
            };
            let rows = store.list_documents(&table, &query).await.unwrap();
            let Some(last) = rows.last() else { break };
            let position = expected
                .iter()
                .find(|(_, key)| *key == last.key)
                .cloned()
                .unwrap_or_else(|| panic!("`{}` should not be listed", last.key));
            listed.extend(rows.iter().map(|row| row.key.clone()));
            after = Some(position);
        }
        let expected_keys: Vec<String> = expected.into_iter().map(|(_, key)| key).collect();
        assert_eq!(
            listed, expected_keys,
            "filter {filter:?}, descending {descending}"
        );
    }
}

/// A lease has one holder until it expires or is released.
pub async fn leases_are_held_renewed_and_taken_over(store: Store) {
    let projection = format!("conformance_l{}", &prefix()[..8]);
    let ttl = Duration::from_millis(300);
    assert_eq!(
        store.acquire_lease(&projection, "a", ttl).await.unwrap(),
        "a"
    );
    assert_eq!(
        store.acquire_lease(&projection, "b", ttl).await.unwrap(),
        "a"
    );
    assert_eq!(
        store.lease_holder(&projection).await.unwrap().as_deref(),
        Some("a")
    );
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(store.lease_holder(&projection).await.unwrap(), None);
    assert_eq!(
        store.acquire_lease(&projection, "b", ttl).await.unwrap(),
        "b"
    );
    store.release_lease(&projection, "a").await.unwrap();
    assert_eq!(
        store.lease_holder(&projection).await.unwrap().as_deref(),
        Some("b")
    );
    store.release_lease(&projection, "b").await.unwrap();
    assert_eq!(
        store.acquire_lease(&projection, "a", ttl).await.unwrap(),
        "a"
    );
}

/// A second generation builds beside the live one; promoting it drops the first.
pub async fn generations_are_built_beside_the_live_one_and_swapped(store: Store) {
    let first = table(1);
    let second = DocumentTable {
        generation: 2,
        ..first.clone()
    };
    store.create_generation(&first, "1").await.unwrap();
    let building = store.create_generation(&second, "2").await.unwrap();
    assert_eq!(building.status, GenerationStatus::Building);
    let mut tx = store.begin().await.unwrap();
    tx.write(&first, vec![write("old", "odd")]).await.unwrap();
    tx.write(&second, vec![write("new", "odd")]).await.unwrap();
    tx.commit().await.unwrap();
    store.promote(&second).await.unwrap();
    let generations = store.generations(&first.projection).await.unwrap();
    assert_eq!(generations.len(), 1);
    assert_eq!(
        (generations[0].generation, generations[0].status),
        (2, GenerationStatus::Live)
    );
    assert!(store.get_document(&first, "old").await.unwrap().is_none());
    assert!(store.get_document(&second, "new").await.unwrap().is_some());
}

/// Events appended before and while the daemon runs are each applied once.
pub async fn the_daemon_applies_every_event_exactly_once(store: Store) {
    let prefix = prefix();
    fill(&store, &prefix, 3, 40).await;
    let daemon = start_daemon(&store, counts::<false, 1>(&prefix, None), "solo").await;
    let more = format!("{prefix}-late");
    let last = fill(&store, &more, 2, 30).await;
    assert!(
        reaches(&daemon, Stopping::NAME, last).await,
        "the daemon reached the last append"
    );
    let docs = documents::<Stopping>(&store).await;
    assert_eq!(docs.len(), 5);
    for (key, count) in &docs {
        let per_stream = if key.contains("late") { 30 } else { 40 };
        assert_eq!(count, &expected(per_stream, 1), "{key}");
    }
    let health = daemon.health().await.unwrap();
    assert!(health[0].checkpoint > last);
    assert_eq!(health[0].holder.as_deref(), Some("solo"));
    daemon.shutdown().await;
}

/// Two daemons on one store: one holds the projection, the other takes over when the first
/// stops; every event is applied once.
pub async fn two_daemons_share_the_work_and_apply_each_event_once(store: Store) {
    let prefix = prefix();
    let first = start_daemon(&store, counts::<false, 1>(&prefix, None), "first").await;
    let second = start_daemon(&store, counts::<false, 1>(&prefix, None), "second").await;
    fill(&store, &prefix, 2, 25).await;
    first.shutdown().await;
    let last = fill(&store, &format!("{prefix}-after"), 2, 25).await;
    assert!(reaches(&second, Stopping::NAME, last).await);
    let docs = documents::<Stopping>(&store).await;
    assert_eq!(docs.len(), 4);
    assert!(
        docs.iter().all(|(_, count)| *count == expected(25, 1)),
        "{docs:?}"
    );
    second.shutdown().await;
}

/// Under the stop policy the projection halts at the failing event with the error recorded;
/// commands go on; a fixed projection goes on from that event.
pub async fn a_failing_handler_stops_the_projection_and_commands_go_on(store: Store) {
    let prefix = prefix();
    fill(&store, &prefix, 1, 20).await;
    let broken = start_daemon(&store, counts::<false, 1>(&prefix, Some(13)), "broken").await;
    wait_until("the projection stops", async || {
        matches!(
            broken.health().await.unwrap()[0].state,
            HealthState::Stopped(_)
        )
    })
    .await;
    let health = broken.health().await.unwrap();
    let HealthState::Stopped(stopped) = &health[0].state else {
        unreachable!()
    };
    assert!(
        stopped.error.contains("refusing n = 13"),
        "{}",
        stopped.error
    );
    assert_eq!(health[0].checkpoint, stopped.position);
    assert_eq!(documents::<Stopping>(&store).await[0].1.count, 13);
    // Commands are not held hostage.
    store
        .append(&stream(&prefix, 0), ExpectedVersion::Exact(20), batch(1))
        .await
        .unwrap();
    broken.shutdown().await;
    let fixed = start_daemon(&store, counts::<false, 1>(&prefix, None), "fixed").await;
    let last = store.head_position().await.unwrap();
    assert!(reaches(&fixed, Stopping::NAME, last).await);
    assert_eq!(documents::<Stopping>(&store).await[0].1.count, 21);
    fixed.shutdown().await;
}

/// Under the skip policy the failing event becomes a dead letter and the rest is applied;
/// a retry after the fix applies it once.
pub async fn a_skipping_projection_sets_the_event_aside_for_a_retry(store: Store) {
    let prefix = prefix();
    let last = fill(&store, &prefix, 1, 20).await;
    let daemon = start_daemon(&store, counts::<true, 1>(&prefix, Some(13)), "skipper").await;
    assert!(reaches(&daemon, Skipping::NAME, last).await);
    daemon.shutdown().await;
    assert_eq!(documents::<Skipping>(&store).await[0].1.count, 19);
    let letters = store.dead_letters(Skipping::NAME).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].error.contains("refusing n = 13"));
    let position = letters[0].position;
    let still_broken = Projections::new().with(counts::<true, 1>(&prefix, Some(13)));
    assert!(
        retry_dead_letter(&*store, &still_broken, Skipping::NAME, position)
            .await
            .is_err()
    );
    assert_eq!(store.dead_letters(Skipping::NAME).await.unwrap().len(), 1);
    let fixed = Projections::new().with(counts::<true, 1>(&prefix, None));
    retry_dead_letter(&*store, &fixed, Skipping::NAME, position)
        .await
        .unwrap();
    assert_eq!(documents::<Skipping>(&store).await[0].1, expected(20, 1));
    assert!(matches!(
        retry_dead_letter(&*store, &fixed, Skipping::NAME, position).await,
        Err(ProjectionError::Store(StoreError::NoDeadLetter { .. }))
    ));
}

/// A rebuild from position 1 into a new generation gives what the daemon built event by
/// event, and replaces it.
pub async fn a_rebuild_equals_the_incremental_result(store: Store) {
    let prefix = prefix();
    let last = fill(&store, &prefix, 4, 30).await;
    let projections = Projections::new().with(counts::<false, 1>(&prefix, None));
    let daemon = Daemon::start_with(Arc::clone(&store), projections.clone(), quick("inc"))
        .await
        .unwrap();
    assert!(reaches(&daemon, Stopping::NAME, last).await);
    daemon.shutdown().await;
    let incremental = documents::<Stopping>(&store).await;
    let mut reports = 0;
    let done = rebuild(&*store, &projections, Stopping::NAME, |_| reports += 1)
        .await
        .unwrap();
    assert!(reports >= 2, "progress is reported");
    assert_eq!(done.generation, 2);
    assert_eq!(documents::<Stopping>(&store).await, incremental);
    let generations = store.generations(Stopping::NAME).await.unwrap();
    assert_eq!(generations.len(), 1);
    assert_eq!(generations[0].generation, 2);
}

/// A daemon whose projection version differs from the live generation's builds a new
/// generation beside it (queries keep answering from the old one) and swaps it in.
pub async fn a_changed_version_rebuilds_by_itself(store: Store) {
    let prefix = prefix();
    let last = fill(&store, &prefix, 2, 10).await;
    let old = start_daemon(&store, counts::<false, 1>(&prefix, None), "old").await;
    assert!(reaches(&old, Stopping::NAME, last).await);
    old.shutdown().await;
    let before = documents::<Stopping>(&store).await;
    assert!(before.iter().all(|(_, count)| *count == expected(10, 1)));
    // The new code computes something else (factor 2) under a new version.
    let new = start_daemon(&store, counts::<false, 2>(&prefix, None), "new").await;
    wait_until("the new generation is live", async || {
        store
            .generations(Stopping::NAME)
            .await
            .unwrap()
            .iter()
            .any(|state| state.generation == 2 && state.status == GenerationStatus::Live)
    })
    .await;
    let after = documents::<Counts<false, 2>>(&store).await;
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|(_, count)| *count == expected(10, 2)),
        "{after:?}"
    );
    new.shutdown().await;
}
