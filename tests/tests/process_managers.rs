//! Process managers on every durable store: commands applied once across a crash between
//! sending them and committing the checkpoint; deadlines that fire once, survive a restart,
//! and never fire once cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use es_core::process::{
    Deadline, Dispatch, Dispatcher, ManualClock, Process, ProcessConfig, ProcessRunner,
};
use es_core::{
    aggregate, process_manager, Command, DeadLetter, DocumentRow, DocumentTable, DocumentWrite,
    Envelope, Event, EventLog, EventLogExt, ExpectedVersion, GenerationState, ListQuery, NewEvent,
    ReadStore, ReadTx, RecordedEvent, Repository, Stopped, Store, StoreError, StreamId,
};
use es_tests::stores;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

// ---- the domain: authors and their drafts ----

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "author.suspended")]
pub struct AuthorSuspended;

#[derive(Command, Clone, Debug)]
pub struct SuspendAuthor;

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

#[aggregate(name = "author", id = String, error = Never)]
#[derive(Default, Debug)]
pub struct Author;

#[aggregate]
impl Author {
    #[handle]
    fn suspend(&self, _: SuspendAuthor) -> Result<AuthorSuspended, Never> {
        Ok(AuthorSuspended)
    }

    #[apply]
    fn suspended(&mut self, _: &AuthorSuspended) {}
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "draft.started")]
pub struct DraftStarted {
    pub author: String,
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "draft.published")]
pub struct DraftPublished {
    pub author: String,
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "draft.archived")]
pub struct DraftArchived;

#[derive(Command, Clone, Debug)]
pub struct StartDraft {
    pub author: String,
}

#[derive(Command, Clone, Debug)]
pub struct PublishDraft;

#[derive(Command, Clone, Debug, PartialEq)]
pub struct ArchiveDraft;

#[aggregate(name = "draft", id = String, error = Never)]
#[derive(Default, Debug)]
pub struct Draft {
    author: String,
}

#[aggregate]
impl Draft {
    #[handle]
    fn start(&self, command: StartDraft) -> Result<DraftStarted, Never> {
        Ok(DraftStarted {
            author: command.author,
        })
    }

    #[handle]
    fn publish(&self, _: PublishDraft) -> Result<DraftPublished, Never> {
        Ok(DraftPublished {
            author: self.author.clone(),
        })
    }

    /// Archives every time it is asked: a command applied twice shows as two events.
    #[handle]
    fn archive(&self, _: ArchiveDraft) -> Result<DraftArchived, Never> {
        Ok(DraftArchived)
    }

    #[apply]
    fn started(&mut self, event: &DraftStarted) {
        self.author = event.author.clone();
    }

    #[apply]
    fn published(&mut self, _: &DraftPublished) {}

    #[apply]
    fn archived(&mut self, _: &DraftArchived) {}
}

// ---- the process manager ----

/// A draft left alone this long is archived.
const STALE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "draft.stale")]
pub struct DraftStale {
    pub draft: String,
}

/// Per author: their open drafts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpenDrafts {
    pub drafts: Vec<String>,
}

#[process_manager(name = "draft_janitor")]
#[derive(Debug)]
pub struct DraftJanitor;

#[process_manager]
impl DraftJanitor {
    #[on]
    fn started(&self, event: &Envelope<DraftStarted>, process: &mut Process<'_, OpenDrafts>) {
        let draft = event.aggregate_id().to_owned();
        process
            .state()
            .upsert(&event.event.author, |open| open.drafts.push(draft.clone()));
        process.schedule_after(format!("stale-{draft}"), STALE_AFTER, DraftStale { draft });
    }

    #[on]
    fn published(&self, event: &Envelope<DraftPublished>, process: &mut Process<'_, OpenDrafts>) {
        let draft = event.aggregate_id().to_owned();
        process.state().update(&event.event.author, |open| {
            open.drafts.retain(|d| *d != draft)
        });
        process.cancel(format!("stale-{draft}"));
    }

