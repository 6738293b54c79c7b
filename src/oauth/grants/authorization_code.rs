//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3–4.1.4; RFC 7636 §4.5–4.6;
//! OpenID Connect Core §3.1.3): a code is used once, by the client it was issued to, with
//! the redirect URI and PKCE verifier of its request. A second use revokes every token the
//! code issued (RFC 6749 §4.1.2).
//!
//! Codes live in the shared cache (60 s at most, like the requests they answer): a
//! redemption takes the code atomically, on any replica, and leaves a [`SpentCode`] behind
//! for a while. A second use finds it and revokes the grant; one that comes while the first
//! is still being answered leaves a mark that the first checks before it answers, so either
//! way the grant ends.

use crate::crypto::{b64url, secrets_equal, sha256};
use crate::error::{OAuthError, TokenError};
use crate::model::Tenant;
use std::time::Duration;

use crate::cache::{CacheKey, SharedState};
use crate::model::authorization::{GrantOwner, PendingCode, SpentCode};
use crate::model::client::{Client, GrantType};
use crate::model::user::User;
use crate::oauth::access_token::{Authentication, TokenSpec};
use crate::oauth::grants::refresh_token::{
    PersonGrant, RefreshGrant, RefreshTokens, current_audiences, narrowed_audience,
};
use crate::oauth::token::{TokenResponse, audience};
use crate::oidc::claims::{self, Target};
use crate::oidc::id_token::IdTokenSpec;

/// A token request of this grant, parsed (RFC 6749 §4.1.3; RFC 7636 §4.5).
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub resources: Vec<String>,
}

