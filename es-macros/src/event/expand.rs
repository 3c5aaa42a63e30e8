//! Code generation for `#[derive(Event)]`, from the checked model only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::ast::Event;
use crate::types::{assert_implements, where_clause_with};

pub fn event(event: &Event) -> TokenStream {
    let ident = &event.original.ident;
    let generics = &event.original.generics;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let name = &event.name;
    let version = event.version;
    let upcasters = event.upcasters.iter().map(|upcaster| {
        let from = upcaster.from;
        let function = &upcaster.function;
        quote_spanned! {syn::spanned::Spanned::span(function)=>
            #from => #function(payload),
        }
    });
    // Serde's traits are asserted once, at the type's name, with a message that says what to
    // derive. The `Event` impl repeats the bound under a higher-ranked `for<'__es>`, which
    // rustc assumes rather than checks, and `#[aggregate]` reaches the event through
    // `EventDecl`, which holds regardless: so a missing derive is one error, not one per use.
    let storable = if generics.params.is_empty() {
        assert_implements(ident.span(), ident, quote!(::es_core::StorableEvent))
    } else {
        TokenStream::new()
    };
    let event_where = where_clause_with(
        generics,
        [syn::parse_quote!(for<'__es> #ident #ty_generics: ::es_core::StorableEvent)],
    );
    quote! {
        #storable
        #[automatically_derived]
        impl #impl_generics ::es_core::__private::EventDecl for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
        }
        #[automatically_derived]
        impl #impl_generics ::es_core::Event for #ident #ty_generics #event_where {
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;

            fn upcast(
                stored_version: u32,
                payload: ::es_core::__private::serde_json::Value,
            ) -> ::core::result::Result<::es_core::__private::serde_json::Value, ::es_core::UpcastError> {
                #[allow(unreachable_patterns)]
                match stored_version {
                    #(#upcasters)*
                    _ => {
                        let _ = payload;
                        ::core::result::Result::Err(::es_core::UpcastError::NoUpcaster { from: stored_version })
                    }
                }
            }
        }
    }
}
