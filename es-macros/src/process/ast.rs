//! The model of a process manager: its declaration and its `#[on]` handlers.

use proc_macro2::TokenStream;
use syn::parse::Parser as _;
use syn::{Ident, ImplItemFn, ItemImpl, ItemStruct, LitStr, Type};

use crate::attr::{self, Once};
use crate::ctxt::Ctxt;
use crate::impl_block;
use crate::naming::snake_case;
use crate::symbol::{NAME, ON};
use crate::types::{generic_argument_of, type_ident};

/// `#[process_manager(name = "draft_janitor")]` on a struct.
pub struct Declaration<'a> {
    pub original: &'a ItemStruct,
    pub name: String,
    /// The `name = "..."` literal, for errors about it.
    pub name_literal: Option<LitStr>,
}

impl<'a> Declaration<'a> {
    pub fn from_ast(cx: &Ctxt, args: TokenStream, item: &'a ItemStruct) -> Self {
        let mut name: Once<LitStr> = Once::new("process_manager", NAME);
        let parser = syn::meta::parser(|meta| {
            if meta.path == NAME {
                // name = "draft_janitor"
                let value = attr::parse_lit_str(&meta)?;
                name.set(cx, &meta.path, value);
            } else {
                return Err(attr::unknown_key(&meta, "process_manager", &[NAME]));
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
        }
        let name_literal = name.get();
        Declaration {
            original: item,
            name: name_literal
                .as_ref()
                .map_or_else(|| snake_case(&item.ident.to_string()), LitStr::value),
            name_literal,
        }
    }
}

/// `#[process_manager] impl DraftJanitor { ... }`.
pub struct ManagerImpl<'a> {
    pub original: &'a ItemImpl,
    pub self_ident: &'a Ident,
    pub handlers: Vec<Handler<'a>>,
}

/// One `#[on]` method as written.
pub struct Handler<'a> {
    pub original: &'a ImplItemFn,
    /// `&self`.
    pub shared_receiver: bool,
    pub arguments: Vec<&'a Type>,
}

/// What a handler receives first.
pub enum Input<'a> {
    /// `&Envelope<DraftStarted>`.
    Envelope(&'a Type),
    /// `&DraftStarted`.
    Event(&'a Type),
    /// `&Deadline<DraftStale>`: one of its own deadlines, come due.
    Deadline(&'a Type),
}

impl<'a> Input<'a> {
    pub fn message(&self) -> &'a Type {
        match self {
            Input::Envelope(ty) | Input::Event(ty) | Input::Deadline(ty) => ty,
        }
    }
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
        if let Some(message) = generic_argument_of(inner, "Deadline") {
            return Some(Input::Deadline(message));
        }
        if type_ident(inner).is_some_and(|ident| ident == "Process") {
            return None;
        }
        Some(Input::Event(inner))
    }

    /// `S` of the `&mut Process<'_, S>` argument, if it is the second one.
    pub fn state(&self) -> Option<&'a Type> {
        let Some(Type::Reference(reference)) = self.arguments.get(1) else {
            return None;
        };
        reference.mutability?;
        generic_argument_of(&reference.elem, "Process")
    }

    /// The message type the handler is for, as a key for "one handler per message".
    pub fn message_key(&self) -> Option<String> {
        let input = self.input()?;
        let ty = input.message();
        let kind = if matches!(input, Input::Deadline(_)) {
            "deadline"
        } else {
            "event"
        };
        Some(format!("{kind} `{}`", quote::quote!(#ty)))
    }
}

impl<'a> ManagerImpl<'a> {
    /// The state type: the `Process<'_, S>` of the first handler that names one.
    pub fn state(&self) -> Option<&'a Type> {
        self.handlers.iter().find_map(Handler::state)
    }

    pub fn from_ast(cx: &Ctxt, item: &'a ItemImpl) -> Option<Self> {
        let self_ident = impl_block::self_ident(cx, item, "process_manager")?;
        let handlers = impl_block::methods(item)
            .filter_map(|function| {
                let attribute = function.attrs.iter().find(|a| attr::is(a, ON))?;
                if let syn::Meta::List(list) = &attribute.meta {
                    cx.error_spanned_by(list, "`#[on]` takes no arguments: the handler's first argument type says which event or deadline it handles");
                }
                Some(Handler {
                    original: function,
                    shared_receiver: function.sig.receiver().is_some_and(|receiver| {
                        receiver.reference.is_some() && receiver.mutability.is_none()
                    }),
                    arguments: impl_block::typed_arguments(function),
                })
            })
            .collect();
        Some(ManagerImpl {
            original: item,
            self_ident,
            handlers,
        })
    }
}
