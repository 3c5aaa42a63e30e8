//! The outbox publisher: reads the log in order from its checkpoint and publishes each chosen
//! event to JetStream, moving the checkpoint only past what JetStream acknowledged.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use tokio::sync::watch;

use crate::nats::error::{check_name, NatsError};
use crate::nats::message::headers_of;
use crate::nats::subject::{subject_for, valid_prefix, EventFilter};
use crate::read::background::{wait_past, Pacer, Pause, Tasks};
use crate::read::{ensure_live, live_state, ReadStore};
use crate::read::{DaemonConfig, DocumentTable, HealthState, ProjectionHealth};

/// What a publisher publishes, where, and how it paces itself.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// Its name: one publisher of this name runs at a time across processes, and its
    /// checkpoint is the generation row `publisher_{name}`.
    pub name: String,
    /// Subjects are `{prefix}.{aggregate type}.{event name}`; `es` by default.
    pub subject_prefix: String,
    /// The JetStream stream, created with subjects `{prefix}.>` when missing; by default the
    /// prefix upper-cased with every other character `_` (`es` → `ES`).
    pub stream: String,
    /// Which events go out; all by default.
    pub filter: EventFilter,
    /// The duplicate window of a stream this publisher creates: a republished event vanishes
    /// if its first copy was stored at most this long before.
    pub duplicate_window: Duration,
    /// How many events one round reads and publishes before it waits for their acks.
    pub batch_size: usize,
    /// Holder id, lease, polling and retry pacing, as for the projection daemon.
    pub pacing: DaemonConfig,
}

impl PublisherConfig {
    /// A publisher of every event under prefix `es` to stream `ES`.
    pub fn new(name: impl Into<String>) -> Self {
        PublisherConfig {
            name: name.into(),
            subject_prefix: "es".to_owned(),
            stream: "ES".to_owned(),
            filter: EventFilter::all(),
            duplicate_window: Duration::from_secs(120),
            batch_size: 500,
            pacing: DaemonConfig::default(),
        }
    }

    /// Publishes under `prefix`, to the stream named after it.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self.stream = stream_name_for(&self.subject_prefix);
        self
    }

    /// Publishes to this JetStream stream.
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = stream.into();
        self
    }

    /// Publishes only the events `filter` accepts.
    pub fn filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The generation row (and lease) that holds this publisher's checkpoint.
    pub fn checkpoint_name(&self) -> String {
        format!("publisher_{}", self.name)
    }
}

/// The stream a prefix publishes to by default: `es` → `ES`, `acme.orders` → `ACME_ORDERS`.
pub fn stream_name_for(prefix: &str) -> String {
    prefix
        .chars()
        .map(|character| match character {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => character.to_ascii_uppercase(),
            _ => '_',
        })
        .collect()
}

fn checkpoint_table(config: &PublisherConfig) -> DocumentTable {
    DocumentTable {
        projection: config.checkpoint_name(),
        generation: 1,
        indexes: Vec::new(),
    }
}

/// Publishes the log to NATS JetStream, in the background.
///
/// Each chosen event goes to `{prefix}.{aggregate type}.{event name}` with its event id as
/// `Nats-Msg-Id` and its envelope as headers (see [`headers`](super::headers)). The
/// checkpoint moves only past events JetStream acknowledged, so a crash republishes at most
/// the unacknowledged tail, and JetStream drops those that were stored already (inside its
/// duplicate window). Commands never wait for it: it reads what they committed.
///
/// ```no_run
/// # async fn run(store: std::sync::Arc<dyn es_core::Store>) -> Result<(), Box<dyn std::error::Error>> {
/// use es_core::nats::{EventFilter, Publisher, PublisherConfig};
///
/// let jetstream = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await?);
/// let config = PublisherConfig::new("public")
///     .subject_prefix("blog")
///     .filter(EventFilter::none().event("post.published"));
/// let publisher = Publisher::start(store, jetstream, config).await?;
/// println!("{:?}", publisher.health().await?);
/// publisher.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
    task: Tasks,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn ReadStore>,
    jetstream: jetstream::Context,
    config: PublisherConfig,
    table: DocumentTable,
    checkpoint: watch::Sender<u64>,
    state: Mutex<HealthState>,
}

