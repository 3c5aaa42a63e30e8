//! The model of a projection: its declaration and its `#[on]` handlers.

use proc_macro2::TokenStream;
use syn::parse::Parser as _;
use syn::{
    GenericArgument, Ident, ImplItemFn, Item, ItemImpl, LitStr, PathArguments, ReturnType, Type,
};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::impl_block;
use crate::naming::snake_case;
use crate::symbol::{NAME, ON};
use crate::types::type_ident;

/// `#[projection(name = "published_posts")]` on a struct.
pub struct Declaration<'a> {
    pub original: &'a Item,
    pub ident: &'a Ident,
    pub name: String,
}

impl<'a> Declaration<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a Item) -> Option<Self> {
        let (ident, generics) = match item {
            Item::Struct(s) => (&s.ident, &s.generics),
            Item::Enum(e) => (&e.ident, &e.generics),
            _ => return None,
        };
        if !generics.params.is_empty() {
            cx.error_spanned_by(
                generics,
                "a projection cannot be generic: the runtime creates it by name with `Default`",
            );
        }
        let mut name: Once<LitStr> = Once::new("projection", NAME);
        let parser = syn::meta::parser(|meta| {
            if meta.path == NAME {
                // name = "published_posts"
                let value = attr::parse_name(cx, &meta, "a projection's name", "published_posts")?;
                name.set(cx, &meta.path, value);
            } else {
                return Err(attr::unknown_key(&meta, "projection", &[NAME]));
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
        }
        Some(Declaration {
            original: item,
            ident,
            name: name
                .get()
                .map_or_else(|| snake_case(&ident.to_string()), |n| n.value()),
        })
    }
}

/// `#[projection] impl PublishedPosts { ... }`.
pub struct ProjectionImpl<'a> {
    pub original: &'a ItemImpl,
    pub self_ident: &'a Ident,
    pub handlers: Vec<Handler<'a>>,
}

/// One `#[on]` method as written.
pub struct Handler<'a> {
    pub original: &'a ImplItemFn,
    pub takes_mut_self: bool,
    pub arguments: Vec<&'a Type>,
}

/// What an `#[on]` handler receives.
pub enum Input<'a> {
    /// `&Envelope<PostPublished>`: the event with its stream, version, position and metadata.
    Envelope(&'a Type),
    /// `&PostPublished`: the event alone.
    Event(&'a Type),
}

impl<'a> Handler<'a> {
    pub fn ident(&self) -> &Ident {
        &self.original.sig.ident
    }

    pub fn input(&self) -> Option<Input<'a>> {
        let [Type::Reference(reference)] = self.arguments.as_slice() else {
            return None;
        };
        if reference.mutability.is_some() {
            return None;
        }
        let inner: &'a Type = &reference.elem;
        if let Type::Path(path) = inner {
            if let Some(last) = path.path.segments.last() {
                if last.ident == "Envelope" {
                    if let PathArguments::AngleBracketed(args) = &last.arguments {
                        if let Some(GenericArgument::Type(event)) = args.args.first() {
                            return Some(Input::Envelope(event));
                        }
                    }
                    return None;
                }
            }
        }
        Some(Input::Event(inner))
    }

    pub fn event_type(&self) -> Option<&'a Type> {
        match self.input()? {
            Input::Envelope(ty) | Input::Event(ty) => Some(ty),
        }
    }

    pub fn event_ident(&self) -> Option<&'a Ident> {
        type_ident(self.event_type()?)
    }

    /// `-> Result<(), E>` (failures are reported with the event's position) rather than `()`.
    pub fn returns_result(&self) -> bool {
        match &self.original.sig.output {
            ReturnType::Default => false,
            ReturnType::Type(_, ty) => {
                type_ident(ty).is_some_and(|i| i.to_string().ends_with("Result"))
            }
        }
    }
}

impl<'a> ProjectionImpl<'a> {
    pub fn from_ast(cx: &Ctxt, item: &'a ItemImpl) -> Option<Self> {
        let self_ident = impl_block::self_ident(cx, item, "projection")?;
        let handlers = impl_block::methods(item)
            .filter_map(|function| {
                let attribute = function.attrs.iter().find(|a| attr::is(a, ON))?;
                if let syn::Meta::List(list) = &attribute.meta {
                    cx.error_spanned_by(list, "`#[on]` takes no arguments: the handler's argument type says which event it handles");
                }
                Some(Handler {
                    original: function,
                    takes_mut_self: function
                        .sig
                        .receiver()
                        .is_some_and(|r| r.reference.is_some() && r.mutability.is_some()),
                    arguments: impl_block::typed_arguments(function),
                })
            })
            .collect();
        Some(ProjectionImpl {
            original: item,
            self_ident,
            handlers,
        })
    }
}
