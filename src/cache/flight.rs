//! Single-flight: concurrent loads of one key on one replica wait for the first instead of
//! each doing the work (a `jwks_uri` fetch, a key set load).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

/// Per-key async locks, dropped when nobody holds or waits for them.
pub struct SingleFlight<K> {
    locks: Mutex<HashMap<K, Weak<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for SingleFlight<K> {
    fn default() -> Self {
        SingleFlight {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> SingleFlight<K> {
    /// Waits until no other task holds `key`'s flight, then holds it. After acquiring, look
    /// at the cache again: the previous holder has usually filled it.
    pub async fn enter(&self, key: &K) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            match locks.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    if locks.len() >= 1024 {
                        locks.retain(|_, weak| weak.strong_count() > 0);
                    }
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key.clone(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_load_per_key_at_a_time() {
        let flights: Arc<SingleFlight<u32>> = Arc::default();
        let loads = Arc::new(AtomicUsize::new(0));
        let cached = Arc::new(Mutex::new(None::<u32>));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (flights, loads, cached) = (flights.clone(), loads.clone(), cached.clone());
                tokio::spawn(async move {
                    let _flight = flights.enter(&7).await;
                    if cached.lock().unwrap().is_some() {
                        return;
                    }
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    *cached.lock().unwrap() = Some(7);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
