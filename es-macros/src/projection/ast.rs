//! The model of a projection: its declaration and its `#[on]` handlers.

use proc_macro2::TokenStream;
use syn::parse::Parser as _;
use syn::{Ident, ImplItemFn, Item, ItemImpl, LitStr, ReturnType, Type};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::impl_block;
use crate::naming::snake_case;
use crate::symbol::{INDEX, INLINE, NAME, ON, ON_FAILURE, PER_STREAM, VERSION};
use crate::types::{generic_argument_of, type_ident};

/// `#[projection(name = "post_summaries", index(author), per_stream)]` on a struct.
pub struct Declaration<'a> {
    pub original: &'a Item,
    pub ident: &'a Ident,
    pub name: String,
    pub indexes: Vec<Ident>,
    pub version: Option<String>,
    pub skip_failures: bool,
    pub per_stream: bool,
    pub inline: bool,
    pub construction: Construction,
}

/// How the runtime can make the projection without arguments, if it can.
pub enum Construction {
    /// `pub struct PostSummaries;`
    Unit,
    /// `#[derive(Default)]` is on the struct.
    Default,
    /// It holds configuration: added by hand with `Projections::with`.
    ByHand,
}

impl<'a> Declaration<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a Item) -> Option<Self> {
        let (ident, generics, attrs, unit) = match item {
            Item::Struct(s) => (
                &s.ident,
                &s.generics,
                &s.attrs,
                matches!(s.fields, syn::Fields::Unit),
            ),
            _ => return None,
        };
        if !generics.params.is_empty() {
            cx.error_spanned_by(
                generics,
                "a projection cannot be generic: its name files its tables and checkpoint",
            );
        }
        let mut name: Once<LitStr> = Once::new("projection", NAME);
        let mut version: Once<String> = Once::new("projection", VERSION);
        let mut on_failure: Once<Ident> = Once::new("projection", ON_FAILURE);
        let mut indexes = Vec::new();
        let mut per_stream = false;
        let mut inline = false;
        let parser = syn::meta::parser(|meta| {
            if meta.path == NAME {
                // name = "post_summaries"
                let value = attr::parse_lit_str(&meta)?;
                check_name(cx, &value);
                name.set(cx, &meta.path, value);
            } else if meta.path == INDEX {
                // index(author, published)
                meta.parse_nested_meta(|field| {
                    match field.path.get_ident() {
                        Some(ident) => indexes.push(ident.clone()),
                        None => cx.error_spanned_by(
                            &field.path,
                            "an index names one field of the document, e.g. `index(author)`",
                        ),
                    }
                    Ok(())
                })?;
            } else if meta.path == VERSION {
                // version = 2  or  version = "2024-05"
                let value: syn::Lit = meta.value()?.parse()?;
                match &value {
                    syn::Lit::Int(int) => {
                        version.set(cx, &meta.path, int.base10_digits().to_owned())
                    }
                    syn::Lit::Str(text) => version.set(cx, &meta.path, text.value()),
                    other => cx.error_spanned_by(
                        other,
                        "`version` is a number or a string, e.g. `version = 2`",
                    ),
                }
            } else if meta.path == ON_FAILURE {
                // on_failure = stop  or  on_failure = skip
                let value: Ident = meta.value()?.parse()?;
                if value != "stop" && value != "skip" {
                    cx.error_spanned_by(&value, format!("unknown failure policy `{value}`, expected `stop` (halt at the event; the default) or `skip` (set it aside as a dead letter)"));
                }
                on_failure.set(cx, &meta.path, value);
            } else if meta.path == PER_STREAM {
                // per_stream: each document is keyed by one stream's aggregate id
                if per_stream {
                    cx.error_spanned_by(
                        &meta.path,
                        "duplicate `per_stream` in `#[projection]`; give it once",
                    );
                }
                per_stream = true;
            } else if meta.path == INLINE {
                // inline: applied in the append's transaction by the repository
                if inline {
                    cx.error_spanned_by(
                        &meta.path,
                        "duplicate `inline` in `#[projection]`; give it once",
                    );
                }
                inline = true;
            } else {
                return Err(attr::unknown_key(
                    &meta,
                    "projection",
                    &[NAME, INDEX, VERSION, ON_FAILURE, PER_STREAM, INLINE],
                ));
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
        }
        let derives_default = attrs.iter().any(|attribute| {
            attribute.path().is_ident("derive")
                && attribute
                    .parse_args_with(
                        syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
                    )
                    .is_ok_and(|paths| paths.iter().any(|path| type_path_is(path, "Default")))
        });
        let name = name.get();
        Some(Declaration {
            original: item,
            ident,
            name: name.map_or_else(|| snake_case(&ident.to_string()), |n| n.value()),
            indexes,
            version: version.get(),
            skip_failures: on_failure.get().is_some_and(|policy| policy == "skip"),
            per_stream,
            inline,
            construction: if unit {
                Construction::Unit
            } else if derives_default {
                Construction::Default
            } else {
                Construction::ByHand
            },
        })
    }
}