impl Shared {
    fn set_state(&self, state: HealthState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    fn state(&self) -> HealthState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Creates the stream `config` publishes to unless it exists: subjects `{prefix}.>`, the
/// configured duplicate window.
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &PublisherConfig,
) -> Result<stream::Stream, NatsError> {
    jetstream
        .get_or_create_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            duplicate_window: config.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|error| NatsError::Stream {
            stream: config.stream.clone(),
            source: Box::new(error),
        })
}

impl Publisher {
    /// Checks the configuration, creates the stream and the checkpoint row when missing,
    /// and starts publishing in the background.
    pub async fn start(
        store: Arc<dyn ReadStore>,
        jetstream: jetstream::Context,
        config: PublisherConfig,
    ) -> Result<Self, NatsError> {
        check_name("publisher", &config.name)?;
        if !valid_prefix(&config.subject_prefix) {
            return Err(NatsError::BadPrefix(config.subject_prefix.clone()));
        }
        ensure_stream(&jetstream, &config).await?;
        let table = checkpoint_table(&config);
        let checkpoint = prepare(&*store, &table).await?;
        let shared = Arc::new(Shared {
            store,
            jetstream,
            config,
            table,
            checkpoint: watch::Sender::new(checkpoint),
            state: Mutex::new(HealthState::Starting),
        });
        let mut task = Tasks::default();
        task.spawn(|shutdown| run(Arc::clone(&shared), shutdown));
        Ok(Publisher { shared, task })
    }

    /// Checkpoint, head, lag in events and seconds, state and lease holder, like a
    /// projection's (its name is the checkpoint row's, `publisher_{name}`).
    pub async fn health(&self) -> Result<ProjectionHealth, NatsError> {
        let mut health = publisher_health(&*self.shared.store, &self.shared.config.name).await?;
        let state = self.shared.state();
        if !matches!(state, HealthState::Starting) || health.state.is_unknown() {
            health.state = state;
        }
        Ok(health)
    }

    /// Waits until every chosen event up to and including `position` was acknowledged by
    /// JetStream, for at most `timeout`; returns whether it got there.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<bool, NatsError> {
        let stored = || stored_checkpoint(&*self.shared.store, &self.shared.table.projection);
        wait_past(
            self.shared.checkpoint.subscribe(),
            position,
            timeout,
            stored,
        )
        .await
    }

    /// Stops after the current round and gives up the lease.
    pub async fn shutdown(self) {
        self.task.stop().await;
        let _ = self
            .shared
            .store
            .release_lease(
                &self.shared.table.projection,
                &self.shared.config.pacing.holder,
            )
            .await;
    }
}

/// Where the publisher `name` stands, read from the store: usable from any process.
pub async fn publisher_health(
    store: &dyn ReadStore,
    name: &str,
) -> Result<ProjectionHealth, NatsError> {
    let row = format!("publisher_{name}");
    let head = store.head_position().await?;
    let checkpoint = stored_checkpoint(store, &row).await?;
    let oldest_unpublished = store.read_all(checkpoint, 1).await?;
    let lag_seconds = oldest_unpublished.first().map_or(0.0, |event| {
        (chrono::Utc::now() - event.recorded_at)
            .to_std()
            .map_or(0.0, |lag| lag.as_secs_f64())
    });
    Ok(ProjectionHealth {
        name: row.clone(),
        generation: 1,
        version: PUBLISHER_VERSION.to_owned(),
        checkpoint,
        head,
        lag_events: (head + 1).saturating_sub(checkpoint),
        lag_seconds,
        state: if checkpoint > head {
            HealthState::CaughtUp
        } else {
            HealthState::Unknown
        },
        holder: store.lease_holder(&row).await?,
        dead_letters: 0,
    })
}

/// The version recorded on a publisher's checkpoint row; a publisher is never rebuilt.
const PUBLISHER_VERSION: &str = "publisher";

async fn stored_checkpoint(store: &dyn ReadStore, row: &str) -> Result<u64, NatsError> {
    Ok(live_state(store, row)
        .await?
        .map_or(1, |state| state.checkpoint))
}

