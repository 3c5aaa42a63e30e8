//! Conformance cases for idempotent commands: an append whose first event carries a command
//! id already recorded on its stream appends nothing and returns the first outcome.

use uuid::Uuid;

use super::{
    batch, expect_conflict, read_all_until, read_whole_stream, start_stream, unique_stream, Store,
};
use crate::envelope::{NewEvent, RecordedEvent};
use crate::error::{Refusal, StoreError};
use crate::store::ExpectedVersion;

/// `count` new events, all of the command `command_id`, each with a fresh event id.
fn command(command_id: Uuid, count: u64) -> Vec<NewEvent> {
    batch(count)
        .into_iter()
        .map(|mut event| {
            event.metadata.command_id = Some(command_id);
            event
        })
        .collect()
}

fn event_ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|event| event.metadata.event_id).collect()
}

/// Appending one command twice appends it once; the second append returns the first
/// outcome (versions, positions, event ids), even when its expected version is stale, and
/// the events read back with their command id.
pub async fn appending_one_command_twice_appends_once(store: Store) {
    let stream = unique_stream("command-twice");
    start_stream(&store, &stream, 1).await;
    let command_id = Uuid::now_v7();
    let first = store
        .append(&stream, ExpectedVersion::Exact(1), command(command_id, 2))
        .await
        .unwrap();
    assert_eq!(first.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3]);
    // A retry of the command: the same id, other event ids, a stale expectation.
    for expected in [
        ExpectedVersion::Exact(1),
        ExpectedVersion::Any,
        ExpectedVersion::Exact(3),
        ExpectedVersion::NoStream,
    ] {
        let again = store
            .append(&stream, expected, command(command_id, 2))
            .await
            .unwrap_or_else(|error| panic!("retry expecting {expected}: {error}"));
        assert_eq!(
            again, first,
            "a retry expecting {expected} returns the first outcome"
        );
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), 3);
    let stored = read_whole_stream(&store, &stream).await;
    assert_eq!(stored.len(), 3, "the command's events are stored once");
    assert_eq!(&stored[1..], &first[..], "and read back as returned");
    assert!(stored[1..]
        .iter()
        .all(|event| event.metadata.command_id == Some(command_id)));
    assert_eq!(stored[0].metadata.command_id, None);
    let last = first[1].position;
    let all = read_all_until(&store, "the command's events", |events| {
        events.iter().any(|e| e.position == last)
    })
    .await;
    assert_eq!(
        all.iter().filter(|e| e.stream == stream).count(),
        3,
        "read-all sees the command once"
    );
    // A new command on the same stream still appends, after it.
    let next = store
        .append(
            &stream,
            ExpectedVersion::Exact(3),
            command(Uuid::now_v7(), 1),
        )
        .await
        .unwrap();
    assert_eq!(next[0].version, 4);
}

/// A command id names a command on one stream: another stream may use the same id.
pub async fn streams_may_reuse_a_command_id(store: Store) {
    let command_id = Uuid::now_v7();
    let (one, other) = (unique_stream("reuse-a"), unique_stream("reuse-b"));
    let on_one = store
        .append(&one, ExpectedVersion::NoStream, command(command_id, 1))
        .await
        .unwrap();
    let on_other = store
        .append(&other, ExpectedVersion::NoStream, command(command_id, 2))
        .await
        .unwrap();
    assert_eq!(on_other.len(), 2, "the other stream's append is its own");
    assert_ne!(event_ids(&on_one), event_ids(&on_other)[..1]);
    // A retry on either stream is answered with that stream's own first outcome.
    for (stream, first_run) in [(&other, &on_other), (&one, &on_one)] {
        let retried = store
            .append(stream, ExpectedVersion::NoStream, command(command_id, 3))
            .await
            .unwrap();
        assert_eq!(
            event_ids(&retried),
            event_ids(first_run),
            "retry on {stream}"
        );
    }
    assert_eq!(store.stream_version(&one).await.unwrap(), 1);
    assert_eq!(store.stream_version(&other).await.unwrap(), 2);
}

/// A command that created its stream is answered with its first outcome, not a conflict,
/// when retried with `NoStream`; another command expecting `NoStream` conflicts.
pub async fn a_command_id_on_a_no_stream_append(store: Store) {
    let stream = unique_stream("command-new");
    let command_id = Uuid::now_v7();
    let created = store
        .append(&stream, ExpectedVersion::NoStream, command(command_id, 1))
        .await
        .unwrap();
    assert_eq!(created[0].version, 1);
    let retried = store
        .append(&stream, ExpectedVersion::NoStream, command(command_id, 1))
        .await
        .unwrap();
    assert_eq!(retried, created);
    expect_conflict(
        store
            .append(
                &stream,
                ExpectedVersion::NoStream,
                command(Uuid::now_v7(), 1),
            )
            .await,
        ExpectedVersion::NoStream,
        1,
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), 1);
}

/// Eight runs of one command at once append it once; every run returns the same events.
pub async fn concurrent_runs_of_one_command_append_once(store: Store) {
    let stream = unique_stream("command-race");
    let command_id = Uuid::now_v7();
    let runs = (0..8).map(|run| {
        let (store, stream) = (store.clone(), stream.clone());
        let expected = if run % 2 == 0 {
            ExpectedVersion::Exact(0)
        } else {
            ExpectedVersion::Any
        };
        tokio::spawn(async move {
            store
                .append(&stream, expected, command(command_id, 3))
                .await
        })
    });
    let outcomes = futures::future::join_all(runs).await;
    let outcomes: Vec<Vec<RecordedEvent>> = outcomes
        .into_iter()
        .map(|joined| joined.expect("the task ran").expect("every run succeeds"))
        .collect();
    for outcome in &outcomes {
        assert_eq!(outcome, &outcomes[0], "every run returns the first outcome");
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), 3);
}

/// One append records one command: a batch whose events carry different command ids (or
/// some none) is refused before anything is written.
pub async fn refuses_a_batch_of_mixed_command_ids(store: Store) {
    let stream = unique_stream("command-mixed");
    let mut mixed = command(Uuid::now_v7(), 2);
    mixed[1].metadata.command_id = Some(Uuid::now_v7());
    let mut partly = command(Uuid::now_v7(), 2);
    partly[1].metadata.command_id = None;
    for events in [mixed, partly] {
        match store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
        {
            Err(StoreError::Refused {
                refusal: Refusal::CommandIdsDiffer { .. },
                ..
            }) => {}
            other => panic!("expected a refusal of mixed command ids, got {other:?}"),
        }
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), 0);
}
