//! The authorization endpoint's protocol (RFC 6749 §4.1.1–4.1.2; OpenID Connect Core §3.1.2;
//! RFC 9207): resolving a request into an [`AuthorizationRequest`] (with its request object or
//! pushed `request_uri`), keeping it between the pages, deciding what it needs
//! ([`crate::oauth::prompt`]) and answering it with a code. The pages around it are in
//! [`crate::web::authorize`].

use std::time::Duration;

use crate::cache::{Cache, CacheKey, SharedState};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{AuthorizationError, ServiceError};
use crate::model::Tenant;
use crate::model::authorization::{CodeGrant, PendingAuthorization, PendingCode};
use crate::model::client::{Client, GrantType};
use crate::model::session::Session;
use crate::model::token::Scope;
use crate::model::user::User;
use crate::oauth::authorization_request::{AuthorizationFailure, AuthorizationRequest};
use crate::oauth::prompt::{SessionFacts, Situation};
use crate::oidc::claims::PEOPLE_SCOPES;
use crate::oidc::id_token::IdTokens;
use crate::rng::Rng;
use crate::store::Store;

/// RFC 9126 §2.2: the `request_uri` prefix of pushed requests.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The most scope a person may grant `client` in an authorization request: its registered
/// scope, or else the OpenID Connect scopes; `offline_access` only for clients that may
/// refresh (OIDC Core §11). What else is asked for is ignored (§3.1.2.1: scope values not
/// understood SHOULD be ignored).
pub fn people_scope_ceiling(client: &Client) -> Scope {
    let base = client
        .metadata
        .scope
        .clone()
        .unwrap_or_else(|| Scope::parse(&PEOPLE_SCOPES.join(" ")).unwrap_or_default());
    if client.allows_grant(GrantType::RefreshToken) {
        base
    } else {
        let without: Vec<&str> = base.iter().filter(|s| *s != "offline_access").collect();
        Scope::parse(&without.join(" ")).unwrap_or_default()
    }
}

/// The scope an authorization request asks the person for: its own, with what its `claims`
/// parameter implies ([`crate::oidc::claims::implied_scopes`]), within what `client` may have.
pub fn asked_scope(request: &AuthorizationRequest, client: &Client) -> Scope {
    let implied = crate::oidc::claims::implied_scopes(request.claims.as_ref());
    let all: Vec<&str> = request.scope.iter().chain(implied).collect();
    Scope::parse(&all.join(" "))
        .unwrap_or_else(|_| request.scope.clone())
        .intersection(&people_scope_ceiling(client))
}

/// Whether a confidential `client` of `tenant` must use PKCE.
pub fn confidential_pkce(tenant: &Tenant, client: &Client) -> bool {
    client
        .policy
        .require_pkce
        .unwrap_or_else(|| tenant.settings.pkce_required())
}

/// Whether requests of `client` must be pushed (RFC 9126 §5, §6).
pub fn par_required(tenant: &Tenant, client: &Client) -> bool {
    tenant.settings.require_pushed_authorization_requests
        || client.metadata.require_pushed_authorization_requests
}

/// The authorization service.
#[derive(Clone, Copy)]
pub struct Authorizations<'a> {
    pub store: &'a Store,
    pub cache: &'a Cache,
    pub id_tokens: IdTokens<'a>,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
}

/// A code just issued: the response parameter.
pub struct IssuedCode(pub String);

