//! The application state shared by every handler, CLI command and background task: settings,
//! store, shared cache, clock, randomness, the master key, outgoing HTTP and each feature's
//! hot copies. It names no feature: it is assembled in [`super::server`].

use std::sync::Arc;

use tokio::sync::watch;

use super::hot::HotCopies;
use crate::cache::{Cache, CacheError, Invalidator};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::ops::Metrics;
use crate::people::passwords::PasswordHasher;
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
    /// Announces changes to this replica's hot copies and the other replicas'.
    pub invalidator: Invalidator,
    pub metrics: Arc<Metrics>,
    /// The bounded argon2id pool.
    pub passwords: PasswordHasher,
    /// How the outbox worker sends mail.
    pub mailer: crate::mail::Mailer,
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

    /// This state on `cache` instead (tests sharing one in-process cache between replicas):
    /// its changes are announced there too.
    pub fn with_cache(mut self, cache: Cache) -> AppState {
        self.invalidator = Invalidator::new(self.hot.clone(), cache.clone());
        self.cache = cache;
        self
    }

    /// Applies other replicas' invalidations until the state shuts down.
    pub async fn follow_invalidations(&self) -> Result<(), CacheError> {
        self.invalidator.follow(self.stopping()).await
    }
}
