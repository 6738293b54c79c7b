//! `GET {issuer}/jwks`: the tenant's public keys (RFC 7517 §5), active, next and retired.

use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::error::OAuthError;
use crate::http::CurrentTenant;

pub async fn jwks(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentTenant(tenant): CurrentTenant,
) -> Result<HttpResponse, OAuthError> {
    let set = state.keys().key_set(tenant.id).await?;
    // Verifiers may cache the set this long; keys.jwks_max_age_secs is validated to be shorter
    // than the rotation interval, so a next key is always seen before it signs.
    let cache_control = format!("public, max-age={}", state.settings.keys.jwks_max_age_secs);
    let not_modified = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        // RFC 9110 §13.1.2: If-None-Match uses the weak comparison (ignore W/).
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == set.etag)
        });
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((CACHE_CONTROL, cache_control))
        .insert_header((ETAG, set.etag.clone()))
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    if not_modified {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(set.jwks.clone()))
}
