//! `#[derive(Event)]`: model in `ast`, rules in `check`, code generation in `expand`.

mod ast;
mod check;
mod expand;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::{with_fallback, Ctxt};

pub fn expand(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = ast::Event::from_ast(&cx, input);
    check::check(&cx, &model);
    match cx.check() {
        Ok(()) => expand::event(&model),
        // Still implement the trait with what could be read, so code using the event does not
        // drown the real error in "`X` is not an event" follow-ons.
        Err(error) => with_fallback(error, expand::event(&model)),
    }
}
