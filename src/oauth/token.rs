//! The token endpoint (RFC 6749 §3.2, §5): client authentication, then the grant named by
//! `grant_type`. Each grant lives in `grants/`; a grant other issues add is one more arm.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::app::AppState;
use crate::config::Settings;
use crate::error::{OAuthError, TokenError};
use crate::http::CurrentTenant;
use crate::model::Tenant;
use crate::model::client::{Client, GrantType, check_resource};
use crate::model::token::{Scope, TokenType};
use crate::oauth::access_token::Issued;
use crate::oauth::grants;
use crate::oauth::requests::TokenRequest;

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<TokenType>,
    /// OIDC Core §3.1.3.3: with the `openid` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// A Bearer access token response, with the granted scope when there is one.
    pub fn bearer(issued: Issued, scope: &Scope) -> TokenResponse {
        TokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: (!scope.is_empty()).then(|| scope.to_string()),
            refresh_token: None,
            issued_token_type: None,
            id_token: None,
        }
    }

    pub fn into_response(self) -> HttpResponse {
        HttpResponse::Ok()
            // RFC 6749 §5.1: MUST include Cache-Control: no-store (and Pragma for HTTP/1.0).
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(self)
    }
}

/// `POST {issuer}/token`.
pub async fn token(
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
            crate::urls::Endpoint::Token,
        )
        .await?;
    let raw = params.required("grant_type")?;
    let grant: GrantType = raw
        .parse()
        .map_err(|_| TokenError::UnsupportedGrantType.because("grant_type is not supported"))?;
    if !SUPPORTED_GRANTS.contains(&grant) {
        return Err(
            TokenError::UnsupportedGrantType.because(format!("the {grant} grant is not supported"))
        );
    }
    if !auth.client.allows_grant(grant) {
        return Err(TokenError::UnauthorizedClient.because(format!(
            "this client is not registered for the {grant} grant"
        )));
    }
    let client = &auth.client;
    let response = match TokenRequest::parse(grant, &params)? {
        TokenRequest::ClientCredentials { scope, resources } => {
            grants::client_credentials::grant(
                &state.access_tokens(),
                &tenant,
                client,
                scope,
                &resources,
            )
            .await?
        }
        TokenRequest::TokenExchange(request) => {
            grants::token_exchange::grant(&state.refresh_tokens(), &tenant, client, &request)
                .await?
        }
        TokenRequest::AuthorizationCode(request) => {
            state
                .refresh_tokens()
                .redeem_code(&tenant, client, &request)
                .await?
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
            resources,
        } => {
            state
                .refresh_tokens()
                .grant(&tenant, client, &refresh_token, scope, &resources)
                .await?
        }
    };
    Ok(response.into_response())
}

/// The grants this server implements (the device grant arrives with its own endpoint).
pub const SUPPORTED_GRANTS: &[GrantType] = &[
    GrantType::AuthorizationCode,
    GrantType::ClientCredentials,
    GrantType::RefreshToken,
    GrantType::TokenExchange,
];

/// The most scope `client` may be granted by any grant now: its registered scope (none
/// registered: nothing). Client credentials, refresh and token exchange share it.
pub fn scope_ceiling(client: &Client) -> Scope {
    client.metadata.scope.clone().unwrap_or_default()
}

/// Checks a requested scope against what may be granted (RFC 6749 §3.3); without a request,
/// `allowed` is granted.
pub fn granted_scope(requested: Option<Scope>, allowed: &Scope) -> Result<Scope, OAuthError> {
    let Some(scope) = requested else {
        return Ok(allowed.clone());
    };
    if !scope.is_subset(allowed) {
        return Err(TokenError::InvalidScope
            .because("the requested scope exceeds what this client may be granted"));
    }
    Ok(scope)
}

/// The audience of a token: the requested resources (RFC 8707 §2) and, for token exchange,
/// logical audiences (RFC 8693 §2.1), each one the client may address; without any, the
/// client's configured resources, or the issuer itself.
pub fn audience(
    settings: &Settings,
    tenant: &Tenant,
    client: &Client,
    resources: &[String],
    audiences: &[String],
) -> Result<Vec<String>, OAuthError> {
    for resource in resources {
        check_resource(resource).map_err(|e| TokenError::InvalidTarget.because(e))?;
    }
    let mut out: Vec<String> = Vec::new();
    for target in resources.iter().chain(audiences) {
        if !client.policy.resources.iter().any(|r| r == target) {
            return Err(TokenError::InvalidTarget.because(format!(
                "'{}' is not a resource this client may request",
                target.chars().take(100).collect::<String>()
            )));
        }
        if !out.contains(target) {
            out.push(target.clone());
        }
    }
    if out.is_empty() {
        out = if client.policy.resources.is_empty() {
            vec![settings.issuer(&tenant.slug)]
        } else {
            client.policy.resources.clone()
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn a_requested_scope_is_granted_only_within_the_ceiling() {
        let allowed = scope("api:read api:write");
        assert_eq!(granted_scope(None, &allowed).unwrap(), allowed);
        assert_eq!(
            granted_scope(Some(scope("api:read")), &allowed).unwrap(),
            scope("api:read")
        );
        let wider = granted_scope(Some(scope("api:read api:admin")), &allowed).unwrap_err();
        assert_eq!(wider.code, ErrorCode::InvalidScope);
        // Nothing registered: nothing may be asked for, and nothing is granted unasked.
        assert!(granted_scope(Some(scope("api:read")), &Scope::default()).is_err());
        assert!(granted_scope(None, &Scope::default()).unwrap().is_empty());
    }
}
