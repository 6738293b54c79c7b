//! Refresh tokens (RFC 6749 §6; OAuth 2.1 §4.3.1): opaque, stored hashed, rotated on every
//! use. A token used twice means it leaked: the whole family is revoked (reuse detection).

use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::crypto::{random_token, sha256};
use crate::error::{ErrorCode, OAuthError, ServiceError};
use crate::model::Tenant;
use crate::model::client::{Client, ClientId};
use crate::model::token::{Scope, StoredRefreshToken};
use crate::oauth::access_token::{self, TokenSpec};
use crate::oauth::params::Params;
use crate::oauth::token::{TokenResponse, granted_scope};

/// What a refresh token grants again: stored with it, copied into each token refreshed from it.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub sub: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    pub act: Option<Value>,
    /// When the family ends, however often it is rotated (set at the first issue).
    pub family_expires_at: Option<i64>,
}

impl RefreshGrant {
    fn to_claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        if let Some(exp) = self.family_expires_at {
            claims.insert("family_exp".into(), exp.into());
        }
        claims.insert("sub".into(), self.sub.clone().into());
        claims.insert("scope".into(), self.scope.to_string().into());
        claims.insert("aud".into(), json!(self.audience));
        if let Some(act) = &self.act {
            claims.insert("act".into(), act.clone());
        }
        claims
    }

    fn from_claims(claims: &Map<String, Value>) -> Option<RefreshGrant> {
        Some(RefreshGrant {
            sub: claims.get("sub")?.as_str()?.to_owned(),
            scope: Scope::parse(claims.get("scope")?.as_str()?).ok()?,
            audience: claims
                .get("aud")?
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            act: claims.get("act").cloned(),
            family_expires_at: claims.get("family_exp").and_then(Value::as_i64),
        })
    }
}

fn ttl(state: &AppState, client: &Client) -> u64 {
    client
        .policy
        .refresh_token_ttl_secs
        .unwrap_or(state.settings.oauth.refresh_token_ttl_secs)
}

/// Issues a refresh token in `family` (a new family when `None`).
pub async fn issue(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    grant: &RefreshGrant,
    family: Option<uuid::Uuid>,
) -> Result<String, ServiceError> {
    let token = random_token::<32>();
    let now = state.clock.now();
    let own = now.saturating_add(i64::try_from(ttl(state, client)).unwrap_or(i64::MAX));
    // A rotated token never outlives its family: rotation is not a way to live forever.
    let family_exp = grant.family_expires_at.unwrap_or(own);
    let exp = own.min(family_exp);
    let grant = RefreshGrant {
        family_expires_at: Some(family_exp),
        ..grant.clone()
    };
    state
        .store
        .insert_refresh_token(
            tenant.id,
            sha256(token.as_bytes()),
            family.unwrap_or_else(uuid::Uuid::now_v7),
            &client.client_id,
            grant.to_claims(),
            exp,
            now,
        )
        .await?;
    Ok(token)
}

/// The stored refresh token `token` of this tenant if it is live (not used, revoked or
/// expired).
pub async fn inspect(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
) -> Result<Option<StoredRefreshToken>, ServiceError> {
    if token.len() > 512 {
        return Ok(None);
    }
    let stored = state
        .store
        .refresh_token(tenant.id, sha256(token.as_bytes()))
        .await?;
    Ok(stored.filter(|t| !t.used && !t.revoked && state.clock.now() < t.expires_at))
}

/// Revokes a refresh token of `client` and its family. `Ok(None)`: no such token;
/// `Ok(Some(false))`: another client's.
pub async fn revoke(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
    client: &ClientId,
) -> Result<Option<bool>, ServiceError> {
    if token.len() > 512 {
        return Ok(None);
    }
    let Some(stored) = state
        .store
        .refresh_token(tenant.id, sha256(token.as_bytes()))
        .await?
    else {
        return Ok(None);
    };
    if &stored.client_id != client {
        return Ok(Some(false));
    }
    state
        .store
        .revoke_refresh_family(tenant.id, stored.family_id, state.clock.now())
        .await?;
    Ok(Some(true))
}

