//! `#[process_manager]`: on a struct it names the process manager; on its impl block it reads
//! the `#[on]` handlers (events and deadlines in, commands out) and implements
//! `es_core::process::ProcessManager`.

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
        Item::Struct(item_struct) => {
            let declaration = ast::Declaration::from_ast(&cx, args, item_struct);
            check::check_declaration(&cx, &declaration);
            match cx.check() {
                Ok(()) => expand::declaration(&declaration),
                Err(error) => with_fallback(error, expand::declaration(&declaration)),
            }
        }
        Item::Impl(item_impl) => {
            if !args.is_empty() {
                cx.error_spanned_by(&args, "`#[process_manager]` on an impl block takes no arguments; put `name` on the struct's `#[process_manager(...)]`");
            }
            let model = ast::ManagerImpl::from_ast(&cx, item_impl);
            if let Some(model) = &model {
                check::check(&cx, model);
            }
            finish(cx, model, item_impl, expand::manager_impl, expand::fallback)
        }
        _ => {
            let error = syn::Error::new_spanned(&item, "`#[process_manager]` goes on a process manager's struct and on its impl block (with `#[on]` handlers)");
            let _ = cx.check();
            with_fallback(error, input)
        }
    }
}
