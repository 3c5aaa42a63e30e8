//! Collects every error of one macro call so the user sees all mistakes in one build.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Error collector. Must be finished with [`Ctxt::check`]; dropping it unchecked is a bug in
/// this crate, caught by the panic in `Drop` (like serde's `Ctxt`).
pub struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error at the span of `tokens`.
    pub fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error at `span`.
    pub fn error_at<M: Display>(&self, span: proc_macro2::Span, message: M) {
        self.syn_error(syn::Error::new(span, message));
    }

    pub fn syn_error(&self, error: syn::Error) {
        if let Some(errors) = self.errors.borrow_mut().as_mut() {
            errors.push(error);
        }
    }

    /// Consumes the collector: `Err` with all errors combined, if any.
    pub fn check(self) -> Result<(), syn::Error> {
        let errors = self.errors.borrow_mut().take().unwrap_or_default();
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for rest in errors {
            combined.combine(rest);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            #[allow(clippy::panic)] // a bug in this crate, not in the user's code
            {
                panic!("es-macros: Ctxt dropped without check()");
            }
        }
    }
}

/// The output after errors: the compile errors plus whatever keeps the user's code compiling.
pub fn with_fallback(error: syn::Error, fallback: TokenStream) -> TokenStream {
    let errors = error.to_compile_error();
    quote::quote! { #errors #fallback }
}

/// The output of an impl-block macro: the expansion when the model is sound; otherwise the
/// errors next to `fallback` (or next to the untouched item when no model could be built).
pub fn finish<M>(
    cx: Ctxt,
    model: Option<M>,
    item: &impl quote::ToTokens,
    expand: impl FnOnce(&M) -> TokenStream,
    fallback: impl FnOnce(&M) -> TokenStream,
) -> TokenStream {
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand(&model),
        (Err(error), Some(model)) => with_fallback(error, fallback(&model)),
        (Err(error), None) => with_fallback(error, quote::quote!(#item)),
        (Ok(()), None) => quote::quote!(#item),
    }
}
