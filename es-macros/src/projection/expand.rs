//! Code generation for `#[projection]`, from the checked model only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::ItemImpl;

use super::ast::{Construction, Declaration, Input, ProjectionImpl};
use crate::impl_block;
use crate::symbol::ON;
use crate::types::assert_implements;

pub fn declaration(declaration: &Declaration) -> TokenStream {
    let item = declaration.original;
    let ident = declaration.ident;
    let name = &declaration.name;
    let indexes = declaration.indexes.iter().map(ToString::to_string);
    let version = match &declaration.version {
        Some(version) => quote!(::core::option::Option::Some(#version)),
        None => quote!(::core::option::Option::None),
    };
    let on_failure = if declaration.skip_failures {
        quote!(::es_core::OnFailure::Skip)
    } else {
        quote!(::es_core::OnFailure::Stop)
    };
    let per_stream = declaration.per_stream;
    let inline = declaration.inline;
    let create = match declaration.construction {
        Construction::Unit => Some(quote!(#ident)),
        Construction::Default => Some(quote!(<#ident as ::core::default::Default>::default())),
        Construction::ByHand => None,
    };
    let registration = create.map(|create| {
        quote! {
            const _: () = {
                fn create() -> ::std::sync::Arc<dyn ::es_core::__private::ErasedProjection> {
                    ::es_core::__private::registered::<#ident>(|| #create)
                }
                ::es_core::__private::inventory::submit! {
                    ::es_core::__private::ProjectionRegistration::new(#name, create)
                }
            };
        }
    });
    quote! {
        #item
        #[automatically_derived]
        impl ::es_core::__private::ProjectionDecl for #ident {
            const NAME: &'static str = #name;
            const INDEXES: &'static [&'static str] = &[#(#indexes),*];
            const DECLARED_VERSION: ::core::option::Option<&'static str> = #version;
            const ON_FAILURE: ::es_core::OnFailure = #on_failure;
            const PER_STREAM: bool = #per_stream;
            const INLINE: bool = #inline;
        }
        #registration
    }
}

/// After an error in the declaration: the struct and a stand-in declaration, so its impl
/// block does not add "`#[projection]` is missing on the struct" on top.
pub fn declaration_fallback(declaration: &Declaration) -> TokenStream {
    let item = declaration.original;
    let ident = declaration.ident;
    let name = &declaration.name;
    quote! {
        #item
        impl ::es_core::__private::ProjectionDecl for #ident {
            const NAME: &'static str = #name;
            const INDEXES: &'static [&'static str] = &[];
            const DECLARED_VERSION: ::core::option::Option<&'static str> = ::core::option::Option::None;
            const ON_FAILURE: ::es_core::OnFailure = ::es_core::OnFailure::Stop;
            const PER_STREAM: bool = true;
            const INLINE: bool = false;
        }
    }
}

/// The user's impl block without `#[on]`, which is not a real attribute.
fn stripped_impl(original: &ItemImpl) -> ItemImpl {
    impl_block::strip_method_attributes(original, |attribute| attribute.path() == ON)
}

/// After an error: the user's impl block and a `Projection` impl that handles no event, so
/// the struct's registration does not add "`Projection` is not implemented" on top.
pub fn fallback(projection: &ProjectionImpl) -> TokenStream {
    let item = stripped_impl(projection.original);
    let self_ty = &projection.original.self_ty;
    let document = document_type(projection);
    quote! {
        #item
        impl ::es_core::Projection for #self_ty {
            type Document = #document;
            const NAME: &'static str = <#self_ty as ::es_core::__private::ProjectionDecl>::NAME;
            const VERSION: &'static str = "";
            const EVENTS: &'static [&'static str] = &[];
            fn apply(
                &self,
                _: &::es_core::RecordedEvent,
                _: &mut ::es_core::Docs<Self::Document>,
            ) -> ::core::result::Result<(), ::es_core::ProjectionError> {
                ::core::result::Result::Ok(())
            }
        }
    }
}

pub fn projection_impl(projection: &ProjectionImpl) -> TokenStream {
    let item = stripped_impl(projection.original);
    let self_ty = &projection.original.self_ty;
    let decl = quote!(<#self_ty as ::es_core::__private::ProjectionDecl>);
    let name = quote!(#decl::NAME);
    let document = document_type(projection);
    // The struct's half is asserted once, at the impl's type; the impl assumes it under
    // `for<'__es>`, so a missing `#[projection(...)]` on the struct is one error, not many.
    let declared = assert_implements(
        self_ty.span(),
        self_ty,
        quote!(::es_core::__private::ProjectionDecl),
    );
    let event_types: Vec<_> = projection
        .handlers
        .iter()
        .filter_map(|handler| handler.event_type())
        .collect();
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
                self.#function(#argument, docs).map_err(|error| {
                    ::es_core::__private::projection_handler_error(#name, recorded, error)
                })?;
            }
        } else {
            quote!(self.#function(#argument, docs);)
        };
        Some(quote! {
            if *recorded.event_name == *<#event_type as ::es_core::Event>::NAME {
                let event = ::es_core::__private::decode_for_projection::<#event_type>(#name, recorded)?;
                #call
                return ::core::result::Result::Ok(());
            }
        })
    });
    let fingerprint = fingerprint(projection);
    let handles_rollback = projection.handlers.iter().any(|handler| {
        handler
            .event_ident()
            .is_some_and(|ident| ident == "RolledBack")
    });
    let self_ident = projection.self_ident;
    let rollback_message = format!(
        "projection `{self_ident}` builds documents across streams but has no `#[on]` handler for `RolledBack`, so a rollback would leave its documents showing rolled-back events; add `#[on] fn rolled_back(&self, event: &Envelope<RolledBack>, docs: &mut Docs<...>)`, or declare `#[projection(per_stream)]` if each document is built from one stream's events (the runtime then rebuilds it after a rollback)"
    );
    let rollback_check = (!handles_rollback).then(|| {
        quote_spanned! {self_ty.span()=>
            const _: () = ::core::assert!(#decl::PER_STREAM, #rollback_message);
        }
    });
    quote! {
        #item
        #declared
        #rollback_check
        #[automatically_derived]
        impl ::es_core::Projection for #self_ty
        where
            for<'__es> #self_ty: ::es_core::__private::ProjectionDecl,
        {
            type Document = #document;
            const NAME: &'static str = #name;
            const VERSION: &'static str = match #decl::DECLARED_VERSION {
                ::core::option::Option::Some(version) => version,
                ::core::option::Option::None => #fingerprint,
            };
            const EVENTS: &'static [&'static str] = &[#(<#event_types as ::es_core::Event>::NAME),*];
            const INDEXES: &'static [&'static str] = #decl::INDEXES;
            const ON_FAILURE: ::es_core::OnFailure = #decl::ON_FAILURE;
            const PER_STREAM: bool = #decl::PER_STREAM;
            const INLINE: bool = #decl::INLINE;

            fn apply(
                &self,
                recorded: &::es_core::RecordedEvent,
                docs: &mut ::es_core::Docs<Self::Document>,
            ) -> ::core::result::Result<(), ::es_core::ProjectionError> {
                #(#arms)*
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// The document type, as the handlers' `Docs<D>` name it (`()` when none does: an error
/// has been reported).
fn document_type(projection: &ProjectionImpl) -> TokenStream {
    match projection.document() {
        Some(document) => quote!(#document),
        None => quote!(()),
    }
}

/// A version for projections that declare none: a hash of the handlers as written (their
/// events, document type and bodies, as tokens, so formatting and comments do not count).
/// Changing what a handler computes therefore rebuilds the projection by itself.
fn fingerprint(projection: &ProjectionImpl) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for handler in &projection.handlers {
        let tokens = handler.original.to_token_stream().to_string();
        for byte in tokens.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("fp-{hash:016x}")
}
