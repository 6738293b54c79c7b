//! Token introspection (RFC 7662) for authenticated clients, with the JWT response of RFC 9701
//! when asked for with `Accept: application/token-introspection+jwt`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::error::{OAuthError, ServiceError};
use crate::http::CurrentTenant;
use crate::model::api_key::{ApiKeyOwner, split_raw_key};
use crate::model::client::{AuthMethod, Client};
use crate::model::token::TokenTypeHint;
use crate::model::{SigningAlg, Tenant};
use crate::oauth::client_auth::{self, Authenticated};
use crate::oauth::requests::TokenReference;

/// RFC 9701 §5: the media type of a JWT introspection response.
pub const INTROSPECTION_JWT: &str = "application/token-introspection+jwt";

/// `POST {issuer}/introspect`.
pub async fn introspect(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, OAuthError> {
    let (params, auth) = state
        .client_auth()
        .form_request(
            &tenant,
            &req,
            form.into_inner(),
            crate::urls::Endpoint::Introspect,
        )
        .await?;
    // RFC 7662 §2.1: the endpoint MUST require authorization; public clients hold no credential.
    if auth.method == AuthMethod::None {
        return Err(
            client_auth::Failure::of(&state.settings.issuer(&tenant.slug), &req)
                .reject("public clients may not introspect tokens"),
        );
    }
    // RFC 7662 §2.1: an unknown hint is ignored and the search extended.
    let request = TokenReference::parse(&params)?;
    let found = lookup(&state, &tenant, &auth, &request.token, request.hint)
        .await?
        .filter(|members| may_see(&auth.client, members));
    let mut body = Map::new();
    body.insert("active".into(), found.is_some().into());
    if let Some(members) = found {
        body.extend(members);
    }
    let wants_jwt = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|part| part.trim().split(';').next() == Some(INTROSPECTION_JWT))
        });
    if wants_jwt {
        return jwt_response(&state, &tenant, &auth, body).await;
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Value::Object(body)))
}

/// RFC 7662 §4: a token is shown only to its own client, to a client serving one of its
/// audiences, or to a client trusted to introspect everything; to anyone else it is inactive.
fn may_see(caller: &Client, members: &Map<String, Value>) -> bool {
    if caller.policy.may_introspect {
        return true;
    }
    if members.get("client_id").and_then(Value::as_str) == Some(caller.client_id.as_str()) {
        return true;
    }
    let serves = |aud: &str| caller.policy.resources.iter().any(|r| r == aud);
    match members.get("aud") {
        Some(Value::String(aud)) => serves(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(serves),
        _ => false,
    }
}

/// The members describing an active token, or `None` when it is not (RFC 7662 §2.2: unknown,
/// expired, revoked and other tenants' tokens all look the same).
async fn lookup(
    state: &AppState,
    tenant: &Tenant,
    auth: &Authenticated,
    token: &str,
    hint: Option<TokenTypeHint>,
) -> Result<Option<Map<String, Value>>, ServiceError> {
    if split_raw_key(token).is_some() {
        return api_key(state, tenant, token).await;
    }
    let refresh_first = hint == Some(TokenTypeHint::RefreshToken);
    for as_refresh in [refresh_first, !refresh_first] {
        let found = if as_refresh {
            refresh(state, tenant, auth, token).await?
        } else {
            access(state, tenant, token).await?
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn access(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
) -> Result<Option<Map<String, Value>>, ServiceError> {
    let Some(active) = state.access_tokens().inspect(tenant, token).await? else {
        return Ok(None);
    };
    let mut members = active.claims.to_map();
    // RFC 9449 §8.3 / RFC 7662 §2.2: DPoP-bound tokens are of type DPoP.
    let dpop = members.get("cnf").and_then(|c| c.get("jkt")).is_some();
    members.insert(
        "token_type".into(),
        if dpop { "DPoP" } else { "Bearer" }.into(),
    );
    Ok(Some(members))
}

async fn refresh(
    state: &AppState,
    tenant: &Tenant,
    auth: &Authenticated,
    token: &str,
) -> Result<Option<Map<String, Value>>, ServiceError> {
    let Some(stored) = state.refresh_tokens().inspect(tenant, token).await? else {
        return Ok(None);
    };
    // A refresh token is its client's alone: to anyone else it is not active.
    if stored.client_id != auth.client.client_id {
        return Ok(None);
    }
    let mut members = Map::new();
    for name in ["sub", "scope", "aud", "act"] {
        if let Some(v) = stored.claims.get(name) {
            members.insert(name.into(), v.clone());
        }
    }
    members.insert("client_id".into(), stored.client_id.as_str().into());
    members.insert("exp".into(), stored.expires_at.into());
    members.insert("iss".into(), state.settings.issuer(&tenant.slug).into());
    Ok(Some(members))
}

async fn api_key(
    state: &AppState,
    tenant: &Tenant,
    token: &str,
) -> Result<Option<Map<String, Value>>, ServiceError> {
    let Some(key) = state.api_keys().inspect(tenant.id, token).await? else {
        return Ok(None);
    };
    let mut members = Map::new();
    members.insert("sub".into(), key.owner.subject().into());
    if let ApiKeyOwner::Client(id) = &key.owner {
        members.insert("client_id".into(), id.as_str().into());
    }
    if !key.scope.is_empty() {
        members.insert("scope".into(), key.scope.to_string().into());
    }
    members.insert("iat".into(), key.created_at.into());
    members.insert("nbf".into(), key.not_before.into());
    if let Some(exp) = key.expires_at {
        members.insert("exp".into(), exp.into());
    }
    members.insert("iss".into(), state.settings.issuer(&tenant.slug).into());
    members.insert("token_type".into(), "api_key".into());
    members.insert("key_id".into(), key.key_id.into());
    Ok(Some(members))
}

/// RFC 9701 §5: the response as a signed JWT for the introspecting client.
async fn jwt_response(
    state: &AppState,
    tenant: &Tenant,
    auth: &Authenticated,
    body: Map<String, Value>,
) -> Result<HttpResponse, OAuthError> {
    // RFC 9701 §6: introspection_signed_response_alg defaults to RS256.
    let set = state
        .keys()
        .signing_set(tenant.id, SigningAlg::Rs256)
        .await?;
    let signer = set
        .signer(SigningAlg::Rs256)
        .ok_or_else(|| ServiceError::Internal("tenant has no active RS256 key".into()))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), state.settings.issuer(&tenant.slug).into());
    claims.insert("aud".into(), auth.client.client_id.as_str().into());
    claims.insert("iat".into(), state.clock.now().into());
    claims.insert("token_introspection".into(), Value::Object(body));
    let jwt = signer
        .sign_jwt(&claims, "token-introspection+jwt")
        .map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(INTROSPECTION_JWT)
        .body(jwt))
}
