//! The repository: load an aggregate, run a command, append its events.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::cache::AggregateCache;
use crate::context::Context;
use crate::envelope::{Envelope, Metadata, NewEvent, Payload};
use crate::error::{DecodeError, RepositoryError, StoreError};
use crate::event::{Event, EventSet};
use crate::history::{decode_change, Change, RolledBack};
use crate::read::{Projections, ReadStore};
use crate::replay::{catch_up, rebuild, Until};
use crate::store::{EventStore, ExpectedVersion, Snapshot};
use crate::stream::StreamId;

mod inline;

use inline::Inline;

/// How often to retry a command whose append lost a race with another writer.
///
/// Each retry reloads the aggregate and handles the command again against the new state, so
/// a command that became invalid (say, the post was archived meanwhile) is rejected rather
/// than appended blindly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means never retry.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each time, with random jitter.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Never retry: a conflict is returned at once.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_backoff);
        // Full jitter: contenders that collided once should not collide again in lockstep.
        let random = (Uuid::new_v4().as_u128() % 1024) as u32;
        exponential.mul_f64(f64::from(random) / 1024.0)
    }
}

impl Default for RetryPolicy {
    /// Ten attempts, backing off from 1 ms up to 100 ms.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(100),
        }
    }
}

/// Context a caller attaches to a command; every event the command produces carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandMetadata {
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    command_id: Option<Uuid>,
    extra: BTreeMap<String, String>,
}

impl CommandMetadata {
    /// Empty: a fresh correlation id is made for the command.
    pub fn new() -> Self {
        Self::default()
    }

    /// Joins an existing correlation (e.g. the id of the HTTP request that caused this command).
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Records what caused the command (e.g. the id of an event a process manager reacted to).
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Names the command, so that running it again appends nothing: the store records the id
    /// with the command's events, and a later run of a command with the same id on the same
    /// aggregate returns the events the first run committed. Give the id your caller sends
    /// with its request (e.g. an `Idempotency-Key` header), so a client that retries after a
    /// lost reply books once.
    ///
    /// Without it, each [`execute_with`](Repository::execute_with) call makes a fresh id, so
    /// the repository's own retries after [`StoreError::OutcomeUnknown`] are safe, but a
    /// second call is a second command.
    ///
    /// A run that decides differently the second time (the aggregate now rejects the
    /// command, or decides no events) returns that decision: the id only stops a second
    /// append.
    pub fn command_id(mut self, id: Uuid) -> Self {
        self.command_id = Some(id);
        self
    }

    /// Adds a free-form entry, e.g. `("user", "alice")`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The correlation the caller joined with [`CommandMetadata::correlation_id`], if any.
    pub fn correlation(&self) -> Option<Uuid> {
        self.correlation_id
    }

    /// The cause the caller recorded with [`CommandMetadata::causation_id`], if any.
    pub fn causation(&self) -> Option<Uuid> {
        self.causation_id
    }

    /// The free-form entry `key`, e.g. `get("user")`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extra.get(key).map(String::as_str)
    }

    /// Every free-form entry, ordered by key.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

/// An aggregate's state together with the stream version it reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state after applying every event up to `version`.
    pub state: A,
    /// The stream's version (0: no events yet).
    pub version: u64,
}

