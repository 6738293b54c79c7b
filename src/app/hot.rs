//! The replica's hot copies: one cache per feature, each defined by the feature that owns it
//! and saying what an invalidation drops from it. This is the one place that gathers them,
//! so the state itself names no feature.

use std::time::Duration;

use crate::cache::{Invalidated, Invalidation};
use crate::clients::ClientCache;
use crate::config::Settings;
use crate::keys::KeyCache;
use crate::oauth::access_token::TokenCache;
use crate::oauth::client_auth::JwksCache;
use crate::tenants::TenantCache;

/// This replica's hot copies, each owned by its feature, which says what an invalidation
/// drops from it ([`Invalidated`]).
pub struct HotCopies {
    pub tenants: TenantCache,
    pub keys: KeyCache,
    pub clients: ClientCache,
    pub jwks: JwksCache,
    pub tokens: TokenCache,
}

impl HotCopies {
    pub(super) fn new(settings: &Settings) -> HotCopies {
        let ttl = Duration::from_secs(settings.cache.hot_ttl_secs);
        HotCopies {
            tenants: TenantCache::new(ttl),
            keys: KeyCache::new(ttl),
            clients: ClientCache::new(ttl),
            jwks: JwksCache::new(Duration::from_secs(settings.oauth.jwks_uri_cache_secs)),
            tokens: TokenCache::new(ttl),
        }
    }

    fn each(&self) -> [&dyn Invalidated; 5] {
        [
            &self.tenants,
            &self.keys,
            &self.clients,
            &self.jwks,
            &self.tokens,
        ]
    }
}

impl Invalidated for HotCopies {
    /// Applies one invalidation to every hot cache.
    fn evict(&self, message: &Invalidation) {
        for cache in self.each() {
            cache.evict(message);
        }
    }

    /// Drops every hot copy.
    fn clear(&self) {
        for cache in self.each() {
            cache.clear();
        }
    }
}
