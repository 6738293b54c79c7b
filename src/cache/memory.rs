//! In-process shared state for a single replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{CacheError, CacheEvent, SharedState};

/// Sweep expired entries every this many writes.
const SWEEP_EVERY: u64 = 1024;
/// Most entries kept (rate-limit counters, replay entries): a flood of distinct keys (random
/// addresses, random client ids) cannot grow the process without bound.
pub const MAX_ENTRIES: usize = 200_000;

/// One stored value.
struct Entry {
    value: Vec<u8>,
    expires: Instant,
    /// Counters may be dropped early to make room (a rate limit restarts its window). Replay
    /// guards and single-use values may not: dropping one would let a replay through, so when
    /// the cache is full of them, writes fail (closed) instead.
    evictable: bool,
}

type Entries = HashMap<String, Entry>;

pub struct MemoryCache {
    entries: Mutex<Entries>,
    channels: Mutex<HashMap<String, broadcast::Sender<CacheEvent>>>,
    writes: AtomicU64,
    max_entries: usize,
    /// Set when a full scan found nothing to drop: until then, writes that need room are
    /// refused without scanning again (the periodic sweep still removes expired entries).
    full_until: Mutex<Option<Instant>>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::bounded(MAX_ENTRIES)
    }
}

impl MemoryCache {
    /// A cache of at most `max_entries` entries.
    pub fn bounded(max_entries: usize) -> MemoryCache {
        MemoryCache {
            entries: Mutex::default(),
            channels: Mutex::default(),
            writes: AtomicU64::new(0),
            max_entries: max_entries.max(8),
            full_until: Mutex::default(),
        }
    }

    /// How many entries are held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for one new key: expired entries go first; if the cache is still full,
    /// the eighth of it closest to expiry among the counters. Never a live replay guard or
    /// single-use value: if only those are left, the write is refused.
    fn make_room(&self, map: &mut Entries, key: &str, now: Instant) -> Result<(), CacheError> {
        if map.len() < self.max_entries || map.contains_key(key) {
            return Ok(());
        }
        let mut full_until = self
            .full_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if full_until.is_some_and(|until| now < until) {
            return Err(CacheError(
                "the in-process cache is full of live single-use entries".into(),
            ));
        }
        map.retain(|_, e| e.expires > now);
        if map.len() < self.max_entries {
            return Ok(());
        }
        let mut expiries: Vec<Instant> = map
            .values()
            .filter(|e| e.evictable)
            .map(|e| e.expires)
            .collect();
        if expiries.is_empty() {
            *full_until = Some(now + Duration::from_secs(1));
            return Err(CacheError(format!(
                "the in-process cache holds {} live single-use entries; refusing to drop any",
                map.len()
            )));
        }
        let cut = (self.max_entries / 8).clamp(1, expiries.len());
        let (_, threshold, _) = expiries.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        let mut evicted = 0;
        map.retain(|_, e| {
            if evicted < cut && e.evictable && e.expires <= threshold {
                evicted += 1;
                false
            } else {
                true
            }
        });
        Ok(())
    }

    fn insert(map: &mut Entries, key: &str, value: &[u8], expires: Instant, evictable: bool) {
        map.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                expires,
                evictable,
            },
        );
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut Entries, Instant) -> T) -> T {
        let now = Instant::now();
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            map.retain(|_, e| e.expires > now);
        }
        f(&mut map, now)
    }

    /// Expired entries are invisible even before a sweep removes them.
    fn live<'a>(map: &'a Entries, key: &str, now: Instant) -> Option<&'a Vec<u8>> {
        map.get(key).filter(|e| e.expires > now).map(|e| &e.value)
    }

    fn sender(&self, channel: &str) -> broadcast::Sender<CacheEvent> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        channels
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(256).0)
            .clone()
    }
}

impl SharedState for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.with_entries(|map, now| Self::live(map, key, now).cloned()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.with_entries(|map, now| {
            self.make_room(map, key, now)?;
            Self::insert(map, key, value, now + ttl, false);
            Ok(())
        })
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        self.with_entries(|map, now| {
            if Self::live(map, key, now).is_some() {
                return Ok(false);
            }
            self.make_room(map, key, now)?;
            Self::insert(map, key, value, now + ttl, false);
            Ok(true)
        })
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self
            .with_entries(|map, now| map.remove(key).filter(|e| e.expires > now).map(|e| e.value)))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.with_entries(|map, now| map.remove(key).is_some_and(|e| e.expires > now)))
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        self.with_entries(|map, now| {
            let current = Self::live(map, key, now)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
            match current {
                Some(n) => {
                    let next = n.saturating_add(1);
                    if let Some(entry) = map.get_mut(key) {
                        entry.value = next.to_string().into_bytes();
                    }
                    Ok(next)
                }
                None => {
                    self.make_room(map, key, now)?;
                    Self::insert(map, key, b"1", now + window, true);
                    Ok(1)
                }
            }
        })
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        // No receivers is not an error: nobody needed the message.
        let _ = self
            .sender(channel)
            .send(CacheEvent::Message(message.to_owned()));
        Ok(())
    }

    async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<broadcast::Receiver<CacheEvent>, CacheError> {
        Ok(self.sender(channel).subscribe())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_of_keys_stays_within_the_bound() {
        let cache = MemoryCache::bounded(1000);
        let window = Duration::from_secs(3600);
        // A counter in use early on, touched again later.
        assert_eq!(cache.increment("rl:victim", window).await.unwrap(), 1);
        for i in 0..20_000 {
            cache
                .increment(&format!("rl:random:{i}"), Duration::from_secs(60))
                .await
                .unwrap();
            assert!(cache.len() <= 1000, "{} entries after {i}", cache.len());
        }
        // Entries closest to expiry went first; the long-lived counter survived.
        assert_eq!(cache.increment("rl:victim", window).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn live_replay_guards_are_never_evicted() {
        let cache = MemoryCache::bounded(100);
        let ttl = Duration::from_secs(300);
        // Replay guards nearest expiry, then a flood of counters expiring later.
        for i in 0..50 {
            assert!(
                cache
                    .set_if_absent(&format!("jti:{i}"), b"1", ttl)
                    .await
                    .unwrap()
            );
        }
        for i in 0..1000 {
            cache
                .increment(&format!("rl:{i}"), Duration::from_secs(3600))
                .await
                .unwrap();
            assert!(cache.len() <= 100);
        }
        // Every guard is still there: a replay is still refused.
        for i in 0..50 {
            assert!(
                !cache
                    .set_if_absent(&format!("jti:{i}"), b"1", ttl)
                    .await
                    .unwrap()
            );
        }
        // Filled with live guards only, the cache refuses a new one rather than drop one.
        for i in 50..150 {
            let _ = cache.set_if_absent(&format!("jti:{i}"), b"1", ttl).await;
        }
        assert!(cache.set_if_absent("jti:new", b"1", ttl).await.is_err());
        assert!(!cache.set_if_absent("jti:0", b"1", ttl).await.unwrap());
    }
}