impl Authorizations<'_> {
    /// A new pending request for `request`, as it arrived in a browser holding `session`.
    pub fn pending(
        &self,
        request: AuthorizationRequest,
        session: Option<&Session>,
    ) -> PendingAuthorization {
        let now = self.clock.now();
        PendingAuthorization {
            request,
            pushed: false,
            in_browser: true,
            created_at: now,
            expires_at: now
                .saturating_add(secs(self.settings.oauth.authorization_request_ttl_secs)),
            session_at_start: session.map(|s| s.id),
            auth_time_at_start: session.map(|s| s.auth_time),
            account_chosen: false,
        }
    }

    /// Keeps `pending` under `handle` (a new one when `None`) until it expires; the handle.
    pub async fn stash(
        &self,
        tenant: &Tenant,
        pending: &PendingAuthorization,
        handle: Option<&str>,
    ) -> Result<String, ServiceError> {
        let handle = handle.map_or_else(|| self.rng.token::<32>(), str::to_owned);
        let left = pending.expires_at.saturating_sub(self.clock.now()).max(1);
        let value = serde_json::to_vec(pending)
            .map_err(|e| ServiceError::Internal(format!("pending authorization: {e}")))?;
        self.cache
            .set(
                &CacheKey::Authorization {
                    tenant: tenant.id,
                    handle: &handle,
                }
                .render(),
                &value,
                Duration::from_secs(u64::try_from(left).unwrap_or(1)),
            )
            .await?;
        Ok(handle)
    }

    /// The request waiting under `handle`, if it is there and live.
    pub async fn load(
        &self,
        tenant: &Tenant,
        handle: &str,
    ) -> Result<Option<PendingAuthorization>, ServiceError> {
        if handle.len() > 128 {
            return Ok(None);
        }
        let raw = self
            .cache
            .get(
                &CacheKey::Authorization {
                    tenant: tenant.id,
                    handle,
                }
                .render(),
            )
            .await?;
        Ok(self.live(raw))
    }

    /// Takes the request under `handle` (once, on any replica): the response is being issued.
    pub async fn take(
        &self,
        tenant: &Tenant,
        handle: &str,
    ) -> Result<Option<PendingAuthorization>, ServiceError> {
        let raw = self
            .cache
            .take(
                &CacheKey::Authorization {
                    tenant: tenant.id,
                    handle,
                }
                .render(),
            )
            .await?;
        Ok(self.live(raw))
    }

    fn live(&self, raw: Option<Vec<u8>>) -> Option<PendingAuthorization> {
        raw.and_then(|r| serde_json::from_slice::<PendingAuthorization>(&r).ok())
            .filter(|p| p.expires_at > self.clock.now())
    }

    /// What the decision needs to know: the session, the consent remembered, the subject of
    /// a verified `id_token_hint`. An `id_token_hint` that is not one of our ID tokens is the
    /// request's error (OIDC Core §3.1.2.2).
    pub async fn situation(
        &self,
        tenant: &Tenant,
        client: &Client,
        pending: &PendingAuthorization,
        signed_in: Option<&(Session, User)>,
    ) -> Result<Result<Situation, AuthorizationFailure>, ServiceError> {
        let request = &pending.request;
        let hint_subject = match &request.id_token_hint {
            None => None,
            Some(hint) => match self.id_tokens.hint(tenant, hint).await? {
                Some(claims) => Some(claims.sub),
                None => {
                    return Ok(Err(self.failure(
                        tenant,
                        request,
                        AuthorizationError::InvalidRequest,
                        "id_token_hint is not an ID token of this issuer",
                    )));
                }
            },
        };
        let first_party = client.policy.first_party;
        let consented = match signed_in {
            Some((_, user)) if !first_party => self
                .store
                .consent(tenant.id, user.id, &client.client_id)
                .await?
                .is_some_and(|c| request.scope.is_subset(&c.scope)),
            _ => false,
        };
        Ok(Ok(Situation {
            now: self.clock.now(),
            session: signed_in.map(|(s, u)| SessionFacts {
                id: s.id,
                subject: u.id.to_string(),
                auth_time: s.auth_time,
                acr: s.acr.clone(),
            }),
            hint_subject,
            consented,
            first_party,
        }))
    }

    /// The request's error, sent back to its verified redirect URI.
    pub fn failure(
        &self,
        tenant: &Tenant,
        request: &AuthorizationRequest,
        error: AuthorizationError,
        description: &str,
    ) -> AuthorizationFailure {
        AuthorizationFailure {
            error,
            description: description.to_owned(),
            redirect: Some(Box::new(
                request.error_redirect(&self.settings.issuer(&tenant.slug)),
            )),
        }
    }

    /// Remembers that `user` let `client` have `scope`, on top of what they allowed before.
    pub async fn remember_consent(
        &self,
        tenant: &Tenant,
        user: &User,
        client: &Client,
        scope: &Scope,
    ) -> Result<(), ServiceError> {
        let before = self
            .store
            .consent(tenant.id, user.id, &client.client_id)
            .await?
            .map(|c| c.scope)
            .unwrap_or_default();
        let union = Scope::parse(
            &before
                .iter()
                .chain(scope.iter())
                .collect::<Vec<_>>()
                .join(" "),
        )
        .unwrap_or_else(|_| scope.clone());
        Ok(self
            .store
            .save_consent(
                tenant.id,
                user.id,
                &client.client_id,
                &union,
                self.clock.now(),
            )
            .await?)
    }

    /// Issues the code that answers `request` for the person signed in with `session`.
    pub async fn issue_code(
        &self,
        tenant: &Tenant,
        client: &Client,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
    ) -> Result<IssuedCode, ServiceError> {
        let code = self.rng.token::<32>();
        let now = self.clock.now();
        let grant = CodeGrant {
            client_id: client.client_id.clone(),
            user: user.id,
            session: session.id,
            redirect_uri: request.redirect_uri.as_str().to_owned(),
            redirect_uri_sent: request.redirect_uri_sent,
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.as_ref().map(|c| c.challenge.clone()),
            claims: request.claims.clone(),
            resources: request.resources.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            acr: session.acr.clone(),
        };
        let ttl = self.settings.oauth.authorization_code_ttl_secs;
        let value = serde_json::to_vec(&PendingCode {
            grant,
            expires_at: now.saturating_add(secs(ttl)),
        })
        .map_err(|e| ServiceError::Internal(format!("code: {e}")))?;
        self.cache
            .set(
                &CacheKey::Code {
                    tenant: tenant.id,
                    code: &code,
                }
                .render(),
                &value,
                Duration::from_secs(ttl),
            )
            .await?;
        Ok(IssuedCode(code))
    }
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::client::{ClientId, MetadataRequest, ValidationRules};

    fn client(metadata: serde_json::Value) -> Client {
        Client {
            client_id: ClientId::parse("app").unwrap(),
            metadata: serde_json::from_value::<MetadataRequest>(metadata)
                .unwrap()
                .validate(ValidationRules {
                    allow_http_jwks_uri: false,
                })
                .unwrap(),
            policy: Default::default(),
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
    fn people_get_the_oidc_scopes_unless_the_client_registered_its_own() {
        let plain = client(serde_json::json!({"redirect_uris": ["https://a.example/cb"]}));
        assert_eq!(
            people_scope_ceiling(&plain).to_string(),
            "address email openid phone profile",
            "no offline_access without the refresh_token grant"
        );
        let refreshing = client(serde_json::json!({
            "redirect_uris": ["https://a.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid api:read offline_access"
        }));
        assert_eq!(
            people_scope_ceiling(&refreshing).to_string(),
            "api:read offline_access openid"
        );
    }
}
