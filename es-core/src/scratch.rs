//! A per-thread buffer that text is rendered into before it is copied into its shared
//! `Arc<str>`: one allocation per value instead of a growing buffer and then a copy.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A buffer [`with_scratch`] can reuse.
pub(crate) trait Scratch: Default {
    fn clear(&mut self);
    fn capacity(&self) -> usize;
}

impl Scratch for String {
    fn clear(&mut self) {
        String::clear(self);
    }

    fn capacity(&self) -> usize {
        String::capacity(self)
    }
}

impl Scratch for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self);
    }

    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
}

/// Runs `work` on this thread's `buffer`, emptied. A buffer grown past `keep` bytes is
/// dropped afterwards, so one outlier does not pin its size for the thread's life.
pub(crate) fn with_scratch<B: Scratch, R>(
    buffer: &'static LocalKey<RefCell<B>>,
    keep: usize,
    work: impl FnOnce(&mut B) -> R,
) -> R {
    buffer.with(|cell| match cell.try_borrow_mut() {
        Ok(mut reused) => {
            reused.clear();
            let result = work(&mut reused);
            if reused.capacity() > keep {
                *reused = B::default();
            }
            result
        }
        // Work that renders another value into the same buffer while using it (a `Display`
        // or `Serialize` impl that makes a stream id or a payload): it gets a fresh one.
        Err(_) => work(&mut B::default()),
    })
}
