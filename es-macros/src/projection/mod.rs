//! `#[projection]`: on a struct it declares the read model (name, document type, indexes,
//! version, failure policy) and registers it with `inventory`; on its impl block it reads the
//! `#[on]` handlers and implements `es_core::Projection`.

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
    let cx = Ctxt::new();
    match &item {
        Item::Struct(_) => {
            let declaration = ast::Declaration::from_ast(&cx, args, &item);
            if let Some(declaration) = &declaration {
                check::check_declaration(&cx, declaration);
            }
            match (cx.check(), declaration) {
                (Ok(()), Some(declaration)) => expand::declaration(&declaration),
                (Err(error), Some(declaration)) => {
                    with_fallback(error, expand::declaration_fallback(&declaration))
                }
                (Err(error), None) => with_fallback(error, quote::quote!(#item)),
                (Ok(()), None) => quote::quote!(#item),
            }
        }
        Item::Impl(item_impl) => {
            if !args.is_empty() {
                cx.error_spanned_by(&args, "`#[projection]` on an impl block takes no arguments; put `name`, `document` and the rest on the struct's `#[projection(...)]`");
            }
            let model = ast::ProjectionImpl::from_ast(&cx, item_impl);
            if let Some(model) = &model {
                check::check(&cx, model);
            }
            finish(
                cx,
                model,
                item_impl,
                expand::projection_impl,
                expand::fallback,
            )
        }
        _ => {
            let error = syn::Error::new_spanned(&item, "`#[projection]` goes on a read model's struct and on its impl block (with `#[on]` handlers)");
            let _ = cx.check();
            with_fallback(error, input)
        }
    }
}