fn invalid(why: &str) -> OAuthError {
    TokenError::InvalidGrant.because(why)
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The checks of a code against the request that redeems it (everything but single use).
pub fn check(
    stored: &PendingCode,
    client: &Client,
    request: &CodeRequest,
    now: i64,
) -> Result<(), OAuthError> {
    let grant = &stored.grant;
    // RFC 6749 §4.1.3: issued to the authenticated client.
    if grant.client_id != client.client_id {
        return Err(invalid("the code is invalid"));
    }
    if stored.expires_at <= now {
        return Err(invalid("the code has expired"));
    }
    // §4.1.3: the redirect URI, when the request named one, is repeated and identical.
    match (&request.redirect_uri, grant.redirect_uri_sent) {
        (None, true) => return Err(invalid("redirect_uri is required: the request named one")),
        (Some(sent), _) if *sent != grant.redirect_uri => {
            return Err(invalid(
                "redirect_uri differs from the authorization request's",
            ));
        }
        _ => {}
    }
    match (&grant.code_challenge, &request.code_verifier) {
        (Some(_), None) => return Err(invalid("code_verifier is required (PKCE)")),
        (Some(challenge), Some(verifier)) => {
            // RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge.
            if !verifier_ok(verifier)
                || !secrets_equal(
                    b64url(&sha256(verifier.as_bytes())).as_bytes(),
                    challenge.as_bytes(),
                )
            {
                return Err(invalid("code_verifier does not match the code_challenge"));
            }
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade
        // attempt.
        (None, Some(_)) => {
            return Err(invalid(
                "code_verifier sent for a code issued without code_challenge",
            ));
        }
        (None, None) => {}
    }
    Ok(())
}

/// How long a spent code is remembered: well past any code's lifetime.
fn remember() -> Duration {
    Duration::from_secs(600)
}

fn parse<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Option<T> {
    serde_json::from_slice(raw).ok()
}

/// The claims the `claims` parameter asks the userinfo endpoint for by name, if any.
pub fn userinfo_asked(claims: Option<&serde_json::Value>) -> Option<Vec<String>> {
    let names: Vec<String> = claims?
        .get("userinfo")?
        .as_object()?
        .keys()
        .cloned()
        .collect();
    (!names.is_empty()).then_some(names)
}

impl RefreshTokens<'_> {
    /// `grant_type=authorization_code`.
    pub async fn redeem_code(
        &self,
        tenant: &Tenant,
        client: &Client,
        request: &CodeRequest,
    ) -> Result<TokenResponse, OAuthError> {
        if request.code.len() > 512 {
            return Err(invalid("the code is invalid"));
        }
        let (tenant_id, code) = (tenant.id, request.code.as_str());
        let key = CacheKey::Code {
            tenant: tenant_id,
            code,
        }
        .render();
        let spent_key = CacheKey::CodeSpent {
            tenant: tenant_id,
            code,
        }
        .render();
        let reused_key = CacheKey::CodeReused {
            tenant: tenant_id,
            client: client.client_id.as_str(),
            code,
        }
        .render();
        let now = self.clock.now();
        let raw = self.cache.take(&key).await?;
        let taken = raw.as_deref().and_then(parse::<PendingCode>);
        if let (Some(raw), Some(other)) = (&raw, &taken)
            && other.grant.client_id != client.client_id
        {
            // Another client's code: put back as it was, for its own client to redeem.
            let left = u64::try_from(other.expires_at.saturating_sub(now)).unwrap_or(0);
            if left > 0 {
                self.cache.set(&key, raw, Duration::from_secs(left)).await?;
            }
            return Err(invalid("the code is invalid"));
        }
        let Some(stored) = taken else {
            // Unknown, expired, or spent: if spent, it was used twice, so leaked, and what
            // it issued is revoked (RFC 6749 §4.1.2). The mark tells a redemption still under
            // way (it checks before it answers); only spent codes leave one.
            let spent = self
                .cache
                .get(&spent_key)
                .await?
                .and_then(|raw| parse::<SpentCode>(&raw))
                .filter(|s| s.client_id == client.client_id);
            if let Some(spent) = spent {
                self.cache.set(&reused_key, b"1", remember()).await?;
                self.code_reused(tenant, client, Some(spent.family)).await?;
            }
            return Err(invalid("the code is invalid"));
        };
        // The grant's family is named before anything else, so a second use from now on
        // finds what to revoke.
        let family = uuid::Uuid::now_v7();
        let spent = serde_json::to_vec(&SpentCode {
            client_id: client.client_id.clone(),
            family,
        })
        .map_err(|e| crate::error::ServiceError::Internal(format!("spent code: {e}")))?;
        self.cache.set(&spent_key, &spent, remember()).await?;
        // A failed check spends the code all the same: it was presented by its client.
        check(&stored, client, request, now)?;
        let grant = &stored.grant;
        let user = self
            .store
            .user(tenant.id, grant.user)
            .await?
            .filter(User::is_active)
            .ok_or_else(|| invalid("the user of this code cannot sign in"))?;
        // Signed out (or replaced) since the code was issued: no tokens for a session that
        // ended, whose back-channel logout the client would never get.
        let session_live = self
            .store
            .session_by_id(tenant.id, grant.session)
            .await?
            .is_some_and(|s| now < s.expires_at);
        if !session_live {
            return Err(invalid("the sign-in of this code has ended"));
        }

        // RFC 8707 §2.2: the token request may narrow the resources of the authorization.
        let granted = audience(self.settings, tenant, client, &grant.resources, &[])?;
        let aud = if request.resources.is_empty() {
            granted
        } else {
            narrowed_audience(
                &request.resources,
                &granted,
                &current_audiences(self.settings, tenant, client),
            )?
        };
        let auth = Authentication {
            auth_time: grant.auth_time,
            acr: grant.acr.clone(),
            amr: grant.amr.iter().map(|a| a.as_str().to_owned()).collect(),
        };
        let sub = user.id.to_string();
        let asked = userinfo_asked(grant.claims.as_ref());
        let spec = TokenSpec {
            family: Some(family),
            auth: Some(auth.clone()),
            userinfo_claims: asked,
            ..TokenSpec::for_client(
                &self.settings.oauth,
                tenant,
                client,
                sub.clone(),
                grant.scope.clone(),
                aud.clone(),
            )
        };
        // The access token first (a JWT costs no write); it names the family, so it dies with
        // it if the code turns out to be reused.
        let issued = self.access.issue(tenant, &spec).await?;
        let offline = grant.scope.contains("offline_access");
        let refresh_grant = RefreshGrant {
            sub: sub.clone(),
            scope: grant.scope.clone(),
            audience: aud,
            act: None,
            until: None,
            person: Some(PersonGrant {
                auth_time: auth.auth_time,
                acr: auth.acr.clone(),
                amr: auth.amr.clone(),
                sid: grant.session.to_string(),
                claims: grant.claims.clone(),
            }),
        };
        let refresh = self
            .start_grant(
                tenant,
                client,
                &refresh_grant,
                family,
                GrantOwner {
                    subject: sub.clone(),
                    // offline_access (OIDC Core §11): the grant outlives the session.
                    session: (!offline).then_some(grant.session),
                    notify: client
                        .metadata
                        .backchannel_logout_uri
                        .is_some()
                        .then_some(grant.session),
                },
                client.allows_grant(GrantType::RefreshToken),
            )
            .await?;
        // Presented again while this was under way: both answers fail and the grant ends.
        if self.cache.get(&reused_key).await?.is_some() {
            self.code_reused(tenant, client, Some(family)).await?;
            return Err(invalid("the code is invalid"));
        }
        let id_token = if grant.scope.contains("openid") {
            let names = claims::requested(&grant.scope, grant.claims.as_ref(), Target::IdToken);
            Some(
                self.id_tokens
                    .mint(
                        tenant,
                        client,
                        IdTokenSpec {
                            sub,
                            auth_time: auth.auth_time,
                            nonce: grant.nonce.clone(),
                            acr: auth.acr,
                            amr: auth.amr,
                            sid: Some(grant.session.to_string()),
                            access_token: Some(issued.token.clone()),
                            profile: claims::release(&user, &names),
                        },
                    )
                    .await?,
            )
        } else {
            None
        };
        Ok(TokenResponse {
            refresh_token: refresh.map(|r| r.token),
            id_token,
            ..TokenResponse::bearer(issued, &grant.scope)
        })
    }

    async fn code_reused(
        &self,
        tenant: &Tenant,
        client: &Client,
        family: Option<uuid::Uuid>,
    ) -> Result<(), OAuthError> {
        if let Some(family) = family {
            let was_live = self
                .store
                .revoke_refresh_family(tenant.id, family, self.clock.now())
                .await?;
            tracing::warn!(client_id = %client.client_id, was_live, "authorization code reused: its grant is revoked");
        }
        Ok(())
    }
}
