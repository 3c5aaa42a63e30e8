//! Reading names out of types.

use syn::{Ident, Type};

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
