//! Cross-replica invalidation: every change to something a replica keeps a hot copy of is
//! announced as one [`Invalidation`] on one channel. Each feature owns its hot cache and
//! says, by implementing [`Invalidated`], what a message drops from it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Cache, CacheError, CacheEvent, SharedState};
use crate::model::TenantId;
use crate::model::client::ClientId;

/// The channel on which replicas announce changes.
pub const INVALIDATION_CHANNEL: &str = "invalidate";

/// A change other replicas must see. Tenants are named by their id (a [`TenantId`] is only
/// minted by the store, so the wire carries the UUID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invalidation {
    /// A tenant's settings changed, or it was created or deleted: everything of it goes.
    Tenant { tenant: uuid::Uuid, slug: String },
    /// A tenant's signing keys changed (rotation, retirement, generation).
    Keys { tenant: uuid::Uuid },
    /// One client changed or was deleted.
    Client {
        tenant: uuid::Uuid,
        client_id: String,
    },
    /// An opaque access token was revoked; its digest in hex.
    AccessToken { tenant: uuid::Uuid, digest: String },
}

impl Invalidation {
    pub fn tenant(tenant: TenantId, slug: &str) -> Invalidation {
        Invalidation::Tenant {
            tenant: tenant.uuid(),
            slug: slug.to_owned(),
        }
    }

    pub fn keys(tenant: TenantId) -> Invalidation {
        Invalidation::Keys {
            tenant: tenant.uuid(),
        }
    }

    pub fn client(tenant: TenantId, client_id: &ClientId) -> Invalidation {
        Invalidation::Client {
            tenant: tenant.uuid(),
            client_id: client_id.as_str().to_owned(),
        }
    }

    pub fn access_token(tenant: TenantId, digest: &[u8; 32]) -> Invalidation {
        Invalidation::AccessToken {
            tenant: tenant.uuid(),
            digest: crate::crypto::hex(digest),
        }
    }

    /// Whether the message is about `tenant`.
    pub fn concerns(&self, tenant: TenantId) -> bool {
        let id = match self {
            Invalidation::Tenant { tenant, .. }
            | Invalidation::Keys { tenant }
            | Invalidation::Client { tenant, .. }
            | Invalidation::AccessToken { tenant, .. } => *tenant,
        };
        id == tenant.uuid()
    }

    /// Whether the whole tenant changed (which reaches everything it owns).
    pub fn is_tenant(&self) -> bool {
        matches!(self, Invalidation::Tenant { .. })
    }

    /// Whether the message may concern clients: about one, or about their whole tenant.
    pub fn concerns_clients(&self) -> bool {
        self.is_tenant() || self.client_id().is_some()
    }

    /// The client a message is about, if it is about one client.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Invalidation::Client { client_id, .. } => Some(client_id),
            _ => None,
        }
    }
}

/// A replica-local cache that follows invalidations.
pub trait Invalidated {
    /// Drops what `message` makes stale.
    fn evict(&self, message: &Invalidation);
    /// Drops everything (messages may have been lost).
    fn clear(&self);
}

/// The piece a service takes to announce its changes: it applies a message to this replica's
/// hot copies and publishes it to the others.
#[derive(Clone)]
pub struct Invalidator {
    local: Arc<dyn Invalidated + Send + Sync>,
    cache: Cache,
}

impl Invalidator {
    /// `local` is every hot cache of this replica; `cache` carries messages to the others.
    pub fn new(local: Arc<dyn Invalidated + Send + Sync>, cache: Cache) -> Invalidator {
        Invalidator { local, cache }
    }

    /// Drops this replica's hot copies `message` makes stale and tells the other replicas to
    /// do the same. A failed publish is logged, not fatal: the hot copies' TTL bounds the
    /// staleness.
    pub async fn announce(&self, message: Invalidation) {
        self.local.evict(&message);
        match serde_json::to_string(&message) {
            Ok(json) => {
                if let Err(e) = self.cache.publish(INVALIDATION_CHANNEL, &json).await {
                    tracing::warn!(error = %e, "could not publish invalidation");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not encode invalidation"),
        }
    }

    /// Applies other replicas' invalidations to this replica's hot copies until `stop`
    /// turns true.
    pub async fn follow(&self, mut stop: watch::Receiver<bool>) -> Result<(), CacheError> {
        use tokio::sync::broadcast::error::RecvError;
        let mut events = self.cache.subscribe(INVALIDATION_CHANNEL).await?;
        let local = self.local.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = stop.changed() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(CacheEvent::Message(json)) => match serde_json::from_str(&json) {
                        Ok(message) => local.evict(&message),
                        // From another release, say: what it meant is unknown, so forget
                        // everything rather than keep what it may have changed.
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable invalidation: dropping all hot copies");
                            local.clear();
                        }
                    },
                    // Messages were missed: forget everything.
                    Ok(CacheEvent::Resync) | Err(RecvError::Lagged(_)) => local.clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_with_its_kind() {
        let id = uuid::Uuid::nil();
        for (message, kind) in [
            (
                Invalidation::Tenant {
                    tenant: id,
                    slug: "acme".into(),
                },
                "tenant",
            ),
            (Invalidation::Keys { tenant: id }, "keys"),
            (
                Invalidation::Client {
                    tenant: id,
                    client_id: "c".into(),
                },
                "client",
            ),
            (
                Invalidation::AccessToken {
                    tenant: id,
                    digest: "00".into(),
                },
                "access_token",
            ),
        ] {
            let json = serde_json::to_value(&message).unwrap();
            assert_eq!(json["kind"], kind);
            assert_eq!(
                serde_json::from_value::<Invalidation>(json).unwrap(),
                message
            );
        }
    }
}
