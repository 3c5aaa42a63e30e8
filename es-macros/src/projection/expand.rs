//! Code generation for `#[projection]`, from the checked model only.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemImpl;

use super::ast::{Declaration, Input, ProjectionImpl};
use crate::impl_block;
use crate::symbol::ON;

pub fn declaration(declaration: &Declaration) -> TokenStream {
    let item = declaration.original;
    let ident = declaration.ident;
    let name = &declaration.name;
    quote! {
        #item
        #[automatically_derived]
        impl ::es_core::__private::ProjectionDecl for #ident {
            const NAME: &'static str = #name;
        }
        ::es_core::__private::inventory::submit! {
            ::es_core::__private::ProjectionRegistration::new(
                #name,
                ::es_core::__private::boxed_projection::<#ident>,
            )
        }
    }
}

/// The user's impl block without `#[on]`, which is not a real attribute.
fn stripped_impl(original: &ItemImpl) -> ItemImpl {
    impl_block::strip_method_attributes(original, |attribute| attribute.path() == ON)
}

/// After an error: the user's impl block and a `Projection` impl that ignores every event, so
/// the struct's registration does not add "`Projection` is not implemented" on top.
pub fn fallback(projection: &ProjectionImpl) -> TokenStream {
    let item = stripped_impl(projection.original);
    let self_ty = &projection.original.self_ty;
    quote! {
        #item
        impl ::es_core::Projection for #self_ty {
            fn name(&self) -> &'static str {
                <#self_ty as ::es_core::__private::ProjectionDecl>::NAME
            }
            fn apply(&mut self, _: &::es_core::RecordedEvent) -> ::core::result::Result<(), ::es_core::ProjectionError> {
                ::core::result::Result::Ok(())
            }
        }
    }
}

pub fn projection_impl(projection: &ProjectionImpl) -> TokenStream {
    let item = stripped_impl(projection.original);
    let self_ty = &projection.original.self_ty;
    let name = quote!(<#self_ty as ::es_core::__private::ProjectionDecl>::NAME);
    let arms = projection.handlers.iter().filter_map(|handler| {
        let input = handler.input()?;
        let function = handler.ident();
        let event_type = handler.event_type()?;
        let argument = match input {
            Input::Envelope(_) => quote!(&recorded.with_event(event)),
            Input::Event(_) => quote!(&event),
        };
        let call = if handler.returns_result() {
            quote! {
                self.#function(#argument).map_err(|error| {
                    ::es_core::__private::projection_handler_error(#name, recorded, error)
                })?;
            }
        } else {
            quote!(self.#function(#argument);)
        };
        Some(quote! {
            if recorded.event_name == <#event_type as ::es_core::Event>::NAME {
                let event = ::es_core::__private::decode_for_projection::<#event_type>(#name, recorded)?;
                #call
                return ::core::result::Result::Ok(());
            }
        })
    });
    quote! {
        #item
        #[automatically_derived]
        impl ::es_core::Projection for #self_ty {
            fn name(&self) -> &'static str {
                #name
            }

            fn apply(
                &mut self,
                recorded: &::es_core::RecordedEvent,
            ) -> ::core::result::Result<(), ::es_core::ProjectionError> {
                #(#arms)*
                ::core::result::Result::Ok(())
            }
        }
    }
}