/// Creates the checkpoint row unless it exists; returns the checkpoint.
async fn prepare(store: &dyn ReadStore, table: &DocumentTable) -> Result<u64, NatsError> {
    Ok(ensure_live(store, table, PUBLISHER_VERSION)
        .await?
        .checkpoint)
}

/// What one round did.
enum Round {
    /// Published (or passed over) events up to here.
    Advanced,
    /// Nothing new.
    CaughtUp,
    /// Another process holds the lease.
    Standby,
}

async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let pacing = &shared.config.pacing;
    let mut pacer = Pacer::new(
        shutdown,
        shared.store.append_signal(),
        pacing.poll_interval,
        pacing.retry_after,
    );
    while !pacer.stopping() {
        let pause = match round(&shared).await {
            Ok(Round::Advanced) => Pause::None,
            Ok(Round::CaughtUp) | Ok(Round::Standby) => Pause::Poll,
            Err(error) => {
                tracing::warn!(publisher = %shared.config.name, %error, "publishing failed; retrying");
                shared.set_state(HealthState::Failing(error.to_string()));
                // A retry does not wait for an append: the events are there, JetStream was not.
                Pause::Retry
            }
        };
        pacer.pause(pause).await;
    }
}

/// Holds the lease, reads one batch at the checkpoint, publishes the chosen events without
/// waiting in between, then waits for their acks in order and moves the checkpoint past the
/// acknowledged prefix (compare-and-set, so a process that lost the lease cannot move it).
async fn round(shared: &Shared) -> Result<Round, NatsError> {
    let store = &*shared.store;
    let config = &shared.config;
    let row = &shared.table.projection;
    let holder = store
        .acquire_lease(row, &config.pacing.holder, config.pacing.lease_ttl)
        .await?;
    if holder != config.pacing.holder {
        shared.set_state(HealthState::Standby { holder });
        return Ok(Round::Standby);
    }
    let checkpoint = prepare(store, &shared.table).await?;
    let events = store.read_all(checkpoint, config.batch_size.max(1)).await?;
    if events.is_empty() {
        shared.checkpoint.send_replace(checkpoint);
        shared.set_state(HealthState::CaughtUp);
        return Ok(Round::CaughtUp);
    }
    // One connection delivers in order, so JetStream stores a prefix of what was sent
    // however the process dies: per aggregate stream the order stays the log's.
    let mut acks = Vec::with_capacity(events.len());
    let mut failure = None;
    for event in &events {
        if !config.filter.accepts_event(event) {
            acks.push(None);
            continue;
        }
        let subject = subject_for(
            &config.subject_prefix,
            event.aggregate_type(),
            &event.event_name,
        );
        let message = PublishMessage::build()
            .payload(bytes::Bytes::copy_from_slice(
                event.event.as_str().as_bytes(),
            ))
            .headers(headers_of(event));
        match shared
            .jetstream
            .send_publish(subject.clone(), message)
            .await
        {
            Ok(ack) => acks.push(Some((subject, ack))),
            Err(error) => {
                failure = Some(NatsError::Publish {
                    subject,
                    event_id: event.metadata.event_id,
                    source: Box::new(error),
                });
                break;
            }
        }
    }
    let mut acknowledged_to = checkpoint;
    for (event, ack) in events.iter().zip(acks) {
        if let Some((subject, ack)) = ack {
            if let Err(error) = ack.await {
                failure.get_or_insert(NatsError::Publish {
                    subject,
                    event_id: event.metadata.event_id,
                    source: Box::new(error),
                });
                break;
            }
        }
        acknowledged_to = event.position + 1;
    }
    if acknowledged_to != checkpoint {
        let mut tx = store.begin().await?;
        tx.advance(&shared.table, checkpoint, acknowledged_to)
            .await?;
        tx.commit().await?;
        shared.checkpoint.send_replace(acknowledged_to);
    }
    if let Some(error) = failure {
        return Err(error);
    }
    shared.set_state(HealthState::Running);
    Ok(Round::Advanced)
}
