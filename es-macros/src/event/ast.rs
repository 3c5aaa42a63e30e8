//! The model of one `#[derive(Event)]` input.

use proc_macro2::Span;
use syn::{DeriveInput, LitInt, Path};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::symbol::{EVENT, FROM, NAME, UPCAST, VERSION, WITH};

pub struct Event<'a> {
    pub original: &'a DeriveInput,
    /// Stored name: `name = "..."`, or the type's name (so renaming the type changes it).
    pub name: String,
    pub version: u32,
    /// Where `version` was written, for errors about it.
    pub version_span: Option<Span>,
    pub upcasters: Vec<Upcaster>,
}

/// `upcast(from = 1, with = path::to::function)`.
pub struct Upcaster {
    pub from: u32,
    pub from_span: Span,
    pub function: Path,
}

impl<'a> Event<'a> {
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let mut name = Once::new("event", NAME);
        let mut version = Once::new("event", VERSION);
        let mut upcasters = Vec::new();
        for attribute in input.attrs.iter().filter(|a| attr::is(a, EVENT)) {
            let parsed = attribute.parse_nested_meta(|meta| {
                if meta.path == NAME {
                    // #[event(name = "post.published")]
                    let value = attr::parse_name(
                        cx,
                        &meta,
                        "the stored name of an event",
                        "post.published",
                    )?;
                    name.set(cx, &meta.path, value.value());
                } else if meta.path == VERSION {
                    // #[event(version = 2)]
                    if let Some(number) = parse_version(
                        cx,
                        &meta,
                        "an event's `version` is a whole number from 1, e.g. `version = 2`",
                    )? {
                        version.set(cx, &meta.path, number);
                    }
                } else if meta.path == UPCAST {
                    // #[event(upcast(from = 1, with = upgrade_v1))]
                    upcasters.push(parse_upcaster(cx, &meta)?);
                } else {
                    return Err(attr::unknown_key(&meta, "event", &[NAME, VERSION, UPCAST]));
                }
                Ok(())
            });
            if let Err(error) = parsed {
                cx.syn_error(error);
            }
        }
        let (version, version_span) = match version.get() {
            Some((number, span)) => (number, Some(span)),
            None => (1, None),
        };
        Event {
            original: input,
            name: name.get().unwrap_or_else(|| input.ident.to_string()),
            version,
            version_span,
            upcasters: upcasters.into_iter().flatten().collect(),
        }
    }
}

fn parse_upcaster(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta) -> syn::Result<Option<Upcaster>> {
    let mut from = Once::new("event(upcast)", FROM);
    let mut with = Once::new("event(upcast)", WITH);
    meta.parse_nested_meta(|inner| {
        if inner.path == FROM {
            // upcast(from = 1, ...)
            if let Some(number) = parse_version(
                cx,
                &inner,
                "`from` is the schema version the upcaster reads, a whole number from 1",
            )? {
                from.set(cx, &inner.path, number);
            }
        } else if inner.path == WITH {
            // upcast(..., with = path::to::function)
            let path: Path = inner.value()?.parse()?;
            with.set(cx, &inner.path, path);
        } else {
            return Err(attr::unknown_key(&inner, "event(upcast)", &[FROM, WITH]));
        }
        Ok(())
    })?;
    match (from.get(), with.get()) {
        (Some((from, from_span)), Some(function)) => Ok(Some(Upcaster {
            from,
            from_span,
            function,
        })),
        _ => {
            cx.error_spanned_by(&meta.path, "an upcaster needs both keys: `upcast(from = 1, with = path::to::function)`, where the function takes the old payload as `serde_json::Value` and returns `Result<serde_json::Value, es_core::UpcastError>`");
            Ok(None)
        }
    }
}

/// A schema version (`version = 2`, `from = 1`): a whole number from 1, with its span;
/// `None` after reporting `message` at anything else.
fn parse_version(
    cx: &Ctxt,
    meta: &syn::meta::ParseNestedMeta,
    message: &str,
) -> syn::Result<Option<(u32, Span)>> {
    let value: LitInt = attr::parse_lit_int(meta)?;
    match value.base10_parse::<u32>() {
        Ok(0) | Err(_) => {
            cx.error_spanned_by(&value, message);
            Ok(None)
        }
        Ok(number) => Ok(Some((number, value.span()))),
    }
}
