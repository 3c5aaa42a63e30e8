//! Code generation for `#[aggregate]`, from the checked model only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::ItemImpl;

use super::ast::{misspelt_role, AggregateImpl, Declaration, Emitted, Method};
use crate::impl_block;
use crate::symbol::{APPLY, HANDLE};
use crate::types::assert_implements;

/// The struct's half: the item and its `AggregateDecl`. Also the fallback after an error in
/// the attribute (with stand-in types), so the impl block does not add errors of its own.
pub fn declaration(declaration: &Declaration) -> TokenStream {
    let item = declaration.original;
    let ident = declaration.ident;
    let (impl_generics, ty_generics, where_clause) = declaration.generics.split_for_impl();
    let name = &declaration.name;
    let id = &declaration.id;
    let error = &declaration.error;
    let services = &declaration.services;
    let snapshot_every = match declaration.snapshot_every {
        Some(every) => quote!(::core::option::Option::Some(#every)),
        None => quote!(::core::option::Option::None),
    };
    // Asserted once each, at the user's types, with messages that say what is missing; the
    // `Aggregate` impl assumes them under `for<'__es>` instead of checking them again.
    let id_assertion = assert_implements(id.span(), id, quote!(::es_core::AggregateId));
    let error_assertion = assert_implements(error.span(), error, quote!(::es_core::DomainError));
    let services_assertion = assert_implements(
        services.span(),
        services,
        quote!(::es_core::__private::AggregateServices),
    );
    let fingerprint = state_fingerprint(declaration);
    let snapshots = if declaration.snapshot_every.is_some() {
        let assertion = assert_implements(
            ident.span(),
            quote!(#ident #ty_generics),
            quote!(::es_core::__private::SnapshotState),
        );
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
        #services_assertion
        #[automatically_derived]
        impl #impl_generics ::es_core::__private::AggregateDecl for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            const SNAPSHOT_EVERY: ::core::option::Option<u64> = #snapshot_every;
            const STATE_FINGERPRINT: &'static str = #fingerprint;
            type Id = #id;
            type Error = #error;
            type Services = #services;
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

/// The user's impl block without our method attributes (and misspellings of them, already
/// reported), which are not real attributes.
fn stripped_impl(original: &ItemImpl) -> ItemImpl {
    impl_block::strip_method_attributes(original, |attribute| {
        attribute.path() == HANDLE
            || attribute.path() == APPLY
            || misspelt_role(attribute).is_some()
    })
}

/// The event and command enums with their `From` impls: everything other code names directly.
fn enums(aggregate: &AggregateImpl) -> TokenStream {
    let self_ident = aggregate.self_ident;
    let event_enum = &aggregate.event_enum;
    let command_enum = &aggregate.command_enum;
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
    let enums = enums(aggregate);
    quote!(#item #enums)
}

pub fn aggregate_impl(aggregate: &AggregateImpl) -> TokenStream {
    let item = stripped_impl(aggregate.original);
    let enums = enums(aggregate);
    let self_ty = &aggregate.original.self_ty;
    let event_enum = &aggregate.event_enum;
    let command_enum = &aggregate.command_enum;

    let event_variants = variants(&aggregate.appliers);
    let event_types: Vec<_> = event_variants.iter().map(|(_, ty)| *ty).collect();
    let event_idents: Vec<_> = event_variants.iter().map(|(variant, _)| *variant).collect();

    // Each `#[apply]` type is asserted to be a derived event once, at its span. The trait impls
    // below assume `Event` and the struct's declaration under `for<'__es>` rather than
    // checking them again, so a mistake there (an event without serde, an id type without
    // `Display`, a missing struct attribute) is one error, reported where it was made.
    let event_assertions = event_types
        .iter()
        .map(|ty| assert_implements(ty.span(), ty, quote!(::es_core::__private::EventDecl)));
    let declared_assertion = assert_implements(
        self_ty.span(),
        self_ty,
        quote!(::es_core::__private::AggregateDecl),
    );
    let command_assertions = aggregate
        .handlers
        .iter()
        .filter_map(|m| m.message_type())
        .map(|ty| assert_implements(ty.span(), ty, quote!(::es_core::Command)));
    let unique_names = unique_name_assertions(aggregate, &event_variants);

    let apply_arms = aggregate.appliers.iter().filter_map(|method| {
        let variant = method.message_ident()?;
        let function = method.ident();
        Some(quote!(#event_enum::#variant(ref event) => self.#function(event),))
    });
    let decl = quote!(<#self_ty as ::es_core::__private::AggregateDecl>);
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
        // The context goes only to handlers that ask for it, typed as they wrote it: a
        // services type other than the struct's is reported at their argument.
        let call = match method.context() {
            Some(argument) => {
                let (services, span) = match argument.services {
                    Some(services) => (quote!(#services), services.span()),
                    None => (quote!(()), argument.original.span()),
                };
                // Every token at the user's type, so that is where a mismatch is reported.
                let context = quote_spanned! {span=>
                    <<Self as ::es_core::Aggregate>::Services as ::es_core::__private::ServicesAre<#services>>::context(context)
                };
                quote!(self.#function(command, #context))
            }
            None => quote!(self.#function(command)),
        };
        Some(quote! {
            #command_enum::#variant(command) => ::core::result::Result::map_err(
                ::core::result::Result::map(#call, #into_events),
                #convert_error,
            ),
        })
    });

    quote! {
        #item
        #enums

        #[automatically_derived]
        impl ::es_core::EventSet for #event_enum
        where
            #(for<'__es> #event_types: ::es_core::Event,)*
        {
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
        impl ::es_core::Aggregate for #self_ty
        where
            for<'__es> #self_ty: ::es_core::__private::AggregateDecl,
            for<'__es> #decl::Id: ::es_core::AggregateId,
            for<'__es> #decl::Error: ::es_core::DomainError,
            for<'__es> #decl::Services: ::core::marker::Send + ::core::marker::Sync + 'static,
            for<'__es> #event_enum: ::es_core::EventSet,
        {
            const NAME: &'static str = #decl::NAME;
            const SNAPSHOT_EVERY: ::core::option::Option<u64> = #decl::SNAPSHOT_EVERY;
            const STATE_FINGERPRINT: &'static str = #decl::STATE_FINGERPRINT;
            type Id = #decl::Id;
            type Event = #event_enum;
            type Command = #command_enum;
            type Error = #decl::Error;
            type Services = #decl::Services;

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
                context: &::es_core::Context<'_, #decl::Services>,
            ) -> ::core::result::Result<::std::vec::Vec<#event_enum>, <Self as ::es_core::Aggregate>::Error> {
                let _ = context; // when no handler takes it
                match command { #(#handle_arms)* }
            }
        }

        #declared_assertion
        const _: () = {
            #(#event_assertions)*
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
                    <#first as ::es_core::__private::EventDecl>::NAME,
                    <#second as ::es_core::__private::EventDecl>::NAME,
                ) {
                    ::core::panic!(#message)
                };
            });
        }
    }
    assertions
}
