//! The maintenance scheduler: on every replica, every `keys.check_interval_secs`, rotate due
//! signing keys, purge retired keys past their window, expired tokens, unused dynamic
//! clients, ended sessions and old sign-in history. Every step is safe to run on several replicas at once (conditional writes).

use std::time::Duration;

use serde::Serialize;

use crate::app::AppState;
use crate::error::ServiceError;

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Maintenance {
    /// Signing keys rotated.
    pub rotated: usize,
    /// Tenants whose retired keys were purged.
    pub purged_tenants: usize,
    /// Expired tokens deleted.
    pub purged_tokens: usize,
    /// Unused dynamically registered clients deleted.
    pub purged_clients: usize,
    /// Ended sessions, old sign-in history, settled outbox rows and spent links deleted.
    pub purged_sessions: usize,
}

/// One maintenance pass.
pub async fn maintain(state: &AppState) -> Result<Maintenance, ServiceError> {
    let (rotated, purged_tenants) = state.keys().rotate_due().await?;
    let now = state.clock.now();
    // Tokens are kept past expiry for the longest access token lifetime, so a revoked JWT's
    // jti outlives every copy of it.
    let grace = i64::try_from(state.settings.oauth.max_access_token_ttl_secs).unwrap_or(i64::MAX);
    let purged_tokens = state.store.purge_expired_tokens(now, grace).await?;
    let purged_clients = state.clients().purge_unused().await?;
    // Ended sessions stay a day, so "signed out" can still be told from "never existed".
    let history = i64::try_from(state.settings.sessions.history_secs).unwrap_or(i64::MAX);
    let purged_sessions = state.store.purge_sessions(now, 86_400, history).await?
        + state.store.purge_outbox(now, 7 * 86_400).await?;
    Ok(Maintenance {
        rotated,
        purged_tenants,
        purged_tokens,
        purged_clients,
        purged_sessions,
    })
}

/// Runs [`maintain`] every `keys.check_interval_secs` until the state shuts down.
pub fn spawn(state: &AppState) {
    let state = state.clone();
    let mut stop = state.stopping();
    let period = Duration::from_secs(state.settings.keys.check_interval_secs);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = ticks.tick() => {}
            }
            match maintain(&state).await {
                Ok(r) if r.rotated > 0 || r.purged_tenants > 0 || r.purged_clients > 0 => {
                    tracing::info!(
                        rotated = r.rotated,
                        purged_tenants = r.purged_tenants,
                        purged_tokens = r.purged_tokens,
                        purged_clients = r.purged_clients,
                        "maintenance"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "maintenance failed; will retry"),
            }
        }
    });
}
