//! Hot copies held by one replica: a small map whose entries live at most `ttl`, so a lost
//! invalidation message costs bounded staleness, never unbounded.
//!
//! Loads race with invalidations: a reader that looked at the database before a change must
//! not store what it read after the change evicted the entry. So every eviction bumps a
//! generation, and [`HotMap::insert_if`] stores only if no eviction happened since
//! [`HotMap::generation`] was read (before the database read).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub struct HotMap<K, V> {
    inner: RwLock<Inner<K, V>>,
    ttl: Duration,
    max_entries: usize,
}

struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    generation: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> HotMap<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        HotMap {
            inner: RwLock::new(Inner {
                entries: HashMap::new(),
                generation: 0,
            }),
            ttl,
            max_entries: max_entries.max(1),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| v.clone())
    }

    /// The value and whether it is still fresh (a stale value may be revalidated and kept
    /// with [`HotMap::renew_if`] rather than reloaded).
    pub fn lookup(&self, key: &K) -> Option<(V, bool)> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(key)
            .map(|(expires, v)| (v.clone(), *expires > Instant::now()))
    }

    /// Makes an entry fresh for another `ttl`, unless something was evicted since
    /// `generation` was read.
    pub fn renew_if(&self, generation: u64, key: &K) {
        let now = Instant::now();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if inner.generation != generation {
            return;
        }
        if let Some(entry) = inner.entries.get_mut(key) {
            entry.0 = now.checked_add(self.ttl).unwrap_or(now);
        }
    }

    /// The eviction count; read it before loading what [`HotMap::insert_if`] will store.
    pub fn generation(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// Stores `value` unless something was evicted since `generation` was read.
    pub fn insert_if(&self, generation: u64, key: K, value: V) {
        let now = Instant::now();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= self.max_entries {
            inner.entries.retain(|_, (expires, _)| *expires > now);
            // Still full: drop one entry rather than everything.
            if inner.entries.len() >= self.max_entries
                && let Some(victim) = inner.entries.keys().next().cloned()
            {
                inner.entries.remove(&victim);
            }
        }
        let expires = now.checked_add(self.ttl).unwrap_or(now);
        inner.entries.insert(key, (expires, value));
    }

    pub fn remove(&self, key: &K) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.generation += 1;
        inner.entries.remove(key);
    }

    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.generation += 1;
        inner.entries.retain(|k, (_, v)| keep(k, v));
    }

    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.generation += 1;
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_older_than_an_eviction_is_not_stored() {
        let map: HotMap<&str, i32> = HotMap::new(Duration::from_secs(60), 10);
        let before = map.generation();
        map.remove(&"k");
        map.insert_if(before, "k", 1);
        assert_eq!(map.get(&"k"), None);
        map.insert_if(map.generation(), "k", 2);
        assert_eq!(map.get(&"k"), Some(2));
    }

    #[test]
    fn a_full_map_drops_one_entry_not_all() {
        let map: HotMap<i32, i32> = HotMap::new(Duration::from_secs(60), 3);
        for i in 0..4 {
            map.insert_if(map.generation(), i, i);
        }
        assert_eq!((0..4).filter(|i| map.get(i).is_some()).count(), 3);
    }
}
