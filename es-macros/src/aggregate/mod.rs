//! `#[aggregate]`: on a struct it declares name, id and error types; on an impl block it reads
//! `#[handle]` and `#[apply]` methods and generates the event and command enums and dispatch.
//!
//! Model in `ast`, rules in `check`, code generation in `expand`.

mod ast;
mod check;
mod expand;

use proc_macro2::TokenStream;
use syn::Item;

use crate::ctxt::{finish, with_fallback, Ctxt};

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => return with_fallback(error, input),
    };
    match &item {
        Item::Struct(_) | Item::Enum(_) => expand_declaration(args, &item),
        Item::Impl(item_impl) => expand_impl(args, item_impl),
        _ => with_fallback(
            syn::Error::new_spanned(
                &item,
                "`#[aggregate]` goes on the aggregate's state struct (with `name`, `id`, `error`) and on its impl block (with `#[handle]` and `#[apply]` methods)",
            ),
            input,
        ),
    }
}

fn expand_declaration(args: TokenStream, item: &Item) -> TokenStream {
    let cx = Ctxt::new();
    let declaration = ast::Declaration::from_ast(&cx, args, item);
    check::check_declaration(&cx, &declaration);
    match cx.check() {
        Ok(()) => expand::declaration(&declaration),
        // Still declare the aggregate (with stand-ins for what is missing) so its impl block
        // does not report a missing declaration on top of the real mistake.
        Err(error) => with_fallback(error, expand::declaration(&declaration)),
    }
}

fn expand_impl(args: TokenStream, item: &syn::ItemImpl) -> TokenStream {
    let cx = Ctxt::new();
    let model = ast::AggregateImpl::from_ast(&cx, args, item);
    if let Some(model) = &model {
        check::check(&cx, model);
    }
    finish(cx, model, item, expand::aggregate_impl, expand::fallback)
}
