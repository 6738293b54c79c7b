//! `/admin/tenants/{tenant}/users`: user administration. A user in a path is named by id or by
//! username; every change is written with its audit event (actor `admin-api`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ETAG, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{ADMIN_API, AuditView, UserView, read_body, slug};
use crate::app::AppState;
use crate::error::Problem;
use crate::http::Admin;
use crate::model::TenantId;
use crate::model::user::User;
use crate::people::users::{NewUser, UserChange};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The last username of the previous page.
    after: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

async fn tenant(state: &AppState, raw: &str) -> Result<TenantId, Problem> {
    Ok(state.tenants().get(&slug(raw)?).await?.id)
}

async fn user(
    state: &AppState,
    raw_tenant: &str,
    raw_user: &str,
) -> Result<(TenantId, User), Problem> {
    let tenant = tenant(state, raw_tenant).await?;
    let user = state.users().resolve(tenant, raw_user).await?;
    Ok((tenant, user))
}

/// The entity tag of a user's current version (RFC 9110 §8.8.3).
fn etag(user: &User) -> String {
    format!("\"{}\"", user.updated_at)
}

fn shown(status: StatusCode, user: &User) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((ETAG, etag(user)))
        .json(UserView::from(user))
}

/// `If-Match` (RFC 9110 §13.1.1): the version the change was written against, if given.
fn precondition(req: &HttpRequest, current: &User) -> Result<Option<i64>, Problem> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(None);
    }
    if value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == etag(current))
    {
        Ok(Some(current.updated_at))
    } else {
        Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "the user changed since this version; fetch it again",
        ))
    }
}

pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    page: web::Query<Page>,
) -> Result<HttpResponse, Problem> {
    let tenant = tenant(&state, &path).await?;
    let limit = page.limit.clamp(1, 1000);
    let users = state
        .users()
        .list(tenant, page.after.as_deref(), limit)
        .await?;
    let next = (users.len() == limit)
        .then(|| users.last().map(|u| u.username.as_str().to_owned()))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "users": users.iter().map(UserView::from).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let new: NewUser = json(payload).await?;
    let tenant_id = tenant(&state, &path).await?;
    let user = state.users().create(tenant_id, new, ADMIN_API).await?;
    let mut response = shown(StatusCode::CREATED, &user);
    response.headers_mut().insert(
        LOCATION,
        header::HeaderValue::from_str(&format!("/admin/tenants/{}/users/{}", path, user.id))
            .map_err(|_| Problem::new(StatusCode::NOT_FOUND, "no such tenant"))?,
    );
    Ok(response)
}

pub async fn show(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (_, user) = user(&state, &path.0, &path.1).await?;
    Ok(shown(StatusCode::OK, &user))
}

pub async fn update(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let mut change: UserChange = json(payload).await?;
    let (tenant, current) = user(&state, &path.0, &path.1).await?;
    if let Some(expected) = precondition(&req, &current)? {
        change.expected_updated_at = Some(expected);
    }
    let user = state
        .users()
        .update(tenant, current.id, change, ADMIN_API)
        .await?;
    Ok(shown(StatusCode::OK, &user))
}

pub async fn delete(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    state.users().delete(tenant, user.id, ADMIN_API).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT …/password` sets a password (the new-password rules apply); `DELETE` removes it.
pub async fn set_password(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let new: NewPassword = json(payload).await?;
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    state
        .users()
        .set_password(tenant, user.id, Some(new.password), ADMIN_API)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove_password(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    state
        .users()
        .set_password(tenant, user.id, None, ADMIN_API)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn disable(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    set_disabled(&state, &path, true).await
}

pub async fn enable(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    set_disabled(&state, &path, false).await
}

async fn set_disabled(
    state: &AppState,
    path: &(String, String),
    disabled: bool,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(state, &path.0, &path.1).await?;
    let user = state
        .users()
        .set_disabled(tenant, user.id, disabled, ADMIN_API)
        .await?;
    Ok(shown(StatusCode::OK, &user))
}

pub async fn audit(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    let events = state.users().audit(tenant, user.id).await?;
    Ok(HttpResponse::Ok().json(events.iter().map(AuditView::from).collect::<Vec<_>>()))
}

/// A JSON body read here rather than by `web::Json`, so that a password in a malformed body is
/// never echoed back in the error.
async fn json<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, Problem> {
    let body = read_body(payload).await?;
    serde_json::from_slice(&body).map_err(|e| {
        let text = e.to_string();
        let why = if e.is_data() && !text.starts_with("invalid") {
            // Unknown and missing members: the message names the member, never a value.
            format!("invalid body: {text}")
        } else if e.is_data() {
            // "invalid type: string \"…\"" would quote what was sent (a password, perhaps).
            format!("invalid value at line {} column {}", e.line(), e.column())
        } else {
            format!(
                "malformed JSON body at line {} column {}",
                e.line(),
                e.column()
            )
        };
        Problem::new(StatusCode::BAD_REQUEST, why)
    })
}

/// `GET …/logins`: the latest sign-in attempts (time, address, user agent, method, result).
pub async fn logins(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    let events = state.sessions().history(tenant, user.id, 100).await?;
    let views: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "at": crate::clock::rfc3339(e.at),
                "ip": e.ip,
                "user_agent": e.user_agent,
                "method": e.method,
                "result": e.result,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET …/sessions`: the user's live sessions; `DELETE` ends them all.
pub async fn sessions(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    let live = state.sessions().of(tenant, user.id).await?;
    let views: Vec<serde_json::Value> = live
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "created_at": crate::clock::rfc3339(s.created_at),
                "last_seen_at": crate::clock::rfc3339(s.last_seen_at),
                "expires_at": crate::clock::rfc3339(s.expires_at),
                "auth_time": crate::clock::rfc3339(s.auth_time),
                "amr": s.amr,
                "ip": s.ip,
                "user_agent": s.user_agent,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

pub async fn end_sessions(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (tenant, user) = user(&state, &path.0, &path.1).await?;
    let ended = state
        .sessions()
        .revoke_others(tenant, user.id, None)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ended": ended })))
}
