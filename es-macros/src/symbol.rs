//! The keywords of every attribute this crate reads, in one place.

use std::fmt::{self, Display};

use syn::{Ident, Path};

#[derive(Copy, Clone, Debug)]
pub struct Symbol(pub &'static str);

// #[aggregate(...)] on a struct
pub const NAME: Symbol = Symbol("name");
pub const ID: Symbol = Symbol("id");
pub const ERROR: Symbol = Symbol("error");
pub const SNAPSHOT_EVERY: Symbol = Symbol("snapshot_every");
pub const SERVICES: Symbol = Symbol("services");
// #[aggregate(...)] on an impl block
pub const EVENTS: Symbol = Symbol("events");
pub const COMMANDS: Symbol = Symbol("commands");
// #[event(...)]
pub const EVENT: Symbol = Symbol("event");
pub const VERSION: Symbol = Symbol("version");
pub const UPCAST: Symbol = Symbol("upcast");
pub const FROM: Symbol = Symbol("from");
pub const WITH: Symbol = Symbol("with");
// method attributes
pub const HANDLE: Symbol = Symbol("handle");
pub const APPLY: Symbol = Symbol("apply");
pub const ON: Symbol = Symbol("on");
// #[projection(...)] on a struct
pub const INDEX: Symbol = Symbol("index");
pub const ON_FAILURE: Symbol = Symbol("on_failure");
pub const PER_STREAM: Symbol = Symbol("per_stream");
pub const INLINE: Symbol = Symbol("inline");

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}
