//! Pushed authorization requests (RFC 9126): a client sends its authorization request
//! straight to `{issuer}/par`, authenticated as at the token endpoint, and gets back a
//! `request_uri` that stands for it at `/authorize`. The request is validated here as
//! `/authorize` would (§2.1) and its errors are JSON (§2.3), never redirects.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::app::AppState;
use crate::error::{AuthorizationError, OAuthError};
use crate::http::CurrentTenant;
use crate::model::authorization::PendingAuthorization;
use crate::oauth::authorization_request::{AuthorizationFailure, AuthorizationRequest};
use crate::oauth::authorize::{REQUEST_URI_PREFIX, asked_scope, confidential_pkce};
use crate::urls::Endpoint;

#[derive(Serialize)]
struct Pushed {
    request_uri: String,
    expires_in: u64,
}

fn json_error(refused: AuthorizationFailure) -> OAuthError {
    refused.error.because(refused.description)
}

/// `POST {issuer}/par`.
pub async fn push(
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, OAuthError> {
    let (params, auth) = state
        .client_auth()
        .form_request(&tenant, &req, form.into_inner(), Endpoint::Par)
        .await?;
    let client = auth.client;
    // §2.1: the request_uri parameter MUST NOT be provided.
    if params.get("request_uri").is_some() {
        return Err(AuthorizationError::InvalidRequest
            .because("request_uri cannot be pushed (RFC 9126 section 2.1)"));
    }
    if params
        .get("client_id")
        .is_some_and(|id| id != client.client_id.as_str())
    {
        return Err(
            AuthorizationError::InvalidRequest.because("client_id is not the authenticated client")
        );
    }
    let params = match params.get("request") {
        None => params,
        // §3: a request object, verified like one sent to /authorize.
        Some(object) => state
            .request_objects()
            .resolve(&tenant, &client, &params, object)
            .await?
            .map_err(json_error)?,
    };
    let issuer = state.settings.issuer(&tenant.slug);
    let mut request = AuthorizationRequest::parse(
        &params,
        &client,
        &issuer,
        confidential_pkce(&tenant, &client),
    )
    .map_err(json_error)?;
    request.scope = asked_scope(&request, &client);
    let authz = state.authorizations();
    let ttl = state.settings.oauth.par_ttl_secs;
    let now = state.clock.now();
    let pending = PendingAuthorization {
        pushed: true,
        in_browser: false,
        expires_at: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        ..authz.pending(request, None)
    };
    let handle = authz.stash(&tenant, &pending, None).await?;
    // §2.2: 201 Created.
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Pushed {
            request_uri: format!("{REQUEST_URI_PREFIX}{handle}"),
            expires_in: ttl,
        }))
}
