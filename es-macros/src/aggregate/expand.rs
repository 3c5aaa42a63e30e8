//! Code generation for `#[aggregate]`, from the checked model only.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{ImplItem, ItemImpl};

use super::ast::{AggregateImpl, Declaration, Emitted, Method};
use crate::symbol::{APPLY, HANDLE};

pub fn declaration(declaration: &Declaration) -> TokenStream {
    let item = declaration.original;
    let ident = declaration.ident;
    let (impl_generics, ty_generics, where_clause) = declaration.generics.split_for_impl();
    let name = &declaration.name;
    let id = &declaration.id;
    let error = &declaration.error;
    let snapshot_every = match declaration.snapshot_every {
        Some(every) => quote!(::core::option::Option::Some(#every)),
        None => quote!(::core::option::Option::None),
    };
    // Asserted once at the user's types, with messages that say what is missing; the impl
    // repeats the bounds under `for<'__es>`, which rustc assumes instead of checking again.
    let id_assertion = quote_spanned!(id.span()=> const _: () = ::es_core::__private::assert_aggregate_id::<#id>(););
    let error_assertion = quote_spanned!(error.span()=> const _: () = ::es_core::__private::assert_domain_error::<#error>(););
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    where_clause
        .predicates
        .push(syn::parse_quote!(for<'__es> #id: ::es_core::AggregateId));
    where_clause
        .predicates
        .push(syn::parse_quote!(for<'__es> #error: ::es_core::DomainError));
    let id_type = quote!(type Id = #id;);
    let error_type = quote!(type Error = #error;);
    let fingerprint = state_fingerprint(declaration);
    let snapshots = if declaration.snapshot_every.is_some() {
        let assertion = quote_spanned!(ident.span()=> const _: () = ::es_core::__private::assert_snapshot_state::<#ident #ty_generics>(););
        quote! {
            fn snapshot_state(&self) -> ::core::option::Option<::core::result::Result<::es_core::Payload, ::es_core::__private::serde_json::Error>> {
                #assertion
                ::core::option::Option::Some(::es_core::__private::encode_state(self))
            }
            fn restore_state(state: &::es_core::Payload) -> ::core::option::Option<::core::result::Result<Self, ::es_core::__private::serde_json::Error>> {
                ::core::option::Option::Some(::es_core::__private::decode_state(state))
            }
        }
    } else {
        quote! {
            fn snapshot_state(&self) -> ::core::option::Option<::core::result::Result<::es_core::Payload, ::es_core::__private::serde_json::Error>> {
                ::core::option::Option::None
            }
            fn restore_state(_: &::es_core::Payload) -> ::core::option::Option<::core::result::Result<Self, ::es_core::__private::serde_json::Error>> {
                ::core::option::Option::None
            }
        }
    };
    quote! {
        #item
        #id_assertion
        #error_assertion
        #[automatically_derived]
        impl #impl_generics ::es_core::__private::AggregateDecl for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            const SNAPSHOT_EVERY: ::core::option::Option<u64> = #snapshot_every;
            const STATE_FINGERPRINT: &'static str = #fingerprint;
            #id_type
            #error_type
            #snapshots
        }
    }
}

/// A name for the state's shape: the type name and a hash of its fields as written. Any edit
/// to the struct's fields changes it, so snapshots of the old shape are ignored, never misread.
fn state_fingerprint(declaration: &Declaration) -> String {
    let fields = match declaration.original {
        syn::Item::Struct(item) => {
            let fields = &item.fields;
            quote!(#fields).to_string()
        }
        syn::Item::Enum(item) => {
            let variants = &item.variants;
            quote!(#variants).to_string()
        }
        _ => String::new(),
    };
    // FNV-1a: stable across builds and platforms, unlike `std`'s `DefaultHasher`.
    let hash = fields
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{}:{hash:016x}", declaration.ident)
}

/// The user's impl block without our helper attributes, which are not real attributes.
fn stripped_impl(original: &ItemImpl) -> ItemImpl {
    let mut item = original.clone();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(function) = impl_item {
            function
                .attrs
                .retain(|a| !(a.path() == HANDLE || a.path() == APPLY));
        }
    }
    item
}

struct Names {
    event_enum: syn::Ident,
    command_enum: syn::Ident,
}

fn names(aggregate: &AggregateImpl) -> Names {
    Names {
        event_enum: format_ident!("{}Event", aggregate.self_ident),
        command_enum: format_ident!("{}Command", aggregate.self_ident),
    }
}

/// The event and command enums with their `From` impls: everything other code names directly.
fn enums(aggregate: &AggregateImpl, names: &Names) -> TokenStream {
    let self_ident = aggregate.self_ident;
    let Names {
        event_enum,
        command_enum,
    } = names;
    let event_variants = variants(&aggregate.appliers);
    let command_variants = variants(&aggregate.handlers);
    let event_variant_defs = event_variants.iter().map(|(variant, ty)| {
        let doc = format!("`{variant}`: see the event type.");
        quote!(#[doc = #doc] #variant(#ty),)
    });
    let command_variant_defs = command_variants.iter().map(|(variant, ty)| {
        let doc = format!("`{variant}`: see the command type.");
        quote!(#[doc = #doc] #variant(#ty),)
    });
    let event_from = event_variants.iter().map(|(variant, ty)| {
        quote! {
            #[automatically_derived]
            impl ::core::convert::From<#ty> for #event_enum {
                fn from(event: #ty) -> Self { #event_enum::#variant(event) }
            }
        }
    });
    let command_from = command_variants.iter().map(|(variant, ty)| {
        quote! {
            #[automatically_derived]
            impl ::core::convert::From<#ty> for #command_enum {
                fn from(command: #ty) -> Self { #command_enum::#variant(command) }
            }
        }
    });
    let event_doc = format!("Every event `{self_ident}` applies; generated by `#[aggregate]` from its `#[apply]` methods.");
    let command_doc = format!("Every command `{self_ident}` handles; generated by `#[aggregate]` from its `#[handle]` methods.");
    quote! {
        #[doc = #event_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #[allow(private_interfaces)]
        pub enum #event_enum { #(#event_variant_defs)* }
        #(#event_from)*

        #[doc = #command_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #[allow(private_interfaces)]
        pub enum #command_enum { #(#command_variant_defs)* }
        #(#command_from)*
    }
}

/// One variant per message type; duplicates (already reported by `check`) are skipped so the
/// fallback enums stay valid.
fn variants<'a>(methods: &'a [Method<'a>]) -> Vec<(&'a syn::Ident, &'a syn::Type)> {
    let mut seen = std::collections::BTreeSet::new();
    methods
        .iter()
        .filter_map(|m| Some((m.message_ident()?, m.message_type()?)))
        .filter(|(ident, _)| seen.insert(ident.to_string()))
        .collect()
}

/// After an error: the user's impl block and the enums, so code using them keeps compiling.
pub fn fallback(aggregate: &AggregateImpl) -> TokenStream {
    let item = stripped_impl(aggregate.original);
    let enums = enums(aggregate, &names(aggregate));
    quote!(#item #enums)
}

pub fn aggregate_impl(aggregate: &AggregateImpl) -> TokenStream {
    let item = stripped_impl(aggregate.original);
    let names = names(aggregate);
    let enums = enums(aggregate, &names);
    let self_ty = &aggregate.original.self_ty;
    let Names {
        event_enum,
        command_enum,
    } = &names;

    let event_variants = variants(&aggregate.appliers);
    let event_types: Vec<_> = event_variants.iter().map(|(_, ty)| *ty).collect();
    let event_idents: Vec<_> = event_variants.iter().map(|(variant, _)| *variant).collect();

    let command_assertions = aggregate
        .handlers
        .iter()
        .filter_map(|m| m.message_type())
        .map(|ty| {
            quote_spanned! {ty.span()=>
                const _: () = ::es_core::__private::assert_command::<#ty>();
            }
        });
    let unique_names = unique_name_assertions(aggregate, &event_variants);

    let apply_arms = aggregate.appliers.iter().filter_map(|method| {
        let variant = method.message_ident()?;
        let function = method.ident();
        Some(quote!(#event_enum::#variant(ref event) => self.#function(event),))
    });
    let handle_arms = aggregate.handlers.iter().filter_map(|method| {
        let variant = method.message_ident()?;
        let function = method.ident();
        let into_events = match method.emitted() {
            Emitted::One(_) => {
                quote!(|event| ::std::vec![::core::convert::Into::<#event_enum>::into(event)])
            }
            _ => quote!(::es_core::__private::IntoEvents::<#event_enum>::into_events),
        };
        let output_span = match &method.original.sig.output {
            syn::ReturnType::Type(_, ty) => ty.span(),
            syn::ReturnType::Default => function.span(),
        };
        let convert_error = quote_spanned!(output_span=> ::core::convert::Into::into);
        Some(quote! {
            #command_enum::#variant(command) => ::core::result::Result::map_err(
                ::core::result::Result::map(self.#function(command), #into_events),
                #convert_error,
            ),
        })
    });

    let decl = quote!(<#self_ty as ::es_core::__private::AggregateDecl>);
    quote! {
        #item
        #enums

        #[automatically_derived]
        impl ::es_core::EventSet for #event_enum {
            const EVENT_NAMES: &'static [&'static str] = &[#(<#event_types as ::es_core::Event>::NAME),*];

            fn event_name(&self) -> &'static str {
                match *self { #(#event_enum::#event_idents(_) => <#event_types as ::es_core::Event>::NAME,)* }
            }

            fn schema_version(&self) -> u32 {
                match *self { #(#event_enum::#event_idents(_) => <#event_types as ::es_core::Event>::VERSION,)* }
            }

            fn encode(&self) -> ::core::result::Result<::es_core::Payload, ::es_core::__private::serde_json::Error> {
                match self { #(#event_enum::#event_idents(event) => ::es_core::Payload::encode(event),)* }
            }

            fn decode(
                event_name: &str,
                schema_version: u32,
                payload: &::es_core::Payload,
            ) -> ::core::result::Result<Self, ::es_core::DecodeFailure> {
                #(
                    if event_name == <#event_types as ::es_core::Event>::NAME {
                        return ::core::result::Result::map(
                            <#event_types as ::es_core::Event>::decode(schema_version, payload),
                            #event_enum::#event_idents,
                        );
                    }
                )*
                let _ = (schema_version, payload);
                ::core::result::Result::Err(::es_core::__private::unknown_event(Self::EVENT_NAMES))
            }
        }

        #[automatically_derived]
        impl ::es_core::Aggregate for #self_ty {
            const NAME: &'static str = #decl::NAME;
            const SNAPSHOT_EVERY: ::core::option::Option<u64> = #decl::SNAPSHOT_EVERY;
            const STATE_FINGERPRINT: &'static str = #decl::STATE_FINGERPRINT;
            type Id = #decl::Id;
            type Event = #event_enum;
            type Command = #command_enum;
            type Error = #decl::Error;

            fn snapshot_state(&self) -> ::core::option::Option<::core::result::Result<::es_core::Payload, ::es_core::__private::serde_json::Error>> {
                #decl::snapshot_state(self)
            }

            fn restore_state(state: &::es_core::Payload) -> ::core::option::Option<::core::result::Result<Self, ::es_core::__private::serde_json::Error>> {
                #decl::restore_state(state)
            }

            fn apply(&mut self, event: &#event_enum) {
                match *event { #(#apply_arms)* }
            }

            fn handle(
                &self,
                command: #command_enum,
            ) -> ::core::result::Result<::std::vec::Vec<#event_enum>, <Self as ::es_core::Aggregate>::Error> {
                match command { #(#handle_arms)* }
            }
        }

        impl #self_ty {
            /// Starts a given/when/then test: the aggregate after these past events.
            #[allow(dead_code)]
            pub fn given(
                history: impl ::core::iter::IntoIterator<Item = #event_enum>,
            ) -> ::es_core::Given<#self_ty> {
                ::es_core::Given::new(history)
            }
        }

        const _: () = {
            #(#command_assertions)*
            #(#unique_names)*
        };
    }
}

/// Two events of one aggregate stored under one name could not be told apart on load. Names
/// live in other items' attributes, so the comparison runs in const evaluation.
fn unique_name_assertions(
    aggregate: &AggregateImpl,
    events: &[(&syn::Ident, &syn::Type)],
) -> Vec<TokenStream> {
    let mut assertions = Vec::new();
    for (index, (second_ident, second)) in events.iter().enumerate() {
        for (first_ident, first) in &events[..index] {
            let message = format!(
                "events `{first_ident}` and `{second_ident}` of aggregate `{}` are stored under the same name; give one of them another `#[event(name = \"...\")]`",
                aggregate.self_ident
            );
            assertions.push(quote_spanned! {second.span()=>
                const _: () = if ::es_core::__private::same_str(
                    <#first as ::es_core::Event>::NAME,
                    <#second as ::es_core::Event>::NAME,
                ) {
                    ::core::panic!(#message)
                };
            });
        }
    }
    assertions
}
