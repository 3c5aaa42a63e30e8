//! The model of an aggregate: its declaration (struct attribute) and its impl block.
//!
//! Building the model records what the user wrote, keeping the original tokens for errors;
//! judging it is `check`'s job, so shapes are kept loose here (`Option`s, raw argument lists).

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser as _;
use syn::spanned::Spanned as _;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ImplItem, ImplItemFn, Item, ItemImpl, LitInt, LitStr,
    PathArguments, ReturnType, Type,
};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::naming::snake_case;
use crate::symbol::{APPLY, ERROR, HANDLE, ID, NAME, SNAPSHOT_EVERY};
pub use crate::types::type_ident;

/// `#[aggregate(name = "post", id = PostId, error = PostError, snapshot_every = 100)]` on a struct.
pub struct Declaration<'a> {
    pub original: &'a Item,
    pub ident: &'a Ident,
    pub generics: &'a syn::Generics,
    pub name: String,
    pub id: Type,
    pub error: Type,
    pub snapshot_every: Option<u64>,
    /// Both `id` and `error` were given, so the declaration can be emitted even after other errors.
    pub complete: bool,
}

impl<'a> Declaration<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a Item) -> Self {
        let (ident, generics) = match item {
            Item::Struct(s) => (&s.ident, &s.generics),
            Item::Enum(e) => (&e.ident, &e.generics),
            _ => unreachable_item(),
        };
        let mut name: Once<LitStr> = Once::new("aggregate", NAME);
        let mut id: Once<Type> = Once::new("aggregate", ID);
        let mut error: Once<Type> = Once::new("aggregate", ERROR);
        let mut snapshot_every: Once<u64> = Once::new("aggregate", SNAPSHOT_EVERY);
        let parser = syn::meta::parser(|meta| {
            if meta.path == NAME {
                // name = "post"
                let value = attr::parse_lit_str(&meta)?;
                if value.value().trim().is_empty() {
                    cx.error_spanned_by(
                        &value,
                        "the aggregate's stored name cannot be empty, e.g. `name = \"post\"`",
                    );
                }
                name.set(cx, &meta.path, value);
            } else if meta.path == ID {
                // id = PostId
                id.set(cx, &meta.path, meta.value()?.parse()?);
            } else if meta.path == ERROR {
                // error = PostError
                error.set(cx, &meta.path, meta.value()?.parse()?);
            } else if meta.path == SNAPSHOT_EVERY {
                // snapshot_every = 100
                let value: LitInt = attr::parse_lit_int(&meta)?;
                match value.base10_parse::<u64>() {
                    Ok(0) | Err(_) => cx.error_spanned_by(&value, "`snapshot_every` is a number of events, at least 1, e.g. `snapshot_every = 100`"),
                    Ok(every) => snapshot_every.set(cx, &meta.path, every),
                }
            } else {
                return Err(attr::unknown_key(
                    &meta,
                    "aggregate",
                    &[NAME, ID, ERROR, SNAPSHOT_EVERY],
                ));
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
        }
        let (id, error) = (id.get(), error.get());
        let complete = id.is_some() && error.is_some();
        let id = id.unwrap_or_else(|| {
            cx.error_at(
                ident.span(),
                format!("`#[aggregate]` on `{ident}` needs `id = ...`: the type that identifies one `{ident}`, e.g. `#[aggregate(id = String, error = {ident}Error)]`"),
            );
            syn::parse_quote!(::std::string::String)
        });
        let error = error.unwrap_or_else(|| {
            cx.error_at(
                ident.span(),
                format!("`#[aggregate]` on `{ident}` needs `error = ...`: the error type its `#[handle]` methods return, e.g. `#[aggregate(id = String, error = {ident}Error)]`"),
            );
            syn::parse_quote!(::core::convert::Infallible)
        });
        Declaration {
            original: item,
            ident,
            generics,
            name: name
                .get()
                .map_or_else(|| snake_case(&ident.to_string()), |n| n.value()),
            id,
            error,
            snapshot_every: snapshot_every.get(),
            complete,
        }
    }
}

