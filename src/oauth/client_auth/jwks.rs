//! Clients' public keys (RFC 7591 §2 `jwks` / `jwks_uri`): registered by value, or fetched
//! from `jwks_uri` through the SSRF guard, cached, refetched at most once a minute, one fetch
//! per client at a time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use serde_json::Value;

use crate::cache::{HotMap, Invalidated, Invalidation, SingleFlight};
use crate::clients;
use crate::error::OAuthError;
use crate::jose::jwt;
use crate::model::TenantId;
use crate::model::client::{Client, ClientId};

use super::ssrf::is_public;
use super::{ClientAuth, Failure};

/// Largest `jwks_uri` document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Most clients' `jwks_uri` documents kept.
const HOT_DOCUMENTS: usize = 20_000;

/// This replica's copies of clients' `jwks_uri` documents.
pub struct JwksCache {
    pub documents: HotMap<(TenantId, ClientId), Arc<Value>>,
    /// Clients whose `jwks_uri` was refetched within the minute (a failed assertion
    /// refetches at most that often).
    pub refetched: HotMap<(TenantId, ClientId), ()>,
    /// One `jwks_uri` fetch per client at a time.
    pub fetches: SingleFlight<(TenantId, ClientId)>,
}

impl JwksCache {
    /// Documents are kept `ttl` (`oauth.jwks_uri_cache_secs`).
    pub fn new(ttl: Duration) -> JwksCache {
        JwksCache {
            documents: HotMap::new(ttl, HOT_DOCUMENTS),
            refetched: HotMap::new(Duration::from_secs(60), HOT_DOCUMENTS),
            fetches: SingleFlight::default(),
        }
    }
}

impl Invalidated for JwksCache {
    fn evict(&self, message: &Invalidation) {
        // Each eviction bumps the map's generation and so voids loads in flight: only the
        // messages that concern clients may do that.
        if !message.concerns_clients() {
            return;
        }
        let reaches = |(t, c): &(TenantId, ClientId)| clients::reaches(message, *t, c.as_str());
        self.documents.retain(|k, _| !reaches(k));
        // A new jwks_uri (or new keys) is fetched at once, not after the refetch pause.
        self.refetched.retain(|k, _| !reaches(k));
    }

    fn clear(&self) {
        self.documents.clear();
        self.refetched.clear();
    }
}

impl ClientAuth<'_> {
    /// The client's public keys: registered by value, or fetched from its `jwks_uri` (cached).
    pub(super) async fn client_jwks(
        &self,
        tenant: TenantId,
        fail: Failure<'_>,
        client: &Client,
        refresh: bool,
    ) -> Result<Arc<Value>, OAuthError> {
        if let Some(jwks) = &client.metadata.jwks {
            return Ok(Arc::new(jwks.clone()));
        }
        let Some(uri) = &client.metadata.jwks_uri else {
            return Err(fail.reject("client has no keys"));
        };
        let key = (tenant, client.client_id.clone());
        // One fetch per client at a time (single flight): a burst of assertions after a key
        // rotation, or a cold start, costs the client's server one request, not one each.
        let mut flight = None;
        loop {
            let cached = self.jwks.documents.get(&key);
            // A refetch after a failed verification, or a fetch after a failed fetch, happens at
            // most once a minute per client: bad assertions cannot make us hammer anyone's server.
            let recently = self.jwks.refetched.get(&key).is_some();
            match cached {
                Some(hit) if !refresh || recently => return Ok(hit),
                None if recently => {
                    return Err(fail.reject("the client's jwks_uri could not be fetched"));
                }
                _ => {}
            }
            if flight.is_some() {
                break;
            }
            // Whoever held the flight before us may have done our fetch: look again.
            flight = Some(self.jwks.fetches.enter(&key).await);
        }
        if self.jwks.documents.get(&key).is_some() {
            let generation = self.jwks.refetched.generation();
            self.jwks.refetched.insert_if(generation, key.clone(), ());
        }
        let generation = self.jwks.documents.generation();
        let fetched = self.fetch_jwks(uri).await.map_err(|e| {
            let generation = self.jwks.refetched.generation();
            self.jwks.refetched
                .insert_if(generation, key.clone(), ());
            tracing::warn!(client_id = %client.client_id, jwks_uri = %uri, error = %e, "jwks_uri fetch failed");
            fail.reject("the client's jwks_uri could not be fetched")
        })?;
        let fetched = Arc::new(fetched);
        self.jwks
            .documents
            .insert_if(generation, key, fetched.clone());
        Ok(fetched)
    }

    async fn fetch_jwks(&self, uri: &str) -> Result<Value, String> {
        // Host names are checked by the resolver; IP literals never reach it.
        let url = url::Url::parse(uri).map_err(|e| e.to_string())?;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.settings.oauth.allow_private_jwks_uri
            && !is_public(ip)
        {
            return Err(format!("{ip} is not a public address"));
        }
        let mut response = self
            .http
            .get(uri)
            .header(
                header::ACCEPT.as_str(),
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("document too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        // The same rules as keys registered by value: 1-20 public keys.
        crate::model::client::check_jwks(&value).map_err(|e| e.description)?;
        jwt::check_public_keys(&value).map_err(|e| e.to_string())?;
        Ok(value)
    }
}
