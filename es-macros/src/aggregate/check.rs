//! The rules an aggregate impl block must follow, one function each.

use quote::ToTokens;
use syn::ReturnType;

use super::ast::{
    arguments_span, context_argument, output_span, type_ident, AggregateImpl, Declaration, Emitted,
    Method, Receiver,
};
use crate::ctxt::Ctxt;
use crate::impl_block::each_repeat;

/// The longest aggregate name, in bytes: stream ids stay short enough to index and read.
const MAX_NAME_BYTES: usize = 64;

pub fn check_declaration(cx: &Ctxt, declaration: &Declaration) {
    check_stored_name(cx, declaration);
}

/// The aggregate's name becomes the first half of every stream id, `"{name}/{id}"`: a `/` in
/// it would make two aggregates' streams ambiguous, and stores and URLs should not need to
/// quote it, so it is short, non-empty ASCII from a small set.
fn check_stored_name(cx: &Ctxt, declaration: &Declaration) {
    let name = &declaration.name;
    let span = declaration
        .name_literal
        .as_ref()
        .map_or_else(|| declaration.ident.span(), syn::LitStr::span);
    let written = if declaration.name_literal.is_some() {
        format!("aggregate name `{name}`")
    } else {
        format!(
            "aggregate name `{name}` (taken from the struct's name; set another with `name = \"...\"`)"
        )
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.trim().is_empty() {
        cx.error_at(
            span,
            "the aggregate's stored name cannot be empty, e.g. `name = \"post\"`",
        );
    } else if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        let suggestion: String = name
            .chars()
            .map(|c| if allowed(c) { c } else { '_' })
            .take(MAX_NAME_BYTES)
            .collect();
        cx.error_at(
            span,
            format!(
                "{written} cannot contain {}: it becomes the first half of every stream id (`{{name}}/{{id}}`), so use only ASCII letters, digits, `_`, `-` and `.`, e.g. `name = \"{suggestion}\"`",
                describe_char(bad)
            ),
        );
    } else if name.len() > MAX_NAME_BYTES {
        let short = crate::naming::snake_case(&declaration.ident.to_string());
        let example = if short.len() <= MAX_NAME_BYTES && short.chars().all(allowed) {
            format!(", e.g. `name = \"{short}\"`")
        } else {
            String::new()
        };
        cx.error_at(
            span,
            format!(
                "{written} is {} bytes long; it becomes the first half of every stream id, so keep it to {MAX_NAME_BYTES} bytes at most{example}",
                name.len(),
            ),
        );
    }
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '/' => "`/`".to_owned(),
        c if c.is_ascii() => format!("`{c}`"),
        c => format!("the non-ASCII character `{c}`"),
    }
}

pub fn check(cx: &Ctxt, aggregate: &AggregateImpl) {
    check_not_generic(cx, aggregate);
    for method in &aggregate.appliers {
        check_apply_shape(cx, method);
    }
    for method in &aggregate.handlers {
        check_handle_shape(cx, method, &aggregate.event_enum);
    }
    check_one_apply_per_event(cx, aggregate);
    check_one_handler_per_command(cx, aggregate);
    check_emitted_events_are_applied(cx, aggregate);
}

/// The generated enums and trait impls name the aggregate without parameters.
fn check_not_generic(cx: &Ctxt, aggregate: &AggregateImpl) {
    if !aggregate.original.generics.params.is_empty() {
        cx.error_spanned_by(
            &aggregate.original.generics,
            "an aggregate cannot be generic: its events are stored under fixed names; make a concrete type for each use",
        );
    }
}

fn type_text(ty: &syn::Type) -> String {
    ty.to_token_stream().to_string().replace(' ', "")
}

/// The message type the method takes, without `&`, for the example in an error; `fallback`
/// when it takes none (a context is not a message).
fn message_hint(method: &Method, fallback: &str) -> String {
    method
        .arguments
        .iter()
        .find(|ty| context_argument(ty).is_none())
        .map_or_else(
            || fallback.to_owned(),
            |ty| match ty {
                syn::Type::Reference(reference) => type_text(&reference.elem),
                other => type_text(other),
            },
        )
}

