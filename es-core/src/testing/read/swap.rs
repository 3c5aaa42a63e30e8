//! A rebuild's swap against inline writes: what [`ReadTx::live_generation`],
//! [`ReadTx::read_all`] and [`ReadTx::promote`] promise together.
//!
//! [`ReadTx::live_generation`]: crate::ReadTx::live_generation
//! [`ReadTx::read_all`]: crate::ReadTx::read_all
//! [`ReadTx::promote`]: crate::ReadTx::promote

use std::collections::BTreeSet;
use std::time::Duration;

use super::{table, write, Store};
use crate::envelope::RecordedEvent;
use crate::error::StoreError;
use crate::read::{DocumentTable, GenerationStatus, ListQuery, ReadTx};
use crate::store::ExpectedVersion;
use crate::stream::StreamId;
use crate::testing::{event, unique_stream};

/// How long a case gives a spawned transaction to reach the point where a store that takes
/// turns holds it. Only the order matters: a store that gets there later (or never waits)
/// must still end with the documents right.
const HEAD_START: Duration = Duration::from_millis(100);

/// A bound on every wait for a spawned transaction.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Appends one `test.happened` event to `stream` in `tx`, as an inline write does.
async fn append_one(
    tx: &mut dyn ReadTx,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Result<Vec<RecordedEvent>, StoreError> {
    tx.append(stream, expected, vec![event("test.happened", 1)])
        .await
}

/// An inline write: reads the live generation in its transaction, appends one event to
/// `stream` and writes a document keyed by its position to that generation.
async fn inline_write(
    store: &Store,
    projection: &str,
    stream: &StreamId,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    let generation = tx
        .live_generation(projection)
        .await?
        .expect("a live generation");
    let recorded = append_one(&mut *tx, stream, ExpectedVersion::Any).await?;
    let live = DocumentTable {
        projection: projection.to_owned(),
        generation,
        indexes: vec!["parity".into()],
    };
    let keys = recorded.iter().map(|event| event.position.to_string());
    tx.write(&live, keys.map(|key| write(&key, "odd")).collect())
        .await?;
    tx.commit().await
}

/// The last step of a rebuild: promotes `table`, reads the log from position 1 and writes
/// a document for each event of `stream`, then commits. `before_commit` runs in between.
async fn swap(
    store: &Store,
    table: &DocumentTable,
    stream: &StreamId,
    before_commit: impl std::future::Future<Output = ()>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.promote(table).await?;
    let events = tx.read_all(1, 10_000).await?;
    let writes: Vec<_> = events
        .iter()
        .filter(|event| event.stream == *stream)
        .map(|event| write(&event.position.to_string(), "odd"))
        .collect();
    if !writes.is_empty() {
        tx.write(table, writes).await?;
    }
    before_commit.await;
    tx.commit().await
}

/// The live generation holds one document per event of `stream` in the log, and no other:
/// nothing written inline was lost to a swap, nothing applied twice.
async fn assert_live_matches_the_log(store: &Store, projection: &str, stream: &StreamId) {
    let generations = store.generations(projection).await.unwrap();
    let live = generations
        .iter()
        .find(|state| state.status == GenerationStatus::Live)
        .expect("a live generation");
    let live = DocumentTable {
        projection: projection.to_owned(),
        generation: live.generation,
        indexes: vec!["parity".into()],
    };
    let query = ListQuery {
        limit: 1_000,
        ..ListQuery::default()
    };
    let documents: BTreeSet<String> = store
        .list_documents(&live, &query)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.key)
        .collect();
    let logged: BTreeSet<String> = store
        .read_stream(stream, 1, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|event| event.position.to_string())
        .collect();
    assert_eq!(
        documents, logged,
        "generation {}: one document per event in the log",
        live.generation
    );
}

/// A swap and inline writes take turns: a write that read the live generation before the
/// swap either commits first (and the swap reads its event) or is refused with nothing
/// appended; a swap that read the log before a write committed either waits for it or is
/// refused. Either way the live generation never misses an event written inline.
pub async fn a_swap_takes_turns_with_inline_writes(store: Store) {
    let first = table(1);
    let projection = first.projection.clone();
    let second = DocumentTable {
        generation: 2,
        ..first.clone()
    };
    let third = DocumentTable {
        generation: 3,
        ..first.clone()
    };
    store.create_generation(&first, "1").await.unwrap();
    store.create_generation(&second, "2").await.unwrap();
    let mut probe = store.begin().await.unwrap();
    assert_eq!(
        probe.live_generation("conformance_no_such").await.unwrap(),
        None
    );
    assert_eq!(probe.live_generation(&projection).await.unwrap(), Some(1));
    drop(probe);

    // A write that read generation 1, then a swap to 2 while it is open.
    let stream = unique_stream("inline");
    let mut writing = store.begin().await.unwrap();
    assert_eq!(writing.live_generation(&projection).await.unwrap(), Some(1));
    let recorded = append_one(&mut *writing, &stream, ExpectedVersion::NoStream)
        .await
        .unwrap();
    writing
        .write(
            &first,
            vec![write(&recorded[0].position.to_string(), "odd")],
        )
        .await
        .unwrap();
    let swapping = tokio::spawn({
        let (store, second, stream) = (store.clone(), second.clone(), stream.clone());
        async move { swap(&store, &second, &stream, async {}).await }
    });
    tokio::time::sleep(HEAD_START).await;
    let written = writing.commit().await;
    let swapped = tokio::time::timeout(TIMEOUT, swapping)
        .await
        .expect("the swap ends once the write has")
        .expect("the swap task does not panic");
    swapped.expect("the swap commits");
    match written {
        Ok(()) => {}
        // A store that does not wait refuses the write instead: nothing appended.
        Err(StoreError::CheckpointMoved { actual: None, .. }) => {}
        Err(other) => panic!("the write failed otherwise: {other}"),
    }
    assert_live_matches_the_log(&store, &projection, &stream).await;

    // A swap to 3 that read the log, then a write committed before the swap could.
    store.create_generation(&third, "3").await.unwrap();
    let stream = unique_stream("inline");
    let writer = {
        let (store, projection, stream) = (store.clone(), projection.clone(), stream.clone());
        move || {
            tokio::spawn(async move {
                tokio::time::timeout(TIMEOUT, inline_write(&store, &projection, &stream))
                    .await
                    .expect("the write ends once the swap has")
            })
        }
    };
    let mut writing = None;
    let swapped = swap(&store, &third, &stream, async {
        writing = Some(writer());
        tokio::time::sleep(HEAD_START).await;
    })
    .await;
    let written = writing
        .expect("the write was started")
        .await
        .expect("the write task does not panic");
    match (&swapped, &written) {
        // The write waited for the swap, then wrote generation 3.
        (Ok(()), Ok(())) => {}
        // A store that does not wait refuses the swap (the write came after its read): the
        // rebuild catches up and swaps again.
        (
            Err(StoreError::CheckpointMoved {
                actual: Some(_), ..
            }),
            Ok(()),
        ) => {
            let building = store.generations(&projection).await.unwrap();
            assert!(building
                .iter()
                .any(|state| state.generation == 3 && state.status == GenerationStatus::Building));
        }
        other => panic!("the swap and the write did not take turns: {other:?}"),
    }
    assert_live_matches_the_log(&store, &projection, &stream).await;
}
