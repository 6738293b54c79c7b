//! Redis-backed shared state for N replicas (deadpool-redis; pub/sub for invalidation).

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};
use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::{CacheError, CacheEvent, SharedState, ttl_ms};

/// Longest wait for one Redis command, so a stalled server degrades into errors, not hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
    client: redis::Client,
    prefix: String,
}

fn err(e: impl std::fmt::Display) -> CacheError {
    CacheError(e.to_string())
}

impl RedisCache {
    pub fn new(url: &str, pool_size: usize, prefix: &str) -> Result<RedisCache, CacheError> {
        let mut config = Config::from_url(url);
        let mut pool_config = PoolConfig::new(pool_size);
        pool_config.timeouts = Timeouts {
            wait: Some(COMMAND_TIMEOUT),
            create: Some(COMMAND_TIMEOUT),
            recycle: Some(COMMAND_TIMEOUT),
        };
        config.pool = Some(pool_config);
        let pool = config.create_pool(Some(Runtime::Tokio1)).map_err(err)?;
        Ok(RedisCache {
            pool,
            client: redis::Client::open(url).map_err(err)?,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one command (or pipeline) with a pooled connection, bounded by [`COMMAND_TIMEOUT`].
    async fn run<T, F>(&self, work: F) -> Result<T, CacheError>
    where
        F: AsyncFnOnce(&mut deadpool_redis::Connection) -> redis::RedisResult<T>,
    {
        let attempt = async {
            let mut conn = self.pool.get().await.map_err(err)?;
            work(&mut conn).await.map_err(err)
        };
        tokio::time::timeout(COMMAND_TIMEOUT, attempt)
            .await
            .map_err(|_| CacheError("redis command timed out".into()))?
    }

    async fn open_stream(
        client: &redis::Client,
        channel: &str,
    ) -> Result<redis::aio::PubSubStream, CacheError> {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await.map_err(err)?;
            pubsub.subscribe(channel).await.map_err(err)?;
            Ok(pubsub.into_on_message())
        };
        tokio::time::timeout(COMMAND_TIMEOUT, attempt)
            .await
            .map_err(|_| CacheError("redis subscribe timed out".into()))?
    }

    /// Deletes every key under this cache's prefix (used to clean up after tests).
    pub async fn clear_prefix(&self) -> Result<u64, CacheError> {
        let pattern = format!("{}*", self.prefix);
        self.run(async |c| {
            let mut removed = 0u64;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(c)
                    .await?;
                if !keys.is_empty() {
                    removed += c.del::<_, u64>(&keys).await?;
                }
                if next == 0 {
                    return Ok(removed);
                }
                cursor = next;
            }
        })
        .await
    }
}

impl SharedState for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(key);
        self.run(async |c| c.get(&key).await).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(key);
        self.run(async |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms(ttl))
                .query_async(c)
                .await
        })
        .await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let key = self.key(key);
        let reply: Option<String> = self
            .run(async |c| {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl))
                    .query_async(c)
                    .await
            })
            .await?;
        Ok(reply.is_some())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(key);
        self.run(async |c| redis::cmd("GETDEL").arg(&key).query_async(c).await)
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let key = self.key(key);
        let n: u64 = self.run(async |c| c.del(&key).await).await?;
        Ok(n > 0)
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        // One atomic script: the window starts with the first increment (works on any Redis).
        const SCRIPT: &str = "local n = redis.call('INCR', KEYS[1]) \
             if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";
        let count: i64 = self
            .run(async |c| {
                redis::cmd("EVAL")
                    .arg(SCRIPT)
                    .arg(1)
                    .arg(&key)
                    .arg(ttl_ms(window))
                    .query_async(c)
                    .await
            })
            .await?;
        Ok(count)
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        let channel = self.key(channel);
        let _receivers: i64 = self
            .run(async |c| c.publish(&channel, message).await)
            .await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<broadcast::Receiver<CacheEvent>, CacheError> {
        let channel = self.key(channel);
        let mut stream = Self::open_stream(&self.client, &channel).await?;
        let (tx, rx) = broadcast::channel(256);
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                while let Some(msg) = stream.next().await {
                    if let Ok(payload) = msg.get_payload::<String>()
                        && tx.send(CacheEvent::Message(payload)).is_err()
                    {
                        return; // every receiver is gone
                    }
                }
                tracing::warn!(%channel, "redis subscription lost; reconnecting");
                loop {
                    if tx.receiver_count() == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if let Ok(fresh) = Self::open_stream(&client, &channel).await {
                        stream = fresh;
                        tracing::info!(%channel, "redis subscription restored");
                        // Anything published while we were away is lost.
                        let _ = tx.send(CacheEvent::Resync);
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let pong: String = self
            .run(async |c| redis::cmd("PING").query_async(c).await)
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(CacheError(format!("unexpected PING reply '{pong}'")))
        }
    }
}
