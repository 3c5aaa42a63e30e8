//! `#[derive(Event)]`: model (`ast`), check (`check`), expand (here).

mod ast;
mod check;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::DeriveInput;

use crate::ctxt::{with_fallback, Ctxt};

pub fn expand(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = ast::Event::from_ast(&cx, input);
    check::check(&cx, &model);
    match cx.check() {
        Ok(()) => generate(&model),
        // Still implement the trait with what could be read, so code using the event does not
        // drown the real error in "`X` is not an event" follow-ons.
        Err(error) => with_fallback(error, generate(&model)),
    }
}

fn generate(event: &ast::Event) -> TokenStream {
    let ident = &event.original.ident;
    let (impl_generics, ty_generics, where_clause) = event.original.generics.split_for_impl();
    let name = &event.name;
    let version = event.version;
    let upcasters = event.upcasters.iter().map(|upcaster| {
        let from = upcaster.from;
        let function = &upcaster.function;
        quote_spanned! {function.span()=>
            #from => #function(payload),
        }
    });
    // The bound is asserted once, at the type's name, with a message that says what to derive.
    // The impl repeats it under a higher-ranked `for<'__es>`, which rustc treats as an
    // assumption rather than checking it again, so the mistake is reported once, not thrice.
    let storable = quote_spanned! {ident.span()=>
        const _: () = ::es_core::__private::assert_storable_event::<#ident #ty_generics>();
    };
    let storable = if event.original.generics.params.is_empty() {
        storable
    } else {
        TokenStream::new()
    };
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause
        .predicates
        .push(syn::parse_quote!(for<'__es> #ident #ty_generics: ::es_core::StorableEvent));
    quote! {
        #storable
        #[automatically_derived]
        impl #impl_generics ::es_core::Event for #ident #ty_generics #where_clause {
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

use syn::spanned::Spanned as _;
