//! Token exchange (RFC 8693): a client trades a subject token (and for delegation an actor
//! token) for a new token. Impersonation and delegation are each allowed only by the client's
//! policy; the new token never carries more scope than the subject token.

use serde_json::{Map, Value};

use crate::app::AppState;
use crate::error::{ErrorCode, OAuthError, ServiceError};
use crate::jose::jwt;
use crate::model::Tenant;
use crate::model::client::{Client, GrantType};
use crate::model::token::{Scope, TokenFormat, TokenType};
use crate::oauth::access_token::{self, TokenSpec};
use crate::oauth::grants::refresh_token::{self, RefreshGrant};
use crate::oauth::params::Params;
use crate::oauth::token::{TokenResponse, audience, granted_scope};

/// A validated subject or actor token.
struct Party {
    sub: String,
    scope: Option<Scope>,
    act: Option<Value>,
    may_act: Option<Value>,
}

fn invalid(why: &str) -> OAuthError {
    // RFC 8693 §2.2.2: an invalid subject or actor token is an invalid_request.
    OAuthError::invalid_request(why)
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
    })
}

fn audience_has(claims: &Map<String, Value>, who: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == who,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(who)),
        _ => false,
    }
}

/// Validates a token of the stated type as one this tenant issued and still honours.
async fn validate(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    kind: TokenType,
) -> Result<Option<Party>, ServiceError> {
    let claims = match kind {
        TokenType::AccessToken => access_token::inspect(state, tenant, token)
            .await?
            .map(|t| t.claims),
        // A refresh token is only ever its own client's to present.
        TokenType::RefreshToken => refresh_token::inspect(state, tenant, token)
            .await?
            .filter(|t| t.client_id == client.client_id)
            .map(|t| t.claims),
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
                Some("at+jwt" | "application/at+jwt") if kind == TokenType::Jwt => {
                    access_token::inspect(state, tenant, token)
                        .await?
                        .map(|t| t.claims)
                }
                Some("at+jwt" | "application/at+jwt")
                | Some("token-introspection+jwt" | "application/token-introspection+jwt") => None,
                _ => access_token::verify_own_jwt(state, tenant, token, None)
                    .await?
                    .filter(|c| audience_has(c, client.client_id.as_str())),
            }
        }
    };
    Ok(claims.as_ref().and_then(party))
}

fn token_type(params: &Params, name: &str) -> Result<Option<TokenType>, OAuthError> {
    params
        .get(name)
        .map(|raw| {
            raw.parse::<TokenType>()
                .map_err(|_| OAuthError::invalid_request(format!("unsupported {name}")))
        })
        .transpose()
}

/// RFC 8693 §4.4: a subject token naming who may act for it admits only that actor.
fn may_act_allows(subject: &Party, actor_sub: &str) -> bool {
    match &subject.may_act {
        None => true,
        Some(may_act) => may_act.get("sub").and_then(Value::as_str) == Some(actor_sub),
    }
}

pub async fn grant(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let subject_token = params.required("subject_token")?;
    let subject_type = token_type(params, "subject_token_type")?
        .ok_or_else(|| OAuthError::invalid_request("missing parameter 'subject_token_type'"))?;
    let actor_type = token_type(params, "actor_token_type")?;
    let actor_token = params.get("actor_token");
    // RFC 8693 §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT appear without.
    if actor_token.is_some() != actor_type.is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token and actor_token_type go together",
        ));
    }
    let requested = token_type(params, "requested_token_type")?.unwrap_or(TokenType::AccessToken);
    if requested == TokenType::IdToken {
        return Err(OAuthError::invalid_request(
            "requested_token_type id_token is not supported",
        ));
    }
    if requested == TokenType::RefreshToken && !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::code(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for refresh tokens",
        ));
    }

    let subject = validate(state, tenant, client, subject_token, subject_type)
        .await?
        .ok_or_else(|| invalid("the subject_token is invalid, expired or revoked"))?;
    let act = match (actor_token, actor_type) {
        (Some(token), Some(kind)) => {
            if !client.policy.may_delegate {
                return Err(OAuthError::code(
                    ErrorCode::UnauthorizedClient,
                    "this client may not obtain delegation tokens",
                ));
            }
            let actor = validate(state, tenant, client, token, kind)
                .await?
                .ok_or_else(|| invalid("the actor_token is invalid, expired or revoked"))?;
            if !may_act_allows(&subject, &actor.sub) {
                // RFC 8693 §2.2.2: tokens unacceptable by policy are an invalid_request.
                return Err(OAuthError::invalid_request(
                    "the subject token does not allow this actor (may_act)",
                ));
            }
            // RFC 8693 §4.1: the current actor on top, earlier actors nested inside.
            let mut act = Map::new();
            act.insert("sub".into(), actor.sub.into());
            if let Some(prior) = subject.act.clone() {
                act.insert("act".into(), prior);
            }
            Some(Value::Object(act))
        }
        _ => {
            if !client.policy.may_impersonate {
                return Err(OAuthError::code(
                    ErrorCode::UnauthorizedClient,
                    "this client may not obtain impersonation tokens",
                ));
            }
            if !may_act_allows(&subject, client.client_id.as_str()) {
                return Err(OAuthError::invalid_request(
                    "the subject token does not allow this client to act for it (may_act)",
                ));
            }
            subject.act.clone()
        }
    };

    // Never more than the subject had, nor more than the client may hold.
    let mut allowed = subject.scope.clone().unwrap_or_default();
    if let Some(client_scope) = &client.metadata.scope {
        allowed = allowed.intersection(client_scope);
    }
    let scope = granted_scope(params.get("scope"), &allowed)?;
    let audience = audience(
        state,
        tenant,
        client,
        params.all("resource"),
        params.all("audience"),
    )?;

    if requested == TokenType::RefreshToken {
        let grant = RefreshGrant {
            sub: subject.sub,
            scope: scope.clone(),
            audience,
            act,
            family_expires_at: None,
        };
        let token = refresh_token::issue(state, tenant, client, &grant, None).await?;
        return Ok(TokenResponse {
            access_token: token,
            // RFC 8693 §2.2.1: N_A when the issued token is not an access token.
            token_type: "N_A",
            expires_in: client
                .policy
                .refresh_token_ttl_secs
                .unwrap_or(state.settings.oauth.refresh_token_ttl_secs),
            scope: (!scope.is_empty()).then(|| scope.to_string()),
            refresh_token: None,
            issued_token_type: Some(TokenType::RefreshToken),
        });
    }
    let format = if requested == TokenType::Jwt {
        TokenFormat::Jwt
    } else {
        client.policy.token_format()
    };
    let spec = TokenSpec {
        act,
        format,
        ..TokenSpec::for_client(state, tenant, client, subject.sub, scope.clone(), audience)
    };
    let issued = access_token::issue(state, tenant, &spec).await?;
    Ok(TokenResponse {
        issued_token_type: Some(requested),
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
        };
        assert!(may_act_allows(&subject, "svc-a"));
        assert!(!may_act_allows(&subject, "svc-b"));
    }
}
