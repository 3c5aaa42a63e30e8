//! Small helpers for hand-parsed attributes (`parse_nested_meta`).

use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitInt, LitStr};

use crate::ctxt::Ctxt;
use crate::symbol::Symbol;

/// A value that may be set once; a second setting is an error at its span.
pub struct Once<T> {
    key: Symbol,
    attribute: &'static str,
    value: Option<T>,
}

impl<T> Once<T> {
    pub fn new(attribute: &'static str, key: Symbol) -> Self {
        Once {
            key,
            attribute,
            value: None,
        }
    }

    pub fn set(&mut self, cx: &Ctxt, at: &syn::Path, value: T) {
        if self.value.is_some() {
            cx.error_spanned_by(
                at,
                format!(
                    "duplicate `{}` in `#[{}]`; give it once",
                    self.key, self.attribute
                ),
            );
        } else {
            self.value = Some(value);
        }
    }

    pub fn get(self) -> Option<T> {
        self.value
    }
}

pub fn parse_lit_str(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// `name = "..."` that must not be blank; `what` says whose name, `example` a good one.
pub fn parse_name(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    what: &str,
    example: &str,
) -> syn::Result<LitStr> {
    let value = parse_lit_str(meta)?;
    if value.value().trim().is_empty() {
        cx.error_spanned_by(
            &value,
            format!("{what} cannot be empty, e.g. `name = \"{example}\"`"),
        );
    }
    Ok(value)
}

pub fn parse_lit_int(meta: &ParseNestedMeta) -> syn::Result<LitInt> {
    meta.value()?.parse()
}

/// "unknown `#[x]` attribute `k`, expected one of `a`, `b`".
pub fn unknown_key(meta: &ParseNestedMeta, attribute: &str, expected: &[Symbol]) -> syn::Error {
    let key = meta.path.get_ident().map_or_else(
        || {
            let path = &meta.path;
            quote::quote!(#path).to_string()
        },
        ToString::to_string,
    );
    let expected = expected
        .iter()
        .map(|word| format!("`{word}`"))
        .collect::<Vec<_>>()
        .join(", ");
    meta.error(format!(
        "unknown `#[{attribute}]` attribute `{key}`, expected one of {expected}"
    ))
}

/// Whether `attribute` is `#[name]` or `#[name(...)]` (not `#[some::path::name]`).
pub fn is(attribute: &Attribute, name: Symbol) -> bool {
    attribute.path() == name
}
