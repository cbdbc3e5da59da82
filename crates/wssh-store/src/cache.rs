//! Values read from the store, kept in memory while nothing stored has changed.
//!
//! A store counts its committed changes ([`ChangeCounter::generation`]). A cached value
//! remembers the generation it was read at and is served only while the store is still at that
//! generation, so a change made through the store (a revoked token, a disabled user, a renamed
//! session) is seen by the very next request. Changes written by another process do not move
//! the counter; they are seen once an entry's time to live has passed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts the changes a store has committed.
pub trait ChangeCounter: Send + Sync {
    /// A number that changes every time this store commits a change to what it holds (and,
    /// erring on the safe side, when a change is rolled back). Read it
    /// *before* reading the values a cache will keep: a change committed in between then
    /// leaves the entry stale at once.
    fn generation(&self) -> u64;
}

struct Entry<V> {
    value: V,
    read_at: Instant,
}

/// The entries, all read at one generation: a newer one makes every older entry useless.
struct Entries<K, V> {
    generation: u64,
    map: HashMap<K, Entry<V>>,
}

/// A bounded map of values derived from the store, each valid while the store's generation is
/// the one it was read at, and for at most `ttl`.
pub struct StoreCache<K, V> {
    entries: Mutex<Entries<K, V>>,
    capacity: usize,
    ttl: Duration,
}

impl<K, V> std::fmt::Debug for StoreCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCache").field("capacity", &self.capacity).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V: Clone> StoreCache<K, V> {
    /// An empty cache of at most `capacity` entries, each kept at most `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let entries = Entries { generation: 0, map: HashMap::new() };
        StoreCache { entries: Mutex::new(entries), capacity: capacity.max(1), ttl }
    }

    /// The value kept for `key`, if it was read at `generation` less than the time to live ago.
    pub fn get(&self, key: &K, generation: u64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.generation != generation {
            return None;
        }
        let entry = entries.map.get(key)?;
        (entry.read_at.elapsed() < self.ttl).then(|| entry.value.clone())
    }

    /// Keeps `value` for `key`, read from the store at `generation` (taken before the read).
    /// A full cache is emptied first: entries are cheap to read again, and a bound matters
    /// more than which ones survive.
    pub fn insert(&self, key: K, value: V, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A value read before a change that others have already seen is dead on arrival.
        if generation < entries.generation {
            return;
        }
        if generation > entries.generation || entries.map.len() >= self.capacity {
            entries.map.clear();
            entries.generation = generation;
        }
        entries.map.insert(key, Entry { value, read_at: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_only_at_its_generation_and_within_its_time_to_live() {
        let cache = StoreCache::new(8, Duration::from_millis(200));
        cache.insert("a", 1, 7);
        assert_eq!(cache.get(&"a", 7), Some(1));
        assert_eq!(cache.get(&"a", 8), None);
        assert_eq!(cache.get(&"b", 7), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(cache.get(&"a", 7), None);
    }

    #[test]
    fn a_full_cache_starts_over_and_old_generations_are_dropped() {
        let cache = StoreCache::new(2, Duration::from_secs(60));
        cache.insert(1, "one", 1);
        cache.insert(2, "two", 1);
        cache.insert(3, "three", 1);
        assert_eq!(cache.get(&3, 1), Some("three"));
        assert_eq!(cache.get(&1, 1), None);
        cache.insert(4, "four", 2);
        assert_eq!(cache.get(&3, 1), None);
        assert_eq!(cache.get(&4, 2), Some("four"));
        // A late reader of generation 1 neither evicts generation 2 nor gets kept.
        cache.insert(5, "five", 1);
        assert_eq!(cache.get(&4, 2), Some("four"));
        assert_eq!(cache.get(&5, 1), None);
    }
}
