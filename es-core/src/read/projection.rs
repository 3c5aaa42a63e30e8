//! What a projection is to the runtime: a name, a version, the events it handles, a document
//! type with indexed fields, a failure policy, and a handler for one event.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::envelope::RecordedEvent;
use crate::error::ProjectionError;
use crate::read::Docs;

/// What happens when a handler fails on an event (or the event cannot be decoded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// The projection halts at the event and records the error; everything before it is
    /// applied, nothing after it. Commands go on. Fix the cause and restart the daemon (or
    /// call [`Daemon::restart`](crate::Daemon::restart)) to try again. The default.
    #[default]
    Stop,
    /// The event is set aside as a dead letter with its error and the projection goes on;
    /// list dead letters and retry them once the cause is fixed.
    Skip,
}

impl OnFailure {
    /// As the macro attribute and status output spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Stop => "stop",
            OnFailure::Skip => "skip",
        }
    }
}

/// What a document must be: a serde type with a default, cheap enough to clone.
pub trait Document: Serialize + DeserializeOwned + Clone + Default + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Default + Send + Sync + 'static> Document for T {}

/// A read model maintained from the event log into documents kept in the store's database.
///
/// Implemented by `#[projection]` on a struct and its impl block:
///
/// ```
/// use es_core::{projection, Docs, Envelope, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
/// #[event(name = "post.published")]
/// pub struct PostPublished { pub title: String, pub author: String }
///
/// #[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// pub struct PostSummary { pub title: String, pub author: String }
///
/// #[projection(name = "post_summaries", index(author), per_stream)]
/// pub struct PostSummaries;
///
/// #[projection]
/// impl PostSummaries {
///     #[on]
///     fn published(&self, event: &Envelope<PostPublished>, docs: &mut Docs<PostSummary>) {
///         docs.upsert(event.aggregate_id(), |summary| {
///             summary.title = event.event.title.clone();
///             summary.author = event.event.author.clone();
///         });
///     }
/// }
/// ```
///
/// # For implementors
///
/// `apply` must be deterministic and free of side effects: the runtime may run it on the
/// same event more than once within a batch (see [`Docs`]), and a rebuild runs it again from
/// position 1. It sees only the events named in `EVENTS`.
pub trait Projection: Send + Sync + 'static {
    /// The document type it maintains.
    type Document: Document;
    /// A stable name: its tables, checkpoint and health are filed under it.
    const NAME: &'static str;
    /// Declared (`version = 2`) or a fingerprint of the document type and handled events;
    /// when it changes, the daemon rebuilds the projection beside the live one.
    const VERSION: &'static str;
    /// The stored names of the events it handles.
    const EVENTS: &'static [&'static str];
    /// The document fields that can be filtered on, each with an index.
    const INDEXES: &'static [&'static str] = &[];
    /// What happens when a handler fails.
    const ON_FAILURE: OnFailure = OnFailure::Stop;
    /// Each document is keyed by the aggregate id of one stream and built from that stream's
    /// events only. Then a rollback marker needs no handler: the runtime rebuilds the
    /// stream's document from the events that survive the rollback. A projection that builds
    /// documents across streams handles [`RolledBack`](crate::RolledBack) itself.
    const PER_STREAM: bool = false;
    /// Applied by the repository in the same transaction as each append (`inline`), instead
    /// of by the daemon afterwards: a failing handler rejects the command and nothing is
    /// appended; a read after the command sees it at once. Only for events appended through
    /// a repository that has the projection ([`Repository::inline`](crate::Repository::inline)).
    const INLINE: bool = false;

    /// Applies one event to the documents.
    fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut Docs<Self::Document>,
    ) -> Result<(), ProjectionError>;
}

/// The struct-level half of `#[projection(...)]`: name, indexes, declared version, failure
/// policy and whether documents are per stream, read back by the impl-level half (which
/// takes the document type from its handlers' `Docs<D>`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[projection]` on its impl block but not on its struct",
    label = "add `#[projection]` to the struct `{Self}`"
)]
pub trait ProjectionDecl {
    const NAME: &'static str;
    const INDEXES: &'static [&'static str];
    const DECLARED_VERSION: Option<&'static str>;
    const ON_FAILURE: OnFailure;
    const PER_STREAM: bool;
    const INLINE: bool;
}
