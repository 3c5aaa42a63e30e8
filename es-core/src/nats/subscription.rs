//! Subscriptions: a JetStream durable pull consumer feeding a local handler, exactly once in
//! effect: each message's event id is recorded in the same transaction as the handler's
//! writes, so a redelivered message is recognised and passed over; the ack follows the commit.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::watch;

use crate::envelope::{Payload, RecordedEvent};
use crate::error::{BoxError, StoreError};
use crate::event::Event;
use crate::history::RolledBack;
use crate::nats::error::{check_name, NatsError};
use crate::nats::message::event_of;
use crate::read::background::{Pacer, Pause, Tasks};
use crate::read::{
    ensure_live, DocumentTable, DocumentWrite, HealthState, Projection, ReadStore, ReadTx,
};

/// What a subscription does with the events it receives.
///
/// # For implementors
///
/// Write everything through `tx`: it commits together with the record of the events'
/// ids, which is what makes a redelivery harmless. Fail with an error to have the whole batch
/// rolled back and delivered again after a pause.
#[async_trait]
pub trait SubscriptionHandler: Send + Sync + 'static {
    /// Creates what the handler writes to (called once at start).
    async fn prepare(&self, store: &dyn ReadStore) -> Result<(), StoreError> {
        let _ = store;
        Ok(())
    }

    /// Applies `events`, in delivery order, none seen before by this subscription.
    async fn handle(
        &self,
        store: &dyn ReadStore,
        tx: &mut (dyn ReadTx + '_),
        events: &[RecordedEvent],
    ) -> Result<(), BoxError>;
}

/// Feeds a [`Projection`]'s documents from a subscription, through the same batch machinery
/// as the daemon: its live generation's table, created at start when missing.
///
/// A failing handler (under either failure policy: dead letters name positions of the local
/// log, which these events are not from) holds the subscription at that batch, retried after
/// a pause. A per-stream projection cannot rebuild a remote stream's document from a
/// rollback marker, so such a marker is a failure unless the projection handles it itself.
#[derive(Debug)]
pub struct ProjectionHandler<P> {
    projection: P,
}

impl<P: Projection> ProjectionHandler<P> {
    /// Wraps `projection`.
    pub fn new(projection: P) -> Self {
        ProjectionHandler { projection }
    }

    async fn live_table(&self, store: &dyn ReadStore) -> Result<DocumentTable, StoreError> {
        crate::read::live_table(store, &self.projection).await
    }
}

/// Why a projection fed by a subscription refused a batch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

#[async_trait]
impl<P: Projection> SubscriptionHandler for ProjectionHandler<P> {
    async fn prepare(&self, store: &dyn ReadStore) -> Result<(), StoreError> {
        self.live_table(store).await.map(|_| ())
    }

    async fn handle(
        &self,
        store: &dyn ReadStore,
        tx: &mut (dyn ReadTx + '_),
        events: &[RecordedEvent],
    ) -> Result<(), BoxError> {
        let resolves_markers = P::PER_STREAM && !P::EVENTS.contains(&RolledBack::NAME);
        if let Some(marker) = events
            .iter()
            .find(|event| resolves_markers && &*event.event_name == RolledBack::NAME)
        {
            return Err(Box::new(Refused(format!(
                "projection `{}` is per stream and leaves rollback markers to the runtime, which cannot rebuild remote stream `{}`: handle `{}` in the projection",
                P::NAME,
                marker.stream,
                RolledBack::NAME
            ))));
        }
        let table = self.live_table(store).await?;
        let outcome =
            crate::read::ErasedProjection::apply_batch(&self.projection, store, tx, &table, events)
                .await?;
        if let Some((_, error)) = outcome
            .stopped
            .or_else(|| outcome.skipped.into_iter().next())
        {
            return Err(Box::new(Refused(error)));
        }
        Ok(())
    }
}

/// Where a subscription reads and how it paces itself.
#[derive(Clone, Debug)]
pub struct SubscriptionConfig {
    /// Its name: the durable consumer's name, the lease's (`inbox_{name}`), and the table of
    /// event ids it has applied (`inbox_{name}`).
    pub name: String,
    /// The JetStream stream it consumes.
    pub stream: String,
    /// Only messages on these subjects (e.g. `es.post.>`); all of the stream's when `None`.
    pub filter_subject: Option<String>,
    /// Messages per batch and transaction; also the consumer's limit of unacknowledged
    /// messages, so a batch that died uncommitted is redelivered before anything newer.
    pub batch_size: usize,
    /// How long JetStream waits for an ack before it delivers a message again.
    pub ack_wait: Duration,
    /// How long one fetch waits for messages.
    pub poll_interval: Duration,
    /// How long to wait after a failure before trying again.
    pub retry_after: Duration,
    /// How long the lease lasts unless renewed (one process consumes at a time, to keep
    /// the stream's order).
    pub lease_ttl: Duration,
    /// Who this process is, in lease rows.
    pub holder: String,
}

impl SubscriptionConfig {
    /// A subscription `name` to every message of `stream`.
    pub fn new(name: impl Into<String>, stream: impl Into<String>) -> Self {
        let pacing = crate::read::DaemonConfig::default();
        SubscriptionConfig {
            name: name.into(),
            stream: stream.into(),
            filter_subject: None,
            batch_size: 100,
            ack_wait: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            retry_after: pacing.retry_after,
            lease_ttl: pacing.lease_ttl,
            holder: pacing.holder,
        }
    }

