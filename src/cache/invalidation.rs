//! Cross-replica invalidation: every change to something a replica keeps a hot copy of is
//! announced as one [`Invalidation`] on one channel. Each feature owns its hot cache and
//! says, by implementing [`Invalidated`], what a message drops from it.

use serde::{Deserialize, Serialize};

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