/// Runs commands against aggregates of type `A` stored in one event store, handing each
/// handler the aggregate's services (see [`Context`]).
///
/// ```
/// # use es_core::{aggregate, Command, Event, MemoryStore, Repository};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # pub struct Incremented { by: u32 }
/// # #[derive(Command, Clone, Debug)]
/// # pub struct Increment { by: u32 }
/// # #[derive(Debug, thiserror::Error)] #[error("never")] pub struct Never;
/// # #[aggregate(name = "counter", id = u32, error = Never)]
/// # #[derive(Default, Debug)]
/// # pub struct Counter { value: u32 }
/// # #[aggregate]
/// # impl Counter {
/// #     #[handle] fn increment(&self, c: Increment) -> Result<Incremented, Never> { Ok(Incremented { by: c.by }) }
/// #     #[apply] fn incremented(&mut self, e: &Incremented) { self.value += e.by }
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let repository = Repository::<Counter>::new(MemoryStore::new());
/// let committed = repository.execute(&7, Increment { by: 2 }).await?;
/// assert_eq!(committed[0].version, 1);
/// assert_eq!(repository.load(&7).await?.state.value, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Repository<A: Aggregate> {
    store: Arc<dyn EventStore>,
    services: Arc<A::Services>,
    retry: RetryPolicy,
    cache: Option<Arc<AggregateCache<A>>>,
    inline: Option<Arc<Inline>>,
    names: Arc<EventNames>,
    aggregate: PhantomData<fn() -> A>,
}

/// How many aggregates a repository caches unless told otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

impl<A: Aggregate> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Repository {
            store: Arc::clone(&self.store),
            services: Arc::clone(&self.services),
            retry: self.retry.clone(),
            cache: self.cache.clone(),
            inline: self.inline.clone(),
            names: Arc::clone(&self.names),
            aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate> fmt::Debug for Repository<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::NAME)
            .field("store", &self.store)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What one attempt of a commit appends: the aggregate's events, or a rollback marker.
pub(crate) type Pending<A> = Change<<A as Aggregate>::Event>;

impl<A: Aggregate> Repository<A> {
    /// A repository over `store` with the default retry policy and a cache of
    /// [`DEFAULT_CACHE_CAPACITY`] aggregates. Any store works, also
    /// behind an `Arc` (`Arc<SqliteStore>`, `Arc<dyn EventStore>`).
    ///
    /// Handlers get the aggregate's services' `Default` (`()` unless it declares
    /// `services = ...`). Services without a default must be given: use
    /// [`Repository::with_services`].
    pub fn new(store: impl EventStore + 'static) -> Self
    where
        A::Services: Default,
    {
        Self::with_services(store, A::Services::default())
    }

    /// A repository like [`Repository::new`] whose handlers consult `services`, the type the
    /// aggregate declares with `#[aggregate(services = ...)]`, through their [`Context`].
    /// Services are queries: a handler may run more than once for one command.
    pub fn with_services(store: impl EventStore + 'static, services: A::Services) -> Self {
        Repository {
            store: Arc::new(store),
            services: Arc::new(services),
            retry: RetryPolicy::default(),
            cache: Some(Arc::new(AggregateCache::new(DEFAULT_CACHE_CAPACITY))),
            inline: None,
            names: Arc::new(EventNames::of::<A::Event>()),
            aggregate: PhantomData,
        }
    }

    /// Applies the inline projections among `projections` (declared `#[projection(inline)]`)
    /// in the transaction of every append this repository makes: a command whose event an
    /// inline projection refuses fails with [`RepositoryError::InlineProjection`] and appends
    /// nothing, and a read after a command sees its documents at once. `store` is the same
    /// store the repository appends to (the daemon does not apply inline projections; it only
    /// rebuilds one whose version changed, or that was added to a log with events).
    ///
    /// A [`rebuild`](crate::rebuild) while commands run loses none of their documents: its
    /// swap and the commands' transactions take turns on the projection, so a command waits
    /// at most for the swap's last short batch (on the memory store, which never waits, the
    /// later of the two starts over instead).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use es_core::{aggregate, projection, Command, Docs, Envelope, Event, MemoryStore, Projections, Repository, ReadStoreExt};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
    /// # pub struct Deposited { amount: u64 }
    /// # #[derive(Command, Clone, Debug)]
    /// # pub struct Deposit { amount: u64 }
    /// # #[derive(Debug, thiserror::Error)] #[error("never")] pub struct Never;
    /// # #[aggregate(name = "account", id = String, error = Never)]
    /// # #[derive(Default, Debug)]
    /// # pub struct Account;
    /// # #[aggregate]
    /// # impl Account {
    /// #     #[handle] fn deposit(&self, c: Deposit) -> Result<Deposited, Never> { Ok(Deposited { amount: c.amount }) }
    /// #     #[apply] fn deposited(&mut self, _: &Deposited) {}
    /// # }
    /// #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    /// pub struct Balance { total: u64 }
    ///
    /// #[projection(inline, per_stream)]
    /// pub struct Balances;
    ///
    /// #[projection]
    /// impl Balances {
    ///     #[on]
    ///     fn deposited(&self, e: &Envelope<Deposited>, docs: &mut Docs<Balance>) {
    ///         docs.upsert(e.aggregate_id(), |b| b.total += e.event.amount);
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = Arc::new(MemoryStore::new());
    /// let accounts = Repository::<Account>::new(store.clone())
    ///     .inline(store.clone(), Projections::new().with(Balances));
    /// accounts.execute(&"a".to_owned(), Deposit { amount: 5 }).await?;
    /// // No wait: the document was written with the event.
    /// assert_eq!(store.documents::<Balances>().get("a").await?.unwrap().total, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn inline(mut self, store: Arc<dyn ReadStore>, projections: Projections) -> Self {
        self.inline = Inline::new(store, projections).map(Arc::new);
        self
    }

