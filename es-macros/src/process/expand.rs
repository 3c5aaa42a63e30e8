//! Code generation for `#[process_manager]`, from the checked model only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemImpl, ReturnType};

use super::ast::{Declaration, Input, ManagerImpl};
use crate::impl_block;
use crate::symbol::ON;
use crate::types::assert_implements;

/// The struct and its declared name. Emitted after errors too: the name has a fallback, so
/// the impl block does not add "`#[process_manager]` is missing on the struct" on top.
pub fn declaration(declaration: &Declaration) -> TokenStream {
    let item = declaration.original;
    let ident = &item.ident;
    let name = &declaration.name;
    quote! {
        #item
        #[automatically_derived]
        impl ::es_core::__private::process::ProcessManagerDecl for #ident {
            const NAME: &'static str = #name;
        }
    }
}

fn stripped_impl(original: &ItemImpl) -> ItemImpl {
    impl_block::strip_method_attributes(original, |attribute| attribute.path() == ON)
}

fn state_type(manager: &ManagerImpl) -> TokenStream {
    match manager.state() {
        Some(state) => quote!(#state),
        None => quote!(()),
    }
}

/// After an error: the user's impl block and a process manager that handles nothing, so code
/// that runs it still compiles.
pub fn fallback(manager: &ManagerImpl) -> TokenStream {
    let item = stripped_impl(manager.original);
    let self_ty = &manager.original.self_ty;
    let state = state_type(manager);
    quote! {
        #item
        impl ::es_core::process::ProcessManager for #self_ty {
            type State = #state;
            const NAME: &'static str = <#self_ty as ::es_core::__private::process::ProcessManagerDecl>::NAME;
            const EVENTS: &'static [&'static str] = &[];
            fn on_event(
                &self,
                _: &::es_core::RecordedEvent,
                _: &mut ::es_core::process::Process<'_, Self::State>,
            ) -> ::core::result::Result<::std::vec::Vec<::es_core::process::Dispatch>, ::es_core::process::ProcessError> {
                ::core::result::Result::Ok(::std::vec::Vec::new())
            }
        }
    }
}

pub fn manager_impl(manager: &ManagerImpl) -> TokenStream {
    let item = stripped_impl(manager.original);
    let self_ty = &manager.original.self_ty;
    let decl = quote!(<#self_ty as ::es_core::__private::process::ProcessManagerDecl>);
    let support = quote!(::es_core::__private::process);
    let state = state_type(manager);
    let declared = assert_implements(
        self_ty.span(),
        self_ty,
        quote!(::es_core::__private::process::ProcessManagerDecl),
    );
    let mut events = Vec::new();
    let mut deadlines = Vec::new();
    let mut event_arms = Vec::new();
    let mut deadline_arms = Vec::new();
    for handler in &manager.handlers {
        let Some(input) = handler.input() else {
            continue;
        };
        let function = handler.ident();
        let message = input.message();
        // The returned value's `IntoDispatches` bound is checked at the user's return type.
        let output_span = match &handler.original.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => function.span(),
        };
        match input {
            Input::Envelope(_) | Input::Event(_) => {
                let argument = if matches!(input, Input::Envelope(_)) {
                    quote!(&recorded.with_event(event))
                } else {
                    quote!(&event)
                };
                let call = quote_spanned! {output_span=>
                    #support::output(Self::NAME, self.#function(#argument, process))
                };
                events.push(message);
                event_arms.push(quote! {
                    if *recorded.event_name == *<#message as ::es_core::Event>::NAME {
                        let event = #support::decode_event::<#message>(Self::NAME, recorded)?;
                        return #call;
                    }
                });
            }
            Input::Deadline(_) => {
                let call = quote_spanned! {output_span=>
                    #support::deadline_output(Self::NAME, &deadline.key, self.#function(&deadline.with_message(message), process))
                };
                deadlines.push(message);
                deadline_arms.push(quote! {
                    if *deadline.name == *<#message as ::es_core::Event>::NAME {
                        let message = #support::decode_deadline::<#message>(Self::NAME, deadline)?;
                        return #call;
                    }
                });
            }
        }
    }
    quote! {
        #item
        #declared
        #[automatically_derived]
        impl ::es_core::process::ProcessManager for #self_ty
        where
            for<'__es> #self_ty: ::es_core::__private::process::ProcessManagerDecl,
        {
            type State = #state;
            const NAME: &'static str = #decl::NAME;
            const EVENTS: &'static [&'static str] = &[#(<#events as ::es_core::Event>::NAME),*];
            const DEADLINES: &'static [&'static str] = &[#(<#deadlines as ::es_core::Event>::NAME),*];

            fn on_event(
                &self,
                recorded: &::es_core::RecordedEvent,
                process: &mut ::es_core::process::Process<'_, Self::State>,
            ) -> ::core::result::Result<::std::vec::Vec<::es_core::process::Dispatch>, ::es_core::process::ProcessError> {
                #(#event_arms)*
                let _ = (recorded, process);
                ::core::result::Result::Ok(::std::vec::Vec::new())
            }

            fn on_deadline(
                &self,
                deadline: &::es_core::process::Deadline<::es_core::Payload>,
                process: &mut ::es_core::process::Process<'_, Self::State>,
            ) -> ::core::result::Result<::std::vec::Vec<::es_core::process::Dispatch>, ::es_core::process::ProcessError> {
                #(#deadline_arms)*
                let _ = (deadline, process);
                ::core::result::Result::Ok(::std::vec::Vec::new())
            }
        }
    }
}
