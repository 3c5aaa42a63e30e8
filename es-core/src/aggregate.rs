//! Aggregates: consistency boundaries whose state is rebuilt from their own events.

use std::fmt::Display;

use crate::context::Context;
use crate::envelope::Payload;
use crate::error::Refusal;
use crate::event::EventSet;
use crate::stream::StreamId;

/// An event-sourced aggregate: state that handles commands into events and applies events to itself.
///
/// Implemented by the two halves of `#[aggregate]`: on the struct (name, id and error types)
/// and on its impl block (`#[handle]` and `#[apply]` methods). See the crate docs for an example.
///
/// # Services and retries
///
/// A handler decides from the state, the command and its [`Context`]: the aggregate's
/// `Services` (declared with `#[aggregate(services = ...)]`, `()` by default) and the
/// caller's metadata. Services are queries: a clock, a lookup, a uniqueness check. When the
/// append loses a race with another writer, the repository reloads the aggregate and handles
/// the command again, so a handler may run more than once for one command, and a run's events
/// may never be stored. Side effects (sending mail, charging a card, calling another service
/// that changes something) belong after the commit, in a projection or a process manager
/// reacting to the events.
///
/// # For implementors
///
/// `handle` must not change the state: decide from `&self`, the command and the context's
/// answers. `apply` must be deterministic and infallible: it runs on every load, for events
/// written years ago.
pub trait Aggregate: Default + Send + Sync + 'static {
    /// The stored aggregate type, e.g. `"post"`: the first half of every stream's identity.
    const NAME: &'static str;
    /// Take a snapshot every this many events (`None`: never).
    const SNAPSHOT_EVERY: Option<u64>;
    /// The identifier of one instance, rendered into its stream id.
    type Id: AggregateId;
    /// The generated enum of every event this aggregate applies.
    type Event: EventSet;
    /// The generated enum of every command this aggregate handles.
    type Command: Send + 'static;
    /// The domain error a rejected command returns.
    type Error: DomainError;
    /// What handlers may consult besides state and command (`()` for none): see
    /// [`Context::services`]. Shared by every command, so usually a struct of clients or
    /// `Arc`s; queries only (see "Services and retries" above).
    type Services: Send + Sync + 'static;

    /// Identifies the shape of the state for snapshots; `#[aggregate]` derives it from the
    /// struct's fields and types, so changing the struct makes old snapshots be ignored.
    const STATE_FINGERPRINT: &'static str = "";

    /// Changes the state by one event.
    fn apply(&mut self, event: &Self::Event);
    /// Decides which events a command produces, or rejects it. May run more than once for
    /// one command (after a conflict), so it must not cause side effects.
    fn handle(
        &self,
        command: Self::Command,
        context: &Context<'_, Self::Services>,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Serializes the state for a snapshot; `None` when the aggregate takes no snapshots.
    fn snapshot_state(&self) -> Option<Result<Payload, serde_json::Error>> {
        None
    }

    /// Rebuilds the state from a snapshot; `None` when the aggregate takes no snapshots.
    fn restore_state(state: &Payload) -> Option<Result<Self, serde_json::Error>> {
        let _ = state;
        None
    }

    /// The stream that holds the events of the aggregate `id`: type `NAME`, id `id.to_string()`.
    /// Refused when the rendered id is empty, longer than 1,024 bytes or holds a NUL.
    fn stream(id: &Self::Id) -> Result<StreamId, Refusal> {
        StreamId::with_id(Self::NAME, |key| {
            use std::fmt::Write as _;
            // Writing to a `String` fails only when the id's `Display` reports an error:
            // what it wrote is dropped, and the empty id is refused.
            if write!(key, "{id}").is_err() {
                key.truncate(Self::NAME.len() + 1);
            }
        })
    }
}

/// What an aggregate's id type must be: `Display` (it is rendered into the stream id), `Send` and `Sync`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an aggregate id: it does not implement `Display`",
    label = "implement `std::fmt::Display` for `{Self}`: the id is rendered into the stream id",
    note = "ids are usually `String`, `u64`, `uuid::Uuid` or a newtype with a `Display` impl"
)]
pub trait AggregateId: Display + Send + Sync {}
#[diagnostic::do_not_recommend] // one error naming `AggregateId`, not one per missing trait
impl<T: Display + Send + Sync + ?Sized> AggregateId for T {}

/// What an aggregate's error type must be: a `std::error::Error` that can cross threads.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an aggregate's error type: it does not implement `std::error::Error`",
    label = "use an error type here, e.g. an enum with `#[derive(Debug, thiserror::Error)]`",
    note = "the repository returns it inside `RepositoryError::Rejected` when a command is refused"
)]
pub trait DomainError: std::error::Error + Send + Sync + 'static {}
#[diagnostic::do_not_recommend] // one error naming `DomainError`, not one per missing trait
impl<T: std::error::Error + Send + Sync + 'static> DomainError for T {}

/// The struct-level half of `#[aggregate]`: name, id, error and services types.
///
/// Kept separate because the struct and its impl block are two macro calls that cannot see
/// each other; the impl-level expansion reads these back to implement [`Aggregate`]. The struct
/// always implements it (with stand-in types after a mistake in its attribute), and `Id`,
/// `Error` and `Services` carry no bounds here: each is asserted once at the user's type, and the generated
/// `Aggregate` impl assumes them, so one wrong type is one error, not one per use.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[aggregate]` on its impl block, but its struct has no `#[aggregate(...)]`",
    label = "add `#[aggregate(name = \"...\", id = IdType, error = ErrorType)]` to the struct `{Self}`"
)]
pub trait AggregateDecl: Sized {
    const NAME: &'static str;
    const SNAPSHOT_EVERY: Option<u64>;
    const STATE_FINGERPRINT: &'static str;
    type Id;
    type Error;
    type Services;

    fn snapshot_state(&self) -> Option<Result<Payload, serde_json::Error>>;
    fn restore_state(state: &Payload) -> Option<Result<Self, serde_json::Error>>;
}

/// What a handler may return inside `Ok`: one event, several, or none.
///
/// The generated dispatch converts each handler's output with this trait, so a handler can
/// return whichever shape reads best.
#[diagnostic::on_unimplemented(
    message = "a `#[handle]` method cannot return `{Self}` as its events",
    note = "return one event type, a tuple of event types, `Option<Event>`, or `Vec<{E}>`"
)]
pub trait IntoEvents<E> {
    /// Converts into the aggregate's events, in order.
    fn into_events(self) -> Vec<E>;
}

impl<E> IntoEvents<E> for Vec<E> {
    fn into_events(self) -> Vec<E> {
        self
    }
}

impl<E, T: Into<E>> IntoEvents<E> for Option<T> {
    fn into_events(self) -> Vec<E> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<E> IntoEvents<E> for () {
    fn into_events(self) -> Vec<E> {
        Vec::new()
    }
}

macro_rules! tuple_into_events {
    ($($name:ident),+) => {
        impl<E, $($name: Into<E>),+> IntoEvents<E> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_events(self) -> Vec<E> {
                let ($($name,)+) = self;
                vec![$($name.into()),+]
            }
        }
    };
}
tuple_into_events!(A);
tuple_into_events!(A, B);
tuple_into_events!(A, B, C);
tuple_into_events!(A, B, C, D);
tuple_into_events!(A, B, C, D, F);
tuple_into_events!(A, B, C, D, F, G);
