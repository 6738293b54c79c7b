//! JWT client assertions (RFC 7521, RFC 7523 §3; OIDC Core §9): `client_secret_jwt` and
//! `private_key_jwt`, each assertion used once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::cache::CacheKey;
use actix_web::http::header;

use crate::error::{ErrorCode, OAuthError, ServiceError};
use crate::jose::jwt::{Exp, TimeRules};
use crate::jose::{JoseError, jwt};
use crate::model::Tenant;
use crate::model::client::{ASYMMETRIC_ALGS, AuthMethod, Client, ClientId, HMAC_ALGS};
use crate::oauth::params::Params;
use crate::urls::{Endpoint, TenantUrls};

use super::ClientAuth;
use super::{Authenticated, Failure};

/// Clock skew tolerated on assertion times.
const SKEW: i64 = 60;

/// The audiences an assertion may name: the issuer, the token endpoint, or the endpoint
/// called (RFC 7523 §3 item 3; OIDC Core §9).
fn audience_ok(claims: &serde_json::Map<String, Value>, accepted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => accepted.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str().is_some_and(|a| accepted.contains(&a))),
        _ => false,
    }
}

impl ClientAuth<'_> {
    pub(super) async fn check_assertion(
        &self,
        tenant: &Tenant,
        failure: Failure<'_>,
        endpoint: &str,
        params: &Params,
        assertion: &str,
    ) -> Result<Authenticated, OAuthError> {
        let issuer = failure.realm;
        let fail = |why: &str| failure.reject(why);
        let unverified =
            jwt::peek_claims(assertion).map_err(|_| fail("malformed client assertion"))?;
        // RFC 7523 §3: iss and sub are both the client_id.
        let sub = unverified.get("sub").and_then(Value::as_str);
        let iss = unverified.get("iss").and_then(Value::as_str);
        let (Some(sub), Some(iss)) = (sub, iss) else {
            return Err(fail("client assertion lacks iss or sub"));
        };
        if sub != iss || params.get("client_id").is_some_and(|id| id != sub) {
            return Err(fail("client assertion iss, sub and client_id disagree"));
        }
        // Times, audience and jti are checked before any signature work, so expired or
        // misdirected assertions cost nothing. The verified payload is these same bytes.
        let now = self.clock.now();
        let max_lifetime =
            i64::try_from(self.settings.oauth.client_assertion_max_lifetime_secs).unwrap_or(600);
        let rules = TimeRules {
            exp: Exp::Required,
            skew: SKEW,
            max_lifetime: Some(max_lifetime),
            check_iat: true,
        };
        let exp = match jwt::check_times(&unverified, now, rules) {
            Ok(Some(exp)) => exp,
            Ok(None) => return Err(fail("client assertion lacks exp")),
            Err(e) => return Err(fail(&format!("client assertion {e}"))),
        };
        let token_endpoint = TenantUrls::new(self.settings, &tenant.slug).endpoint(Endpoint::Token);
        if !audience_ok(&unverified, &[issuer, &token_endpoint, endpoint]) {
            return Err(fail("client assertion audience is not this server"));
        }
        if unverified.get("jti").and_then(Value::as_str).is_none() {
            return Err(fail("client assertion lacks jti"));
        }
        let client = match ClientId::parse(sub) {
            Some(id) => self.clients.find(tenant.id, &id).await?,
            None => None,
        }
        .ok_or_else(|| fail("client authentication failed"))?;
        let method = client.metadata.token_endpoint_auth_method;
        let registered_alg = client.metadata.token_endpoint_auth_signing_alg.as_deref();
        let claims = match method {
            AuthMethod::ClientSecretJwt => {
                let secret = self
                    .clients
                    .hmac_secret(tenant.id, &client)?
                    .ok_or_else(|| fail("client authentication failed"))?;
                let allowed: Vec<&str> =
                    registered_alg.map_or_else(|| HMAC_ALGS.to_vec(), |a| vec![a]);
                jwt::verify_hmac(assertion, &secret, &allowed)
            }
            AuthMethod::PrivateKeyJwt => {
                let allowed: Vec<String> = registered_alg.map_or_else(
                    || ASYMMETRIC_ALGS.iter().map(|a| (*a).to_owned()).collect(),
                    |a| vec![a.to_owned()],
                );
                let jwks = self.client_jwks(tenant.id, failure, &client, false).await?;
                match verify_off_worker(assertion, jwks.clone(), allowed.clone()).await {
                    // The client may have rotated its keys: fetch jwks_uri once more, and verify
                    // again only if that gave other keys.
                    Err(e) if client.metadata.jwks_uri.is_some() => {
                        let fresh = self.client_jwks(tenant.id, failure, &client, true).await?;
                        if Arc::ptr_eq(&fresh, &jwks) {
                            Err(e)
                        } else {
                            verify_off_worker(assertion, fresh, allowed).await
                        }
                    }
                    other => other,
                }
            }
            _ => return Err(fail("client authentication failed")),
        }
        .map_err(|e| {
            tracing::info!(client_id = %client.client_id, error = %e, "client assertion refused");
            fail("client assertion signature is invalid")
        })?;
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Err(fail("client assertion lacks jti"));
        };
        // Each accepted assertion leaves its jti in the shared state until it expires: a client
        // that authenticates faster than anyone needs to (it should reuse its access tokens) is
        // slowed down before it can crowd out everyone else's.
        let accepted = self
            .cache
            .count(
                &CacheKey::AssertionsBy {
                    tenant: tenant.id,
                    client: &client.client_id,
                },
                Duration::from_secs(60),
            )
            .await
            .map_err(ServiceError::from)?;
        if accepted > i64::from(self.settings.oauth.client_assertions_per_minute) {
            return Err(OAuthError::code(
                ErrorCode::RateLimited,
                "too many client assertions from this client; reuse access tokens",
            )
            .with_header(header::RETRY_AFTER, "60"));
        }
        // RFC 7523 §3 item 7: a jti is used once, on any replica, until the assertion expires.
        let key = CacheKey::AssertionJti {
            tenant: tenant.id,
            client: &client.client_id,
            jti,
        };
        let ttl = Duration::from_secs(u64::try_from(exp - now + SKEW).unwrap_or(1).max(1));
        if !self
            .cache
            .first_sighting(&key, ttl)
            .await
            .map_err(ServiceError::from)?
        {
            return Err(fail("client assertion was already used"));
        }
        Ok(Authenticated { client, method })
    }
}

