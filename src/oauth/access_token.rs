//! Access tokens: RFC 9068 JWTs (`typ: at+jwt`, signed with the tenant's ES256 key, nothing
//! stored) or opaque reference tokens (stored hashed), per client; and the checks that decide
//! whether a token presented back to us is active (RFC 7662 §2.2).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cache::{HotMap, Invalidated, Invalidation, Invalidator};
use crate::clients::Clients;
use crate::clock::Clock;
use crate::config::{OAuthSettings, Settings};
use crate::crypto::{b64url, sha256};
use crate::error::ServiceError;
use crate::jose::jwt;
use crate::keys::Keys;
use crate::model::TenantId;
use crate::model::claims::{AccessTokenClaims, Audience};
use crate::model::client::{Client, ClientId};
use crate::model::token::{Scope, StoredAccessToken, TokenFormat};
use crate::model::{SigningAlg, Tenant};
use crate::rng::Rng;
use crate::store::Store;

/// Most opaque access tokens kept hot.
const HOT_TOKENS: usize = 50_000;

/// This replica's hot copies of opaque access tokens, by tenant and digest. Their records
/// never change but by revocation, which evicts them on every replica.
pub struct TokenCache {
    pub opaque: HotMap<(TenantId, [u8; 32]), Arc<StoredAccessToken>>,
}

impl TokenCache {
    pub fn new(ttl: std::time::Duration) -> TokenCache {
        TokenCache {
            opaque: HotMap::new(ttl, HOT_TOKENS),
        }
    }
}

impl Invalidated for TokenCache {
    fn evict(&self, message: &Invalidation) {
        match message {
            Invalidation::AccessToken { digest, .. } => {
                let digest = crate::crypto::unhex(digest);
                self.opaque.retain(|(t, d), _| {
                    !(message.concerns(*t) && digest.as_deref() == Some(d.as_slice()))
                });
            }
            Invalidation::Tenant { .. } => self.opaque.retain(|(t, _), _| !message.concerns(*t)),
            _ => {}
        }
    }

    fn clear(&self) {
        self.opaque.clear();
    }
}

/// The access token service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct AccessTokens<'a> {
    pub store: &'a Store,
    pub hot: &'a TokenCache,
    pub keys: Keys<'a>,
    pub clients: Clients<'a>,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
    pub invalidator: &'a Invalidator,
}

/// RFC 9068 §2.1: the media type of JWT access tokens.
pub const AT_JWT_TYP: &str = "at+jwt";

/// What an access token stands for.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub sub: String,
    pub client_id: ClientId,
    pub scope: Scope,
    pub audience: Vec<String>,
    /// RFC 8693 §4.1: the acting party, for delegation.
    pub act: Option<Value>,
    /// RFC 7800 confirmation (sender-constrained tokens).
    pub cnf: Option<Value>,
    pub format: TokenFormat,
    /// The JWS algorithm of a JWT access token (RFC 9068 §2.1; ES256 unless the client says).
    pub alg: SigningAlg,
    /// The refresh token family it was refreshed from: revoking the family ends it too
    /// (RFC 7009 §2.1).
    pub family: Option<uuid::Uuid>,
    pub ttl_secs: u64,
    /// An absolute end the token may not outlive (the subject it was exchanged from, the
    /// ceiling of its grant), applied to the same `now` as its lifetime.
    pub not_after: Option<i64>,
    /// For a person's token: how they authenticated (OIDC Core §2 `auth_time`, `acr`, `amr`).
    pub auth: Option<Authentication>,
    /// Claims asked of the userinfo endpoint by name (OIDC Core §5.5).
    pub userinfo_claims: Option<Vec<String>>,
}

/// How a person authenticated, carried into their access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub auth_time: i64,
    pub acr: Option<String>,
    pub amr: Vec<String>,
}

