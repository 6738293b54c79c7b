//! Clients as a service: cached lookups, creation with server-generated credentials, updates,
//! secret rotation, deletion, last-use tracking and the expiry of unused dynamic clients.
//! Secrets and registration access tokens are returned once and stored as SHA-256 digests
//! (DESIGN §3); the one exception is `client_secret_jwt`, whose HMAC key must be kept, sealed
//! under the master key.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cache::{HotMap, Invalidated, Invalidation, Invalidator};
use crate::clock::Clock;
use crate::config::OAuthSettings;
use crate::crypto::MasterKey;
use crate::crypto::sha256;
use crate::error::ServiceError;
use crate::model::client::{AuthMethod, Client, ClientId, ClientMetadata, ClientPolicy};
use crate::model::{Tenant, TenantId};
use crate::rng::Rng;
use crate::store::{Store, StoreError};

/// Most clients kept hot.
const HOT_CLIENTS: usize = 20_000;
/// Most unknown client ids remembered.
const UNKNOWN_CLIENTS: usize = 10_000;

/// This replica's hot copies of clients.
pub struct ClientCache {
    /// By tenant and client_id.
    pub by_id: HotMap<(TenantId, ClientId), Arc<Client>>,
    /// Client ids known not to exist: kept apart and small, so random ids cost one query
    /// each per `cache.hot_ttl_secs` at most and cannot push real clients out.
    pub unknown: HotMap<(TenantId, ClientId), ()>,
    /// Clients and API keys whose last use this replica recorded within the hour.
    /// Shared with the background writes that record them.
    pub touched: Arc<HotMap<(TenantId, String), ()>>,
}

impl ClientCache {
    pub fn new(ttl: Duration) -> ClientCache {
        ClientCache {
            by_id: HotMap::new(ttl, HOT_CLIENTS),
            unknown: HotMap::new(ttl, UNKNOWN_CLIENTS),
            touched: Arc::new(HotMap::new(Duration::from_secs(3600), HOT_CLIENTS)),
        }
    }
}

/// Whether a message about one client, or its whole tenant, reaches the entry `(tenant, id)`.
pub fn reaches(message: &Invalidation, tenant: TenantId, id: &str) -> bool {
    message.concerns(tenant)
        && (message.is_tenant() || message.client_id().is_some_and(|c| c == id))
}

impl Invalidated for ClientCache {
    fn evict(&self, message: &Invalidation) {
        // Each eviction bumps the map's generation and so voids loads in flight: only the
        // messages that concern clients may do that.
        if !message.concerns_clients() {
            return;
        }
        self.by_id
            .retain(|(t, c), _| !reaches(message, *t, c.as_str()));
        self.unknown
            .retain(|(t, c), _| !reaches(message, *t, c.as_str()));
    }

    fn clear(&self) {
        self.by_id.clear();
        self.unknown.clear();
    }
}

/// Credentials shown once, at creation or rotation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IssuedCredentials {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
}