    /// Only messages on `subject` (wildcards allowed).
    pub fn filter_subject(mut self, subject: impl Into<String>) -> Self {
        self.filter_subject = Some(subject.into());
        self
    }

    /// The table (and lease) of the event ids this subscription has applied.
    pub fn inbox_name(&self) -> String {
        format!("inbox_{}", self.name)
    }
}

/// How far a subscription has come.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionHealth {
    /// The subscription.
    pub name: String,
    /// What it is doing (in this process).
    pub state: HealthState,
    /// Messages not yet delivered to it, by JetStream's count.
    pub pending: u64,
    /// Messages delivered and not yet acknowledged.
    pub unacknowledged: u64,
    /// Events applied by this process.
    pub applied: u64,
    /// Redelivered (or republished) events this process recognised and passed over.
    pub duplicates: u64,
}

/// A running subscription.
///
/// ```no_run
/// # async fn run(store: std::sync::Arc<dyn es_core::Store>, projection: impl es_core::Projection) -> Result<(), Box<dyn std::error::Error>> {
/// use es_core::nats::{ProjectionHandler, Subscription, SubscriptionConfig};
///
/// let jetstream = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await?);
/// let config = SubscriptionConfig::new("post_mirror", "ES").filter_subject("es.post.>");
/// let subscription =
///     Subscription::start(store, jetstream, config, ProjectionHandler::new(projection)).await?;
/// println!("{:?}", subscription.health().await?);
/// subscription.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    task: Tasks,
}

