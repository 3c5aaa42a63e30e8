//! `#[derive(Command)]`: a marker with a name, and the assertion that commands can be retried.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::types::assert_implements;

pub fn expand(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let name = ident.to_string();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut errors = TokenStream::new();
    for attribute in input.attrs.iter().filter(|a| a.path().is_ident("command")) {
        errors.extend(
            syn::Error::new_spanned(attribute, "`#[command]` takes no keys yet; remove it")
                .to_compile_error(),
        );
    }
    // Commands are handled again after a lost race, so they must be `Clone`; say so at the type.
    let retryable = if input.generics.params.is_empty() {
        assert_implements(
            ident.span(),
            ident,
            quote!(::es_core::__private::RetryableCommand),
        )
    } else {
        TokenStream::new()
    };
    quote! {
        #errors
        #retryable
        #[automatically_derived]
        impl #impl_generics ::es_core::Command for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
        }
    }
}
