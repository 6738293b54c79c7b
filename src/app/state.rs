//! The application state shared by every handler, CLI command and background task: settings,
//! store, shared cache, clock, randomness, keys to the vault, and each feature's hot copies.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::hot::HotCopies;
use crate::cache::{
    Cache, CacheError, CacheEvent, INVALIDATION_CHANNEL, Invalidation, SharedState,
};
use crate::clock::Clock;
use crate::config::{Settings, mask_url};
use crate::crypto::MasterKey;
use crate::ops::Metrics;
use crate::rng::Rng;
use crate::store::{DatabaseLocation, Store};

/// A start-up failure: one line, naming the setting at fault where there is one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// Everything a request, command or background task needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub cache: Cache,
    pub clock: Clock,
    /// Where identifiers, secrets and tokens come from (see [`Rng`]).
    pub rng: Rng,
    pub master_key: Arc<MasterKey>,
    pub hot: Arc<HotCopies>,
    pub metrics: Arc<Metrics>,
    /// Outgoing HTTP (clients' `jwks_uri`): short timeouts, no redirects.
    pub http: reqwest::Client,
    shutdown: Arc<watch::Sender<bool>>,
}

impl AppState {
    /// Connects to the database and the cache and loads the master key. With `migrate`,
    /// applies pending migrations first. Fails with one clear line if anything is missing.
    pub async fn open(
        settings: Settings,
        clock: Clock,
        migrate: bool,
    ) -> Result<AppState, StartupError> {
        let location = settings
            .database_location()
            .map_err(|e| StartupError(e.0))?;
        if settings.security.master_key.is_none()
            && settings.security.master_key_file.is_none()
            && matches!(location, DatabaseLocation::Postgres(_))
        {
            return Err(StartupError(
                "security.master_key: required when database.url is PostgreSQL \
                 (make one with `latchkey master-key generate`)"
                    .into(),
            ));
        }
        let store = Store::open(&location, settings.database.max_connections)
            .map_err(|e| StartupError(format!("database.url: {e}")))?;
        let shown = match &location {
            DatabaseLocation::Postgres(url) => mask_url(url),
            DatabaseLocation::Sqlite(path) => path.display().to_string(),
        };
        if migrate {
            let applied = store
                .migrate()
                .await
                .map_err(|e| StartupError(format!("database.url: {shown}: {e}")))?;
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
        }
        store
            .ping()
            .await
            .map_err(|e| StartupError(format!("database.url: cannot use {shown}: {e}")))?;
        store.start_background();
        let cache = match settings.redis_url().map_err(|e| StartupError(e.0))? {
            None => Cache::memory(),
            Some(url) => {
                let cache = Cache::redis(
                    url.as_str(),
                    settings.redis.pool_size,
                    &settings.redis.key_prefix,
                )
                .map_err(|e| StartupError(format!("redis.url: {e}")))?;
                cache.ping().await.map_err(|e| {
                    StartupError(format!(
                        "redis.url: cannot reach {}: {e}",
                        mask_url(url.as_str())
                    ))
                })?;
                cache
            }
        };
        // Last, so a failed start leaves no generated key behind.
        let master_key = Arc::new(load_master_key(&settings)?);
        let allow_private = settings.oauth.allow_private_jwks_uri;
        Ok(AppState {
            hot: Arc::new(HotCopies::new(&settings)),
            settings: Arc::new(settings),
            store,
            cache,
            clock,
            rng: Rng::System,
            master_key,
            metrics: Arc::new(Metrics::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                // A proxy from the environment would connect where the resolver cannot look.
                .no_proxy()
                .dns_resolver(Arc::new(crate::oauth::client_auth::PublicResolver {
                    allow_private,
                }))
                .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| StartupError(format!("outgoing HTTP client: {e}")))?,
            shutdown: Arc::new(watch::channel(false).0),
        })
    }

    /// Resolves once [`AppState::shut_down`] is called.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops the background tasks of this state.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Drops this replica's hot copies `message` makes stale and tells the other replicas to
    /// do the same. A failed publish is logged, not fatal: the hot copies' TTL bounds the
    /// staleness.
    pub async fn invalidate(&self, message: Invalidation) {
        self.hot.evict(&message);
        match serde_json::to_string(&message) {
            Ok(json) => {
                if let Err(e) = self.cache.publish(INVALIDATION_CHANNEL, &json).await {
                    tracing::warn!(error = %e, "could not publish invalidation");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not encode invalidation"),
        }
    }

    /// Applies other replicas' invalidations until the state shuts down.
    pub async fn follow_invalidations(&self) -> Result<(), CacheError> {
        use tokio::sync::broadcast::error::RecvError;
        let mut events = self.cache.subscribe(INVALIDATION_CHANNEL).await?;
        let mut stop = self.stopping();
        let hot = self.hot.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = stop.changed() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(CacheEvent::Message(json)) => match serde_json::from_str(&json) {
                        Ok(message) => hot.evict(&message),
                        Err(e) => tracing::warn!(error = %e, "ignoring malformed invalidation"),
                    },
                    // Messages were missed: forget everything.
                    Ok(CacheEvent::Resync) | Err(RecvError::Lagged(_)) => hot.clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(())
    }
}

fn load_master_key(settings: &Settings) -> Result<MasterKey, StartupError> {
    if let Some(key) = &settings.security.master_key {
        return MasterKey::from_base64(key.expose())
            .map_err(|e| StartupError(format!("security.master_key: {e}")));
    }
    if let Some(path) = &settings.security.master_key_file {
        return MasterKey::load_or_create(path, false)
            .map(|(key, _)| key)
            .map_err(|e| StartupError(format!("security.master_key_file: {e}")));
    }
    let path = settings.data_dir().join("master.key");
    let (key, created) = MasterKey::load_or_create(&path, true)
        .map_err(|e| StartupError(format!("security.master_key_file: {e}")))?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "generated a development master key; production deployments set security.master_key"
        );
    }
    Ok(key)
}
