//! What generated code needs from es-core; not a public API and may change in any release.

pub use crate::aggregate::{AggregateDecl, IntoEvents};
pub use crate::read::{ErasedProjection, ProjectionDecl, ProjectionRegistration};
pub use inventory;
pub use serde;
pub use serde_json;

/// What `#[aggregate]` needs of an event type beyond `Event`, implemented by `#[derive(Event)]`
/// unconditionally: even when the type lacks serde's traits (so its `Event` impl does not
/// hold), the aggregate can still compare stored names and check that each `#[apply]` type is
/// an event, without repeating the derive's one error at every use.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "`#[apply]` methods take events: add `#[derive(es_core::Event)]` to `{Self}`",
    note = "declare it with `#[derive(es_core::Event, serde::Serialize, serde::Deserialize)]`"
)]
pub trait EventDecl {
    /// Same as `Event::NAME`.
    const NAME: &'static str;
}
/// Asserts at the user's span that an aggregate's `services = ...` type can be shared by
/// every command the repository runs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an aggregate's services: it must be `Send + Sync + 'static`",
    label = "the repository shares the services between threads; hold clients in an `Arc` and shared state in a `Mutex`",
    note = "services are queries (a clock, a lookup, a uniqueness check), handed to `#[handle]` methods through `&Context<{Self}>`"
)]
pub trait AggregateServices: Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + 'static> AggregateServices for T {}

/// Hands the repository's context to a `#[handle]` method that names its services type:
/// implemented only when the method's type is the aggregate's, so a mismatch is one error at
/// the method's argument that names the struct's `services = ...`.
#[diagnostic::on_unimplemented(
    message = "this `#[handle]` method's context holds `{T}`, but the aggregate declares `services = {Self}`",
    label = "the context's services must be the aggregate's: `&Context<{Self}>`",
    note = "the struct's `#[aggregate(..., services = ...)]` names what every handler's context holds (`()` when it names none); to hand handlers a `{T}`, write `services = {T}` there"
)]
pub trait ServicesAre<T>: Sized {
    /// The same context, typed as the method takes it.
    fn context<'c, 'a>(context: &'c crate::Context<'a, Self>) -> &'c crate::Context<'a, T>;
}
impl<T> ServicesAre<T> for T {
    fn context<'c, 'a>(context: &'c crate::Context<'a, T>) -> &'c crate::Context<'a, T> {
        context
    }
}

/// Asserts at the user's span that a state with `snapshot_every` can be serialized.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `snapshot_every`, so its state must implement serde's `Serialize` and `Deserialize`",
    label = "derive serde's traits on `{Self}`, or remove `snapshot_every`",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait SnapshotState: serde::Serialize + serde::de::DeserializeOwned {}
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> SnapshotState for T {}

pub fn encode_state<T: SnapshotState>(state: &T) -> Result<crate::Payload, serde_json::Error> {
    crate::Payload::encode(state)
}

pub fn decode_state<T: SnapshotState>(state: &crate::Payload) -> Result<T, serde_json::Error> {
    state.decode()
}

/// A projection for the registry, made without arguments.
pub fn registered<P: crate::Projection>(
    create: fn() -> P,
) -> std::sync::Arc<dyn crate::read::ErasedProjection> {
    std::sync::Arc::new(create())
}

/// Asserts at the user's span that a command can be handled again after a lost race.
#[diagnostic::on_unimplemented(
    message = "command `{Self}` must implement `Clone`",
    label = "add `#[derive(Clone)]` to `{Self}`",
    note = "when another writer changes the aggregate first, the repository handles the command again against the new state"
)]
pub trait RetryableCommand {}
impl<T: Clone> RetryableCommand for T {}

/// `a == b` for `&str`, usable in const evaluation.
pub const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// The failure for a stored name that no variant of an event set declares.
pub fn unknown_event(known: &[&str]) -> crate::DecodeFailure {
    crate::DecodeFailure::UnknownEvent {
        known: known.join(", "),
    }
}

/// Decodes a stored event into the type a projection handler takes.
pub fn decode_for_projection<E: crate::Event>(
    projection: &'static str,
    recorded: &crate::RecordedEvent,
) -> Result<E, crate::ProjectionError> {
    E::decode(recorded.schema_version, &recorded.event).map_err(|failure| {
        crate::ProjectionError::Decode {
            projection,
            source: failure.at_record(recorded),
        }
    })
}

/// Turns a projection handler's error into the runtime's.
pub fn projection_handler_error(
    projection: &'static str,
    recorded: &crate::RecordedEvent,
    error: impl core::fmt::Display,
) -> crate::ProjectionError {
    crate::ProjectionError::Handler {
        projection,
        stream: recorded.stream.clone(),
        version: recorded.version,
        event_name: recorded.event_name.to_string(),
        position: recorded.position,
        reason: error.to_string(),
    }
}
pub use crate::process::macro_support as process;
