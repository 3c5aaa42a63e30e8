//! What `#[aggregate]` and `#[projection]` both read from an impl block.

use syn::{Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Type};

use crate::ctxt::Ctxt;
use crate::types::type_ident;

/// The name of the type an inherent impl block is for, or an error: the macros generate trait
/// impls for that type, so a trait impl or an unnamed type cannot carry them.
pub fn self_ident<'a>(cx: &Ctxt, item: &'a ItemImpl, attribute: &str) -> Option<&'a Ident> {
    if let Some((_, trait_path, _)) = &item.trait_ {
        cx.error_spanned_by(
            trait_path,
            format!("`#[{attribute}]` goes on the type's own impl block (`impl MyType {{ ... }}`), not on a trait impl"),
        );
        return None;
    }
    let ident = type_ident(&item.self_ty);
    if ident.is_none() {
        cx.error_spanned_by(
            &item.self_ty,
            format!("`#[{attribute}]` needs an impl block of a named struct, e.g. `impl MyType {{ ... }}`"),
        );
    }
    ident
}

/// The methods of an impl block.
pub fn methods(item: &ItemImpl) -> impl Iterator<Item = &ImplItemFn> {
    item.items.iter().filter_map(|impl_item| match impl_item {
        ImplItem::Fn(function) => Some(function),
        _ => None,
    })
}

/// The types of a method's arguments after the receiver.
pub fn typed_arguments(function: &ImplItemFn) -> Vec<&Type> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|argument| match argument {
            FnArg::Typed(typed) => Some(&*typed.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The impl block without the macro's method attributes (those `is_helper` picks), which are
/// not real attributes and would not compile.
pub fn strip_method_attributes(
    original: &ItemImpl,
    is_helper: impl Fn(&Attribute) -> bool,
) -> ItemImpl {
    let mut item = original.clone();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(function) = impl_item {
            function.attrs.retain(|attribute| !is_helper(attribute));
        }
    }
    item
}

/// Calls `report(first, repeat)` for each item whose key an earlier item already had: the
/// shape of every "one X per Y" rule.
pub fn each_repeat<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> Option<String>,
    mut report: impl FnMut(&'a T, &'a T),
) {
    let mut first_by_key: std::collections::BTreeMap<String, &'a T> =
        std::collections::BTreeMap::new();
    for item in items {
        let Some(key) = key(item) else { continue };
        match first_by_key.get(&key) {
            Some(first) => report(first, item),
            None => {
                first_by_key.insert(key, item);
            }
        }
    }
}
