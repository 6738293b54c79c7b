//! Access tokens: RFC 9068 JWTs (`typ: at+jwt`, signed with the tenant's ES256 key, nothing
//! stored) or opaque reference tokens (stored hashed), per client; and the checks that decide
//! whether a token presented back to us is active (RFC 7662 §2.2).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::app::AppState;
use crate::cache::{HotMap, Invalidated, Invalidation};
use crate::crypto::{b64url, sha256};
use crate::error::ServiceError;
use crate::jose::jwt;
use crate::model::TenantId;
use crate::model::claims::{AccessTokenClaims, Audience};
use crate::model::client::{Client, ClientId};
use crate::model::token::{Scope, StoredAccessToken, TokenFormat};
use crate::model::{SigningAlg, Tenant};
use crate::{clients, keys};

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
}

impl TokenSpec {
    /// A token for `client` with its policy's format, algorithm and lifetime; no actor, no
    /// confirmation, no refresh family (set those on the result where they apply).
    pub fn for_client(
        state: &AppState,
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
            ttl_secs: ttl_for(state, tenant, client),
            not_after: None,
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
pub fn ttl_for(state: &AppState, tenant: &Tenant, client: &Client) -> u64 {
    client
        .policy
        .access_token_ttl_secs
        .or(tenant.settings.access_token_ttl_secs)
        .unwrap_or(state.settings.oauth.access_token_ttl_secs)
        .min(state.settings.oauth.max_access_token_ttl_secs)
}

/// The RFC 9068 §2.2 claim set.
fn claims(state: &AppState, tenant: &Tenant, spec: &TokenSpec, now: i64) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: state.settings.issuer(&tenant.slug),
        sub: spec.sub.clone(),
        aud: Audience::of(spec.audience.clone()),
        exp: now
            .saturating_add(i64::try_from(spec.ttl_secs).unwrap_or(i64::MAX))
            .min(spec.not_after.unwrap_or(i64::MAX)),
        iat: now,
        jti: b64url(&state.rng.bytes::<16>()),
        client_id: spec.client_id.as_str().to_owned(),
        scope: (!spec.scope.is_empty()).then(|| spec.scope.clone()),
        act: spec.act.clone(),
        may_act: None,
        cnf: spec.cnf.clone(),
        refresh_family: spec.family,
        auth_time: None,
        acr: None,
        amr: None,
    }
}

/// Issues an access token. A JWT costs one signature and no database write; an opaque token
/// one insert.
pub async fn issue(
    state: &AppState,
    tenant: &Tenant,
    spec: &TokenSpec,
) -> Result<Issued, ServiceError> {
    let now = state.clock.now();
    let claims = claims(state, tenant, spec, now);
    let exp = claims.exp;
    let claims = claims.to_map();
    let token = match spec.format {
        TokenFormat::Jwt => {
            let set = keys::signing_set(state, tenant.id, spec.alg).await?;
            let signer = set.signer(spec.alg).ok_or_else(|| {
                ServiceError::Internal(format!("tenant has no active {} key", spec.alg))
            })?;
            signer.sign_jwt(&claims, AT_JWT_TYP)?
        }
        TokenFormat::Opaque => {
            let token = state.rng.token::<32>();
            state
                .store
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

/// An active access token presented back to us.
#[derive(Debug, Clone)]
pub struct ActiveAccessToken {
    pub claims: AccessTokenClaims,
    pub client_id: ClientId,
    pub format: TokenFormat,
}

/// Verifies a JWT signed by one of the tenant's published keys, issued by this tenant, live
/// and not revoked (by `jti`). `typ` when given must match the header's (RFC 8725 §3.11).
pub async fn verify_own_jwt(
    state: &AppState,
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
    let set = keys::key_set(state, tenant.id).await?;
    let Some((alg, verifier)) = set.verifier(kid) else {
        return Ok(None);
    };
    if alg.as_str() != header.alg {
        return Ok(None);
    }
    let Ok(claims) = jwt::verify(token, verifier) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let issuer = state.settings.issuer(&tenant.slug);
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
        && state.store.is_jti_revoked(tenant.id, jti).await?
    {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// The access token `token` if it is one of this tenant's and active: JWTs by signature,
/// issuer, expiry and the revocation list; opaque tokens by their stored record. A token of a
/// deleted client is inactive.
pub async fn inspect(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
) -> Result<Option<ActiveAccessToken>, ServiceError> {
    let found = if jwt::looks_like_jwt(token) {
        let Some(claims) = verify_own_jwt(state, tenant, token, Some(AT_JWT_TYP)).await? else {
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
        }
    } else {
        if token.len() > 512 {
            return Ok(None);
        }
        let Some(stored) = stored_token(state, tenant, sha256(token.as_bytes())).await? else {
            return Ok(None);
        };
        if stored.revoked || stored.expires_at <= state.clock.now() {
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
        }
    };
    let client_id = &found.client_id;
    // RFC 7009 §2.1: revoking a refresh token ends the access tokens of its grant.
    if let Some(family) = found.claims.refresh_family
        && state.store.is_family_revoked(tenant.id, family).await?
    {
        return Ok(None);
    }
    if clients::find(state, tenant.id, client_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(found))
}

/// An opaque token's record, from the hot copy when fresh. Only live records are kept there:
/// revocation evicts them on every replica, and a lost message costs at most
/// `cache.hot_ttl_secs` (a Redis reconnect clears them all).
async fn stored_token(
    state: &AppState,
    tenant: &Tenant,
    digest: [u8; 32],
) -> Result<Option<Arc<StoredAccessToken>>, ServiceError> {
    let key = (tenant.id, digest);
    if let Some(hit) = state.hot.tokens.opaque.get(&key) {
        return Ok(Some(hit));
    }
    let generation = state.hot.tokens.opaque.generation();
    let Some(stored) = state.store.access_token(tenant.id, digest).await? else {
        return Ok(None);
    };
    let stored = Arc::new(stored);
    if !stored.revoked {
        state
            .hot
            .tokens
            .opaque
            .insert_if(generation, key, stored.clone());
    }
    Ok(Some(stored))
}

/// Revokes an access token of `client`: a JWT by remembering its `jti` until it expires, an
/// opaque token in place. `Ok(false)`: the token belongs to another client.
pub async fn revoke(
    state: &AppState,
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
            state
                .store
                .revoke_jti(tenant.id, &active.claims.jti, active.claims.exp)
                .await?;
        }
        TokenFormat::Opaque => {
            let digest = sha256(token.as_bytes());
            state
                .store
                .revoke_access_token(tenant.id, digest, client, state.clock.now())
                .await?;
            state
                .invalidate(Invalidation::access_token(tenant.id, &digest))
                .await;
        }
    }
    Ok(true)
}