/// Replay calls `#[apply]` methods for events written long ago: they must change `self`, take
/// exactly one event, and be unable to fail or wait.
fn check_apply_shape(cx: &Ctxt, method: &Method) {
    let function = method.original;
    let name = method.ident();
    let event_hint = message_hint(method, "SomethingHappened");
    let example = format!("e.g. `fn {name}(&mut self, event: &{event_hint})`");
    if let Some(asyncness) = &function.sig.asyncness {
        cx.error_spanned_by(
            asyncness,
            format!("`#[apply]` method `{name}` cannot be `async`: applying an event only changes `self` in memory; {example}"),
        );
    }
    if method.receiver != Receiver::RefMut || method.message_type().is_none() {
        cx.error_at(
            arguments_span(function),
            format!("`#[apply]` method `{name}` must take `&mut self` and one event by reference, {example}"),
        );
    }
    if let ReturnType::Type(_, ty) = &function.sig.output {
        cx.error_spanned_by(
            ty,
            format!("`#[apply]` method `{name}` must not return anything: an event already happened and cannot be refused; validate in the `#[handle]` method instead"),
        );
    }
}

/// Handlers decide from the current state and never change it (only events do), so they take
/// `&self` and the command by value, optionally followed by the context the repository lends
/// them, and say yes (events) or no (an error) with a `Result`.
fn check_handle_shape(cx: &Ctxt, method: &Method, event_enum: &syn::Ident) {
    let function = method.original;
    let name = method.ident();
    let command_hint = message_hint(method, "DoSomething");
    let example = format!(
        "e.g. `fn {name}(&self, command: {command_hint}) -> Result<SomethingHappened, MyError>`"
    );
    if let Some(asyncness) = &function.sig.asyncness {
        cx.error_spanned_by(
            asyncness,
            format!("`#[handle]` method `{name}` cannot be `async`: handlers decide from the aggregate's state alone; do I/O before sending the command, and pass its result in the command"),
        );
    }
    match method.receiver {
        Receiver::Ref => {}
        Receiver::RefMut => {
            let receiver = function.sig.inputs.first();
            cx.error_spanned_by(
                receiver,
                format!("`#[handle]` method `{name}` must take `&self`, not `&mut self`: a handler only decides which events happen; state changes in `#[apply]` methods. {}", capitalize(&example)),
            );
        }
        Receiver::Value | Receiver::Missing => cx.error_at(
            arguments_span(function),
            format!(
                "`#[handle]` method `{name}` must take `&self` and one command by value, {example}"
            ),
        ),
    }
    check_handle_arguments(cx, method, &command_hint, &example);
    if method.ok_type().is_none() {
        cx.error_at(
            output_span(function),
            format!("`#[handle]` method `{name}` must return a `Result`: the events when the command is accepted, the aggregate's error when it is refused, {example}"),
        );
    } else if matches!(method.emitted(), Emitted::Unknown) {
        cx.error_at(
            output_span(function),
            format!("`#[handle]` method `{name}` returns events in a shape this macro does not know; return one event type, a tuple of event types, `Option<Event>`, `Vec<{}>` or `()`", event_enum),
        );
    }
}

