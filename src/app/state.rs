//! The application state shared by every handler, CLI command and background task: settings,
//! store, shared cache, clock, randomness, the master key, outgoing HTTP and each feature's
//! hot copies. It names no feature: it is assembled in [`super::server`].

use std::sync::Arc;

use tokio::sync::watch;

use super::hot::HotCopies;
use crate::cache::{
    Cache, CacheError, CacheEvent, INVALIDATION_CHANNEL, Invalidation, SharedState,
};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::ops::Metrics;
use crate::rng::Rng;
use crate::store::Store;

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
    pub(super) shutdown: Arc<watch::Sender<bool>>,
}

impl AppState {
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
                        // From another release, say: what it meant is unknown, so forget
                        // everything rather than keep what it may have changed.
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable invalidation: dropping all hot copies");
                            hot.clear();
                        }
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
