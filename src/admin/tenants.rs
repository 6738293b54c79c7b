//! `/admin/tenants`: tenant and signing-key administration.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{KeyView, TenantView, read_body, slug};
use crate::app::AppState;
use crate::error::Problem;
use crate::http::Admin;
use crate::model::{SigningAlg, TenantSlug};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    slug: String,
    display_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Algorithms to rotate; all when absent or empty.
    #[serde(default)]
    algorithms: Vec<SigningAlg>,
    /// Promote next keys even if verifiers may not have fetched them yet.
    #[serde(default)]
    force: bool,
}

pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let all = state.tenants().list().await?;
    let views: Vec<TenantView> = all
        .iter()
        .map(|t| TenantView::new(&state.settings, t))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<NewTenant>,
) -> Result<HttpResponse, Problem> {
    let slug = TenantSlug::parse(&body.slug)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    // RSA keys come with the tenant's first RS256 signature: the request does not wait.
    let tenant = state
        .tenants()
        .create_with(&slug, body.display_name.as_deref(), false)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/admin/tenants/{slug}")))
        .json(TenantView::new(&state.settings, &tenant)))
}

pub async fn show(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = state.tenants().get(&slug(&path)?).await?;
    Ok(HttpResponse::Ok().json(TenantView::new(&state.settings, &tenant)))
}

pub async fn delete(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    state.tenants().delete(&slug(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = state.tenants().get(&slug(&path)?).await?;
    let all = state.keys().list(tenant.id).await?;
    Ok(HttpResponse::Ok().json(all.iter().map(KeyView::from).collect::<Vec<_>>()))
}

pub async fn rotate_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = read_body(payload).await?;
    // An empty body rotates everything; a malformed one must not.
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}"))
        })?
    };
    let tenant = state.tenants().get(&slug(&path)?).await?;
    let done = state
        .keys()
        .rotate(tenant.id, &request.algorithms, request.force)
        .await?;
    Ok(HttpResponse::Ok().json(done))
}

pub async fn delete_key(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (raw_slug, kid) = path.into_inner();
    let tenant = state.tenants().get(&slug(&raw_slug)?).await?;
    state.keys().delete(tenant.id, &kid).await?;
    Ok(HttpResponse::NoContent().finish())
}
