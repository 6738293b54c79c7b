//! Token exchange (RFC 8693): a client trades a subject token (and for delegation an actor
//! token) for a new token. By default a confidential client may narrow its own access or
//! refresh tokens (scope, audience, lifetime); other subjects (impersonation) and actors
//! (delegation) need the client's policy. The new token never carries more scope than the
//! subject, never outlives it, and keeps its refresh family, so revoking the grant ends it.

use serde_json::{Map, Value};

use crate::error::{OAuthError, ServiceError, TokenError};
use crate::jose::jwt;
use crate::model::Tenant;
use crate::model::client::{Client, ClientId, GrantType, check_resource};
use crate::model::token::{Scope, StoredRefreshToken, TokenFormat, TokenType};
use crate::oauth::access_token::{ActiveAccessToken, TokenSpec};
use crate::oauth::grants::refresh_token::{self, RefreshGrant, RefreshTokens};
use crate::oauth::requests::ExchangeRequest;
use crate::oauth::token::{TokenResponse, audience, granted_scope, scope_ceiling};

/// A validated subject or actor token.
struct Party {
    sub: String,
    scope: Option<Scope>,
    act: Option<Value>,
    may_act: Option<Value>,
    /// The client it was issued to, for access and refresh tokens.
    client_id: Option<ClientId>,
    /// When it stops being valid: nothing derived from it lives longer.
    exp: Option<i64>,
    audience: Vec<String>,
    /// The refresh token family (grant) it belongs to or came from.
    family: Option<uuid::Uuid>,
    /// The stored token, when the party is a refresh token.
    refresh: Option<StoredRefreshToken>,
}

fn invalid(why: &str) -> OAuthError {
    // RFC 8693 §2.2.2: an invalid subject or actor token is an invalid_request.
    TokenError::InvalidRequest.because(why)
}

fn audience_list(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(all)) => all
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn party(claims: &Map<String, Value>) -> Option<Party> {
    Some(Party {
        sub: claims.get("sub")?.as_str()?.to_owned(),
        scope: match claims.get("scope") {
            Some(Value::String(s)) => Some(Scope::parse(s).ok()?),
            _ => None,
        },
        act: claims.get("act").cloned(),
        may_act: claims.get("may_act").cloned(),
        client_id: None,
        exp: claims.get("exp").and_then(Value::as_i64),
        audience: audience_list(claims),
        family: None,
        refresh: None,
    })
}

fn access_party(active: ActiveAccessToken) -> Option<Party> {
    let claims = active.claims;
    Some(Party {
        sub: claims.sub,
        scope: claims.scope,
        act: claims.act,
        may_act: claims.may_act,
        client_id: Some(active.client_id),
        exp: Some(claims.exp),
        audience: claims.aud.to_vec(),
        family: claims.refresh_family,
        refresh: None,
    })
}

/// Validates a token of the stated type as one this tenant issued and still honours.
async fn validate(
    tokens: &RefreshTokens<'_>,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    kind: TokenType,
) -> Result<Option<Party>, ServiceError> {
    Ok(match kind {
        TokenType::AccessToken => tokens
            .access
            .inspect(tenant, token)
            .await?
            .and_then(access_party),
        // A refresh token is only ever its own client's to present.
        TokenType::RefreshToken => tokens
            .presented(tenant, client, token)
            .await?
            .and_then(|t| {
                Some(Party {
                    client_id: Some(t.client_id.clone()),
                    exp: Some(t.expires_at.min(t.family_expires_at)),
                    family: Some(t.family_id),
                    ..party(&t.claims)?
                })
                .map(|p| Party {
                    refresh: Some(t),
                    ..p
                })
            }),
        // An ID token, or another JWT we signed, is exchanged only by a client it names in
        // `aud` (OIDC Core §2). Access tokens and introspection responses are not JWTs of
        // this kind: an access token goes through the access-token checks whatever it is
        // labelled, so a relabelled token gains nothing.
        TokenType::IdToken | TokenType::Jwt => {
            let typ = jwt::peek_header(token)
                .ok()
                .and_then(|h| h.typ)
                .map(|t| t.to_ascii_lowercase());
            match typ.as_deref() {
                Some("at+jwt" | "application/at+jwt") if kind == TokenType::Jwt => tokens
                    .access
                    .inspect(tenant, token)
                    .await?
                    .and_then(access_party),
                Some("at+jwt" | "application/at+jwt")
                | Some("token-introspection+jwt" | "application/token-introspection+jwt")
                // A logout token says a session ended; it stands for no one.
                | Some("logout+jwt" | "application/logout+jwt") => None,
                _ => tokens
                    .access
                    .verify_own_jwt(tenant, token, None)
                    .await?
                    .filter(|c| {
                        audience_list(c)
                            .iter()
                            .any(|a| a == client.client_id.as_str())
                    })
                    .as_ref()
                    .and_then(party)
                    // An ID token's `aud` is its client, not a resource to address.
                    .map(|p| Party {
                        audience: Vec::new(),
                        family: None,
                        ..p
                    }),
            }
        }
    })
}