fn unreachable_item() -> ! {
    // `mod.rs` only passes structs and enums.
    #[allow(clippy::panic)]
    {
        panic!("es-macros: declaration on an item that is not a struct or enum")
    }
}

/// `#[aggregate] impl Post { ... }`.
pub struct AggregateImpl<'a> {
    pub original: &'a ItemImpl,
    pub self_ident: &'a Ident,
    pub handlers: Vec<Method<'a>>,
    pub appliers: Vec<Method<'a>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Handle,
    Apply,
}

impl Role {
    pub fn attribute(self) -> &'static str {
        match self {
            Role::Handle => "#[handle]",
            Role::Apply => "#[apply]",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Receiver {
    /// No `self` at all: an associated function.
    Missing,
    Ref,
    RefMut,
    Value,
}

/// One `#[handle]` or `#[apply]` method, as written.
pub struct Method<'a> {
    pub original: &'a ImplItemFn,
    pub role: Role,
    pub receiver: Receiver,
    /// Typed arguments after the receiver.
    pub arguments: Vec<&'a Type>,
    pub output: &'a ReturnType,
}

impl Method<'_> {
    pub fn ident(&self) -> &Ident {
        &self.original.sig.ident
    }

    /// The single argument's type, with one `&` removed for `#[apply]` (`&PostPublished`).
    pub fn message_type(&self) -> Option<&Type> {
        let [argument] = self.arguments.as_slice() else {
            return None;
        };
        match (self.role, argument) {
            (Role::Apply, Type::Reference(reference)) if reference.mutability.is_none() => {
                Some(&reference.elem)
            }
            (Role::Apply, _) => None,
            (Role::Handle, Type::Reference(_)) => None,
            (Role::Handle, other) => Some(other),
        }
    }

    /// The type's last path segment, which names its enum variant: `events::PostPublished` -> `PostPublished`.
    pub fn message_ident(&self) -> Option<&Ident> {
        type_ident(self.message_type()?)
    }

    /// For `#[handle]`: the `Ok` type inside `Result<Ok, Err>`.
    pub fn ok_type(&self) -> Option<&Type> {
        let ReturnType::Type(_, ty) = self.output else {
            return None;
        };
        let Type::Path(path) = &**ty else { return None };
        let last = path.path.segments.last()?;
        if !last.ident.to_string().ends_with("Result") {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        match args.args.first()? {
            GenericArgument::Type(ok) => Some(ok),
            _ => None,
        }
    }

    /// For `#[handle]`: what the `Ok` type is, for choosing a conversion.
    pub fn emitted(&self) -> Emitted<'_> {
        let Some(ok) = self.ok_type() else {
            return Emitted::Unknown;
        };
        match ok {
            Type::Tuple(tuple) if tuple.elems.is_empty() => Emitted::Nothing,
            Type::Tuple(tuple) => Emitted::Tuple(tuple.elems.iter().collect()),
            Type::Path(path) => {
                let Some(last) = path.path.segments.last() else {
                    return Emitted::Unknown;
                };
                if last.ident == "Vec" {
                    Emitted::Many
                } else if last.ident == "Option" {
                    match &last.arguments {
                        PathArguments::AngleBracketed(args) => match args.args.first() {
                            Some(GenericArgument::Type(inner)) => Emitted::Optional(inner),
                            _ => Emitted::Unknown,
                        },
                        _ => Emitted::Unknown,
                    }
                } else {
                    Emitted::One(ok)
                }
            }
            _ => Emitted::Unknown,
        }
    }
}

