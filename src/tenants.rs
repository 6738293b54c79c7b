//! Tenants as a service: cached lookups, creation with initial keys, deletion, and the
//! cross-replica invalidation that keeps every replica's hot copies honest.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{HotMap, Invalidated, Invalidation, Invalidator};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::ServiceError;
use crate::keys::Keys;
use crate::model::{Tenant, TenantSettings, TenantSlug};
use crate::store::{Store, StoreError};

/// Most tenants kept hot: an idle tenant costs a few hundred bytes here.
const HOT_TENANTS: usize = 20_000;
/// Most unknown tenant names remembered.
const MISSING_ENTRIES: usize = 1_000;

/// This replica's hot copies of tenants.
pub struct TenantCache {
    /// By slug.
    /// Shared, so a request's tenant costs a reference count, not a copy.
    pub by_slug: HotMap<String, Arc<Tenant>>,
    /// Slugs known not to exist: kept apart and small, so a flood of made-up names cannot
    /// push real tenants out.
    pub missing: HotMap<String, ()>,
}

impl TenantCache {
    pub fn new(ttl: Duration) -> TenantCache {
        TenantCache {
            by_slug: HotMap::new(ttl, HOT_TENANTS),
            missing: HotMap::new(ttl, MISSING_ENTRIES),
        }
    }
}

impl Invalidated for TenantCache {
    fn evict(&self, message: &Invalidation) {
        if let Invalidation::Tenant { slug, .. } = message {
            self.by_slug.remove(slug);
            self.missing.remove(slug);
        }
    }

    fn clear(&self) {
        self.by_slug.clear();
        self.missing.clear();
    }
}

/// The tenant service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct Tenants<'a> {
    pub store: &'a Store,
    pub hot: &'a TenantCache,
    pub keys: Keys<'a>,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub invalidator: &'a Invalidator,
}

impl Tenants<'_> {
    /// Looks a tenant up, from the hot copy when fresh (negative answers are cached too).
    pub async fn find(&self, slug: &TenantSlug) -> Result<Option<Arc<Tenant>>, ServiceError> {
        let key = slug.as_str().to_owned();
        if let Some(hit) = self.hot.by_slug.get(&key) {
            return Ok(Some(hit));
        }
        if self.hot.missing.get(&key).is_some() {
            return Ok(None);
        }
        let (found_gen, missing_gen) =
            (self.hot.by_slug.generation(), self.hot.missing.generation());
        let found = self.store.tenant_by_slug(slug).await?.map(Arc::new);
        match &found {
            Some(tenant) => self.hot.by_slug.insert_if(found_gen, key, tenant.clone()),
            None => self.hot.missing.insert_if(missing_gen, key, ()),
        }
        Ok(found)
    }

    /// Like [`Self::find`], but a missing tenant is an error.
    pub async fn get(&self, slug: &TenantSlug) -> Result<Arc<Tenant>, ServiceError> {
        self.find(slug)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no tenant named '{slug}'")))
    }

    pub async fn list(&self) -> Result<Vec<Tenant>, ServiceError> {
        Ok(self.store.tenants().await?)
    }

    /// Creates a tenant with an active and a next key for every algorithm.
    pub async fn create(
        &self,
        slug: &TenantSlug,
        display_name: Option<&str>,
    ) -> Result<Tenant, ServiceError> {
        self.create_with(slug, display_name, true).await
    }

    /// Creates a tenant. With `rsa_now` false, only its ES256 and EdDSA keys are made (well under
    /// a millisecond each): the tenant is usable at once (access tokens are ES256), and creating
    /// thousands does not wait on RSA key generation. Its RSA keys (active and next) are made on
    /// its first RS256 signature (an ID token, a JWT introspection response), or by a rotation.
    pub async fn create_with(
        &self,
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
        let now = self.clock.now();
        let material = self.keys.initial_material(rsa_now).await?;
        let created = self
            .store
            .create_tenant(slug, display_name, now, |id| {
                self.keys.seal_all(id, material, now)
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
        self.invalidator
            .announce(Invalidation::tenant(tenant.id, slug.as_str()))
            .await;
        tracing::info!(tenant = %slug, issuer = %self.settings.issuer(slug), "tenant created");
        Ok(tenant)
    }

    /// Replaces a tenant's settings and tells every replica.
    pub async fn configure(
        &self,
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
        settings.branding.check().map_err(ServiceError::Invalid)?;
        settings
            .check_outbound_allow()
            .map_err(ServiceError::Invalid)?;
        if let Some(ttl) = settings.access_token_ttl_secs
            && (ttl == 0 || ttl > self.settings.oauth.max_access_token_ttl_secs)
        {
            return Err(ServiceError::Invalid(format!(
                "access_token_ttl_secs must be between 1 and {}",
                self.settings.oauth.max_access_token_ttl_secs
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
        let tenant = self.get(slug).await?;
        if !self
            .store
            .update_tenant_settings(tenant.id, &settings)
            .await?
        {
            return Err(ServiceError::NotFound(format!("no tenant named '{slug}'")));
        }
        self.invalidator
            .announce(Invalidation::tenant(tenant.id, slug.as_str()))
            .await;
        Ok(Tenant {
            settings,
            ..(*tenant).clone()
        })
    }

    /// Deletes a tenant and everything it owns.
    pub async fn delete(&self, slug: &TenantSlug) -> Result<(), ServiceError> {
        let tenant = self.get(slug).await?;
        if !self.store.delete_tenant(tenant.id).await? {
            return Err(ServiceError::NotFound(format!("no tenant named '{slug}'")));
        }
        self.invalidator
            .announce(Invalidation::tenant(tenant.id, slug.as_str()))
            .await;
        tracing::info!(tenant = %slug, "tenant deleted");
        Ok(())
    }

    /// A fresh install gets tenant `default`; an install whose tenants were all deleted does too.
    pub async fn ensure_default(&self) -> Result<Option<Tenant>, ServiceError> {
        if !self.store.tenants().await?.is_empty() {
            return Ok(None);
        }
        match self
            .create(&TenantSlug::default_tenant(), Some("Default"))
            .await
        {
            Ok(tenant) => Ok(Some(tenant)),
            // Another replica bootstrapped at the same moment.
            Err(ServiceError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
