//! Token revocation (RFC 7009): access tokens (JWTs remembered by `jti` until they expire,
//! opaque tokens in place), refresh tokens with their whole family, and service-account API
//! keys. Only the client a token was issued to may revoke it; unknown tokens answer 200.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::error::{OAuthError, RevocationError, ServiceError};
use crate::http::CurrentTenant;
use crate::model::Tenant;
use crate::model::api_key::split_raw_key;
use crate::model::client::ClientId;
use crate::model::token::TokenTypeHint;
use crate::oauth::requests::TokenReference;

/// `POST {issuer}/revoke`.
pub async fn revoke(
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
            crate::urls::Endpoint::Revoke,
        )
        .await?;
    let request = TokenReference::parse(&params)?;
    let owned = revoke_any(&state, &tenant, &request, &auth.client.client_id).await?;
    if owned == Some(false) {
        // RFC 7009 §2.1: a token issued to another client is refused.
        return Err(
            RevocationError::UnauthorizedClient.because("the token was not issued to this client")
        );
    }
    // RFC 7009 §2.2: 200 whether or not the token existed.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `None`: no such token here; `Some(true)`: revoked; `Some(false)`: another client's.
async fn revoke_any(
    state: &AppState,
    tenant: &Tenant,
    request: &TokenReference,
    client: &ClientId,
) -> Result<Option<bool>, ServiceError> {
    let token = request.token.as_str();
    if split_raw_key(token).is_some() {
        return state
            .api_keys()
            .revoke_presented(tenant.id, token, client)
            .await;
    }
    let refresh_first = request.hint == Some(TokenTypeHint::RefreshToken);
    for refresh in [refresh_first, !refresh_first] {
        let outcome = if refresh {
            state.refresh_tokens().revoke(tenant, token, client).await?
        } else {
            match state.access_tokens().inspect(tenant, token).await? {
                Some(active) => Some(
                    state
                        .access_tokens()
                        .revoke(tenant, &active, token, client)
                        .await?,
                ),
                None => None,
            }
        };
        if outcome.is_some() {
            return Ok(outcome);
        }
    }
    Ok(None)
}
