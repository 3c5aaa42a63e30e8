//! Procedural macros of `es-core`. Depend on `es-core`, which re-exports them; generated code
//! reaches the runtime through `::es_core::__private`.
//!
//! Each entry point parses its input, calls one `expand` function, and turns errors into
//! `compile_error!` next to the user's item, re-emitted so the rest of the crate still compiles.
#![forbid(unsafe_code)]

mod aggregate;
mod attr;
mod command;
mod ctxt;
mod event;
mod impl_block;
mod naming;
mod process;
mod projection;
mod symbol;
mod types;

use proc_macro::TokenStream;

/// Declares an event-sourced aggregate: on its struct (`name`, `id`, `error`, `snapshot_every`)
/// and on its impl block (`#[handle]` and `#[apply]` methods). See `es_core` for an example.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    aggregate::expand(args.into(), input.into()).into()
}

/// Declares a read model: on its struct (optional `name`) and on its impl block (`#[on]` handlers).
#[proc_macro_attribute]
pub fn projection(args: TokenStream, input: TokenStream) -> TokenStream {
    projection::expand(args.into(), input.into()).into()
}

/// Declares a process manager: on its struct (optional `name`) and on its impl block (`#[on]`
/// handlers of events and deadlines that return commands). See `es_core::process`.
#[proc_macro_attribute]
pub fn process_manager(args: TokenStream, input: TokenStream) -> TokenStream {
    process::expand(args.into(), input.into()).into()
}

/// Implements `es_core::Event`: `#[event(name = "post.published", version = 1)]`.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    event::expand(&input).into()
}

/// Implements `es_core::Command`.
#[proc_macro_derive(Command, attributes(command))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    command::expand(&input).into()
}
