//! The tenant of a request, from the `{tenant}` path segment.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::app::AppState;
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Tenant, TenantSlug};

/// The request's tenant; an unknown or malformed name is a 404 JSON error.
pub struct CurrentTenant(pub std::sync::Arc<Tenant>);

impl FromRequest for CurrentTenant {
    type Error = OAuthError;
    type Future = LocalBoxFuture<'static, Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let raw = req.match_info().get("tenant").map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| OAuthError::new(ErrorCode::ServerError))?;
            let slug = raw
                .as_deref()
                .and_then(|r| TenantSlug::parse(r).ok())
                .ok_or_else(|| OAuthError::not_found("no such tenant"))?;
            Ok(CurrentTenant(state.tenants().get(&slug).await?))
        })
    }
}
