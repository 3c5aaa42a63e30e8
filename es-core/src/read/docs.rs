//! `Docs<D>`: the documents a projection handler reads and writes while a batch is applied.
//!
//! Handlers are plain synchronous functions, yet documents live in a database. The runtime
//! bridges the two optimistically: it runs a batch's handlers against the documents it has
//! loaded so far; a handler that touches a key not yet loaded is noted as a miss, and when a
//! pass had misses, its results are thrown away, the missing documents are loaded in one
//! query, and the batch runs again. Handlers are deterministic, so the last pass (the one
//! without misses) is exactly what applying the events one by one would have done, while the
//! database sees one bulk read per round instead of one query per event.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

/// The documents of one projection, keyed by string, as a handler sees them.
///
/// ```
/// # use es_core::Docs;
/// # #[derive(Clone, Default, Debug, PartialEq)] struct Summary { title: String, comments: u32 }
/// # fn demo(docs: &mut Docs<Summary>) {
/// docs.upsert("post-1", |summary| summary.comments += 1); // creates it from `Default` if absent
/// if let Some(summary) = docs.get("post-1") {
///     println!("{} has {} comments", summary.title, summary.comments);
/// }
/// docs.delete("post-2");
/// # }
/// ```
#[derive(Debug)]
pub struct Docs<D> {
    slots: HashMap<String, Slot<D>>,
    /// Keys a handler asked for that were not loaded: the pass must be run again.
    missing: RefCell<BTreeSet<String>>,
    /// Every document there is, is here: a key not loaded is absent, not missing.
    complete: bool,
}

#[derive(Debug, Clone)]
struct Slot<D> {
    /// The document, or `None` when there is none under this key.
    doc: Option<D>,
    /// Whether a handler changed it in this pass.
    changed: bool,
}

impl<D: Clone + Default> Docs<D> {
    /// A working set that knows the documents in `loaded` (`None`: known to be absent).
    pub(crate) fn new(loaded: &HashMap<String, Option<D>>) -> Self {
        Docs {
            slots: loaded
                .iter()
                .map(|(key, doc)| {
                    (
                        key.clone(),
                        Slot {
                            doc: doc.clone(),
                            changed: false,
                        },
                    )
                })
                .collect(),
            missing: RefCell::new(BTreeSet::new()),
            complete: false,
        }
    }

    /// A working set that holds every document there is (none at first), for applying a
    /// projection in memory.
    pub(crate) fn complete() -> Self {
        Docs {
            slots: HashMap::new(),
            missing: RefCell::new(BTreeSet::new()),
            complete: true,
        }
    }

    /// The document under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<&D> {
        match self.slots.get(key) {
            Some(slot) => slot.doc.as_ref(),
            None => {
                if !self.complete {
                    self.missing.borrow_mut().insert(key.to_owned());
                }
                None
            }
        }
    }

    /// Whether there is a document under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Changes the document under `key`, creating it from `D::default()` first if absent.
    pub fn upsert(&mut self, key: &str, change: impl FnOnce(&mut D)) {
        if let Some(slot) = self.loaded_slot(key) {
            change(slot.doc.get_or_insert_with(D::default));
            slot.changed = true;
        }
    }

    /// Changes the document under `key` if there is one; returns whether there was.
    pub fn update(&mut self, key: &str, change: impl FnOnce(&mut D)) -> bool {
        let Some(slot) = self.loaded_slot(key) else {
            return false;
        };
        let Some(doc) = slot.doc.as_mut() else {
            return false;
        };
        change(doc);
        slot.changed = true;
        true
    }

    /// Stores `doc` under `key`, replacing whatever was there.
    pub fn insert(&mut self, key: &str, doc: D) {
        self.slots.insert(
            key.to_owned(),
            Slot {
                doc: Some(doc),
                changed: true,
            },
        );
    }

    /// Removes the document under `key`, if any.
    pub fn delete(&mut self, key: &str) {
        self.slots.insert(
            key.to_owned(),
            Slot {
                doc: None,
                changed: true,
            },
        );
    }

    fn loaded_slot(&mut self, key: &str) -> Option<&mut Slot<D>> {
        if !self.slots.contains_key(key) {
            if !self.complete {
                self.missing.borrow_mut().insert(key.to_owned());
                return None;
            }
            self.slots.insert(
                key.to_owned(),
                Slot {
                    doc: None,
                    changed: false,
                },
            );
        }
        self.slots.get_mut(key)
    }

    /// Every document held, for a working set made by [`complete`](Self::complete).
    pub(crate) fn into_documents(self) -> std::collections::BTreeMap<String, D> {
        self.slots
            .into_iter()
            .filter_map(|(key, slot)| slot.doc.map(|doc| (key, doc)))
            .collect()
    }

    /// The keys handlers asked for that were not loaded.
    pub(crate) fn take_missing(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.missing.borrow_mut())
    }

    /// Every document a handler changed: `Some` to store, `None` to delete.
    pub(crate) fn into_changes(self) -> Vec<(String, Option<D>)> {
        self.slots
            .into_iter()
            .filter(|(_, slot)| slot.changed)
            .map(|(key, slot)| (key, slot.doc))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_not_loaded_is_a_miss_and_changes_nothing() {
        let mut docs: Docs<u32> = Docs::new(&HashMap::new());
        docs.upsert("a", |n| *n += 1);
        assert_eq!(docs.get("b"), None);
        assert_eq!(
            docs.take_missing().into_iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(docs.into_changes().is_empty());
    }

    #[test]
    fn loaded_keys_change_and_report_their_changes() {
        let loaded = HashMap::from([("a".to_owned(), Some(1)), ("b".to_owned(), None)]);
        let mut docs = Docs::new(&loaded);
        docs.upsert("a", |n| *n += 1);
        docs.upsert("b", |n| *n += 5);
        assert!(!docs.update("c", |n| *n += 1), "c is not loaded");
        assert_eq!(docs.take_missing().into_iter().collect::<Vec<_>>(), ["c"]);
        docs.insert("d", 7);
        docs.delete("e");
        let mut changes = docs.into_changes();
        changes.sort();
        assert_eq!(
            changes,
            [
                ("a".to_owned(), Some(2)),
                ("b".to_owned(), Some(5)),
                ("d".to_owned(), Some(7)),
                ("e".to_owned(), None)
            ]
        );
    }
}
