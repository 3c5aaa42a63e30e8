//! The rules a process manager follows, one function each.

use super::ast::{Declaration, Handler, ManagerImpl};
use crate::ctxt::Ctxt;
use crate::impl_block::each_repeat;

pub fn check_declaration(cx: &Ctxt, declaration: &Declaration) {
    check_not_generic(cx, &declaration.original.generics);
    check_name(cx, declaration);
}

pub fn check(cx: &Ctxt, manager: &ManagerImpl) {
    check_not_generic(cx, &manager.original.generics);
    if manager.handlers.is_empty() {
        cx.error_spanned_by(
            &manager.original.self_ty,
            format!("process manager `{}` has no `#[on]` handlers, so it would never send a command; add one, e.g. `#[on] fn suspended(&self, event: &Envelope<AuthorSuspended>, process: &mut Process<'_, YourState>) -> Vec<Dispatch> {{ ... }}`", manager.self_ident),
        );
    }
    for handler in &manager.handlers {
        check_handler_shape(cx, handler, manager);
    }
    check_one_handler_per_message(cx, manager);
    check_one_state_type(cx, manager);
}

/// Its name files its checkpoint, state and deadlines: one per process manager, not per
/// instantiation.
fn check_not_generic(cx: &Ctxt, generics: &syn::Generics) {
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            "a process manager cannot be generic: its name files its checkpoint, state and deadlines",
        );
    }
}

/// Names become table names (`es_doc_pm_{name}_deadlines_1`): lowercase identifiers only.
fn check_name(cx: &Ctxt, declaration: &Declaration) {
    let text = &declaration.name;
    let valid = !text.is_empty()
        && text.len() <= 40
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        let message = format!("process manager name `{text}` must be 1 to 40 lowercase letters, digits and `_`, starting with a letter (it names tables), e.g. `name = \"draft_janitor\"`");
        match &declaration.name_literal {
            Some(literal) => cx.error_spanned_by(literal, message),
            None => cx.error_spanned_by(&declaration.original.ident, message),
        }
    }
}

/// Handlers decide from one event or deadline, deterministically and without waiting: the
/// runtime loads the state they need first, and may run them again (a batch that needed more
/// state, a retried batch).
fn check_handler_shape(cx: &Ctxt, handler: &Handler, manager: &ManagerImpl) {
    let name = handler.ident();
    let state = manager.state().map_or_else(
        || "YourState".to_owned(),
        |ty| quote::quote!(#ty).to_string(),
    );
    let example = format!("e.g. `fn {name}(&self, event: &Envelope<SomeEvent>, process: &mut Process<'_, {state}>) -> Vec<Dispatch>`, or `deadline: &Deadline<SomeMessage>` for a deadline");
    if let Some(asyncness) = &handler.original.sig.asyncness {
        cx.error_spanned_by(asyncness, format!("`#[on]` handler `{name}` cannot be `async`: it returns the commands to send and the runtime sends them, {example}"));
        return;
    }
    let problem = if !handler.shared_receiver {
        "must take `&self` (state changes through `process.state()`, not through `self`)"
    } else if handler.input().is_none() {
        "must take one event or deadline by reference first"
    } else if handler.arguments.len() != 2 || handler.state().is_none() {
        "must take `process: &mut Process<'_, State>` after the event"
    } else {
        return;
    };
    cx.error_at(
        handler.original.sig.paren_token.span.join(),
        format!("`#[on]` handler `{name}` {problem}, {example}"),
    );
}

/// One handler per event type and per deadline message: two would send the commands twice.
fn check_one_handler_per_message(cx: &Ctxt, manager: &ManagerImpl) {
    each_repeat(&manager.handlers, Handler::message_key, |first, repeat| {
        let key = repeat.message_key().unwrap_or_default();
        cx.error_spanned_by(
            repeat.input().map(|input| input.message()),
            format!(
                "{key} has two `#[on]` handlers in `{}`: `{}` and `{}`; keep one",
                manager.self_ident,
                first.ident(),
                repeat.ident()
            ),
        );
    });
}

/// A process manager keeps state documents of one type: every `Process<'_, S>` must agree.
fn check_one_state_type(cx: &Ctxt, manager: &ManagerImpl) {
    let Some(first) = manager.state() else {
        return;
    };
    let first_text = quote::quote!(#first).to_string();
    for handler in &manager.handlers {
        if let Some(state) = handler.state() {
            if quote::quote!(#state).to_string() != first_text {
                cx.error_spanned_by(
                    state,
                    format!(
                        "`#[on]` handler `{}` takes `Process<'_, {}>`, but the other handlers of `{}` take `Process<'_, {}>`; a process manager keeps state of one type",
                        handler.ident(),
                        quote::quote!(#state),
                        manager.self_ident,
                        first_text
                    ),
                );
            }
        }
    }
}
