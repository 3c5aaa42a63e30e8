//! The rules a projection impl block must follow, one function each.

use syn::ReturnType;

use super::ast::{Handler, ProjectionImpl};
use crate::ctxt::Ctxt;
use crate::impl_block::each_repeat;

pub fn check(cx: &Ctxt, projection: &ProjectionImpl) {
    if !projection.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &projection.original.generics,
            "a projection cannot be generic: the runtime creates it by name with `Default`",
        );
    }
    if projection.handlers.is_empty() {
        cx.error_spanned_by(
            &projection.original.self_ty,
            format!("projection `{}` has no `#[on]` handlers, so it would never change; add one, e.g. `#[on] fn published(&mut self, event: &Envelope<PostPublished>) {{ ... }}`", projection.self_ident),
        );
    }
    for handler in &projection.handlers {
        check_handler_shape(cx, handler);
    }
    check_one_handler_per_event(cx, projection);
}

/// Handlers update the read model from one event, in order, without waiting on anything.
fn check_handler_shape(cx: &Ctxt, handler: &Handler) {
    let name = handler.ident();
    let example = format!("e.g. `fn {name}(&mut self, event: &Envelope<PostPublished>)` or `fn {name}(&mut self, event: &PostPublished)`");
    if let Some(asyncness) = &handler.original.sig.asyncness {
        cx.error_spanned_by(asyncness, format!("`#[on]` handler `{name}` cannot be `async`: projections update in-memory state in event order"));
    }
    if !handler.takes_mut_self || handler.input().is_none() {
        cx.error_at(
            handler.original.sig.paren_token.span.join(),
            format!("`#[on]` handler `{name}` must take `&mut self` and one event by reference, {example}"),
        );
    }
    if let ReturnType::Type(_, ty) = &handler.original.sig.output {
        if !handler.returns_result() {
            cx.error_spanned_by(ty, format!("`#[on]` handler `{name}` returns nothing, or `Result<(), E>` to report a failure"));
        }
    }
}

/// One event type dispatches to one handler; two would update the read model twice.
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
