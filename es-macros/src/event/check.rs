//! Rules on one event declaration.

use std::collections::BTreeMap;

use super::ast::Event;
use crate::ctxt::Ctxt;

pub fn check(cx: &Ctxt, event: &Event) {
    check_upcasters_below_version(cx, event);
    check_one_upcaster_per_version(cx, event);
    check_upcast_chain_complete(cx, event);
}

/// An upcaster reads an older version; one from the current version or later can never run.
fn check_upcasters_below_version(cx: &Ctxt, event: &Event) {
    for upcaster in &event.upcasters {
        if upcaster.from >= event.version {
            cx.error_at(
                upcaster.from_span,
                format!(
                    "`upcast(from = {})` can never run: the event is at `version = {}`, and an upcaster reads an older version (`from` below {})",
                    upcaster.from, event.version, event.version
                ),
            );
        }
    }
}

/// Two upcasters from one version would make the chain ambiguous.
fn check_one_upcaster_per_version(cx: &Ctxt, event: &Event) {
    let mut seen = BTreeMap::new();
    for upcaster in &event.upcasters {
        if seen.insert(upcaster.from, ()).is_some() {
            cx.error_at(
                upcaster.from_span,
                format!(
                    "two upcasters read version {}; keep one `upcast(from = {}, ...)`",
                    upcaster.from, upcaster.from
                ),
            );
        }
    }
}

/// Once any upcaster is declared, every step from the oldest one up to the current version
/// must exist: otherwise events stored at the missing version fail to load at run time.
fn check_upcast_chain_complete(cx: &Ctxt, event: &Event) {
    let Some(oldest) = event.upcasters.iter().map(|u| u.from).min() else {
        return;
    };
    for from in oldest..event.version {
        if !event.upcasters.iter().any(|u| u.from == from) {
            let span = event
                .version_span
                .unwrap_or_else(|| event.original.ident.span());
            cx.error_at(
                span,
                format!(
                    "the upcast chain of `{}` has a gap: there is no upcaster from version {from} to {}; add `upcast(from = {from}, with = ...)`",
                    event.original.ident,
                    from + 1
                ),
            );
        }
    }
}
