//! Refresh tokens (RFC 6749 §6; OAuth 2.1 §4.3.1): opaque, stored hashed, rotated on every
//! use. A token used twice means it leaked: the whole family is revoked (reuse detection).

use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::config::{OAuthSettings, Settings};
use crate::crypto::sha256;
use crate::error::{OAuthError, ServiceError, TokenError};
use crate::model::Tenant;
use crate::model::authorization::GrantOwner;
use crate::model::client::{Client, ClientId};
use crate::model::token::{
    NewRefreshToken, RefreshTokenState, Rotation, Scope, StoredRefreshToken,
};
use crate::oauth::access_token::{AccessTokens, Authentication, TokenSpec};
use crate::oauth::token::{TokenResponse, granted_scope, scope_ceiling};
use crate::oidc::id_token::{IdTokenSpec, IdTokens};
use crate::rng::Rng;
use crate::store::{NewGrant, Store};

/// What a refresh token grants again: stored with it, copied into each token refreshed from it.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub sub: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    pub act: Option<Value>,
    /// A hard end carried through every rotation: a refresh token obtained by exchanging a
    /// shorter-lived subject never outlives it (RFC 8693 §2.1; the subject's `exp`).
    pub until: Option<i64>,
    /// A person's grant (the authorization code flow): how they signed in, for the tokens
    /// refreshed from it.
    pub person: Option<PersonGrant>,
}

/// What a person's grant remembers of the sign-in (OIDC Core §12.2: a refreshed ID token keeps
/// `auth_time`, and `sid` names the same session).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersonGrant {
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    pub sid: String,
    /// The `claims` request parameter (§5.5), which goes on applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
}

impl PersonGrant {
    pub fn authentication(&self) -> Authentication {
        Authentication {
            auth_time: self.auth_time,
            acr: self.acr.clone(),
            amr: self.amr.clone(),
        }
    }
}

/// Claim (internal to stored refresh tokens) holding [`RefreshGrant::person`].
const PERSON_CLAIM: &str = "person";

/// Claim (internal to stored refresh tokens) holding [`RefreshGrant::until`].
const UNTIL_CLAIM: &str = "until";

/// A refresh token just issued, and when it expires.
#[derive(Debug)]
pub struct IssuedRefresh {
    pub token: String,
    pub expires_at: i64,
}

impl RefreshGrant {
    fn to_claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), self.sub.clone().into());
        claims.insert("scope".into(), self.scope.to_string().into());
        claims.insert("aud".into(), json!(self.audience));
        if let Some(act) = &self.act {
            claims.insert("act".into(), act.clone());
        }
        if let Some(until) = self.until {
            claims.insert(UNTIL_CLAIM.into(), until.into());
        }
        if let Some(person) = self
            .person
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok())
        {
            claims.insert(PERSON_CLAIM.into(), person);
        }
        claims
    }

    pub fn from_claims(claims: &Map<String, Value>) -> Option<RefreshGrant> {
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
            until: claims.get(UNTIL_CLAIM).and_then(Value::as_i64),
            person: match claims.get(PERSON_CLAIM) {
                None => None,
                Some(p) => Some(serde_json::from_value(p.clone()).ok()?),
            },
        })
    }
}

/// The refresh token service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct RefreshTokens<'a> {
    pub store: &'a Store,
    /// Authorization codes wait in the shared cache.
    pub cache: &'a crate::cache::Cache,
    /// Refreshing issues access tokens, and ID tokens for people.
    pub access: AccessTokens<'a>,
    pub id_tokens: IdTokens<'a>,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
}

/// The refresh token lifetime for `client`.
pub fn ttl(settings: &OAuthSettings, client: &Client) -> u64 {
    client
        .policy
        .refresh_token_ttl_secs
        .unwrap_or(settings.refresh_token_ttl_secs)
}