struct Shared {
    store: Arc<dyn ReadStore>,
    jetstream: jetstream::Context,
    config: SubscriptionConfig,
    handler: Box<dyn SubscriptionHandler>,
    inbox: DocumentTable,
    state: Mutex<HealthState>,
    applied: AtomicU64,
    duplicates: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn set_state(&self, state: HealthState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

impl Subscription {
    /// Creates the durable consumer and the inbox table when missing, prepares the handler,
    /// and starts consuming in the background.
    pub async fn start(
        store: Arc<dyn ReadStore>,
        jetstream: jetstream::Context,
        config: SubscriptionConfig,
        handler: impl SubscriptionHandler,
    ) -> Result<Self, NatsError> {
        check_name("subscription", &config.name)?;
        let inbox = DocumentTable {
            projection: config.inbox_name(),
            generation: 1,
            indexes: Vec::new(),
        };
        ensure_live(&*store, &inbox, "inbox").await?;
        handler.prepare(&*store).await?;
        consumer(&jetstream, &config).await?;
        let shared = Arc::new(Shared {
            store,
            jetstream,
            config,
            handler: Box::new(handler),
            inbox,
            state: Mutex::new(HealthState::Starting),
            applied: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        });
        let mut task = Tasks::default();
        task.spawn(|shutdown| run(Arc::clone(&shared), shutdown));
        Ok(Subscription { shared, task })
    }

    /// What it is doing, and what JetStream still holds for it.
    pub async fn health(&self) -> Result<SubscriptionHealth, NatsError> {
        let config = &self.shared.config;
        let consumer_error = |error: BoxError| NatsError::Consumer {
            stream: config.stream.clone(),
            consumer: config.name.clone(),
            source: error,
        };
        let stream = self
            .shared
            .jetstream
            .get_stream(&config.stream)
            .await
            .map_err(|error| consumer_error(Box::new(error)))?;
        let info = stream
            .consumer_info(&config.name)
            .await
            .map_err(|error| consumer_error(Box::new(error)))?;
        Ok(SubscriptionHealth {
            name: config.name.clone(),
            state: self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            pending: info.num_pending,
            unacknowledged: info.num_ack_pending as u64,
            applied: self.shared.applied.load(Ordering::Relaxed),
            duplicates: self.shared.duplicates.load(Ordering::Relaxed),
        })
    }

    /// Stops after the current batch and gives up the lease.
    pub async fn shutdown(self) {
        self.task.stop().await;
        let _ = self
            .shared
            .store
            .release_lease(&self.shared.inbox.projection, &self.shared.config.holder)
            .await;
    }
}

async fn consumer(
    jetstream: &jetstream::Context,
    config: &SubscriptionConfig,
) -> Result<jetstream::consumer::Consumer<pull::Config>, NatsError> {
    let consumer_error = |error: BoxError| NatsError::Consumer {
        stream: config.stream.clone(),
        consumer: config.name.clone(),
        source: error,
    };
    let stream = jetstream
        .get_stream(&config.stream)
        .await
        .map_err(|error| consumer_error(Box::new(error)))?;
    stream
        .get_or_create_consumer(
            &config.name,
            pull::Config {
                durable_name: Some(config.name.clone()),
                filter_subject: config.filter_subject.clone().unwrap_or_default(),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: config.ack_wait,
                max_ack_pending: config.batch_size.max(1) as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| consumer_error(Box::new(error)))
}

async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let config = &shared.config;
    // Messages arrive through the consumer, not the store's append signal.
    let mut pacer = Pacer::new(shutdown, None, config.poll_interval, config.retry_after);
    let mut consumer_handle = None;
    while !pacer.stopping() {
        let Some(outcome) = pacer
            .unless_stopped(round(&shared, &mut consumer_handle))
            .await
        else {
            return;
        };
        let pause = match outcome {
            Ok(Some(_)) => Pause::None,
            Ok(None) => Pause::Poll,
            Err(error) => {
                tracing::warn!(subscription = %config.name, %error, "subscription batch failed; retrying");
                shared.set_state(HealthState::Failing(error.to_string()));
                consumer_handle = None;
                Pause::Retry
            }
        };
        pacer.pause(pause).await;
    }
}

/// The next messages: whatever is there already, up to a batch; else the first to arrive
/// within the poll interval, with whatever came with it. A lone event is applied as soon as
/// it arrives, not when a wait for a full batch expires.
async fn next_messages(
    consumer: &jetstream::consumer::Consumer<pull::Config>,
    config: &SubscriptionConfig,
) -> Result<Vec<jetstream::Message>, BoxError> {
    let batch_size = config.batch_size.max(1);
    let mut messages = collect(consumer.fetch().max_messages(batch_size).messages().await?).await?;
    if messages.is_empty() {
        let first = consumer
            .batch()
            .max_messages(1)
            .expires(config.poll_interval)
            .messages()
            .await?;
        messages = collect(first).await?;
        if !messages.is_empty() && batch_size > 1 {
            let rest = consumer
                .fetch()
                .max_messages(batch_size - 1)
                .messages()
                .await?;
            messages.extend(collect(rest).await?);
        }
    }
    Ok(messages)
}

async fn collect(mut batch: pull::Batch) -> Result<Vec<jetstream::Message>, BoxError> {
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message?);
    }
    Ok(messages)
}