    /// Caches up to `capacity` recently used aggregates (0 turns the cache off). A command on a
    /// cached aggregate reads nothing: its append, which expects the cached version, is the
    /// check that no one else wrote meanwhile.
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| Arc::new(AggregateCache::new(capacity)));
        self
    }

    /// Turns the aggregate cache off: every command replays (from the latest snapshot).
    pub fn without_cache(self) -> Self {
        self.with_cache(0)
    }

    /// The aggregate cache, if on.
    pub fn cache(&self) -> Option<&AggregateCache<A>> {
        self.cache.as_deref()
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The services handlers consult.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// The store this repository writes to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The stream of the aggregate `id`, or a typed error when the id cannot name one.
    pub(crate) fn stream_of(id: &A::Id) -> Result<StreamId, RepositoryError<A::Error>> {
        A::stream(id).map_err(|refusal| RepositoryError::InvalidId {
            aggregate_type: A::NAME,
            refusal,
        })
    }

    /// Loads the aggregate `id` by replaying its stream (from its latest snapshot).
    pub async fn load(&self, id: &A::Id) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = Self::stream_of(id)?;
        let span = tracing::debug_span!(
            "es.load",
            aggregate = A::NAME,
            aggregate_id = stream.aggregate_id(),
            version = tracing::field::Empty
        );
        async {
            let loaded =
                rebuild::<A>(&*self.store, &stream, Until::Version(u64::MAX), true).await?;
            tracing::Span::current().record("version", loaded.version);
            Ok(loaded)
        }
        .instrument(span)
        .await
    }

    /// Runs `command` against the aggregate `id` and returns the committed events.
    pub async fn execute<C: Into<A::Command>>(
        &self,
        id: &A::Id,
        command: C,
    ) -> Result<Vec<Envelope<A::Event>>, RepositoryError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with(id, command, CommandMetadata::new()).await
    }

    /// Runs `command` with caller context that every resulting event carries, and that its
    /// handler sees in [`Context::metadata`].
    ///
    /// Every event of the command carries a command id: the caller's
    /// ([`CommandMetadata::command_id`]), or a fresh one per call. When the store cannot tell
    /// whether the append committed ([`StoreError::OutcomeUnknown`]), the same append is sent
    /// again under the retry policy; the store's idempotency returns the first outcome if it
    /// had committed, so the command is applied once.
    pub async fn execute_with<C: Into<A::Command>>(
        &self,
        id: &A::Id,
        command: C,
        metadata: CommandMetadata,
    ) -> Result<Vec<Envelope<A::Event>>, RepositoryError<A::Error>>
    where
        A::Command: Clone,
    {
        let command = command.into();
        let stream = Self::stream_of(id)?;
        let span = tracing::info_span!(
            "es.command",
            aggregate = A::NAME,
            aggregate_id = stream.aggregate_id(),
            command = short_type_name::<C>(),
            outcome = tracing::field::Empty,
            events = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let context = Context::new(&*self.services, &metadata, stream.aggregate_id());
        let committed = self
            .commit(&stream, &metadata, |loaded| {
                loaded
                    .state
                    .handle(command.clone(), &context)
                    .map(|events| events.into_iter().map(Change::Event).collect())
                    .map_err(RepositoryError::Rejected)
            })
            .instrument(span)
            .await?;
        Ok(committed
            .into_iter()
            .filter_map(|envelope| {
                envelope.filter_map(|change| match change {
                    Change::Event(event) => Some(event),
                    Change::RolledBack(_) => None,
                })
            })
            .collect())
    }

    /// The one retry loop of every write: load (from the cache when current), `decide` what to
    /// append, append it expecting the loaded version, and on a conflict back off and decide
    /// again on a fresh state, up to the retry policy's attempts. Every attempt carries the
    /// same command id, so an append whose outcome was unknown is sent again as it was, and
    /// the store answers with the first outcome if it had committed.
    pub(crate) async fn commit(
        &self,
        stream: &StreamId,
        metadata: &CommandMetadata,
        decide: impl Fn(&Loaded<A>) -> Result<Vec<Pending<A>>, RepositoryError<A::Error>>,
    ) -> Result<Vec<Envelope<Pending<A>>>, RepositoryError<A::Error>> {
        // A command that starts a correlation names it after its first event's id.
        let first_event_id = Uuid::now_v7();
        let correlation_id = metadata.correlation_id.unwrap_or(first_event_id);
        // Unique per call like the event id it reuses, which saves making another.
        let command_id = metadata.command_id.unwrap_or(first_event_id);
        let span = tracing::Span::current();
        let mut attempt = 0;
        // The state the last attempt decided on, when another writer has moved the stream
        // past it: the next attempt applies only what was appended since.
        let mut outdated: Option<Loaded<A>> = None;
        loop {
            attempt += 1;
            span.record("attempts", attempt);
            let (loaded, from_cache) = match outdated.take() {
                Some(known) => (catch_up::<A>(&*self.store, stream, known).await?, false),
                None => self.current(stream).await?,
            };
            let changes = match decide(&loaded) {
                Ok(changes) => changes,
                Err(error) => {
                    // A refusal decided on a cached copy is only trusted if no one else has
                    // written since: otherwise decide again on the fresh state.
                    if from_cache && self.store.stream_version(stream).await? != loaded.version {
                        outdated = Some(loaded);
                        continue;
                    }
                    self.keep(stream, loaded);
                    span.record("outcome", "rejected");
                    return Err(error);
                }
            };
            span.record("events", changes.len());
            if changes.is_empty() {
                self.keep(stream, loaded);
                span.record("outcome", "nothing to append");
                return Ok(Vec::new());
            }
            let context = EventContext {
                event_ids: event_ids(first_event_id, changes.len()),
                correlation_id,
                command_id,
                metadata,
            };
            let expected = ExpectedVersion::Exact(loaded.version);
            let appended = loop {
                let new_events = encode::<A>(&changes, &context, &self.names)?;
                let appended = self
                    .append(
                        stream,
                        expected,
                        new_events,
                        context.event_ids.first().copied(),
                    )
                    .instrument(tracing::debug_span!("es.append", expected_version = %expected))
                    .await?;
                match appended {
                    // The append may have committed: send it again, same command id, same
                    // expected version. The store returns the first outcome if it committed.
                    Err(StoreError::OutcomeUnknown { context, source })
                        if attempt < self.retry.max_attempts =>
                    {
                        tracing::warn!(context, error = %source, attempt, "outcome unknown, sending the append again");
                        tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                        attempt += 1;
                        span.record("attempts", attempt);
                    }
                    other => break other,
                }
            };
            match appended {
                Ok(recorded)
                    if recorded.first().map(|record| record.metadata.event_id)
                        != context.event_ids.first().copied() =>
                {
                    // Another run of this command committed first (a caller's retry with its
                    // command id): what we decided was never appended, and the state we
                    // decided on may already hold the first run's events. Return what was
                    // committed; the next command reloads.
                    self.forget_cached(stream);
                    span.record("outcome", "already applied");
                    return recorded
                        .into_iter()
                        .map(|record| {
                            let change = decode_change::<A::Event>(&record)?;
                            Ok(record.map(|_| change))
                        })
                        .collect();
                }
                Ok(recorded) => {
                    span.record(
                        "outcome",
                        if attempt == 1 {
                            "applied"
                        } else {
                            "applied after retries"
                        },
                    );
                    self.remember(stream, loaded, &changes, &recorded).await;
                    // Read models catch up on their own: a command never waits for them.
                    return Ok(recorded
                        .into_iter()
                        .zip(changes)
                        .map(|(record, change)| record.map(|_| change))
                        .collect());
                }
                // The copy we decided on is stale; it is already out of the cache.
                Err(StoreError::Conflict(conflict)) => {
                    if attempt >= self.retry.max_attempts {
                        span.record("outcome", "conflict, gave up");
                        return Err(RepositoryError::Conflict {
                            conflict,
                            attempts: attempt,
                        });
                    }
                    tracing::debug!(%conflict, attempt, "conflict, retrying");
                    outdated = Some(loaded);
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                }
                Err(other) => {
                    span.record("outcome", "store error");
                    return Err(other.into());
                }
            }
        }
    }

    /// Appends, applying the inline projections in the same transaction when there are any.
    /// The outer error is an inline projection's refusal (nothing appended); the inner result
    /// is the store's, for the retry loop to read.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        first_event_id: Option<Uuid>,
    ) -> Result<Result<Vec<crate::RecordedEvent>, StoreError>, RepositoryError<A::Error>> {
        let Some(inline) = &self.inline else {
            return Ok(self.store.append(stream, expected, events).await);
        };
        inline
            .append(stream, expected, events, first_event_id)
            .await
            .map_err(|refused| RepositoryError::InlineProjection {
                projection: refused.projection,
                stream: stream.clone(),
                version: refused.version,
                event_name: refused.event_name,
                error: refused.error,
            })
    }

    /// After a commit: the new state goes back into the cache (and into a snapshot when one
    /// is due). After a rollback marker the state is not derived here: it is forgotten, and
    /// the next load rebuilds it.
    async fn remember(
        &self,
        stream: &StreamId,
        loaded: Loaded<A>,
        changes: &[Pending<A>],
        recorded: &[crate::RecordedEvent],
    ) {
        let Loaded {
            mut state,
            version: before,
        } = loaded;
        for change in changes {
            match change {
                Change::Event(event) => state.apply(event),
                Change::RolledBack(_) => {
                    self.forget_cached(stream);
                    return;
                }
            }
        }
        let after = recorded.last().map_or(before, |record| record.version);
        self.snapshot_if_due(stream, &state, before, after).await;
        self.keep(
            stream,
            Loaded {
                state,
                version: after,
            },
        );
    }

    pub(crate) fn forget_cached(&self, stream: &StreamId) {
        if let Some(cache) = &self.cache {
            cache.remove(stream);
        }
    }

    /// The latest state: from the cache when present (taken out while the command runs), else
    /// from the latest snapshot and the events after it.
    async fn current(
        &self,
        stream: &StreamId,
    ) -> Result<(Loaded<A>, bool), RepositoryError<A::Error>> {
        if let Some((state, version)) = self.cache.as_ref().and_then(|cache| cache.take(stream)) {
            return Ok((Loaded { state, version }, true));
        }
        Ok((
            rebuild::<A>(&*self.store, stream, Until::Version(u64::MAX), true).await?,
            false,
        ))
    }

    fn keep(&self, stream: &StreamId, loaded: Loaded<A>) {
        if let Some(cache) = &self.cache {
            cache.put(stream, loaded.state, loaded.version);
        }
    }

    /// Saves a snapshot when the aggregate asks for one every `n` events and this commit
    /// crossed a multiple of `n`. A failure only costs a slower load later, so it is logged,
    /// not returned: the command itself has committed.
    async fn snapshot_if_due(&self, stream: &StreamId, state: &A, before: u64, after: u64) {
        let Some(every) = A::SNAPSHOT_EVERY else {
            return;
        };
        if every == 0 || before / every == after / every {
            return;
        }
        let Some(encoded) = state.snapshot_state() else {
            return;
        };
        let state = match encoded {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%stream, version = after, %error, "state does not serialize; no snapshot taken");
                return;
            }
        };
        let snapshot = Snapshot {
            stream: stream.clone(),
            version: after,
            state_fingerprint: A::STATE_FINGERPRINT.to_owned(),
            state,
            taken_at: chrono::Utc::now(),
        };
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(%stream, version = after, %error, "could not save a snapshot");
        }
    }
}

