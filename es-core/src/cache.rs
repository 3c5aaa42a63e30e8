//! A bounded cache of recently used aggregates, so the next command on a hot aggregate runs
//! without reading anything.
//!
//! Safe with other writers: a cached copy is only ever used together with an append that
//! expects its version, so a stale copy makes that append conflict; the copy is then dropped
//! and the command retried on a fresh load. Commands are taken out of the cache while they
//! run, so two tasks never share one copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::fast::RandomState;

struct Entry<A> {
    state: A,
    version: u64,
    last_used: u64,
}

struct Lru<A> {
    /// Keys are shared with `order`, so an entry costs one key allocation, not two.
    entries: HashMap<Arc<str>, Entry<A>, RandomState>,
    /// `last_used` tick -> stream, oldest first.
    order: BTreeMap<u64, Arc<str>>,
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
    pub fn new(capacity: usize) -> Self {
        AggregateCache {
            capacity,
            inner: Mutex::new(Lru {
                entries: HashMap::default(),
                order: BTreeMap::new(),
                tick: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<A>> {
        // Every critical section below leaves the two maps consistent before anything can
        // panic, so a poisoned lock still guards valid data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes and returns the cached state of a stream and its version.
    pub fn take(&self, stream_id: &str) -> Option<(A, u64)> {
        let mut lru = self.lock();
        let entry = lru.entries.remove(stream_id)?;
        lru.order.remove(&entry.last_used);
        Some((entry.state, entry.version))
    }

    /// Caches the state of a stream at `version`, evicting the least recently used beyond capacity.
    pub fn put(&self, stream_id: &str, state: A, version: u64) {
        if self.capacity == 0 {
            return;
        }
        let key: Arc<str> = Arc::from(stream_id);
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(old) = lru.entries.insert(
            Arc::clone(&key),
            Entry {
                state,
                version,
                last_used: tick,
            },
        ) {
            lru.order.remove(&old.last_used);
        }
        lru.order.insert(tick, key);
        while lru.entries.len() > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            lru.entries.remove(&oldest);
        }
    }

    /// Forgets a stream.
    pub fn remove(&self, stream_id: &str) {
        let _ = self.take(stream_id);
    }

    /// How many aggregates are cached.
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

#[cfg(test)]
mod tests {
    use super::AggregateCache;

    #[test]
    fn evicts_the_least_recently_used_beyond_capacity() {
        let cache = AggregateCache::new(2);
        cache.put("a", 1, 1);
        cache.put("b", 2, 1);
        let (state, _) = cache.take("a").unwrap_or_default();
        cache.put("a", state, 2); // "a" is now the most recent
        cache.put("c", 3, 1);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.take("b"), None);
        assert_eq!(cache.take("a"), Some((1, 2)));
        assert_eq!(cache.take("c"), Some((3, 1)));
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let cache = AggregateCache::new(0);
        cache.put("a", 1, 1);
        assert!(cache.is_empty());
    }
}
