//! The rules a projection must follow, one function each.

use syn::ReturnType;

use super::ast::{Declaration, Handler, ProjectionImpl, Receiver};
use crate::ctxt::Ctxt;
use crate::impl_block::each_repeat;

pub fn check_declaration(cx: &Ctxt, declaration: &Declaration) {
    check_has_document(cx, declaration);
    check_indexes_unique(cx, declaration);
}

/// The runtime stores documents of one type per projection; it must know which.
fn check_has_document(cx: &Ctxt, declaration: &Declaration) {
    if declaration.document.is_none() {
        cx.error_at(
            declaration.name_span,
            format!(
                "projection `{}` needs its document type: `#[projection(document = {}Document)]`, a serde struct with `Default` and `Clone` that its handlers keep up to date",
                declaration.ident, declaration.ident
            ),
        );
    }
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
        check_handler_shape(cx, handler);
    }
    check_one_handler_per_event(cx, projection);
}

/// Handlers update documents from one event, deterministically, without waiting on anything:
/// the runtime may run them again within a batch and in every rebuild.
fn check_handler_shape(cx: &Ctxt, handler: &Handler) {
    let name = handler.ident();
    let example = format!(
        "e.g. `fn {name}(&self, event: &Envelope<PostPublished>, docs: &mut Docs<PostSummary>)`"
    );
    if let Some(asyncness) = &handler.original.sig.asyncness {
        cx.error_spanned_by(asyncness, format!("`#[on]` handler `{name}` cannot be `async`: the runtime loads the documents it needs before calling it, {example}"));
        return;
    }
    let well_formed = handler.receiver == Receiver::Shared
        && handler.arguments.len() == 2
        && handler.input().is_some()
        && handler.docs().is_some();
    if !well_formed {
        let problem = if handler.receiver != Receiver::Shared {
            "must take `&self` (documents change through `docs`, not through `self`)"
        } else if handler.input().is_none() {
            "must take one event by reference first"
        } else {
            "must take `docs: &mut Docs<YourDocument>` after the event"
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