    #[on]
    fn suspended(
        &self,
        event: &Envelope<AuthorSuspended>,
        process: &mut Process<'_, OpenDrafts>,
    ) -> Vec<Dispatch> {
        let drafts = process
            .state()
            .get(event.aggregate_id())
            .map(|open| open.drafts.clone())
            .unwrap_or_default();
        for draft in &drafts {
            process.cancel(format!("stale-{draft}"));
        }
        process.state().delete(event.aggregate_id());
        drafts
            .into_iter()
            .map(|draft| Dispatch::to::<Draft>(draft, ArchiveDraft))
            .collect()
    }

    #[on]
    fn stale(&self, deadline: &Deadline<DraftStale>, _: &mut Process<'_, OpenDrafts>) -> Dispatch {
        Dispatch::to::<Draft>(deadline.message.draft.clone(), ArchiveDraft)
    }
}

// ---- a store whose next commits fail: a crash after sending, before the checkpoint ----

#[derive(Debug)]
struct FailingCommits {
    inner: Arc<dyn Store>,
    to_fail: Arc<AtomicU32>,
    failed: Arc<AtomicU32>,
}

struct FailingTx<'a> {
    inner: Box<dyn ReadTx + 'a>,
    to_fail: Arc<AtomicU32>,
    failed: Arc<AtomicU32>,
}

#[async_trait]
impl ReadTx for FailingTx<'_> {
    async fn append(
        &mut self,
        stream: &es_core::StreamId,
        expected: es_core::ExpectedVersion,
        events: Vec<es_core::NewEvent>,
    ) -> Result<Vec<es_core::RecordedEvent>, StoreError> {
        self.inner.append(stream, expected, events).await
    }
    async fn load(
        &mut self,
        t: &DocumentTable,
        k: &[String],
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.inner.load(t, k).await
    }
    async fn write(&mut self, t: &DocumentTable, w: Vec<DocumentWrite>) -> Result<(), StoreError> {
        self.inner.write(t, w).await
    }
    async fn advance(&mut self, t: &DocumentTable, from: u64, to: u64) -> Result<(), StoreError> {
        self.inner.advance(t, from, to).await
    }
    async fn live_generation(&mut self, p: &str) -> Result<Option<u32>, StoreError> {
        self.inner.live_generation(p).await
    }
    async fn read_all(
        &mut self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }
    async fn promote(&mut self, t: &DocumentTable) -> Result<(), StoreError> {
        self.inner.promote(t).await
    }
    async fn set_stopped(
        &mut self,
        t: &DocumentTable,
        s: Option<&Stopped>,
    ) -> Result<(), StoreError> {
        self.inner.set_stopped(t, s).await
    }
    async fn add_dead_letter(&mut self, l: &DeadLetter) -> Result<(), StoreError> {
        self.inner.add_dead_letter(l).await
    }
    async fn remove_dead_letter(&mut self, p: &str, position: u64) -> Result<bool, StoreError> {
        self.inner.remove_dead_letter(p, position).await
    }
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let fail = self
            .to_fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            // Dropping the transaction rolls it back, as a crash before COMMIT would.
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::OutcomeUnknown {
                context: "test: process died before its checkpoint committed",
                source: "killed".into(),
            });
        }
        self.inner.commit().await
    }
}

#[async_trait]
impl EventLog for FailingCommits {
    async fn append(
        &self,
        s: &StreamId,
        e: ExpectedVersion,
        ev: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.append(s, e, ev).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s, from, limit).await
    }
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }
    async fn stream_version(&self, s: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(s).await
    }
}