/// One batch: fetch, commit the new events' effects with their ids, ack. `Some(n)`: `n`
/// messages handled; `None`: nothing to do (no messages, or another process holds it).
async fn round(
    shared: &Shared,
    consumer_handle: &mut Option<jetstream::consumer::Consumer<pull::Config>>,
) -> Result<Option<usize>, NatsError> {
    let config = &shared.config;
    let store = &*shared.store;
    let holder = store
        .acquire_lease(&shared.inbox.projection, &config.holder, config.lease_ttl)
        .await?;
    if holder != config.holder {
        shared.set_state(HealthState::Standby { holder });
        return Ok(None);
    }
    let consumer = match consumer_handle {
        Some(consumer) => consumer,
        None => consumer_handle.insert(consumer(&shared.jetstream, config).await?),
    };
    let consumer_error = |error: BoxError| NatsError::Consumer {
        stream: config.stream.clone(),
        consumer: config.name.clone(),
        source: error,
    };
    let messages = next_messages(consumer, config)
        .await
        .map_err(consumer_error)?;
    if messages.is_empty() {
        shared.set_state(HealthState::CaughtUp);
        return Ok(None);
    }
    let mut events = Vec::with_capacity(messages.len());
    let mut accepted = Vec::with_capacity(messages.len());
    for message in messages {
        let stream_sequence = message.info().map_or(0, |info| info.stream_sequence);
        match event_of(message.headers.as_ref(), &message.payload) {
            Ok(event) => {
                events.push((event, stream_sequence));
                accepted.push(message);
            }
            Err(fault) => {
                // Not an event as a publisher writes it: it can never be applied, so it is
                // taken out of the stream's delivery instead of holding everything behind it.
                let error = NatsError::Message {
                    subject: message.subject.to_string(),
                    stream_sequence,
                    fault,
                };
                tracing::error!(subscription = %config.name, %error, "message passed over");
                let _ = message.ack_with(AckKind::Term).await;
            }
        }
    }
    let handled = accepted.len();
    let mut tx = store.begin().await?;
    let keys: Vec<String> = events
        .iter()
        .map(|(event, _)| event.metadata.event_id.to_string())
        .collect();
    let mut seen: HashSet<String> = tx
        .load(&shared.inbox, &keys)
        .await?
        .into_iter()
        .map(|row| row.key)
        .collect();
    let mut fresh = Vec::new();
    let mut inbox_writes = Vec::new();
    for ((event, stream_sequence), key) in events.into_iter().zip(keys) {
        if !seen.insert(key.clone()) {
            continue;
        }
        let record = serde_json::json!({
            "position": event.position,
            "stream_sequence": stream_sequence,
            "event_name": &*event.event_name,
        });
        inbox_writes.push(DocumentWrite {
            key,
            body: Some(Payload::from_json_text(record.to_string())),
            index_values: Vec::new(),
        });
        fresh.push(event);
    }
    let duplicates = handled - fresh.len();
    if !fresh.is_empty() {
        if let Err(source) = shared.handler.handle(store, &mut *tx, &fresh).await {
            drop(tx);
            let first = &fresh[0];
            let error = NatsError::Handler {
                subscription: config.name.clone(),
                event_id: first.metadata.event_id,
                event_name: first.event_name.to_string(),
                source,
            };
            for message in &accepted {
                let _ = message
                    .ack_with(AckKind::Nak(Some(config.retry_after)))
                    .await;
            }
            return Err(error);
        }
        tx.write(&shared.inbox, inbox_writes).await?;
        tx.commit().await?;
    } else {
        drop(tx);
    }
    shared
        .applied
        .fetch_add(fresh.len() as u64, Ordering::Relaxed);
    shared
        .duplicates
        .fetch_add(duplicates as u64, Ordering::Relaxed);
    // After the commit: a lost ack means a redelivery, which the inbox recognises.
    for message in &accepted {
        if let Err(source) = message.ack().await {
            return Err(NatsError::Ack {
                stream_sequence: message.info().map_or(0, |info| info.stream_sequence),
                source,
            });
        }
    }
    shared.set_state(HealthState::Running);
    Ok(Some(handled))
}
