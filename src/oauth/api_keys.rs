//! API keys for service accounts and users: created with the CLI (the raw key shown once),
//! presented to resource servers, which check them at the introspection endpoint; revoked by
//! the CLI or by the owning client at the revocation endpoint.

use crate::clients::Clients;
use crate::clock::Clock;
use crate::crypto::{hex, secrets_equal, sha256};
use crate::error::ServiceError;
use crate::model::api_key::{API_KEY_PREFIX, ApiKey, ApiKeyOwner, split_raw_key};
use crate::model::client::ClientId;
use crate::model::token::Scope;
use crate::model::{Tenant, TenantId};
use crate::oauth::token::scope_ceiling;
use crate::rng::Rng;
use crate::store::Store;

/// The API key service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct ApiKeys<'a> {
    pub store: &'a Store,
    /// Keys belong to clients, whose policy they follow.
    pub clients: Clients<'a>,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
}

/// What a new key is for.
pub struct NewApiKey {
    pub owner: ApiKeyOwner,
    pub label: String,
    pub scope: Scope,
    pub not_before: Option<i64>,
    pub expires_in: Option<u64>,
}

impl ApiKeys<'_> {
    /// Creates a key; returns it with the raw key, which is never stored or shown again.
    pub async fn create(
        &self,
        tenant: &Tenant,
        new: NewApiKey,
    ) -> Result<(ApiKey, String), ServiceError> {
        let label = new.label.trim().to_owned();
        if label.is_empty() || label.chars().count() > 200 || label.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(
                "label must be 1-200 characters without control characters".into(),
            ));
        }
        match &new.owner {
            ApiKeyOwner::Client(id) => {
                let client = self.clients.get(tenant.id, id).await?;
                if !client.policy.service_account {
                    return Err(ServiceError::Invalid(format!(
                        "client '{id}' is not a service account (set it with `latchkey client update --service-account`)"
                    )));
                }
                // A service account's key cannot carry more than the client may be granted.
                let allowed = client.metadata.scope.clone().unwrap_or_default();
                if !new.scope.is_subset(&allowed) {
                    return Err(ServiceError::Invalid(
                        "the key's scope exceeds the client's registered scope".into(),
                    ));
                }
            }
            ApiKeyOwner::User(sub) => {
                if sub.is_empty() || sub.len() > 255 || sub.chars().any(char::is_control) {
                    return Err(ServiceError::Invalid("malformed user subject".into()));
                }
            }
        }
        let now = self.clock.now();
        let key_id = hex(&self.rng.bytes::<8>());
        let secret = self.rng.token::<32>();
        let raw = format!("{API_KEY_PREFIX}{key_id}.{secret}");
        let key = ApiKey {
            key_id,
            owner: new.owner,
            label,
            scope: new.scope,
            not_before: new.not_before.unwrap_or(now),
            expires_at: match new.expires_in {
                None => None,
                Some(secs) => Some(
                    now.saturating_add(
                        i64::try_from(secs)
                            .map_err(|_| ServiceError::Invalid("expiry is too far away".into()))?,
                    ),
                ),
            },
            last_used_at: None,
            revoked: false,
            created_at: now,
            key_hash: sha256(raw.as_bytes()),
        };
        self.store.insert_api_key(tenant.id, &key).await?;
        Ok((key, raw))
    }

    pub async fn list(
        &self,
        tenant: TenantId,
        owner: Option<&ApiKeyOwner>,
    ) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.store.api_keys(tenant, owner).await?)
    }

    /// Revokes a key by its id.
    pub async fn revoke(&self, tenant: TenantId, key_id: &str) -> Result<(), ServiceError> {
        if !self
            .store
            .revoke_api_key(tenant, key_id, self.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "no live API key '{key_id}'"
            )));
        }
        Ok(())
    }

    /// The key `raw` if it is one of this tenant's and usable now. Its use is recorded (at most
    /// hourly per replica).
    pub async fn inspect(
        &self,
        tenant: TenantId,
        raw: &str,
    ) -> Result<Option<ApiKey>, ServiceError> {
        let Some((key_id, _)) = split_raw_key(raw) else {
            return Ok(None);
        };
        let Some(key) = self.store.api_key(tenant, key_id).await? else {
            return Ok(None);
        };
        if !secrets_equal(&sha256(raw.as_bytes()), &key.key_hash)
            || !key.is_valid_at(self.clock.now())
        {
            return Ok(None);
        }
        let mut key = key;
        if let ApiKeyOwner::Client(owner) = &key.owner {
            // The owner's policy as it is now, not as it was when the key was made: a client
            // that is gone or no longer a service account holds no live keys, and a key never
            // carries more scope than its client may be granted now.
            let Some(client) = self.clients.find(tenant, owner).await? else {
                return Ok(None);
            };
            if !client.policy.service_account {
                return Ok(None);
            }
            key.scope = key.scope.intersection(&scope_ceiling(&client));
            // A service account used only through its keys is in use.
            self.clients.touch(tenant, owner).await;
        }
        let id = key_id.to_owned();
        self.clients
            .record_use((tenant, format!("api-key:{key_id}")), move |store, now| {
                let id = id.clone();
                async move { store.touch_api_key(tenant, &id, now).await }
            });
        Ok(Some(key))
    }

    /// Revokes the key `raw` if `client` owns it. `Ok(None)`: not a key of this tenant;
    /// `Ok(Some(false))`: someone else's.
    pub async fn revoke_presented(
        &self,
        tenant: TenantId,
        raw: &str,
        client: &ClientId,
    ) -> Result<Option<bool>, ServiceError> {
        let Some((key_id, _)) = split_raw_key(raw) else {
            return Ok(None);
        };
        let Some(key) = self.store.api_key(tenant, key_id).await? else {
            return Ok(None);
        };
        if !secrets_equal(&sha256(raw.as_bytes()), &key.key_hash) {
            return Ok(None);
        }
        if key.owner != ApiKeyOwner::Client(client.clone()) {
            return Ok(Some(false));
        }
        self.store
            .revoke_api_key(tenant, key_id, self.clock.now())
            .await?;
        Ok(Some(true))
    }
}
