//! `#[projection]`: on a struct it registers the read model with `inventory`; on its impl block
//! it reads `#[on]` handlers and implements `es_core::Projection`.

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
        Item::Struct(_) | Item::Enum(_) => {
            let declaration = ast::Declaration::from_ast(&cx, args, &item);
            match (cx.check(), declaration) {
                (Ok(()), Some(declaration)) => expand::declaration(&declaration),
                (Err(error), _) => with_fallback(error, quote::quote!(#item)),
                (Ok(()), None) => quote::quote!(#item),
            }
        }
        Item::Impl(item_impl) => {
            if !args.is_empty() {
                cx.error_spanned_by(&args, "`#[projection]` on an impl block takes no arguments; put `name = \"...\"` on the struct's `#[projection(...)]`");
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