fn invalid_grant(why: &str) -> OAuthError {
    OAuthError::code(ErrorCode::InvalidGrant, why)
}

/// A used token came back: revoke its family (it leaked) and refuse.
async fn reused(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    stored: &StoredRefreshToken,
    now: i64,
) -> Result<OAuthError, ServiceError> {
    let revoked = state
        .store
        .revoke_refresh_family(tenant.id, stored.family_id, now)
        .await?;
    tracing::warn!(client_id = %client.client_id, revoked, "refresh token reused: family revoked");
    Ok(invalid_grant("the refresh token is invalid"))
}

/// `grant_type=refresh_token`.
pub async fn grant(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let raw = params.required("refresh_token")?;
    let stored = if raw.len() > 512 {
        None
    } else {
        state
            .store
            .refresh_token(tenant.id, sha256(raw.as_bytes()))
            .await
            .map_err(ServiceError::from)?
    };
    let Some(stored) = stored else {
        return Err(invalid_grant("the refresh token is invalid"));
    };
    // RFC 6749 §6: the token must have been issued to the authenticated client.
    if stored.client_id != client.client_id {
        return Err(invalid_grant("the refresh token is invalid"));
    }
    let now = state.clock.now();
    if stored.revoked || stored.expires_at <= now {
        return Err(invalid_grant("the refresh token is invalid"));
    }
    if stored.used {
        return Err(reused(state, tenant, client, &stored, now).await?);
    }
    // The request is checked before the token is spent, so a malformed request does not burn
    // the grant and make the client's retry look like reuse.
    let original = RefreshGrant::from_claims(&stored.claims)
        .ok_or_else(|| ServiceError::Internal("refresh token claims are malformed".into()))?;
    // RFC 6749 §6: a narrower scope may be asked for, never a wider one; and never more than
    // the client may hold now.
    let mut allowed = original.scope.clone();
    if let Some(client_scope) = &client.metadata.scope {
        allowed = allowed.intersection(client_scope);
    }
    let scope = granted_scope(params.get("scope"), &allowed)?;
    // RFC 8707 §2.2: resources on refresh must be among those originally granted.
    let requested = params.all("resource");
    let audience = if requested.is_empty() {
        original.audience.clone()
    } else {
        if let Some(extra) = requested.iter().find(|r| !original.audience.contains(r)) {
            return Err(OAuthError::code(
                ErrorCode::InvalidTarget,
                format!(
                    "'{}' was not part of the original grant",
                    extra.chars().take(100).collect::<String>()
                ),
            ));
        }
        requested.to_vec()
    };
    // OAuth 2.1 §4.3.1: a rotated token presented again revokes the family. Single use is one
    // conditional update: of two racing requests, one wins and the other counts as reuse.
    if !state
        .store
        .use_refresh_token(tenant.id, stored.id, now)
        .await
        .map_err(ServiceError::from)?
    {
        return Err(reused(state, tenant, client, &stored, now).await?);
    }
    let spec = TokenSpec {
        act: original.act.clone(),
        family: Some(stored.family_id),
        ..TokenSpec::for_client(
            state,
            tenant,
            client,
            original.sub.clone(),
            scope.clone(),
            audience,
        )
    };
    let issued = async {
        let access = access_token::issue(state, tenant, &spec).await?;
        let refresh = issue(state, tenant, client, &original, Some(stored.family_id)).await?;
        Ok::<_, ServiceError>((access, refresh))
    }
    .await;
    let (issued, refresh_token) = match issued {
        Ok(both) => both,
        Err(e) => {
            // Nothing was handed out: the token stays usable for the client's retry.
            if let Err(undo) = state.store.unuse_refresh_token(tenant.id, stored.id).await {
                tracing::warn!(error = %undo, "could not release a refresh token after a failure");
            }
            return Err(e.into());
        }
    };
    Ok(TokenResponse {
        refresh_token: Some(refresh_token),
        ..TokenResponse::bearer(issued, &scope)
    })
}
