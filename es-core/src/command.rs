//! Commands: requests to change an aggregate, which it accepts (emitting events) or rejects.

/// A request to an aggregate. Implemented by `#[derive(Command)]`.
///
/// ```
/// use es_core::Command;
///
/// #[derive(Command, Clone, Debug)]
/// pub struct PublishPost { pub title: String }
///
/// assert_eq!(<PublishPost as Command>::NAME, "PublishPost");
/// ```
///
/// # For implementors
///
/// `NAME` only labels traces and errors; it is never stored.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command",
    label = "this type needs `#[derive(Command)]`",
    note = "declare it with `#[derive(es_core::Command)]`"
)]
pub trait Command: Send + 'static {
    /// A human-readable name, used in traces.
    const NAME: &'static str;
}