/// The arguments after `&self`: the command by value, then optionally `&Context<Services>`,
/// which the generated dispatch passes by reference (the repository lends it to every attempt).
fn check_handle_arguments(cx: &Ctxt, method: &Method, command_hint: &str, example: &str) {
    let function = method.original;
    let name = method.ident();
    let context_text = |context: Option<&syn::Type>| {
        let services = context
            .and_then(context_argument)
            .and_then(|context| context.services)
            .map_or_else(|| "MyServices".to_owned(), type_text);
        format!("context: &Context<{services}>")
    };
    let with_context = |context: Option<&syn::Type>| {
        format!(
            "e.g. `fn {name}(&self, command: {command_hint}, {}) -> Result<SomethingHappened, MyError>`",
            context_text(context)
        )
    };
    let arguments = method.arguments.as_slice();
    match arguments {
        [] => cx.error_at(
            arguments_span(function),
            format!("`#[handle]` method `{name}` must take the command it handles, {example}"),
        ),
        [first, rest @ ..] if context_argument(first).is_some() => {
            let message = if rest.is_empty() {
                format!("`#[handle]` method `{name}` takes a context but no command; take the command it handles first, {}", with_context(Some(first)))
            } else {
                format!("`#[handle]` method `{name}` takes its context before its command; the command comes first, {}", with_context(Some(first)))
            };
            cx.error_spanned_by(first, message);
        }
        [syn::Type::Reference(reference), ..] => cx.error_spanned_by(
            reference,
            format!("`#[handle]` method `{name}` must take its command by value, not by reference, {example}"),
        ),
        [_] => {}
        [_, second, rest @ ..] => match context_argument(second) {
            Some(context) if !context.by_shared_reference => cx.error_spanned_by(
                second,
                format!("`#[handle]` method `{name}` must take its context by shared reference, `{}`: the repository lends the same context to every attempt of the command", context_text(Some(second))),
            ),
            Some(_) => {
                if let Some(extra) = rest.first() {
                    cx.error_spanned_by(
                        extra,
                        format!("`#[handle]` method `{name}` takes a command and its context, but has {} arguments; put the extra values in the command or in the aggregate's services, {}", arguments.len(), with_context(Some(second))),
                    );
                }
            }
            None => cx.error_spanned_by(
                second,
                format!("`#[handle]` method `{name}` takes a command and, optionally, its context (`{}`); put the extra values in the command, {example}, or in the aggregate's `services = ...`", context_text(None)),
            ),
        },
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Replay dispatches each event to exactly one `#[apply]` method: two would make it ambiguous
/// which state change the event means.
fn check_one_apply_per_event(cx: &Ctxt, aggregate: &AggregateImpl) {
    each_repeat(&aggregate.appliers, message_key, |first, repeat| {
        cx.error_spanned_by(
            repeat.message_type(),
            format!(
                "event `{}` is applied twice: by `{}` and by `{}`; keep one `#[apply]` method per event",
                message_key(repeat).unwrap_or_default(),
                first.ident(),
                repeat.ident()
            ),
        );
    });
}

/// The generated command enum has one variant per command type, so one handler each.
fn check_one_handler_per_command(cx: &Ctxt, aggregate: &AggregateImpl) {
    each_repeat(&aggregate.handlers, message_key, |first, repeat| {
        cx.error_spanned_by(
            repeat.message_type(),
            format!(
                "command `{}` is handled twice: by `{}` and by `{}`; keep one `#[handle]` method per command",
                message_key(repeat).unwrap_or_default(),
                first.ident(),
                repeat.ident()
            ),
        );
    });
}

fn message_key(method: &Method) -> Option<String> {
    method.message_ident().map(ToString::to_string)
}

/// An event the aggregate emits but never applies would be stored, then ignored on every
/// load: the state would silently disagree with the log.
fn check_emitted_events_are_applied(cx: &Ctxt, aggregate: &AggregateImpl) {
    let applied: Vec<String> = aggregate
        .appliers
        .iter()
        .filter_map(|m| m.message_ident().map(ToString::to_string))
        .collect();
    let enum_name = aggregate.event_enum.to_string();
    for method in &aggregate.handlers {
        for event_type in method.emitted().visible_events() {
            let Some(event) = type_ident(event_type) else {
                continue;
            };
            if event == enum_name.as_str() || applied.iter().any(|a| event == a.as_str()) {
                continue;
            }
            let snake = crate::naming::snake_case(&event.to_string());
            cx.error_spanned_by(
                event_type,
                format!(
                    "`#[handle]` method `{}` emits `{event}`, but `{}` has no `#[apply]` method for it; add one, e.g. `#[apply] fn on_{snake}(&mut self, event: &{event}) {{ ... }}`",
                    method.ident(),
                    aggregate.self_ident,
                ),
            );
        }
    }
}