/// A new client id: 128 random bits in base64url, starting with a letter or digit, so it is
/// never taken for an option where scripts pass it on a command line (`-x…`).
fn new_client_id(rng: &Rng) -> String {
    loop {
        let id = rng.token::<16>();
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

/// Random bytes in a client secret: base64url makes 64 characters of them.
pub const SECRET_BYTES: usize = 48;

fn seal_context(tenant: TenantId, client_id: &ClientId) -> Vec<u8> {
    format!("latchkey:client-secret:{tenant}:{client_id}").into_bytes()
}

/// The client service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct Clients<'a> {
    pub store: &'a Store,
    pub hot: &'a ClientCache,
    pub master_key: &'a MasterKey,
    pub settings: &'a OAuthSettings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
    pub invalidator: &'a Invalidator,
}

impl Clients<'_> {
    /// A client of `tenant`, from the hot copy when fresh.
    pub async fn find(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
    ) -> Result<Option<Arc<Client>>, ServiceError> {
        let key = (tenant, client_id.clone());
        if let Some(hit) = self.hot.by_id.get(&key) {
            return Ok(Some(hit));
        }
        if self.hot.unknown.get(&key).is_some() {
            return Ok(None);
        }
        let generation = self.hot.by_id.generation();
        let unknown_generation = self.hot.unknown.generation();
        let found = self.store.client(tenant, client_id).await?.map(Arc::new);
        match &found {
            Some(client) => self.hot.by_id.insert_if(generation, key, client.clone()),
            None => self.hot.unknown.insert_if(unknown_generation, key, ()),
        }
        Ok(found)
    }

    /// Like [`Self::find`], but a missing client is an error.
    pub async fn get(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
    ) -> Result<Arc<Client>, ServiceError> {
        self.find(tenant, client_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no client '{client_id}'")))
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<Client>, ServiceError> {
        Ok(self.store.clients(tenant).await?)
    }

    /// Sets a fresh secret on `client` as its method needs; returns the secret to show once.
    fn new_secret(
        &self,
        tenant: TenantId,
        client: &mut Client,
    ) -> Result<Option<String>, ServiceError> {
        let method = client.metadata.token_endpoint_auth_method;
        if !method.uses_secret() {
            client.secret_hash = None;
            client.secret_sealed = None;
            client.secret_expires_at = None;
            return Ok(None);
        }
        // 384 bits from the OS generator: a fast hash is enough (DESIGN §3). As an HMAC key
        // (client_secret_jwt) its 64 octets meet RFC 7518 §3.2 ("a key of the same size as the
        // hash output or larger MUST be used") for HS512, the largest algorithm advertised.
        let secret = self.rng.token::<SECRET_BYTES>();
        client.secret_hash = Some(sha256(secret.as_bytes()));
        client.secret_sealed = if method == AuthMethod::ClientSecretJwt {
            Some(
                self.master_key
                    .seal(secret.as_bytes(), &seal_context(tenant, &client.client_id))?,
            )
        } else {
            None
        };
        client.secret_expires_at = None;
        Ok(Some(secret))
    }

    /// The plain secret of a `client_secret_jwt` client (its HMAC key).
    pub fn hmac_secret(
        &self,
        tenant: TenantId,
        client: &Client,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        client
            .secret_sealed
            .as_deref()
            .map(|sealed| {
                self.master_key
                    .open(sealed, &seal_context(tenant, &client.client_id))
                    .map_err(ServiceError::from)
            })
            .transpose()
    }

    /// Creates a client with a server-generated id and, as its method needs, secret.
    pub async fn create(
        &self,
        tenant: &Tenant,
        new: NewClient,
    ) -> Result<(Client, IssuedCredentials), ServiceError> {
        self.create_spending(tenant, new, None)
            .await?
            .ok_or_else(|| ServiceError::Internal("no initial access token to spend".into()))
    }

    /// Like [`Self::create`], spending one use of the initial access token with digest `spend` in the
    /// same transaction (RFC 7591 §3). `Ok(None)`: the token cannot be spent; nothing is created.
    pub async fn create_spending(
        &self,
        tenant: &Tenant,
        new: NewClient,
        spend: Option<[u8; 32]>,
    ) -> Result<Option<(Client, IssuedCredentials)>, ServiceError> {
        self.check_policy(&new.policy)?;
        check_keys(&new.metadata)?;
        let now = self.clock.now();
        let client_id = ClientId::parse(&new_client_id(self.rng))
            .ok_or_else(|| ServiceError::Internal("generated client_id is malformed".into()))?;
        let mut client = Client {
            client_id,
            metadata: new.metadata,
            policy: new.policy,
            secret_hash: None,
            secret_sealed: None,
            secret_expires_at: None,
            registration_token_hash: None,
            dynamic: new.dynamic,
            created_at: now,
            updated_at: now,
            last_used_at: None,
        };
        let client_secret = self.new_secret(tenant.id, &mut client)?;
        let registration_access_token = new.dynamic.then(|| {
            let token = self.rng.token::<32>();
            client.registration_token_hash = Some(sha256(token.as_bytes()));
            token
        });
        if !self
            .store
            .insert_client(tenant.id, &client, spend.map(|hash| (hash, now)))
            .await?
        {
            return Ok(None);
        }
        // Not unknown any more, should anyone have asked for this id before.
        self.hot
            .unknown
            .remove(&(tenant.id, client.client_id.clone()));
        tracing::info!(tenant = %tenant.slug, client_id = %client.client_id, dynamic = new.dynamic, "client created");
        Ok(Some((
            client,
            IssuedCredentials {
                client_secret,
                registration_access_token,
            },
        )))
    }

    /// Administrator-set limits a policy must respect.
    fn check_policy(&self, policy: &ClientPolicy) -> Result<(), ServiceError> {
        let max = self.settings.max_access_token_ttl_secs;
        if let Some(ttl) = policy.access_token_ttl_secs
            && (ttl == 0 || ttl > max)
        {
            return Err(ServiceError::Invalid(format!(
                "access_token_ttl_secs must be between 1 and {max}"
            )));
        }
        if policy.refresh_token_ttl_secs == Some(0) {
            return Err(ServiceError::Invalid(
                "refresh_token_ttl_secs must be at least 1".into(),
            ));
        }
        for resource in &policy.resources {
            crate::model::client::check_resource(resource)
                .map_err(|e| ServiceError::Invalid(format!("resource {e}")))?;
        }
        Ok(())
    }

    /// Applies `update` to a client, with a compare-and-swap on its last change.
    pub async fn update(
        &self,
        tenant: TenantId,
        client_id: &ClientId,
        update: ClientUpdate,
    ) -> Result<(Client, IssuedCredentials), ServiceError> {
        let current = self
            .store
            .client(tenant, client_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no client '{client_id}'")))?;
        if update
            .expected_updated_at
            .is_some_and(|seen| seen != current.updated_at)
        {
            return Err(ServiceError::Conflict(format!(
                "client '{client_id}' changed meanwhile; retry"
            )));
        }
        let mut client = current.clone();
        let old_method = client.metadata.token_endpoint_auth_method;
        if let Some(policy) = update.policy {
            self.check_policy(&policy)?;
            client.policy = policy;
        }
        if let Some(metadata) = update.metadata {
            check_keys(&metadata)?;
            client.metadata = metadata;
        }
        let method = client.metadata.token_endpoint_auth_method;
        let mut issued = IssuedCredentials::default();
        // A method that needs a different kind of secret gets a new one.
        let needs_new = method.uses_secret() != old_method.uses_secret()
            || (method == AuthMethod::ClientSecretJwt)
                != (old_method == AuthMethod::ClientSecretJwt);
        if update.rotate_secret || needs_new {
            if update.rotate_secret && !method.uses_secret() {
                return Err(ServiceError::Invalid(format!(
                    "client '{client_id}' authenticates with {method}: it has no secret"
                )));
            }
            issued.client_secret = self.new_secret(tenant, &mut client)?;
        }
        if update.rotate_registration_token {
            let token = self.rng.token::<32>();
            client.registration_token_hash = Some(sha256(token.as_bytes()));
            issued.registration_access_token = Some(token);
        }
        client.updated_at = self.clock.now().max(current.updated_at + 1);
        if !self
            .store
            .replace_client(tenant, &client, current.updated_at)
            .await?
        {
            return Err(ServiceError::Conflict(format!(
                "client '{client_id}' changed meanwhile; retry"
            )));
        }
        self.invalidator
            .announce(Invalidation::client(tenant, client_id))
            .await;
        Ok((client, issued))
    }

    /// Deletes a client.
    pub async fn delete(&self, tenant: TenantId, client_id: &ClientId) -> Result<(), ServiceError> {
        if !self.store.delete_client(tenant, client_id).await? {
            return Err(ServiceError::NotFound(format!("no client '{client_id}'")));
        }
        self.invalidator
            .announce(Invalidation::client(tenant, client_id))
            .await;
        tracing::info!(%tenant, %client_id, "client deleted");
        Ok(())
    }

    /// Runs `write`, a last-use update, in the background and at most once an hour per replica
    /// for `key`, so request paths never wait on a database write for it. Unused dynamic clients
    /// are deleted by their last use, so a failed write is retried (with backoff) and, if it
    /// still fails, forgotten, so the next use writes again.
    pub fn record_use<F, Fut>(&self, key: (TenantId, String), write: F)
    where
        F: Fn(Store, i64) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let touched = &self.hot.touched;
        if touched.get(&key).is_some() {
            return;
        }
        touched.insert_if(touched.generation(), key.clone(), ());
        let (touched, store, clock) = (touched.clone(), self.store.clone(), self.clock.clone());
        tokio::spawn(async move {
            let mut delay = std::time::Duration::from_millis(200);
            for attempt in 1..=USE_WRITE_ATTEMPTS {
                match write(store.clone(), clock.now()).await {
                    Ok(()) => return,
                    Err(e) if attempt == USE_WRITE_ATTEMPTS => {
                        tracing::warn!(error = %e, what = %key.1, "could not record last use");
                    }
                    Err(_) => {
                        tokio::time::sleep(delay).await;
                        delay *= 4;
                    }
                }
            }
            touched.remove(&key);
        });
    }

    /// Records a client's use (see [`Self::record_use`]).
    pub async fn touch(&self, tenant: TenantId, client_id: &ClientId) {
        let id = client_id.clone();
        self.record_use((tenant, client_id.to_string()), move |store, now| {
            let id = id.clone();
            async move { store.touch_client(tenant, &id, now).await }
        });
    }

    /// Deletes dynamically registered clients unused for their tenant's time; returns how many.
    pub async fn purge_unused(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let mut purged = 0;
        for tenant in self.store.tenants().await? {
            let ttl = tenant
                .settings
                .dynamic_client_ttl_secs
                .unwrap_or(self.settings.dynamic_client_ttl_secs);
            if ttl == 0 {
                continue;
            }
            let cutoff = now.saturating_sub(i64::try_from(ttl).unwrap_or(i64::MAX));
            let unused = match self.store.unused_clients(tenant.id, cutoff).await {
                Ok(unused) => unused,
                Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e).into()),
                Err(e) => {
                    tracing::warn!(error = %e, tenant = %tenant.slug, "could not purge unused clients");
                    continue;
                }
            };
            for client_id in &unused {
                // Last use is checked again in the delete itself: a client used since the list
                // was read stays.
                if self
                    .store
                    .delete_client_unused_since(tenant.id, client_id, cutoff)
                    .await?
                {
                    tracing::info!(tenant = %tenant.slug, %client_id, "unused dynamic client deleted");
                    self.invalidator
                        .announce(Invalidation::client(tenant.id, client_id))
                        .await;
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }
}

/// What a new client is made of.
pub struct NewClient {
    pub metadata: ClientMetadata,
    pub policy: ClientPolicy,
    /// Registered through the registration endpoint: gets a registration access token and
    /// expires when unused.
    pub dynamic: bool,
}

/// Keys registered by value must parse as public JWKs now, not at the first assertion.
pub fn check_keys(metadata: &ClientMetadata) -> Result<(), ServiceError> {
    if let Some(jwks) = &metadata.jwks {
        crate::jose::jwt::check_public_keys(jwks)
            .map_err(|e| ServiceError::Invalid(format!("jwks: {e}")))?;
    }
    Ok(())
}

/// What an update changes.
#[derive(Default)]
pub struct ClientUpdate {
    pub metadata: Option<ClientMetadata>,
    pub policy: Option<ClientPolicy>,
    /// Issue a new secret (and drop the old one).
    pub rotate_secret: bool,
    /// Issue a new registration access token (RFC 7592 §2.2).
    pub rotate_registration_token: bool,
    /// Apply only if the client is still as last seen (its `updated_at`).
    pub expected_updated_at: Option<i64>,
}

/// Tries to record a use before giving up until the next one.
const USE_WRITE_ATTEMPTS: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_never_look_like_options() {
        let rng = crate::rng::Rng::seeded(1);
        for _ in 0..2000 {
            let id = new_client_id(&rng);
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(id.len(), 22);
        }
    }
}