impl RefreshTokens<'_> {
    /// A new refresh token for `grant`, expiring at the first of its own lifetime, `end` (its
    /// family's) and the grant's own ceiling: a rotated token never outlives its family or the
    /// subject it was exchanged from.
    fn mint(
        &self,
        client: &Client,
        grant: &RefreshGrant,
        end: i64,
    ) -> (IssuedRefresh, NewRefreshToken) {
        let token = self.rng.token::<32>();
        let now = self.clock.now();
        let own = now
            .saturating_add(i64::try_from(ttl(&self.settings.oauth, client)).unwrap_or(i64::MAX));
        let expires_at = own.min(end).min(grant.until.unwrap_or(i64::MAX));
        let new = NewRefreshToken {
            token_hash: sha256(token.as_bytes()),
            client_id: client.client_id.clone(),
            claims: grant.to_claims(),
            expires_at,
            created_at: now,
        };
        (IssuedRefresh { token, expires_at }, new)
    }

    /// Issues the first token of a new family, which ends after the client's refresh lifetime
    /// or at `end`, whichever is first. Returns the token and its family.
    pub async fn start_family(
        &self,
        tenant: &Tenant,
        client: &Client,
        grant: &RefreshGrant,
        end: Option<i64>,
    ) -> Result<(IssuedRefresh, uuid::Uuid), ServiceError> {
        let (token, new) = self.mint(client, grant, end.unwrap_or(i64::MAX));
        let family = uuid::Uuid::now_v7();
        let family_end = new.expires_at;
        self.store
            .start_refresh_family(tenant.id, family, family_end, new)
            .await?;
        Ok((token, family))
    }

    /// Starts a person's grant: the family `family` owned by `owner`, with a first refresh
    /// token when `refresh` (else the family only names the access tokens, so revoking it
    /// ends them).
    pub async fn start_grant(
        &self,
        tenant: &Tenant,
        client: &Client,
        grant: &RefreshGrant,
        family: uuid::Uuid,
        owner: GrantOwner,
        refresh: bool,
    ) -> Result<Option<IssuedRefresh>, ServiceError> {
        let now = self.clock.now();
        let (token, new) = self.mint(client, grant, i64::MAX);
        let end = if refresh {
            new.expires_at
        } else {
            // A code's grant without a refresh token lasts as long as its access tokens can.
            now.saturating_add(
                i64::try_from(self.settings.oauth.max_access_token_ttl_secs).unwrap_or(i64::MAX),
            )
        };
        self.store
            .start_grant(
                tenant.id,
                NewGrant {
                    id: family,
                    client_id: client.client_id.clone(),
                    expires_at: end,
                    owner: Some(owner),
                    created_at: now,
                },
                refresh.then_some(new),
            )
            .await?;
        Ok(refresh.then_some(token))
    }

    /// Adds a token carrying `grant` to a live `family` (token exchange of an access token that
    /// came from it), expiring at the earlier of its lifetime and `end`. `None`: the family ended.
    pub async fn join_family(
        &self,
        tenant: &Tenant,
        client: &Client,
        family: uuid::Uuid,
        grant: &RefreshGrant,
        end: Option<i64>,
    ) -> Result<Option<IssuedRefresh>, ServiceError> {
        let (token, new) = self.mint(client, grant, end.unwrap_or(i64::MAX));
        Ok(
            match self
                .store
                .join_refresh_family(tenant.id, family, new)
                .await?
            {
                Rotation::Done => Some(token),
                Rotation::Reused | Rotation::FamilyEnded => None,
            },
        )
    }

    /// Rotates `stored` into a new token of its family carrying `grant` (one unit of work, see
    /// [`crate::store::Store::rotate_refresh_token`]). A reused token revokes the family.
    /// `Ok(Err(why))`: refused, nothing issued.
    pub async fn rotate(
        &self,
        tenant: &Tenant,
        client: &Client,
        stored: &StoredRefreshToken,
        grant: &RefreshGrant,
    ) -> Result<Result<IssuedRefresh, &'static str>, ServiceError> {
        let (token, new) = self.mint(client, grant, stored.family_expires_at);
        let outcome = self
            .store
            .rotate_refresh_token(tenant.id, stored.family_id, stored.id, new)
            .await?;
        Ok(match outcome {
            Rotation::Done => Ok(token),
            Rotation::Reused => {
                self.reuse_detected(tenant, client, stored).await?;
                Err("the refresh token is invalid")
            }
            Rotation::FamilyEnded => Err("the refresh token is invalid"),
        })
    }

    /// The stored refresh token `token` of this tenant if it is live (valid, in a live family,
    /// not expired).
    pub async fn inspect(
        &self,
        tenant: &Tenant,
        token: &str,
    ) -> Result<Option<StoredRefreshToken>, ServiceError> {
        Ok(self
            .lookup(tenant, token)
            .await?
            .filter(|t| t.is_live(self.clock.now())))
    }

    /// A refresh token presented by `client` outside the refresh grant (token exchange): live
    /// and its own, or nothing. A consumed one is reuse, as at the token endpoint: the family is
    /// revoked.
    pub async fn presented(
        &self,
        tenant: &Tenant,
        client: &Client,
        token: &str,
    ) -> Result<Option<StoredRefreshToken>, ServiceError> {
        let Some(stored) = self.lookup(tenant, token).await? else {
            return Ok(None);
        };
        if stored.client_id != client.client_id {
            return Ok(None);
        }
        if matches!(stored.state, RefreshTokenState::Consumed { .. }) {
            self.reuse_detected(tenant, client, &stored).await?;
            return Ok(None);
        }
        Ok(stored.is_live(self.clock.now()).then_some(stored))
    }

    async fn lookup(
        &self,
        tenant: &Tenant,
        token: &str,
    ) -> Result<Option<StoredRefreshToken>, ServiceError> {
        if token.len() > 512 {
            return Ok(None);
        }
        Ok(self
            .store
            .refresh_token(tenant.id, sha256(token.as_bytes()))
            .await?)
    }

    /// Revokes a refresh token of `client` and its family. `Ok(None)`: no such token;
    /// `Ok(Some(false))`: another client's.
    pub async fn revoke(
        &self,
        tenant: &Tenant,
        token: &str,
        client: &ClientId,
    ) -> Result<Option<bool>, ServiceError> {
        let Some(stored) = self.lookup(tenant, token).await? else {
            return Ok(None);
        };
        if &stored.client_id != client {
            return Ok(Some(false));
        }
        self.store
            .revoke_refresh_family(tenant.id, stored.family_id, self.clock.now())
            .await?;
        Ok(Some(true))
    }

    /// A consumed token came back: it leaked, so its family is revoked.
    async fn reuse_detected(
        &self,
        tenant: &Tenant,
        client: &Client,
        stored: &StoredRefreshToken,
    ) -> Result<(), ServiceError> {
        let was_live = self
            .store
            .revoke_refresh_family(tenant.id, stored.family_id, self.clock.now())
            .await?;
        tracing::warn!(client_id = %client.client_id, was_live, "refresh token reused: family revoked");
        Ok(())
    }

    /// `grant_type=refresh_token`.
    pub async fn grant(
        &self,
        tenant: &Tenant,
        client: &Client,
        raw: &str,
        requested_scope: Option<Scope>,
        resources: &[String],
    ) -> Result<TokenResponse, OAuthError> {
        let Some(stored) = self.lookup(tenant, raw).await? else {
            return Err(invalid_grant("the refresh token is invalid"));
        };
        // RFC 6749 §6: the token must have been issued to the authenticated client.
        if stored.client_id != client.client_id {
            return Err(invalid_grant("the refresh token is invalid"));
        }
        let now = self.clock.now();
        // The family's state, not only the row's: a token of a revoked family is dead however
        // it was written.
        if !stored.family_is_live(now) || stored.expires_at <= now {
            return Err(invalid_grant("the refresh token is invalid"));
        }
        match stored.state {
            RefreshTokenState::Valid => {}
            RefreshTokenState::Revoked { .. } => {
                return Err(invalid_grant("the refresh token is invalid"));
            }
            RefreshTokenState::Consumed { .. } => {
                self.reuse_detected(tenant, client, &stored).await?;
                return Err(invalid_grant("the refresh token is invalid"));
            }
        }
        // The request is checked before the token is spent, so a malformed request does not burn
        // the grant and make the client's retry look like reuse.
        let original = RefreshGrant::from_claims(&stored.claims)
            .ok_or_else(|| ServiceError::Internal("refresh token claims are malformed".into()))?;
        // A person's grant holds while the person does: enabled, still there, and (without
        // offline_access) still signed in with the session it began with.
        let person = match &original.person {
            None => None,
            Some(p) => Some((
                p,
                self.person_of(tenant, &original.sub, stored.family_session)
                    .await?,
            )),
        };
        if let Some((_, None)) = person {
            return Err(invalid_grant("the refresh token is invalid"));
        }
        // RFC 6749 §6: a narrower scope may be asked for, never a wider one; and never more than
        // the client may be granted now.
        let ceiling = if person.is_some() {
            crate::oauth::authorize::people_scope_ceiling(client)
        } else {
            scope_ceiling(client)
        };
        let allowed = original.scope.intersection(&ceiling);
        let scope = granted_scope(requested_scope, &allowed)?;
        let audience = narrowed_audience(
            resources,
            &original.audience,
            &current_audiences(self.settings, tenant, client),
        )?;
        let base = TokenSpec::for_client(
            &self.settings.oauth,
            tenant,
            client,
            original.sub.clone(),
            scope.clone(),
            audience,
        );
        let spec = TokenSpec {
            act: original.act.clone(),
            family: Some(stored.family_id),
            // A grant exchanged from a shorter-lived subject: its access tokens end with it too.
            not_after: original.until,
            auth: original.person.as_ref().map(PersonGrant::authentication),
            userinfo_claims: original.person.as_ref().and_then(|p| {
                crate::oauth::grants::authorization_code::userinfo_asked(p.claims.as_ref())
            }),
            ..base
        };
        // The access token first: if the rotation then loses a race, it is never handed out,
        // and it names a family that reuse detection has revoked.
        let issued = self.access.issue(tenant, &spec).await?;
        // OIDC Core §12.2: a new ID token, with the original sign-in's auth_time and no nonce.
        let id_token = match person {
            Some((p, Some(user))) if scope.contains("openid") => Some(
                self.id_tokens
                    .mint(
                        tenant,
                        client,
                        IdTokenSpec {
                            sub: original.sub.clone(),
                            auth_time: p.auth_time,
                            nonce: None,
                            acr: p.acr.clone(),
                            amr: p.amr.clone(),
                            sid: Some(p.sid.clone()),
                            access_token: Some(issued.token.clone()),
                            profile: crate::oidc::claims::release(
                                &user,
                                &crate::oidc::claims::requested(
                                    &scope,
                                    p.claims.as_ref(),
                                    crate::oidc::claims::Target::IdToken,
                                ),
                            ),
                        },
                    )
                    .await?,
            ),
            _ => None,
        };
        let refresh_token = self
            .rotate(tenant, client, &stored, &original)
            .await?
            .map_err(invalid_grant)?;
        Ok(TokenResponse {
            refresh_token: Some(refresh_token.token),
            id_token,
            ..TokenResponse::bearer(issued, &scope)
        })
    }
}

