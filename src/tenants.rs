//! Tenants as a service: cached lookups, creation with initial keys, deletion, and the
//! cross-replica invalidation that keeps every replica's hot copies honest.

use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::cache::{CacheEvent, SharedState};
use crate::error::ServiceError;
use crate::keys;
use crate::model::client::ClientId;
use crate::model::{Tenant, TenantId, TenantSettings, TenantSlug};
use crate::store::StoreError;

/// The channel on which replicas announce changed tenants and keys.
pub const INVALIDATION_CHANNEL: &str = "invalidate";

/// An invalidation message: drop hot copies for this tenant.
#[derive(Debug, Serialize, Deserialize)]
struct Invalidation {
    tenant_id: uuid::Uuid,
    slug: Option<String>,
    /// A changed client: only its hot copies go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// A revoked opaque access token, by the hex of its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// Looks a tenant up, from the hot copy when fresh (negative answers are cached too).
pub async fn find(state: &AppState, slug: &TenantSlug) -> Result<Option<Tenant>, ServiceError> {
    let key = slug.as_str().to_owned();
    if let Some(hit) = state.hot.tenants.get(&key) {
        return Ok(Some(hit));
    }
    if state.hot.missing.get(&key).is_some() {
        return Ok(None);
    }
    let (found_gen, missing_gen) = (
        state.hot.tenants.generation(),
        state.hot.missing.generation(),
    );
    let found = state.store.tenant_by_slug(slug).await?;
    match &found {
        Some(tenant) => state.hot.tenants.insert_if(found_gen, key, tenant.clone()),
        None => state.hot.missing.insert_if(missing_gen, key, ()),
    }
    Ok(found)
}

/// Like [`find`], but a missing tenant is an error.
pub async fn get(state: &AppState, slug: &TenantSlug) -> Result<Tenant, ServiceError> {
    find(state, slug)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no tenant named '{slug}'")))
}

pub async fn list(state: &AppState) -> Result<Vec<Tenant>, ServiceError> {
    Ok(state.store.tenants().await?)
}

/// Creates a tenant with an active and a next key for every algorithm.
pub async fn create(
    state: &AppState,
    slug: &TenantSlug,
    display_name: Option<&str>,
) -> Result<Tenant, ServiceError> {
    create_with(state, slug, display_name, true).await
}

/// Creates a tenant. With `rsa_now` false, only its ES256 and EdDSA keys are made (well under
/// a millisecond each): the tenant is usable at once (access tokens are ES256), and creating
/// thousands does not wait on RSA key generation. Its RSA keys (active and next) are made on
/// its first RS256 signature (an ID token, a JWT introspection response), or by a rotation.
pub async fn create_with(
    state: &AppState,
    slug: &TenantSlug,
    display_name: Option<&str>,
    rsa_now: bool,
) -> Result<Tenant, ServiceError> {
    let display_name = display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(slug.as_str());
    if display_name.chars().count() > 200 || display_name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(
            "display name must be at most 200 characters without control characters".into(),
        ));
    }
    let now = state.clock.now();
    let material = keys::initial_material(state, rsa_now).await?;
    let created = state
        .store
        .create_tenant(slug, display_name, now, |id| {
            keys::seal_all(state, id, material, now)
        })
        .await;
    let tenant = match created {
        Ok(result) => result?,
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::Conflict(format!(
                "tenant '{slug}' already exists"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    announce(state, tenant.id, Some(slug)).await;
    tracing::info!(tenant = %slug, issuer = %state.settings.issuer(slug), "tenant created");
    Ok(tenant)
}

/// Replaces a tenant's settings and tells every replica.
pub async fn configure(
    state: &AppState,
    slug: &TenantSlug,
    settings: TenantSettings,
) -> Result<Tenant, ServiceError> {
    if let Some(jwks) = &settings.software_statement_jwks {
        // Public keys only: a private key here would be a leak waiting to happen.
        crate::model::client::check_jwks(jwks).map_err(|e| {
            ServiceError::Invalid(format!("software_statement_jwks: {}", e.description))
        })?;
        crate::jose::jwk_set(jwks)
            .map_err(|e| ServiceError::Invalid(format!("software_statement_jwks: {e}")))?;
    }
    if let Some(ttl) = settings.access_token_ttl_secs
        && (ttl == 0 || ttl > state.settings.oauth.max_access_token_ttl_secs)
    {
        return Err(ServiceError::Invalid(format!(
            "access_token_ttl_secs must be between 1 and {}",
            state.settings.oauth.max_access_token_ttl_secs
        )));
    }
    if let Some(ttl) = settings.dynamic_client_ttl_secs
        && ttl != 0
        && ttl < crate::model::MIN_DYNAMIC_CLIENT_TTL_SECS
    {
        return Err(ServiceError::Invalid(
            "dynamic_client_ttl_secs must be 0 (keep them) or at least one day (86400)".into(),
        ));
    }
    let tenant = get(state, slug).await?;
    if !state
        .store
        .update_tenant_settings(tenant.id, &settings)
        .await?
    {
        return Err(ServiceError::NotFound(format!("no tenant named '{slug}'")));
    }
    announce(state, tenant.id, Some(slug)).await;
    Ok(Tenant { settings, ..tenant })
}

/// Deletes a tenant and everything it owns.
pub async fn delete(state: &AppState, slug: &TenantSlug) -> Result<(), ServiceError> {
    let tenant = get(state, slug).await?;
    if !state.store.delete_tenant(tenant.id).await? {
        return Err(ServiceError::NotFound(format!("no tenant named '{slug}'")));
    }
    announce(state, tenant.id, Some(slug)).await;
    tracing::info!(tenant = %slug, "tenant deleted");
    Ok(())
}

/// A fresh install gets tenant `default`; an install whose tenants were all deleted does too.
pub async fn ensure_default(state: &AppState) -> Result<Option<Tenant>, ServiceError> {
    if !state.store.tenants().await?.is_empty() {
        return Ok(None);
    }
    match create(state, &TenantSlug::default_tenant(), Some("Default")).await {
        Ok(tenant) => Ok(Some(tenant)),
        // Another replica bootstrapped at the same moment.
        Err(ServiceError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Drops this replica's hot copies of a tenant and tells the other replicas to do the same.
/// A failed publish is logged, not fatal: the hot copies' TTL bounds the staleness.
pub async fn announce(state: &AppState, tenant: TenantId, slug: Option<&TenantSlug>) {
    publish(
        state,
        Invalidation {
            tenant_id: tenant.uuid(),
            slug: slug.map(|s| s.as_str().to_owned()),
            client_id: None,
            token: None,
        },
    )
    .await;
}

/// Drops every replica's hot copies of one client.
pub async fn announce_client(state: &AppState, tenant: TenantId, client_id: &ClientId) {
    publish(
        state,
        Invalidation {
            tenant_id: tenant.uuid(),
            slug: None,
            client_id: Some(client_id.as_str().to_owned()),
            token: None,
        },
    )
    .await;
}

/// Drops every replica's hot copy of a revoked opaque access token.
pub async fn announce_token(state: &AppState, tenant: TenantId, digest: [u8; 32]) {
    publish(
        state,
        Invalidation {
            tenant_id: tenant.uuid(),
            slug: None,
            client_id: None,
            token: Some(crate::crypto::hex(&digest)),
        },
    )
    .await;
}

async fn publish(state: &AppState, message: Invalidation) {
    evict(state, &message);
    match serde_json::to_string(&message) {
        Ok(json) => {
            if let Err(e) = state.cache.publish(INVALIDATION_CHANNEL, &json).await {
                tracing::warn!(error = %e, "could not publish invalidation");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not encode invalidation"),
    }
}

fn evict(state: &AppState, message: &Invalidation) {
    let same_tenant = |id: &TenantId| id.uuid() == message.tenant_id;
    if let Some(token) = &message.token {
        let digest = crate::crypto::unhex(token);
        state
            .hot
            .access_tokens
            .retain(|(t, d), _| !(same_tenant(t) && digest.as_deref() == Some(d.as_slice())));
        return;
    }
    if let Some(client_id) = &message.client_id {
        state
            .hot
            .clients
            .retain(|(t, c), _| !(same_tenant(t) && c.as_str() == client_id));
        state
            .hot
            .client_jwks
            .retain(|(t, c), _| !(same_tenant(t) && c.as_str() == client_id));
        // A new jwks_uri (or new keys) is fetched at once, not after the refetch pause.
        state
            .hot
            .jwks_refetched
            .retain(|(t, c), _| !(same_tenant(t) && c.as_str() == client_id));
        state
            .hot
            .unknown_clients
            .retain(|(t, c), _| !(same_tenant(t) && c.as_str() == client_id));
        return;
    }
    // A tenant change (settings, deletion) reaches its clients too.
    if message.slug.is_some() {
        state
            .hot
            .unknown_clients
            .retain(|(t, _), _| !same_tenant(t));
        state.hot.clients.retain(|(t, _), _| !same_tenant(t));
        state.hot.client_jwks.retain(|(t, _), _| !same_tenant(t));
        state.hot.jwks_refetched.retain(|(t, _), _| !same_tenant(t));
        state.hot.access_tokens.retain(|(t, _), _| !same_tenant(t));
    }
    state
        .hot
        .keys
        .retain(|id, _| id.uuid() != message.tenant_id);
    // Key changes carry no slug: the tenant itself is unchanged.
    if let Some(slug) = &message.slug {
        state.hot.tenants.remove(slug);
        state.hot.missing.remove(slug);
    }
}

/// Subscribes to invalidations and applies them until the state shuts down.
pub async fn listen(state: &AppState) -> Result<(), ServiceError> {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = state.cache.subscribe(INVALIDATION_CHANNEL).await?;
    let mut stop = state.stopping();
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = stop.changed() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(CacheEvent::Message(json)) => {
                    match serde_json::from_str::<Invalidation>(&json) {
                        Ok(message) => evict(&state, &message),
                        Err(e) => tracing::warn!(error = %e, "ignoring malformed invalidation"),
                    }
                }
                // Messages were missed: forget everything.
                Ok(CacheEvent::Resync) | Err(RecvError::Lagged(_)) => {
                    state.hot.tenants.clear();
                    state.hot.missing.clear();
                    state.hot.keys.clear();
                    state.hot.clients.clear();
                    state.hot.unknown_clients.clear();
                    state.hot.client_jwks.clear();
                    state.hot.jwks_refetched.clear();
                    state.hot.access_tokens.clear();
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(())
}
