//! In-process shared state for a single replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::{CacheError, CacheEvent, SharedState};

/// Sweep expired entries every this many writes.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    channels: Mutex<HashMap<String, broadcast::Sender<CacheEvent>>>,
    writes: AtomicU64,
}

impl MemoryCache {
    fn with_entries<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, (Vec<u8>, Instant)>, Instant) -> T,
    ) -> T {
        let now = Instant::now();
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            map.retain(|_, (_, expires)| *expires > now);
        }
        f(&mut map, now)
    }

    /// Expired entries are invisible even before a sweep removes them.
    fn live<'a>(
        map: &'a HashMap<String, (Vec<u8>, Instant)>,
        key: &str,
        now: Instant,
    ) -> Option<&'a Vec<u8>> {
        map.get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v)
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
        self.with_entries(|map, now| map.insert(key.to_owned(), (value.to_vec(), now + ttl)));
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        Ok(self.with_entries(|map, now| {
            if Self::live(map, key, now).is_some() {
                return false;
            }
            map.insert(key.to_owned(), (value.to_vec(), now + ttl));
            true
        }))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.with_entries(|map, now| {
            map.remove(key)
                .filter(|(_, expires)| *expires > now)
                .map(|(v, _)| v)
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.with_entries(|map, now| map.remove(key).is_some_and(|(_, expires)| expires > now)))
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        Ok(self.with_entries(|map, now| {
            let current = Self::live(map, key, now)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
            match current {
                Some(n) => {
                    let next = n.saturating_add(1);
                    if let Some(entry) = map.get_mut(key) {
                        entry.0 = next.to_string().into_bytes();
                    }
                    next
                }
                None => {
                    map.insert(key.to_owned(), (b"1".to_vec(), now + window));
                    1
                }
            }
        }))
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