impl RefreshTokens<'_> {
    /// The person `sub` names if their grant still holds: the user exists and is enabled, and
    /// the session the grant lives with (if any) has not ended.
    async fn person_of(
        &self,
        tenant: &Tenant,
        sub: &str,
        session: Option<crate::model::session::SessionId>,
    ) -> Result<Option<crate::model::user::User>, ServiceError> {
        let Some(id) = crate::model::user::UserId::parse(sub) else {
            return Ok(None);
        };
        let Some(user) = self
            .store
            .user(tenant.id, id)
            .await?
            .filter(|u| u.is_active())
        else {
            return Ok(None);
        };
        if let Some(session) = session {
            // Signed out, revoked or past its absolute end; the browser's idle timeout does
            // not apply, since the application refreshing is the person at work.
            let live = self
                .store
                .session_by_id(tenant.id, session)
                .await?
                .is_some_and(|s| s.user == user.id && self.clock.now() < s.expires_at);
            if !live {
                return Ok(None);
            }
        }
        Ok(Some(user))
    }
}

fn invalid_grant(why: &str) -> OAuthError {
    TokenError::InvalidGrant.because(why)
}

/// The audiences `client` may address now: its configured resources, or the issuer.
pub fn current_audiences(settings: &Settings, tenant: &Tenant, client: &Client) -> Vec<String> {
    if client.policy.resources.is_empty() {
        vec![settings.issuer(&tenant.slug)]
    } else {
        client.policy.resources.clone()
    }
}