impl TokenSpec {
    /// A token for `client` with its policy's format, algorithm and lifetime; no actor, no
    /// confirmation, no refresh family (set those on the result where they apply).
    pub fn for_client(
        settings: &OAuthSettings,
        tenant: &Tenant,
        client: &Client,
        sub: String,
        scope: Scope,
        audience: Vec<String>,
    ) -> TokenSpec {
        TokenSpec {
            sub,
            client_id: client.client_id.clone(),
            scope,
            audience,
            act: None,
            cnf: None,
            format: client.policy.token_format(),
            alg: client.policy.signing_alg(),
            family: None,
            ttl_secs: ttl_for(settings, tenant, client),
            not_after: None,
            auth: None,
            userinfo_claims: None,
        }
    }
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub format: TokenFormat,
}

/// The access token lifetime for `client`: the client's, else the tenant's, else the server's.
pub fn ttl_for(settings: &OAuthSettings, tenant: &Tenant, client: &Client) -> u64 {
    client
        .policy
        .access_token_ttl_secs
        .or(tenant.settings.access_token_ttl_secs)
        .unwrap_or(settings.access_token_ttl_secs)
        .min(settings.max_access_token_ttl_secs)
}

impl AccessTokens<'_> {
    /// The RFC 9068 §2.2 claim set.
    fn claims(&self, tenant: &Tenant, spec: &TokenSpec, now: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: self.settings.issuer(&tenant.slug),
            sub: spec.sub.clone(),
            aud: Audience::of(spec.audience.clone()),
            exp: now
                .saturating_add(i64::try_from(spec.ttl_secs).unwrap_or(i64::MAX))
                .min(spec.not_after.unwrap_or(i64::MAX)),
            iat: now,
            jti: b64url(&self.rng.bytes::<16>()),
            client_id: spec.client_id.as_str().to_owned(),
            scope: (!spec.scope.is_empty()).then(|| spec.scope.clone()),
            act: spec.act.clone(),
            may_act: None,
            cnf: spec.cnf.clone(),
            refresh_family: spec.family,
            auth_time: spec.auth.as_ref().map(|a| a.auth_time),
            acr: spec.auth.as_ref().and_then(|a| a.acr.clone()),
            amr: spec.auth.as_ref().map(|a| a.amr.clone()),
            userinfo_claims: spec.userinfo_claims.clone(),
        }
    }

    /// Issues an access token. A JWT costs one signature and no database write; an opaque token
    /// one insert.
    pub async fn issue(&self, tenant: &Tenant, spec: &TokenSpec) -> Result<Issued, ServiceError> {
        let now = self.clock.now();
        let claims = self.claims(tenant, spec, now);
        let exp = claims.exp;
        let claims = claims.to_map();
        let token = match spec.format {
            TokenFormat::Jwt => {
                let set = self.keys.signing_set(tenant.id, spec.alg).await?;
                let signer = set.signer(spec.alg).ok_or_else(|| {
                    ServiceError::Internal(format!("tenant has no active {} key", spec.alg))
                })?;
                signer.sign_jwt(&claims, AT_JWT_TYP)?
            }
            TokenFormat::Opaque => {
                let token = self.rng.token::<32>();
                self.store
                    .insert_access_token(
                        tenant.id,
                        sha256(token.as_bytes()),
                        &spec.client_id,
                        claims,
                        exp,
                        now,
                    )
                    .await?;
                token
            }
        };
        Ok(Issued {
            token,
            expires_in: u64::try_from(exp.saturating_sub(now)).unwrap_or(0),
            format: spec.format,
        })
    }

    /// Verifies a JWT signed by one of the tenant's published keys, issued by this tenant, live
    /// and not revoked (by `jti`). `typ` when given must match the header's (RFC 8725 §3.11).
    pub async fn verify_own_jwt(
        &self,
        tenant: &Tenant,
        token: &str,
        typ: Option<&str>,
    ) -> Result<Option<Map<String, Value>>, ServiceError> {
        let Ok(header) = jwt::peek_header(token) else {
            return Ok(None);
        };
        if let Some(typ) = typ
            && !header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))
            })
        {
            return Ok(None);
        }
        let Some(kid) = header.kid.as_deref() else {
            return Ok(None);
        };
        let set = self.keys.key_set(tenant.id).await?;
        let Some((alg, verifier)) = set.verifier(kid) else {
            return Ok(None);
        };
        if alg.as_str() != header.alg {
            return Ok(None);
        }
        let Ok(claims) = jwt::verify(token, verifier) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let issuer = self.settings.issuer(&tenant.slug);
        let iss_ok = claims.get("iss").and_then(Value::as_str) == Some(issuer.as_str());
        // Our own tokens: no skew (every replica signs with the same clock source), no iat check.
        let rules = jwt::TimeRules {
            exp: jwt::Exp::Required,
            skew: 0,
            max_lifetime: None,
            check_iat: false,
        };
        if !iss_ok || jwt::check_times(&claims, now, rules).is_err() {
            return Ok(None);
        }
        // Revoked tokens stay revoked whatever type they are presented as.
        if let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && self.store.is_jti_revoked(tenant.id, jti).await?
        {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    /// The access token `token` if it is one of this tenant's and active: JWTs by signature,
    /// issuer, expiry and the revocation list; opaque tokens by their stored record. A token of a
    /// deleted client is inactive.
    pub async fn inspect(
        &self,
        tenant: &Tenant,
        token: &str,
    ) -> Result<Option<ActiveAccessToken>, ServiceError> {
        let found = if jwt::looks_like_jwt(token) {
            let Some(claims) = self.verify_own_jwt(tenant, token, Some(AT_JWT_TYP)).await? else {
                return Ok(None);
            };
            // Every RFC 9068 §2.2 claim, a jti among them so that it can be revoked.
            let Some(claims) = AccessTokenClaims::from_map(&claims) else {
                return Ok(None);
            };
            let Some(client_id) = ClientId::parse(&claims.client_id) else {
                return Ok(None);
            };
            ActiveAccessToken {
                claims,
                client_id,
                format: TokenFormat::Jwt,
                person: None,
            }
        } else {
            if token.len() > 512 {
                return Ok(None);
            }
            let Some(stored) = self.stored_token(tenant, sha256(token.as_bytes())).await? else {
                return Ok(None);
            };
            if stored.revoked || stored.expires_at <= self.clock.now() {
                return Ok(None);
            }
            let Some(claims) = AccessTokenClaims::from_map(&stored.claims) else {
                // Never written by this server; whatever it is, it grants nothing.
                tracing::warn!("a stored opaque access token has malformed claims; inactive");
                return Ok(None);
            };
            ActiveAccessToken {
                claims,
                client_id: stored.client_id.clone(),
                format: TokenFormat::Opaque,
                person: None,
            }
        };
        let client_id = &found.client_id;
        // RFC 7009 §2.1: revoking a refresh token ends the access tokens of its grant.
        if let Some(family) = found.claims.refresh_family
            && self.store.is_family_revoked(tenant.id, family).await?
        {
            return Ok(None);
        }
        if self.clients.find(tenant.id, client_id).await?.is_none() {
            return Ok(None);
        }
        // A person's token ends with the person: disabled or deleted, it grants nothing.
        let mut found = found;
        if found.claims.auth_time.is_some() {
            let person = match crate::model::user::UserId::parse(&found.claims.sub) {
                Some(id) => self.store.user(tenant.id, id).await?,
                None => None,
            };
            match person {
                Some(user) if user.is_active() => found.person = Some(Box::new(user)),
                _ => return Ok(None),
            }
        }
        Ok(Some(found))
    }

    /// An opaque token's record, from the hot copy when fresh. Only live records are kept there:
    /// revocation evicts them on every replica, and a lost message costs at most
    /// `cache.hot_ttl_secs` (a Redis reconnect clears them all).
    async fn stored_token(
        &self,
        tenant: &Tenant,
        digest: [u8; 32],
    ) -> Result<Option<Arc<StoredAccessToken>>, ServiceError> {
        let key = (tenant.id, digest);
        if let Some(hit) = self.hot.opaque.get(&key) {
            return Ok(Some(hit));
        }
        let generation = self.hot.opaque.generation();
        let Some(stored) = self.store.access_token(tenant.id, digest).await? else {
            return Ok(None);
        };
        let stored = Arc::new(stored);
        if !stored.revoked {
            self.hot.opaque.insert_if(generation, key, stored.clone());
        }
        Ok(Some(stored))
    }

    /// Revokes an access token of `client`: a JWT by remembering its `jti` until it expires, an
    /// opaque token in place. `Ok(false)`: the token belongs to another client.
    pub async fn revoke(
        &self,
        tenant: &Tenant,
        active: &ActiveAccessToken,
        token: &str,
        client: &ClientId,
    ) -> Result<bool, ServiceError> {
        if &active.client_id != client {
            return Ok(false);
        }
        match active.format {
            TokenFormat::Jwt => {
                self.store
                    .revoke_jti(tenant.id, &active.claims.jti, active.claims.exp)
                    .await?;
            }
            TokenFormat::Opaque => {
                let digest = sha256(token.as_bytes());
                self.store
                    .revoke_access_token(tenant.id, digest, client, self.clock.now())
                    .await?;
                self.invalidator
                    .announce(Invalidation::access_token(tenant.id, &digest))
                    .await;
            }
        }
        Ok(true)
    }
}