/// Verifies an assertion with the client's keys on the blocking pool: an RSA-4096
/// verification, or several candidate keys, costs more than an actix worker should spend
/// away from other requests.
async fn verify_off_worker(
    assertion: &str,
    jwks: Arc<Value>,
    allowed: Vec<String>,
) -> Result<serde_json::Map<String, Value>, JoseError> {
    let token = assertion.to_owned();
    tokio::task::spawn_blocking(move || {
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        jwt::verify_with_jwks(&token, &jwks, &allowed)
    })
    .await
    .map_err(|e| JoseError(format!("verification task failed: {e}")))?
}

impl ClientAuth<'_> {
    /// The claims of `token` if one of `client`'s registered keys signed it with an algorithm
    /// of `allowed` (request objects, RFC 9101 §6.2); its `jwks_uri` is fetched again once if
    /// the cached keys do not verify it. `Err`: why not (for logs).
    pub async fn signed_by_client(
        &self,
        tenant: &Tenant,
        client: &Client,
        token: &str,
        allowed: Vec<String>,
    ) -> Result<serde_json::Map<String, Value>, String> {
        let failure = Failure {
            realm: "",
            via_header: false,
        };
        let jwks = self
            .client_jwks(tenant.id, failure, client, false)
            .await
            .map_err(|e| e.description.clone().unwrap_or_default())?;
        match verify_off_worker(token, jwks.clone(), allowed.clone()).await {
            Err(_) if client.metadata.jwks_uri.is_some() => {
                let fresh = self
                    .client_jwks(tenant.id, failure, client, true)
                    .await
                    .map_err(|e| e.description.clone().unwrap_or_default())?;
                verify_off_worker(token, fresh, allowed)
                    .await
                    .map_err(|e| e.to_string())
            }
            other => other.map_err(|e| e.to_string()),
        }
    }
}