/// The stored names of an aggregate's events (and of the rollback marker), each allocated
/// once per repository: every event appended shares its name's text instead of copying it.
struct EventNames(Vec<(&'static str, Arc<str>)>);

impl EventNames {
    fn of<E: EventSet>() -> Self {
        EventNames(
            E::EVENT_NAMES
                .iter()
                .chain([&RolledBack::NAME])
                .map(|&name| (name, Arc::from(name)))
                .collect(),
        )
    }

    /// The shared text of `name` (a copy only for a name the aggregate does not declare).
    fn shared(&self, name: &'static str) -> Arc<str> {
        self.0
            .iter()
            .find(|(known, _)| *known == name)
            .map_or_else(|| Arc::from(name), |(_, shared)| Arc::clone(shared))
    }
}

/// `Deposit` for `bank::commands::Deposit`: what traces call a command.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

/// What every event of one decision carries besides itself: kept across attempts, so an
/// append sent again after an unknown outcome is the same append.
struct EventContext<'a> {
    /// One id per event; the first also names a correlation the command starts.
    event_ids: Vec<Uuid>,
    correlation_id: Uuid,
    command_id: Uuid,
    metadata: &'a CommandMetadata,
}

/// `count` event ids, the first given.
fn event_ids(first: Uuid, count: usize) -> Vec<Uuid> {
    std::iter::once(first)
        .chain(std::iter::repeat_with(Uuid::now_v7))
        .take(count)
        .collect()
}

/// Serializes a commit's events (or rollback marker), each with its id and the command's
/// context.
fn encode<A: Aggregate>(
    changes: &[Pending<A>],
    context: &EventContext<'_>,
    names: &EventNames,
) -> Result<Vec<NewEvent>, RepositoryError<A::Error>> {
    changes
        .iter()
        .zip(&context.event_ids)
        .map(|(change, &event_id)| {
            let (event_name, schema_version, payload) = match change {
                Change::Event(event) => {
                    (event.event_name(), event.schema_version(), event.encode())
                }
                Change::RolledBack(marker) => (
                    RolledBack::NAME,
                    RolledBack::VERSION,
                    Payload::encode(marker),
                ),
            };
            let payload = payload.map_err(|source| RepositoryError::Encode {
                aggregate_type: A::NAME,
                event_name,
                source,
            })?;
            let metadata = Metadata {
                event_id,
                correlation_id: context.correlation_id,
                causation_id: context.metadata.causation_id,
                command_id: Some(context.command_id),
                extra: context.metadata.extra.clone(),
            };
            Ok(NewEvent {
                event_name: names.shared(event_name),
                schema_version,
                metadata,
                payload,
            })
        })
        .collect()
}

/// Decodes one stored event into an aggregate's event enum, naming where it is stored on failure.
pub fn decode_event<E: EventSet>(record: &crate::RecordedEvent) -> Result<E, DecodeError> {
    E::decode(&record.event_name, record.schema_version, &record.event)
        .map_err(|failure| failure.at_record(record))
}