fn type_path_is(path: &syn::Path, name: &str) -> bool {
    path.segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

/// Projection names become table names: lowercase identifiers only.
fn check_name(cx: &Ctxt, value: &LitStr) {
    let text = value.value();
    let valid = !text.is_empty()
        && text.len() <= 40
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        cx.error_spanned_by(
            value,
            format!("projection name `{text}` must be 1 to 40 lowercase letters, digits and `_`, starting with a letter (it names tables), e.g. `name = \"post_summaries\"`"),
        );
    }
}

/// `#[projection] impl PostSummaries { ... }`.
pub struct ProjectionImpl<'a> {
    pub original: &'a ItemImpl,
    pub self_ident: &'a Ident,
    pub handlers: Vec<Handler<'a>>,
}

/// One `#[on]` method as written.
pub struct Handler<'a> {
    pub original: &'a ImplItemFn,
    pub receiver: Receiver,
    pub arguments: Vec<&'a Type>,
}

/// How a handler takes `self`.
#[derive(PartialEq, Eq)]
pub enum Receiver {
    /// `&self`: the projection's configuration, read only.
    Shared,
    /// `&mut self`, `self` or none at all.
    Other,
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
        let Some(Type::Reference(reference)) = self.arguments.first() else {
            return None;
        };
        if reference.mutability.is_some() {
            return None;
        }
        let inner: &'a Type = &reference.elem;
        if let Some(event) = generic_argument_of(inner, "Envelope") {
            return Some(Input::Envelope(event));
        }
        if type_ident(inner).is_some_and(|ident| ident == "Docs") {
            return None;
        }
        Some(Input::Event(inner))
    }

    /// `D` of the `&mut Docs<D>` argument, if it is the second one.
    pub fn document(&self) -> Option<&'a Type> {
        let Some(Type::Reference(reference)) = self.arguments.get(1) else {
            return None;
        };
        reference.mutability?;
        generic_argument_of(&reference.elem, "Docs")
    }

    pub fn event_type(&self) -> Option<&'a Type> {
        match self.input()? {
            Input::Envelope(ty) | Input::Event(ty) => Some(ty),
        }
    }

    /// The event type the first argument names, however it is taken (for messages).
    pub fn named_event_type(&self) -> Option<&'a Type> {
        if let Some(event) = self.event_type() {
            return Some(event);
        }
        let first = self.arguments.first()?;
        let inner = match first {
            Type::Reference(reference) => &*reference.elem,
            other => other,
        };
        generic_argument_of(inner, "Envelope").or(Some(inner))
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
    /// The document type: the `Docs<D>` of the first handler that names one.
    pub fn document(&self) -> Option<&'a Type> {
        self.handlers.iter().find_map(Handler::document)
    }

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
                    receiver: match function.sig.receiver() {
                        Some(receiver)
                            if receiver.reference.is_some() && receiver.mutability.is_none() =>
                        {
                            Receiver::Shared
                        }
                        _ => Receiver::Other,
                    },
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
