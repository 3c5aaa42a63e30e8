//! The rules a projection must follow, one function each.

use syn::ReturnType;

use super::ast::{Declaration, Handler, ProjectionImpl, Receiver};
use crate::ctxt::Ctxt;
use crate::impl_block::each_repeat;

pub fn check_declaration(cx: &Ctxt, declaration: &Declaration) {
    check_indexes_unique(cx, declaration);
}

/// One index per field: a second would only cost writes.
fn check_indexes_unique(cx: &Ctxt, declaration: &Declaration) {
    for (position, index) in declaration.indexes.iter().enumerate() {
        if declaration.indexes[..position].contains(index) {
            cx.error_spanned_by(index, format!("`{index}` is indexed twice; name it once"));
        }
    }
}

pub fn check(cx: &Ctxt, projection: &ProjectionImpl) {
    if !projection.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &projection.original.generics,
            "a projection cannot be generic: its name files its tables and checkpoint",
        );
    }
    if projection.handlers.is_empty() {
        cx.error_spanned_by(
            &projection.original.self_ty,
            format!("projection `{}` has no `#[on]` handlers, so it would never change; add one, e.g. `#[on] fn published(&self, event: &Envelope<PostPublished>, docs: &mut Docs<PostSummary>) {{ ... }}`", projection.self_ident),
        );
    }
    for handler in &projection.handlers {
        check_handler_shape(cx, handler, projection);
    }
    check_one_handler_per_event(cx, projection);
    check_one_document_type(cx, projection);
}

/// A projection keeps documents of one type: its handlers' `Docs<D>` say which, and must agree.
fn check_one_document_type(cx: &Ctxt, projection: &ProjectionImpl) {
    let Some(first) = projection.document() else {
        return;
    };
    let first_text = quote::quote!(#first).to_string();
    for handler in &projection.handlers {
        if let Some(document) = handler.document() {
            if quote::quote!(#document).to_string() != first_text {
                cx.error_spanned_by(
                    document,
                    format!(
                        "`#[on]` handler `{}` takes `Docs<{}>`, but the other handlers of `{}` take `Docs<{}>`; a projection keeps documents of one type",
                        handler.ident(),
                        quote::quote!(#document),
                        projection.self_ident,
                        first_text
                    ),
                );
            }
        }
    }
}

/// Handlers update documents from one event, deterministically, without waiting on anything:
/// the runtime may run them again within a batch and in every rebuild.
fn check_handler_shape(cx: &Ctxt, handler: &Handler, projection: &ProjectionImpl) {
    let name = handler.ident();
    let event = handler.named_event_type().map_or_else(
        || "YourEvent".to_owned(),
        |ty| quote::quote!(#ty).to_string(),
    );
    let document = projection.document().map_or_else(
        || "YourDocument".to_owned(),
        |ty| quote::quote!(#ty).to_string(),
    );
    let example =
        format!("e.g. `fn {name}(&self, event: &Envelope<{event}>, docs: &mut Docs<{document}>)`");
    if let Some(asyncness) = &handler.original.sig.asyncness {
        cx.error_spanned_by(asyncness, format!("`#[on]` handler `{name}` cannot be `async`: the runtime loads the documents it needs before calling it, {example}"));
        return;
    }
    let well_formed = handler.receiver == Receiver::Shared
        && handler.arguments.len() == 2
        && handler.input().is_some()
        && handler.document().is_some();
    if !well_formed {
        let problem = if handler.receiver != Receiver::Shared {
            "must take `&self` (documents change through `docs`, not through `self`)"
        } else if handler.input().is_none() {
            "must take one event by reference first"
        } else {
            "must take the documents it keeps, `docs: &mut Docs<...>`, after the event"
        };
        cx.error_at(
            handler.original.sig.paren_token.span.join(),
            format!("`#[on]` handler `{name}` {problem}, {example}"),
        );
    }
    if let ReturnType::Type(_, ty) = &handler.original.sig.output {
        if !handler.returns_result() {
            cx.error_spanned_by(ty, format!("`#[on]` handler `{name}` returns nothing, or `Result<(), E>` to report a failure"));
        }
    }
}

/// One event type dispatches to one handler; two would update the documents twice.
fn check_one_handler_per_event(cx: &Ctxt, projection: &ProjectionImpl) {
    let event_key = |handler: &Handler| handler.event_ident().map(ToString::to_string);
    each_repeat(&projection.handlers, event_key, |first, repeat| {
        cx.error_spanned_by(
            repeat.event_type(),
            format!(
                "event `{}` has two `#[on]` handlers in `{}`: `{}` and `{}`; keep one",
                event_key(repeat).unwrap_or_default(),
                projection.self_ident,
                first.ident(),
                repeat.ident()
            ),
        );
    });
}
