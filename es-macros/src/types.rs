//! Reading names out of types, and asserting what they implement.

use proc_macro2::{Span, TokenStream};
use quote::{quote_spanned, ToTokens};
use syn::{Generics, Ident, Type, WhereClause, WherePredicate};

/// The last path segment of a type, which names its enum variant:
/// `events::PostPublished` -> `PostPublished`.
pub fn type_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        Type::Group(group) => type_ident(&group.elem),
        Type::Paren(paren) => type_ident(&paren.elem),
        _ => None,
    }
}

/// The item's where clause plus `extra`, for impls that repeat a bound the macro asserts
/// elsewhere (under `for<'__es>`, so rustc assumes it there instead of reporting it again).
pub fn where_clause_with(
    generics: &Generics,
    extra: impl IntoIterator<Item = WherePredicate>,
) -> WhereClause {
    let mut where_clause = generics
        .where_clause
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause.predicates.extend(extra);
    where_clause
}

/// A `const _` asserting `ty: bound`, reported at `span` with the bound's
/// `#[diagnostic::on_unimplemented]` message. The bound sits on a function generated at the
/// same span, so rustc's "required by a bound" note points at the user's code, not into es-core.
pub fn assert_implements(span: Span, ty: impl ToTokens, bound: TokenStream) -> TokenStream {
    quote_spanned! {span=>
        const _: () = {
            const fn must_implement<T: ?::core::marker::Sized + #bound>() {}
            must_implement::<#ty>()
        };
    }
}

/// The first type argument of `Name<...>` or `path::Name<...>` (lifetimes skipped): `E` in
/// `Envelope<E>`, `S` in `Process<'_, S>`; `None` for any other type.
pub fn generic_argument_of<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|argument| match argument {
        syn::GenericArgument::Type(inner) => Some(inner),
        _ => None,
    })
}