/// An active access token presented back to us.
#[derive(Debug, Clone)]
pub struct ActiveAccessToken {
    pub claims: AccessTokenClaims,
    pub client_id: ClientId,
    pub format: TokenFormat,
    /// A person's token: the person, found active when the token was inspected.
    pub person: Option<Box<crate::model::user::User>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::client::{ClientPolicy, MetadataRequest, ValidationRules};
    use crate::model::{TenantSettings, TenantSlug};

    fn tenant(ttl: Option<u64>) -> Tenant {
        Tenant {
            id: TenantId::for_tests(1),
            slug: TenantSlug::parse("acme").unwrap(),
            display_name: "Acme".into(),
            created_at: 0,
            settings: TenantSettings {
                access_token_ttl_secs: ttl,
                ..TenantSettings::default()
            },
        }
    }

    fn client(ttl: Option<u64>) -> Client {
        let metadata = serde_json::from_value::<MetadataRequest>(serde_json::json!({
            "grant_types": ["client_credentials"]
        }))
        .unwrap()
        .validate(ValidationRules {
            allow_http_jwks_uri: false,
        })
        .unwrap();
        Client {
            client_id: ClientId::parse("c").unwrap(),
            metadata,
            policy: ClientPolicy {
                access_token_ttl_secs: ttl,
                ..ClientPolicy::default()
            },
            secret_hash: None,
            secret_sealed: None,
            secret_expires_at: None,
            registration_token_hash: None,
            dynamic: false,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn lifetime_is_the_clients_else_the_tenants_else_the_servers_and_never_above_the_cap() {
        let settings = OAuthSettings {
            access_token_ttl_secs: 300,
            max_access_token_ttl_secs: 3600,
            ..OAuthSettings::default()
        };
        assert_eq!(ttl_for(&settings, &tenant(None), &client(None)), 300);
        assert_eq!(ttl_for(&settings, &tenant(Some(600)), &client(None)), 600);
        assert_eq!(
            ttl_for(&settings, &tenant(Some(600)), &client(Some(60))),
            60
        );
        // A lowered cap binds values stored before it was lowered.
        assert_eq!(ttl_for(&settings, &tenant(None), &client(Some(7200))), 3600);
        assert_eq!(ttl_for(&settings, &tenant(Some(9000)), &client(None)), 3600);
    }
}
