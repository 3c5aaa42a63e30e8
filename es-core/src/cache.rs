//! A bounded cache of recently used aggregates, so the next command on a hot aggregate runs
//! without reading anything.
//!
//! Safe with other writers: a cached copy is only ever used together with an append that
//! expects its version, so a stale copy makes that append conflict; the copy is then dropped
//! and the command retried on a fresh load. Commands take the state out of its entry while
//! they run, so two tasks never share one copy.
//!
//! Entries stay in the map while their state is out, so a hit costs one lookup to take and one
//! to put back, with no allocation. Recency is a tick per entry; when the cache grows past
//! its capacity, the least recently used tenth is evicted in one pass, so eviction is cheap
//! on average even under churn.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use foldhash::fast::RandomState;

use crate::stream::StreamId;

struct Entry<A> {
    /// `None` while a command has it out.
    state: Option<A>,
    version: u64,
    last_used: u64,
}

struct Lru<A> {
    entries: HashMap<StreamId, Entry<A>, RandomState>,
    tick: u64,
}

/// Keeps up to `capacity` aggregates, evicting the least recently used.
pub struct AggregateCache<A> {
    capacity: usize,
    inner: Mutex<Lru<A>>,
}

impl<A> std::fmt::Debug for AggregateCache<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl<A> AggregateCache<A> {
    /// A cache holding at most `capacity` aggregates.
    pub(crate) fn new(capacity: usize) -> Self {
        AggregateCache {
            capacity,
            inner: Mutex::new(Lru {
                entries: HashMap::default(),
                tick: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<A>> {
        // Every critical section below leaves the map consistent before anything can panic,
        // so a poisoned lock still guards valid data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the cached state of a stream and its version out of the cache.
    pub(crate) fn take(&self, stream: &StreamId) -> Option<(A, u64)> {
        let mut lru = self.lock();
        let entry = lru.entries.get_mut(stream)?;
        let state = entry.state.take()?;
        Some((state, entry.version))
    }

    /// Caches the state of a stream at `version`, evicting the least recently used beyond capacity.
    pub(crate) fn put(&self, stream: &StreamId, state: A, version: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(entry) = lru.entries.get_mut(stream) {
            *entry = Entry {
                state: Some(state),
                version,
                last_used: tick,
            };
            return;
        }
        lru.entries.insert(
            stream.clone(),
            Entry {
                state: Some(state),
                version,
                last_used: tick,
            },
        );
        if lru.entries.len() > self.capacity {
            let keep = self.capacity - self.capacity / 10;
            evict_down_to(&mut lru.entries, keep);
        }
    }

    /// Forgets a stream.
    pub(crate) fn remove(&self, stream: &StreamId) {
        self.lock().entries.remove(stream);
    }

    /// How many aggregates are cached (including any a command has out).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most aggregates this cache keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Removes the least recently used entries until `keep` remain.
fn evict_down_to<A>(entries: &mut HashMap<StreamId, Entry<A>, RandomState>, keep: usize) {
    let mut ticks: Vec<u64> = entries.values().map(|entry| entry.last_used).collect();
    let excess = ticks.len().saturating_sub(keep);
    if excess == 0 {
        return;
    }
    // The tick below which entries go: the excess-th smallest.
    let (_, &mut threshold, _) = ticks.select_nth_unstable(excess - 1);
    entries.retain(|_, entry| entry.last_used > threshold);
}

#[cfg(test)]
mod tests {
    use super::AggregateCache;
    use crate::stream::StreamId;

    fn s(id: &str) -> StreamId {
        StreamId::new("test", id).unwrap()
    }

    #[test]
    fn evicts_the_least_recently_used_beyond_capacity() {
        let cache = AggregateCache::new(2);
        cache.put(&s("a"), 1, 1);
        cache.put(&s("b"), 2, 1);
        let (state, _) = cache.take(&s("a")).unwrap_or_default();
        cache.put(&s("a"), state, 2); // "a" is now the most recent
        cache.put(&s("c"), 3, 1);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.take(&s("b")), None);
        assert_eq!(cache.take(&s("a")), Some((1, 2)));
        assert_eq!(cache.take(&s("c")), Some((3, 1)));
    }

    #[test]
    fn a_taken_state_is_not_handed_out_twice() {
        let cache = AggregateCache::new(4);
        cache.put(&s("a"), 1, 1);
        assert_eq!(cache.take(&s("a")), Some((1, 1)));
        assert_eq!(cache.take(&s("a")), None);
        cache.put(&s("a"), 2, 2);
        assert_eq!(cache.take(&s("a")), Some((2, 2)));
    }

    #[test]
    fn stays_within_capacity_under_churn() {
        let cache = AggregateCache::new(100);
        for n in 0..10_000 {
            cache.put(&s(&format!("s{n}")), n, 1);
            assert!(cache.len() <= 100);
        }
        assert_eq!(cache.take(&s("s9999")), Some((9999, 1)));
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let cache = AggregateCache::new(0);
        cache.put(&s("a"), 1, 1);
        assert!(cache.is_empty());
    }
}
