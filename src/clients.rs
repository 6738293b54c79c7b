//! Clients as a service: cached lookups, creation with server-generated credentials, updates,
//! secret rotation, deletion, last-use tracking and the expiry of unused dynamic clients.
//! Secrets and registration access tokens are returned once and stored as SHA-256 digests
//! (DESIGN §3); the one exception is `client_secret_jwt`, whose HMAC key must be kept, sealed
//! under the master key.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::app::AppState;
use crate::cache::{HotMap, Invalidated, Invalidation};
use crate::crypto::sha256;
use crate::error::ServiceError;
use crate::model::client::{AuthMethod, Client, ClientId, ClientMetadata, ClientPolicy};
use crate::model::{Tenant, TenantId};
use crate::store::StoreError;

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
    pub touched: HotMap<(TenantId, String), ()>,
}

impl ClientCache {
    pub fn new(ttl: Duration) -> ClientCache {
        ClientCache {
            by_id: HotMap::new(ttl, HOT_CLIENTS),
            unknown: HotMap::new(ttl, UNKNOWN_CLIENTS),
            touched: HotMap::new(Duration::from_secs(3600), HOT_CLIENTS),
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
fn new_client_id(rng: &crate::rng::Rng) -> String {
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

/// A client of `tenant`, from the hot copy when fresh.
pub async fn find(
    state: &AppState,
    tenant: TenantId,
    client_id: &ClientId,
) -> Result<Option<Arc<Client>>, ServiceError> {
    let key = (tenant, client_id.clone());
    if let Some(hit) = state.hot.clients.by_id.get(&key) {
        return Ok(Some(hit));
    }
    if state.hot.clients.unknown.get(&key).is_some() {
        return Ok(None);
    }
    let generation = state.hot.clients.by_id.generation();
    let unknown_generation = state.hot.clients.unknown.generation();
    let found = state.store.client(tenant, client_id).await?.map(Arc::new);
    match &found {
        Some(client) => state
            .hot
            .clients
            .by_id
            .insert_if(generation, key, client.clone()),
        None => state
            .hot
            .clients
            .unknown
            .insert_if(unknown_generation, key, ()),
    }
    Ok(found)
}

/// Like [`find`], but a missing client is an error.
pub async fn get(
    state: &AppState,
    tenant: TenantId,
    client_id: &ClientId,
) -> Result<Arc<Client>, ServiceError> {
    find(state, tenant, client_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no client '{client_id}'")))
}

pub async fn list(state: &AppState, tenant: TenantId) -> Result<Vec<Client>, ServiceError> {
    Ok(state.store.clients(tenant).await?)
}

/// Sets a fresh secret on `client` as its method needs; returns the secret to show once.
fn new_secret(
    state: &AppState,
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
    let secret = state.rng.token::<SECRET_BYTES>();
    client.secret_hash = Some(sha256(secret.as_bytes()));
    client.secret_sealed = if method == AuthMethod::ClientSecretJwt {
        Some(
            state
                .master_key
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
    state: &AppState,
    tenant: TenantId,
    client: &Client,
) -> Result<Option<Vec<u8>>, ServiceError> {
    client
        .secret_sealed
        .as_deref()
        .map(|sealed| {
            state
                .master_key
                .open(sealed, &seal_context(tenant, &client.client_id))
                .map_err(ServiceError::from)
        })
        .transpose()
}

/// What a new client is made of.
pub struct NewClient {
    pub metadata: ClientMetadata,
    pub policy: ClientPolicy,
    /// Registered through the registration endpoint: gets a registration access token and
    /// expires when unused.
    pub dynamic: bool,
}

/// Creates a client with a server-generated id and, as its method needs, secret.
pub async fn create(
    state: &AppState,
    tenant: &Tenant,
    new: NewClient,
) -> Result<(Client, IssuedCredentials), ServiceError> {
    create_spending(state, tenant, new, None)
        .await?
        .ok_or_else(|| ServiceError::Internal("no initial access token to spend".into()))
}

/// Like [`create`], spending one use of the initial access token with digest `spend` in the
/// same transaction (RFC 7591 §3). `Ok(None)`: the token cannot be spent; nothing is created.
pub async fn create_spending(
    state: &AppState,
    tenant: &Tenant,
    new: NewClient,
    spend: Option<[u8; 32]>,
) -> Result<Option<(Client, IssuedCredentials)>, ServiceError> {
    check_policy(state, &new.policy)?;
    check_keys(&new.metadata)?;
    let now = state.clock.now();
    let client_id = ClientId::parse(&new_client_id(&state.rng))
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
    let client_secret = new_secret(state, tenant.id, &mut client)?;
    let registration_access_token = new.dynamic.then(|| {
        let token = state.rng.token::<32>();
        client.registration_token_hash = Some(sha256(token.as_bytes()));
        token
    });
    if !state
        .store
        .insert_client(tenant.id, &client, spend.map(|hash| (hash, now)))
        .await?
    {
        return Ok(None);
    }
    // Not unknown any more, should anyone have asked for this id before.
    state
        .hot
        .clients
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

/// Keys registered by value must parse as public JWKs now, not at the first assertion.
pub fn check_keys(metadata: &ClientMetadata) -> Result<(), ServiceError> {
    if let Some(jwks) = &metadata.jwks {
        crate::jose::jwt::check_public_keys(jwks)
            .map_err(|e| ServiceError::Invalid(format!("jwks: {e}")))?;
    }
    Ok(())
}

/// Administrator-set limits a policy must respect.
fn check_policy(state: &AppState, policy: &ClientPolicy) -> Result<(), ServiceError> {
    let max = state.settings.oauth.max_access_token_ttl_secs;
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

/// Applies `update` to a client, with a compare-and-swap on its last change.
pub async fn update(
    state: &AppState,
    tenant: TenantId,
    client_id: &ClientId,
    update: ClientUpdate,
) -> Result<(Client, IssuedCredentials), ServiceError> {
    let current = state
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
        check_policy(state, &policy)?;
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
        || (method == AuthMethod::ClientSecretJwt) != (old_method == AuthMethod::ClientSecretJwt);
    if update.rotate_secret || needs_new {
        if update.rotate_secret && !method.uses_secret() {
            return Err(ServiceError::Invalid(format!(
                "client '{client_id}' authenticates with {method}: it has no secret"
            )));
        }
        issued.client_secret = new_secret(state, tenant, &mut client)?;
    }
    if update.rotate_registration_token {
        let token = state.rng.token::<32>();
        client.registration_token_hash = Some(sha256(token.as_bytes()));
        issued.registration_access_token = Some(token);
    }
    client.updated_at = state.clock.now().max(current.updated_at + 1);
    if !state
        .store
        .replace_client(tenant, &client, current.updated_at)
        .await?
    {
        return Err(ServiceError::Conflict(format!(
            "client '{client_id}' changed meanwhile; retry"
        )));
    }
    state
        .invalidate(Invalidation::client(tenant, client_id))
        .await;
    Ok((client, issued))
}

/// Deletes a client.
pub async fn delete(
    state: &AppState,
    tenant: TenantId,
    client_id: &ClientId,
) -> Result<(), ServiceError> {
    if !state.store.delete_client(tenant, client_id).await? {
        return Err(ServiceError::NotFound(format!("no client '{client_id}'")));
    }
    state
        .invalidate(Invalidation::client(tenant, client_id))
        .await;
    tracing::info!(%tenant, %client_id, "client deleted");
    Ok(())
}

/// Runs `write`, a last-use update, in the background and at most once an hour per replica
/// for `key`, so request paths never wait on a database write for it. Unused dynamic clients
/// are deleted by their last use, so a failed write is retried (with backoff) and, if it
/// still fails, forgotten, so the next use writes again.
pub fn record_use<F, Fut>(state: &AppState, key: (TenantId, String), write: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    if state.hot.clients.touched.get(&key).is_some() {
        return;
    }
    let generation = state.hot.clients.touched.generation();
    state
        .hot
        .clients
        .touched
        .insert_if(generation, key.clone(), ());
    let state = state.clone();
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(200);
        for attempt in 1..=USE_WRITE_ATTEMPTS {
            match write(state.clone()).await {
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
        state.hot.clients.touched.remove(&key);
    });
}

/// Tries to record a use before giving up until the next one.
const USE_WRITE_ATTEMPTS: u32 = 4;

/// Records a client's use (see [`record_use`]).
pub async fn touch(state: &AppState, tenant: TenantId, client_id: &ClientId) {
    let id = client_id.clone();
    record_use(state, (tenant, client_id.to_string()), move |state| {
        let id = id.clone();
        async move {
            let now = state.clock.now();
            state.store.touch_client(tenant, &id, now).await
        }
    });
}

/// Deletes dynamically registered clients unused for their tenant's time; returns how many.
pub async fn purge_unused(state: &AppState) -> Result<usize, ServiceError> {
    let now = state.clock.now();
    let mut purged = 0;
    for tenant in state.store.tenants().await? {
        let ttl = tenant
            .settings
            .dynamic_client_ttl_secs
            .unwrap_or(state.settings.oauth.dynamic_client_ttl_secs);
        if ttl == 0 {
            continue;
        }
        let cutoff = now.saturating_sub(i64::try_from(ttl).unwrap_or(i64::MAX));
        let unused = match state.store.unused_clients(tenant.id, cutoff).await {
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
            if state
                .store
                .delete_client_unused_since(tenant.id, client_id, cutoff)
                .await?
            {
                tracing::info!(tenant = %tenant.slug, %client_id, "unused dynamic client deleted");
                state
                    .invalidate(Invalidation::client(tenant.id, client_id))
                    .await;
                purged += 1;
            }
        }
    }
    Ok(purged)
}

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