#[async_trait]
impl ReadStore for FailingCommits {
    async fn generations(&self, p: &str) -> Result<Vec<GenerationState>, StoreError> {
        self.inner.generations(p).await
    }
    async fn create_generation(
        &self,
        t: &DocumentTable,
        v: &str,
    ) -> Result<GenerationState, StoreError> {
        self.inner.create_generation(t, v).await
    }
    async fn promote(&self, t: &DocumentTable) -> Result<(), StoreError> {
        self.inner.promote(t).await
    }
    async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        Ok(Box::new(FailingTx {
            inner: self.inner.begin().await?,
            to_fail: Arc::clone(&self.to_fail),
            failed: Arc::clone(&self.failed),
        }))
    }
    async fn get_document(
        &self,
        t: &DocumentTable,
        k: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        self.inner.get_document(t, k).await
    }
    async fn list_documents(
        &self,
        t: &DocumentTable,
        q: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.inner.list_documents(t, q).await
    }
    async fn dead_letters(&self, p: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(p).await
    }
    async fn acquire_lease(&self, p: &str, h: &str, ttl: Duration) -> Result<String, StoreError> {
        self.inner.acquire_lease(p, h, ttl).await
    }
    async fn lease_holder(&self, p: &str) -> Result<Option<String>, StoreError> {
        self.inner.lease_holder(p).await
    }
    async fn release_lease(&self, p: &str, h: &str) -> Result<(), StoreError> {
        self.inner.release_lease(p, h).await
    }
    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.append_signal()
    }
}

// ---- helpers ----

fn config() -> ProcessConfig {
    ProcessConfig {
        poll_interval: Duration::from_millis(20),
        retry_after: Duration::from_millis(20),
        ..ProcessConfig::default()
    }
}

struct World {
    store: Arc<dyn Store>,
    drafts: Repository<Draft>,
    authors: Repository<Author>,
    clock: ManualClock,
}

impl World {
    fn new(store: Arc<dyn Store>) -> Self {
        World {
            drafts: Repository::<Draft>::new(Arc::clone(&store)),
            authors: Repository::<Author>::new(Arc::clone(&store)),
            store,
            clock: ManualClock::starting_now(),
        }
    }

    async fn start(&self, read: Arc<dyn ReadStore>) -> ProcessRunner {
        let dispatcher = Dispatcher::new()
            .route(self.drafts.clone())
            .route(self.authors.clone());
        ProcessRunner::start(
            read,
            dispatcher,
            Arc::new(self.clock.clone()),
            DraftJanitor,
            config(),
        )
        .await
        .unwrap()
    }

    /// The events of a draft's stream.
    async fn draft_events(&self, draft: &str) -> Vec<RecordedEvent> {
        self.store
            .stream_events(&StreamId::new("draft", draft).unwrap(), 1)
            .try_collect()
            .await
            .unwrap()
    }

    async fn archivals(&self, draft: &str) -> usize {
        self.draft_events(draft)
            .await
            .iter()
            .filter(|event| &*event.event_name == DraftArchived::NAME)
            .count()
    }

