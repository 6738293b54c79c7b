//! Shared short-lived state (DESIGN §1): rate-limit counters, replay caches, single-use values
//! and cross-replica invalidation. Nothing here must survive a restart. One trait, two
//! implementations (in-process and Redis) passing one test suite.

mod flight;
mod hot;
mod invalidation;
mod keys;
mod memory;
mod redis;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

pub use flight::SingleFlight;
pub use hot::HotMap;
pub use invalidation::{INVALIDATION_CHANNEL, Invalidated, Invalidation, Invalidator};
pub use keys::CacheKey;
pub use memory::MemoryCache;
pub use redis::RedisCache;

/// A cache failure (only Redis can fail).
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared cache unavailable: {0}")]
pub struct CacheError(pub String);

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A published message.
    Message(String),
    /// Messages may have been lost (the subscription was re-established): drop everything
    /// derived from them.
    Resync,
}

/// Operations on shared short-lived state. Keys are namespaced by the implementation.
pub trait SharedState: Send + Sync {
    /// The value under `key`, if present and not expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, CacheError>> + Send;

    /// Stores `value` under `key` for `ttl`.
    fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), CacheError>> + Send;

    /// Stores `value` only if `key` is absent; true if this call stored it (first writer wins:
    /// replay detection).
    fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, CacheError>> + Send;

    /// Removes and returns the value: single-use consumption.
    fn take(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, CacheError>> + Send;

    /// Removes `key`; true if it was present.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool, CacheError>> + Send;

    /// Atomically adds one to the counter under `key` and returns the new count. A counter
    /// created by this call expires after `window` (fixed-window rate limiting).
    fn increment(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<i64, CacheError>> + Send;

    /// Sends `message` to every subscriber of `channel`, on every replica.
    fn publish(
        &self,
        channel: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), CacheError>> + Send;

    /// Subscribes to `channel`; returns once the subscription is live.
    fn subscribe(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<broadcast::Receiver<CacheEvent>, CacheError>> + Send;

    /// A round trip to the backing service.
    fn ping(&self) -> impl Future<Output = Result<(), CacheError>> + Send;
}

/// The configured implementation.
#[derive(Clone)]
pub enum Cache {
    Memory(Arc<MemoryCache>),
    Redis(RedisCache),
}

impl Cache {
    pub fn memory() -> Cache {
        Cache::Memory(Arc::new(MemoryCache::default()))
    }

    pub fn redis(url: &str, pool_size: usize, key_prefix: &str) -> Result<Cache, CacheError> {
        RedisCache::new(url, pool_size, key_prefix).map(Cache::Redis)
    }

    /// `memory` or `redis`, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            Cache::Memory(_) => "memory",
            Cache::Redis(_) => "redis",
        }
    }
}

impl Cache {
    /// Adds one to the fixed-window counter `key` (see [`SharedState::increment`]).
    pub async fn count(&self, key: &CacheKey<'_>, window: Duration) -> Result<i64, CacheError> {
        self.increment(&key.render(), window).await
    }

    /// True the first time `key` is seen within `ttl`, on any replica (replay detection).
    pub async fn first_sighting(
        &self,
        key: &CacheKey<'_>,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        self.set_if_absent(&key.render(), b"1", ttl).await
    }
}

macro_rules! dispatch {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Cache::Memory($c) => $e,
            Cache::Redis($c) => $e,
        }
    };
}

impl SharedState for Cache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        dispatch!(self, c => c.get(key).await)
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        dispatch!(self, c => c.set(key, value, ttl).await)
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        dispatch!(self, c => c.set_if_absent(key, value, ttl).await)
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        dispatch!(self, c => c.take(key).await)
    }
    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        dispatch!(self, c => c.delete(key).await)
    }
    async fn increment(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        dispatch!(self, c => c.increment(key, window).await)
    }
    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        dispatch!(self, c => c.publish(channel, message).await)
    }
    async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<broadcast::Receiver<CacheEvent>, CacheError> {
        dispatch!(self, c => c.subscribe(channel).await)
    }
    async fn ping(&self) -> Result<(), CacheError> {
        dispatch!(self, c => c.ping().await)
    }
}

/// Milliseconds for Redis, at least 1 (a zero TTL is an error there).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
