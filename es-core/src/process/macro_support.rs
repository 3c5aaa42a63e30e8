//! What `#[process_manager]` generates calls to; reached through `::es_core::__private`.

use crate::envelope::{Payload, RecordedEvent};
use crate::event::Event;
use crate::process::dispatch::Dispatch;
use crate::process::error::ProcessError;
use crate::process::manager::{Deadline, IntoDispatches};

/// The struct-level half of `#[process_manager(...)]`, read by the impl-level half.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[process_manager]` on its impl block but not on its struct",
    label = "add `#[process_manager]` to the struct `{Self}`"
)]
pub trait ProcessManagerDecl {
    const NAME: &'static str;
}

/// Decodes an event into the type a handler takes.
pub fn decode_event<E: Event>(
    process: &'static str,
    recorded: &RecordedEvent,
) -> Result<E, ProcessError> {
    E::decode(recorded.schema_version, &recorded.event).map_err(|failure| ProcessError::Decode {
        process,
        source: failure.at_record(recorded),
    })
}

/// Decodes a deadline's message into the type a handler takes.
pub fn decode_deadline<M: Event>(
    process: &'static str,
    deadline: &Deadline<Payload>,
) -> Result<M, ProcessError> {
    M::decode(deadline.version, &deadline.message).map_err(|source| ProcessError::DeadlineMessage {
        process,
        key: deadline.key.clone(),
        source,
    })
}

/// A handler's return value as the runtime takes it (the runner adds which event failed).
pub fn output(
    process: &'static str,
    returned: impl IntoDispatches,
) -> Result<Vec<Dispatch>, ProcessError> {
    dispatches_of(process, returned, || String::from("an event"))
}

/// A deadline handler's return value as the runtime takes it.
pub fn deadline_output(
    process: &'static str,
    key: &str,
    returned: impl IntoDispatches,
) -> Result<Vec<Dispatch>, ProcessError> {
    dispatches_of(process, returned, || format!("deadline `{key}`"))
}

/// The dispatches a handler returned, or its error naming the process and, made only on
/// failure, what it was handling.
fn dispatches_of(
    process: &'static str,
    returned: impl IntoDispatches,
    cause: impl FnOnce() -> String,
) -> Result<Vec<Dispatch>, ProcessError> {
    returned
        .into_dispatches()
        .map_err(|source| ProcessError::Handler {
            process,
            cause: cause(),
            source,
        })
}