    /// Waits (up to 10 s) until the process manager has read everything up to the head.
    async fn settle(&self, runner: &ProcessRunner) {
        for _ in 0..500 {
            let head = self.store.head_position().await.unwrap();
            if runner.health().await.unwrap().checkpoint > head {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the process manager did not catch up: {:?}",
            runner.health().await
        );
    }

    /// Waits (up to 10 s) until `draft` has been archived `count` times.
    async fn await_archivals(&self, draft: &str, count: usize) {
        for _ in 0..500 {
            if self.archivals(draft).await >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("draft {draft} was not archived {count} times");
    }
}

// ---- the scenarios, each run on every store ----

/// Suspending an author archives their open drafts, once each, even though the first two
/// attempts to commit the checkpoint "crash" after the commands were sent.
async fn crash_between_send_and_checkpoint(store: Arc<dyn Store>) {
    let world = World::new(Arc::clone(&store));
    let to_fail = Arc::new(AtomicU32::new(0));
    let failed = Arc::new(AtomicU32::new(0));
    let read = Arc::new(FailingCommits {
        inner: Arc::clone(&store),
        to_fail: Arc::clone(&to_fail),
        failed: Arc::clone(&failed),
    });
    let runner = world.start(read).await;
    for draft in ["d1", "d2"] {
        world
            .drafts
            .execute(
                &draft.to_owned(),
                StartDraft {
                    author: "ann".into(),
                },
            )
            .await
            .unwrap();
    }
    world
        .drafts
        .execute(
            &"d3".to_owned(),
            StartDraft {
                author: "bob".into(),
            },
        )
        .await
        .unwrap();
    world.settle(&runner).await;

    to_fail.store(2, Ordering::SeqCst);
    let suspended = world
        .authors
        .execute(&"ann".to_owned(), SuspendAuthor)
        .await
        .unwrap();
    world.settle(&runner).await;
    assert_eq!(
        failed.load(Ordering::SeqCst),
        2,
        "two commits were made to fail"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    for draft in ["d1", "d2"] {
        assert_eq!(
            world.archivals(draft).await,
            1,
            "draft {draft} archived once"
        );
        let events = world.draft_events(draft).await;
        let archived = events.last().unwrap();
        assert_eq!(
            archived.metadata.causation_id,
            Some(suspended[0].metadata.event_id)
        );
        assert_eq!(
            archived.metadata.correlation_id,
            suspended[0].metadata.correlation_id
        );
        assert_eq!(
            archived
                .metadata
                .extra
                .get("process_manager")
                .map(String::as_str),
            Some("draft_janitor")
        );
    }
    assert_eq!(
        world.archivals("d3").await,
        0,
        "another author's draft stays"
    );
    runner.shutdown().await;
}

/// A stale draft is archived by its deadline once, after a restart of the process manager;
/// a published draft's deadline is cancelled and never fires.
async fn deadlines_fire_once_and_never_when_cancelled(store: Arc<dyn Store>) {
    let world = World::new(Arc::clone(&store));
    let read: Arc<dyn ReadStore> = store.clone();
    let runner = world.start(Arc::clone(&read)).await;
    world
        .drafts
        .execute(
            &"stale".to_owned(),
            StartDraft {
                author: "cy".into(),
            },
        )
        .await
        .unwrap();
    world
        .drafts
        .execute(
            &"kept".to_owned(),
            StartDraft {
                author: "cy".into(),
            },
        )
        .await
        .unwrap();
    world
        .drafts
        .execute(&"kept".to_owned(), PublishDraft)
        .await
        .unwrap();
    world.settle(&runner).await;
    assert_eq!(
        runner.health().await.unwrap().pending_deadlines,
        1,
        "the published draft's deadline is cancelled"
    );

    // Restart before anything is due: the deadline is in the store, not in the runner.
    runner.shutdown().await;
    world.clock.advance(STALE_AFTER + Duration::from_secs(60));
    let runner = world.start(Arc::clone(&read)).await;
    world.await_archivals("stale", 1).await;
    // A second runner over the same store (another instance) and more time: still once.
    let other = world.start(read).await;
    world.clock.advance(STALE_AFTER);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(world.archivals("stale").await, 1, "the deadline fired once");
    assert_eq!(
        world.archivals("kept").await,
        0,
        "a cancelled deadline never fires"
    );
    assert_eq!(runner.health().await.unwrap().pending_deadlines, 0);
    let archived = world.draft_events("stale").await.last().unwrap().clone();
    let started = world.draft_events("stale").await[0].clone();
    assert_eq!(
        archived.metadata.correlation_id, started.metadata.correlation_id,
        "the deadline's command joins the scheduling event's correlation"
    );
    runner.shutdown().await;
    other.shutdown().await;
}

/// A process manager catching up after a pause (a restart, a crash) handles events in
/// batches; a deadline already past due by the clock must still not fire while an event
/// recorded before it came due, and not yet read, may cancel it. Every draft here is
/// published right after it is started, so none may be archived.
async fn deadlines_cancelled_in_time_stay_cancelled_when_catching_up(store: Arc<dyn Store>) {
    let world = World::new(Arc::clone(&store));
    // One event before the pairs and 60 pairs after it: a batch of any even size up to 120
    // ends between some draft's start and its publication.
    store
        .append(
            &StreamId::new("filler", "1").unwrap(),
            ExpectedVersion::Any,
            vec![es_core::testing::event("filler.noted", 0)],
        )
        .await
        .unwrap();
    let drafts: Vec<String> = (0..60).map(|n| format!("d{n}")).collect();
    for draft in &drafts {
        let author = "ann".to_owned();
        world
            .drafts
            .execute(draft, StartDraft { author })
            .await
            .unwrap();
        world.drafts.execute(draft, PublishDraft).await.unwrap();
    }
    // Every deadline is past due by the time the process manager starts.
    world.clock.advance(STALE_AFTER + Duration::from_secs(60));
    let runner = world.start(store.clone()).await;
    world.settle(&runner).await;
    assert_eq!(runner.health().await.unwrap().pending_deadlines, 0);
    for draft in &drafts {
        assert_eq!(
            world.archivals(draft).await,
            0,
            "draft {draft} was published before its deadline was due"
        );
    }
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_applies_commands_once_across_a_crash_before_the_checkpoint() {
    crash_between_send_and_checkpoint(Arc::new(es_core::MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_deadlines_fire_once_and_never_when_cancelled() {
    deadlines_fire_once_and_never_when_cancelled(Arc::new(es_core::MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_applies_commands_once_across_a_crash_before_the_checkpoint() {
    let store = stores::sqlite_store().await;
    crash_between_send_and_checkpoint(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deadlines_fire_once_and_never_when_cancelled() {
    let store = stores::sqlite_store().await;
    deadlines_fire_once_and_never_when_cancelled(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_applies_commands_once_across_a_crash_before_the_checkpoint() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    crash_between_send_and_checkpoint(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deadlines_fire_once_and_never_when_cancelled() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    deadlines_fire_once_and_never_when_cancelled(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_deadlines_cancelled_in_time_stay_cancelled_when_catching_up() {
    deadlines_cancelled_in_time_stay_cancelled_when_catching_up(Arc::new(
        es_core::MemoryStore::new(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deadlines_cancelled_in_time_stay_cancelled_when_catching_up() {
    let store = stores::sqlite_store().await;
    deadlines_cancelled_in_time_stay_cancelled_when_catching_up(Arc::new(store.clone())).await;
    stores::remove_sqlite(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deadlines_cancelled_in_time_stay_cancelled_when_catching_up() {
    let Some(store) = stores::postgres_store().await else {
        return;
    };
    deadlines_cancelled_in_time_stay_cancelled_when_catching_up(Arc::new(store.clone())).await;
    store.drop_schema().await.unwrap();
}

// ---- the fixture: given events, when an event or time, then commands and deadlines ----

#[test]
fn fixture_suspending_an_author_archives_their_open_drafts() {
    use es_core::process::ProcessFixture;
    ProcessFixture::new(DraftJanitor)
        .given::<Draft>(
            &"d1".into(),
            DraftStarted {
                author: "ann".into(),
            },
        )
        .given::<Draft>(
            &"d2".into(),
            DraftStarted {
                author: "ann".into(),
            },
        )
        .given::<Draft>(
            &"d2".into(),
            DraftPublished {
                author: "ann".into(),
            },
        )
        .then_deadlines(["stale-d1"])
        .when::<Author>(&"ann".into(), AuthorSuspended)
        .then_commands([Dispatch::to::<Draft>("d1".into(), ArchiveDraft)])
        .then_deadlines::<&str>([]);
}

#[test]
fn fixture_a_draft_left_alone_is_archived_when_its_deadline_comes() {
    use es_core::process::ProcessFixture;
    let fixture = ProcessFixture::new(DraftJanitor)
        .given::<Draft>(
            &"d1".into(),
            DraftStarted {
                author: "ann".into(),
            },
        )
        .when_time_passes(STALE_AFTER - Duration::from_secs(1))
        .then_commands([])
        .when_time_passes(Duration::from_secs(1))
        .then_commands([Dispatch::to::<Draft>("d1".into(), ArchiveDraft)])
        .then_deadlines::<&str>([]);
    assert_eq!(fixture.state("ann").unwrap().drafts, ["d1"]);
}