/// RFC 8693 §4.4: a subject token naming who may act for it admits only that actor.
fn may_act_allows(subject: &Party, actor_sub: &str) -> bool {
    match &subject.may_act {
        None => true,
        Some(may_act) => may_act.get("sub").and_then(Value::as_str) == Some(actor_sub),
    }
}

fn unauthorized(why: &str) -> OAuthError {
    TokenError::UnauthorizedClient.because(why)
}

pub async fn grant(
    tokens: &RefreshTokens<'_>,
    tenant: &Tenant,
    client: &Client,
    request: &ExchangeRequest,
) -> Result<TokenResponse, OAuthError> {
    let requested = request.requested;
    if requested == TokenType::IdToken {
        return Err(
            TokenError::InvalidRequest.because("requested_token_type id_token is not supported")
        );
    }
    if requested == TokenType::RefreshToken && !client.allows_grant(GrantType::RefreshToken) {
        return Err(unauthorized(
            "this client is not registered for refresh tokens",
        ));
    }

    let subject = validate(
        tokens,
        tenant,
        client,
        &request.subject_token,
        request.subject_token_type,
    )
    .await?
    .ok_or_else(|| invalid("the subject_token is invalid, expired or revoked"))?;
    // The default policy: a client narrows its own access or refresh token. Anything else
    // (another client's token, an ID token, an actor) is impersonation or delegation, which
    // only the client's policy allows (RFC 8693 §1.1), with audiences from that policy.
    let own = subject.client_id.as_ref() == Some(&client.client_id);
    let (act, by_policy) = match &request.actor {
        Some((token, kind)) => {
            if !client.policy.may_delegate {
                return Err(unauthorized("this client may not obtain delegation tokens"));
            }
            let actor = validate(tokens, tenant, client, token, *kind)
                .await?
                .ok_or_else(|| invalid("the actor_token is invalid, expired or revoked"))?;
            if !may_act_allows(&subject, &actor.sub) {
                // RFC 8693 §2.2.2: tokens unacceptable by policy are an invalid_request.
                return Err(TokenError::InvalidRequest
                    .because("the subject token does not allow this actor (may_act)"));
            }
            // RFC 8693 §4.1: the current actor on top, earlier actors nested inside.
            let mut act = Map::new();
            act.insert("sub".into(), actor.sub.into());
            if let Some(prior) = subject.act.clone() {
                act.insert("act".into(), prior);
            }
            (Some(Value::Object(act)), true)
        }
        _ if own => (subject.act.clone(), false),
        _ => {
            if !client.policy.may_impersonate {
                return Err(unauthorized(
                    "this client may exchange only tokens issued to itself; other subjects \
                     need an impersonation or delegation policy",
                ));
            }
            if !may_act_allows(&subject, client.client_id.as_str()) {
                return Err(TokenError::InvalidRequest.because(
                    "the subject token does not allow this client to act for it (may_act)",
                ));
            }
            (subject.act.clone(), true)
        }
    };

    // Never more than the subject had, nor more than the client may be granted now.
    let allowed = subject
        .scope
        .clone()
        .unwrap_or_default()
        .intersection(&scope_ceiling(client));
    let scope = granted_scope(request.scope.clone(), &allowed)?;
    let audience = if by_policy {
        audience(
            tokens.settings,
            tenant,
            client,
            &request.resources,
            &request.audiences,
        )?
    } else {
        // Own tokens: within the subject's audience and what the client may address now.
        for resource in &request.resources {
            check_resource(resource).map_err(|e| TokenError::InvalidTarget.because(e))?;
        }
        let requested: Vec<String> = request
            .resources
            .iter()
            .chain(&request.audiences)
            .cloned()
            .collect();
        refresh_token::narrowed_audience(
            &requested,
            &subject.audience,
            &refresh_token::current_audiences(tokens.settings, tenant, client),
        )?
    };
    let now = tokens.clock.now();
    // A successor of a refresh subject keeps that grant's ceiling; anything else ends with
    // the subject, through every later rotation.
    let subject_grant = subject
        .refresh
        .as_ref()
        .map(|stored| {
            RefreshGrant::from_claims(&stored.claims)
                .ok_or_else(|| ServiceError::Internal("refresh token claims are malformed".into()))
        })
        .transpose()?;
    let until = match &subject_grant {
        Some(grant) => grant.until,
        None => subject.exp,
    };
    let narrowed = RefreshGrant {
        sub: subject.sub.clone(),
        scope: scope.clone(),
        audience: audience.clone(),
        act: act.clone(),
        until,
        // A person's grant stays one: its refreshes check the person and may carry ID tokens.
        person: subject_grant.as_ref().and_then(|g| g.person.clone()),
    };

    if requested == TokenType::RefreshToken {
        let issued = match (&subject.refresh, subject.family) {
            // A refresh token traded for a narrower one is rotated: spent, and its successor
            // joins the family (same end, revoked with it).
            (Some(stored), _) => tokens
                .rotate(tenant, client, stored, &narrowed)
                .await?
                .map_err(invalid)?,
            (None, Some(family)) => tokens
                .join_family(tenant, client, family, &narrowed, subject.exp)
                .await?
                .ok_or_else(|| invalid("the subject_token is invalid, expired or revoked"))?,
            (None, None) => {
                tokens
                    .start_family(tenant, client, &narrowed, subject.exp)
                    .await?
                    .0
            }
        };
        return Ok(TokenResponse {
            // RFC 8693 §2.2.1: N_A when the issued token is not an access token.
            token_type: "N_A",
            expires_in: u64::try_from(issued.expires_at.saturating_sub(now)).unwrap_or(0),
            access_token: issued.token,
            scope: (!scope.is_empty()).then(|| scope.to_string()),
            refresh_token: None,
            issued_token_type: Some(TokenType::RefreshToken),
            id_token: None,
        });
    }
    let format = if requested == TokenType::Jwt {
        TokenFormat::Jwt
    } else {
        client.policy.token_format()
    };
    let base = TokenSpec::for_client(
        &tokens.settings.oauth,
        tenant,
        client,
        subject.sub.clone(),
        scope.clone(),
        audience,
    );
    let spec = TokenSpec {
        act,
        format,
        family: subject.family,
        // Nothing outlives the subject.
        not_after: subject.exp,
        ..base
    };
    if subject.exp.is_some_and(|exp| exp <= now) {
        return Err(invalid("the subject_token is invalid, expired or revoked"));
    }
    let issued = tokens.access.issue(tenant, &spec).await?;
    // A refresh token presented as the subject is spent like any use of it: the client gets
    // its successor (same grant, same family) alongside (RFC 8693 §2.2.1 allows one).
    let refresh = match (&subject.refresh, &subject_grant) {
        (Some(stored), Some(original)) => Some(
            tokens
                .rotate(tenant, client, stored, original)
                .await?
                .map_err(invalid)?
                .token,
        ),
        _ => None,
    };
    Ok(TokenResponse {
        issued_token_type: Some(requested),
        refresh_token: refresh,
        ..TokenResponse::bearer(issued, &scope)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn may_act_restricts_the_actor() {
        let subject = Party {
            sub: "alice".into(),
            scope: None,
            act: None,
            may_act: Some(json!({"sub": "svc-a"})),
            client_id: None,
            exp: None,
            audience: Vec::new(),
            family: None,
            refresh: None,
        };
        assert!(may_act_allows(&subject, "svc-a"));
        assert!(!may_act_allows(&subject, "svc-b"));
    }
}