/// The audience of a token derived from a grant: the requested resources, each among
/// `granted` (RFC 8707 §2.2), or else all of `granted`; and in both cases only what the
/// client may address now.
pub fn narrowed_audience(
    requested: &[String],
    granted: &[String],
    current: &[String],
) -> Result<Vec<String>, OAuthError> {
    let target_error = |why: String| TokenError::InvalidTarget.because(why);
    let clip = |r: &str| r.chars().take(100).collect::<String>();
    if requested.is_empty() {
        let kept: Vec<String> = granted
            .iter()
            .filter(|a| current.contains(a))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(target_error(
                "none of the granted resources may be addressed by this client any more".into(),
            ));
        }
        return Ok(kept);
    }
    let mut out: Vec<String> = Vec::new();
    for r in requested {
        if !granted.contains(r) {
            return Err(target_error(format!(
                "'{}' was not part of the original grant",
                clip(r)
            )));
        }
        if !current.contains(r) {
            return Err(target_error(format!(
                "'{}' is not a resource this client may request",
                clip(r)
            )));
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn audiences_narrow_to_the_grant_and_the_clients_current_resources() {
        let granted = list(&["https://a/", "https://b/"]);
        let current = list(&["https://a/", "https://c/"]);
        // Nothing asked: what was granted and may still be addressed.
        assert_eq!(
            narrowed_audience(&[], &granted, &current).unwrap(),
            list(&["https://a/"])
        );
        assert_eq!(
            narrowed_audience(&list(&["https://a/", "https://a/"]), &granted, &current).unwrap(),
            list(&["https://a/"])
        );
        // RFC 8707 §2: outside the grant, or no longer the client's: invalid_target.
        for asked in [&["https://c/"][..], &["https://b/"][..]] {
            let e = narrowed_audience(&list(asked), &granted, &current).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidTarget, "{asked:?}");
        }
        let gone = narrowed_audience(&[], &list(&["https://b/"]), &current).unwrap_err();
        assert_eq!(gone.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn grants_keep_their_ceiling_through_their_claims() {
        let grant = RefreshGrant {
            sub: "alice".into(),
            scope: Scope::parse("api:read").unwrap(),
            audience: list(&["https://a/"]),
            act: None,
            until: Some(1_000),
            person: Some(PersonGrant {
                auth_time: 5,
                acr: Some("phr".into()),
                amr: vec!["swk".into(), "user".into()],
                sid: "s".into(),
                claims: None,
            }),
        };
        let back = RefreshGrant::from_claims(&grant.to_claims()).unwrap();
        assert_eq!(back.until, Some(1_000));
        assert_eq!(back.sub, "alice");
        assert_eq!(back.audience, grant.audience);
        assert_eq!(back.person, grant.person);
        let mut open = grant.to_claims();
        open.remove(UNTIL_CLAIM);
        assert_eq!(RefreshGrant::from_claims(&open).unwrap().until, None);
    }
}
