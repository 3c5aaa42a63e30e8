//! The projection daemon over SQLite, end to end: appends wake it, it applies them in
//! batches, and queries filter on an indexed field.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{events, fresh_store, stream};
use crate::envelope::RecordedEvent;
use crate::error::ProjectionError;
use crate::read::{Daemon, Docs, Projection, Projections, ReadStore, ReadStoreExt};
use crate::store::{EventLog, ExpectedVersion};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Count {
    aggregate_type: String,
    events: u64,
}

/// How many events each stream has, keyed by aggregate id.
struct StreamCounts;

impl Projection for StreamCounts {
    type Document = Count;
    const NAME: &'static str = "stream_counts";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = &["test.happened"];
    const INDEXES: &'static [&'static str] = &["aggregate_type"];
    const PER_STREAM: bool = true;

    fn apply(&self, event: &RecordedEvent, docs: &mut Docs<Count>) -> Result<(), ProjectionError> {
        docs.upsert(event.aggregate_id(), |count| {
            count.aggregate_type = event.stream.aggregate_type().to_owned();
            count.events += 1;
        });
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_documents_in_the_file_as_commands_append() {
    let (_dir, store) = fresh_store("daemon").await;
    let store = Arc::new(store);
    // History from before the daemon started is caught up on.
    store
        .append(&stream("post", "p1"), ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    let daemon = Daemon::start(store.clone(), Projections::new().with(StreamCounts))
        .await
        .unwrap();
    let mut last = 0;
    for (aggregate_type, id, count) in [("post", "p2", 2), ("user", "u1", 4), ("post", "p1", 1)] {
        let recorded = store
            .append(
                &stream(aggregate_type, id),
                ExpectedVersion::Any,
                events(count),
            )
            .await
            .unwrap();
        last = recorded.last().unwrap().position;
    }
    assert!(
        daemon
            .wait_for("stream_counts", last, Duration::from_secs(30))
            .await
            .unwrap(),
        "the projection did not reach position {last}"
    );

    let posts = store
        .documents::<StreamCounts>()
        .where_eq("aggregate_type", "post")
        .list()
        .await
        .unwrap();
    let found: Vec<(&str, u64)> = posts
        .items
        .iter()
        .map(|(key, count)| (key.as_str(), count.events))
        .collect();
    assert_eq!(found, [("p1", 4), ("p2", 2)]);
    let user = store
        .documents::<StreamCounts>()
        .get("u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.events, 4);
    daemon.shutdown().await;
    assert_eq!(store.lease_holder("stream_counts").await.unwrap(), None);
}