/// The shape of a handler's `Ok` type.
pub enum Emitted<'a> {
    /// `Result<PostPublished, _>`: one event.
    One(&'a Type),
    /// `Result<Option<PostPublished>, _>`: zero or one event.
    Optional(&'a Type),
    /// `Result<(A, B), _>`: one event of each type.
    Tuple(Vec<&'a Type>),
    /// `Result<Vec<PostEvent>, _>`: any events of the aggregate.
    Many,
    /// `Result<(), _>`: nothing.
    Nothing,
    /// Not a shape the macro recognizes.
    Unknown,
}

impl Emitted<'_> {
    /// Event types the macro can see, to check each has an `#[apply]`.
    pub fn visible_events(&self) -> Vec<&Type> {
        match self {
            Emitted::One(ty) | Emitted::Optional(ty) => vec![ty],
            Emitted::Tuple(types) => types.clone(),
            _ => Vec::new(),
        }
    }
}

impl<'a> AggregateImpl<'a> {
    pub fn from_ast(cx: &Ctxt, item: &'a ItemImpl) -> Option<Self> {
        if let Some((_, trait_path, _)) = &item.trait_ {
            cx.error_spanned_by(
                trait_path,
                "`#[aggregate]` goes on the aggregate's own impl block (`impl Post { ... }`), not on a trait impl",
            );
            return None;
        }
        let Some(self_ident) = type_ident(&item.self_ty) else {
            cx.error_spanned_by(
                &item.self_ty,
                "`#[aggregate]` needs an impl block of a named struct, e.g. `impl Post { ... }`",
            );
            return None;
        };
        let mut handlers = Vec::new();
        let mut appliers = Vec::new();
        for impl_item in &item.items {
            let ImplItem::Fn(function) = impl_item else {
                continue;
            };
            let roles: Vec<(Role, &Attribute)> = function
                .attrs
                .iter()
                .filter_map(|a| {
                    if attr::is(a, HANDLE) {
                        Some((Role::Handle, a))
                    } else if attr::is(a, APPLY) {
                        Some((Role::Apply, a))
                    } else {
                        None
                    }
                })
                .collect();
            let (role, role_attribute) = match roles.as_slice() {
                [] => continue,
                [only] => *only,
                [first, second, ..] => {
                    cx.error_spanned_by(
                        second.1,
                        format!(
                            "method `{}` has both `{}` and `{}`; a method either handles a command or applies an event",
                            function.sig.ident,
                            first.0.attribute(),
                            second.0.attribute()
                        ),
                    );
                    continue;
                }
            };
            if let syn::Meta::List(list) = &role_attribute.meta {
                cx.error_spanned_by(
                    list,
                    format!(
                        "`{}` takes no arguments: the method's signature says everything",
                        role.attribute()
                    ),
                );
            }
            let method = Method {
                original: function,
                role,
                receiver: receiver(function),
                arguments: function
                    .sig
                    .inputs
                    .iter()
                    .filter_map(|arg| match arg {
                        FnArg::Typed(typed) => Some(&*typed.ty),
                        FnArg::Receiver(_) => None,
                    })
                    .collect(),
                output: &function.sig.output,
            };
            match role {
                Role::Handle => handlers.push(method),
                Role::Apply => appliers.push(method),
            }
        }
        Some(AggregateImpl {
            original: item,
            self_ident,
            handlers,
            appliers,
        })
    }
}

fn receiver(function: &ImplItemFn) -> Receiver {
    match function.sig.receiver() {
        None => Receiver::Missing,
        Some(receiver) if receiver.reference.is_none() => Receiver::Value,
        Some(receiver) if receiver.mutability.is_some() => Receiver::RefMut,
        Some(_) => Receiver::Ref,
    }
}

/// The span to blame for a method's argument list.
pub fn arguments_span(function: &ImplItemFn) -> Span {
    function.sig.paren_token.span.join()
}

pub fn output_span(function: &ImplItemFn) -> Span {
    match &function.sig.output {
        ReturnType::Default => function.sig.paren_token.span.close(),
        ReturnType::Type(_, ty) => ty.span(),
    }
}
