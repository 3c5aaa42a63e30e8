//! Projections: read models built from the event log, found through `inventory`.

use std::any::{type_name, Any};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::envelope::RecordedEvent;
use crate::error::ProjectionError;
use crate::store::{EventLog, PAGE_SIZE};

/// A read model fed with stored events in position order.
///
/// Implemented by `#[projection]` on a struct and its impl block:
///
/// ```
/// use es_core::{projection, Envelope, Event, Projections};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// # #[event(name = "post.published")]
/// # pub struct PostPublished { pub title: String }
///
/// #[projection]
/// #[derive(Default, Debug)]
/// pub struct Titles { pub titles: Vec<String> }
///
/// #[projection]
/// impl Titles {
///     #[on]
///     fn published(&mut self, event: &Envelope<PostPublished>) {
///         self.titles.push(event.event.title.clone());
///     }
/// }
///
/// let projections = Projections::new().with(Titles::default());
/// assert_eq!(projections.query(|t: &Titles| t.titles.len()).unwrap(), 0);
/// ```
///
/// # For implementors
///
/// `apply` sees every event of the store, most of which it ignores; it must skip unknown
/// names without error. It must be deterministic: a rebuild replays from position 1.
pub trait Projection: Any + Send + Sync {
    /// A stable name, used for checkpoints and in errors.
    fn name(&self) -> &'static str;
    /// Processes one stored event.
    fn apply(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError>;
}

/// The struct-level half of `#[projection]`: the projection's stable name.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[projection]` on its impl block but not on its struct",
    label = "add `#[projection]` to the struct `{Self}`"
)]
pub trait ProjectionDecl {
    const NAME: &'static str;
}

/// How `#[projection]` makes a projection discoverable: a name and a constructor, collected
/// by `inventory` from every crate linked into the binary.
#[derive(Debug)]
pub struct ProjectionRegistration {
    name: &'static str,
    create: fn() -> Box<dyn Projection>,
}

impl ProjectionRegistration {
    #[doc(hidden)]
    pub const fn new(name: &'static str, create: fn() -> Box<dyn Projection>) -> Self {
        ProjectionRegistration { name, create }
    }

    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

inventory::collect!(ProjectionRegistration);

/// Every projection registered with `#[projection]` in this binary.
pub fn registered_projections() -> impl Iterator<Item = &'static ProjectionRegistration> {
    inventory::iter::<ProjectionRegistration>.into_iter()
}

struct Entry {
    name: &'static str,
    state: RwLock<Slot>,
}

struct Slot {
    projection: Box<dyn Projection>,
    /// The next position this projection has not yet seen.
    next_position: u64,
}

/// A set of running projections: feed them events, then query their state.
///
/// Cloning is cheap and clones share state.
#[derive(Clone, Default)]
pub struct Projections {
    entries: Vec<Arc<Entry>>,
    /// Serializes catch-up so events reach each projection once and in order.
    catch_up_lock: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for Projections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|entry| entry.name))
            .finish()
    }
}

impl Projections {
    /// No projections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every projection declared with `#[projection]` and linked into this binary.
    pub fn discover() -> Self {
        registered_projections().fold(Self::new(), |set, registration| {
            set.with_boxed((registration.create)())
        })
    }

    /// Adds a projection by hand. Clones made earlier do not see it; state is shared.
    pub fn with(self, projection: impl Projection) -> Self {
        self.with_boxed(Box::new(projection))
    }

    fn with_boxed(mut self, projection: Box<dyn Projection>) -> Self {
        self.entries.push(Arc::new(Entry {
            name: projection.name(),
            state: RwLock::new(Slot {
                projection,
                next_position: 1,
            }),
        }));
        self
    }

    /// The names of the projections in this set.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|entry| entry.name).collect()
    }

    /// Feeds every projection the events it has not seen yet, reading the store from the
    /// lowest position any of them needs. Returns how many events were read.
    pub async fn catch_up(&self, store: &dyn EventLog) -> Result<u64, ProjectionError> {
        let _exclusive = self.catch_up_lock.lock().await;
        let Some(mut next) = self.entries.iter().map(|entry| self.slot_next(entry)).min() else {
            return Ok(0);
        };
        let mut read = 0;
        loop {
            let page = store.read_all(next, PAGE_SIZE).await?;
            for event in &page {
                self.apply(event)?;
                next = event.position + 1;
                read += 1;
            }
            if page.len() < PAGE_SIZE {
                return Ok(read);
            }
        }
    }

    /// Catches up until every projection has seen `position`, so a caller that just committed
    /// reads its own writes. A store may hold back events behind transactions still running
    /// (PostgreSQL does, so that read-all never skips one); this waits for them, for at most
    /// `patience`. Returns whether `position` was reached.
    pub async fn catch_up_through(
        &self,
        store: &dyn EventLog,
        position: u64,
        patience: std::time::Duration,
    ) -> Result<bool, ProjectionError> {
        let deadline = std::time::Instant::now() + patience;
        let mut pause = std::time::Duration::from_micros(200);
        loop {
            self.catch_up(store).await?;
            let reached = self
                .entries
                .iter()
                .all(|entry| self.slot_next(entry) > position);
            if reached {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(20));
        }
    }

    /// Catches up with everything committed so far, waiting at most `patience` for events a
    /// store holds back behind running transactions. Use it when rebuilding read models at
    /// startup. Returns whether the head was reached.
    pub async fn catch_up_to_head(
        &self,
        store: &dyn EventLog,
        patience: std::time::Duration,
    ) -> Result<bool, ProjectionError> {
        let head = store.head_position().await?;
        if head == 0 {
            return Ok(true);
        }
        self.catch_up_through(store, head, patience).await
    }

    /// Feeds one event to every projection that has not seen its position yet.
    pub fn apply(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        for entry in self.entries.iter() {
            let mut slot = entry.state.write().unwrap_or_else(PoisonError::into_inner);
            if event.position < slot.next_position {
                continue;
            }
            slot.projection.apply(event)?;
            slot.next_position = event.position + 1;
        }
        Ok(())
    }

    /// Reads the state of the projection of type `P`.
    pub fn query<P: Projection, R>(
        &self,
        read: impl FnOnce(&P) -> R,
    ) -> Result<R, ProjectionError> {
        for entry in self.entries.iter() {
            let slot = entry.state.read().unwrap_or_else(PoisonError::into_inner);
            let any: &dyn Any = &*slot.projection;
            if let Some(projection) = any.downcast_ref::<P>() {
                return Ok(read(projection));
            }
        }
        Err(ProjectionError::NotRegistered(type_name::<P>()))
    }

    fn slot_next(&self, entry: &Entry) -> u64 {
        entry
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .next_position
    }
}
