//! The browser surface (DESIGN §4): server-rendered pages for people, under each tenant's
//! issuer. Forms post back here with a CSRF token; every answer to a post is a page or a 303
//! (RFC 9700 §4.12: never a 307, which would post the password again).

pub mod account;
pub mod assets;
pub mod authorize;
pub mod browser;
pub mod login;
pub mod logout;
pub mod pages;
pub mod passkeys;
pub mod recovery;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use minijinja::{Value, context};

use crate::app::AppState;
use crate::error::ServiceError;
use crate::model::Tenant;
use crate::model::session::Session;
use crate::model::user::User;
use crate::urls::{Endpoint, TenantUrls};
use browser::Forgery;
use pages::page;

/// The tenant of a page; an unknown one is an HTML 404, not the JSON of the OAuth endpoints.
pub struct PageTenant(pub std::sync::Arc<Tenant>);

impl actix_web::FromRequest for PageTenant {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let found = crate::http::CurrentTenant::from_request(req, payload);
        Box::pin(async move {
            found.await.map(|t| PageTenant(t.0)).map_err(|e| {
                let status = actix_web::ResponseError::status_code(&e);
                let body = pages::Pages::get().render(
                    "message.html",
                    context! {
                        title => "Not found",
                        message => "There is no sign-in page here. Check the address.",
                        role => "alert",
                    },
                );
                actix_web::error::InternalError::from_response(
                    e,
                    pages::html(status, pages::PAGE_CSP, body),
                )
                .into()
            })
        })
    }
}

/// What the layout shows of the tenant: its name, logo and stylesheet.
fn brand(tenant: &Tenant) -> Value {
    let b = &tenant.settings.branding;
    context! {
        name => tenant.display_name,
        logo_url => b.logo_url,
        stylesheet => b.accent_color.as_ref().map(|_| TenantUrls::path(&tenant.slug, Endpoint::BrandingCss)),
    }
}

/// Renders a page of forms: `extra` plus what every such page gets (the brand, the CSRF token
/// of the browser's binding, with the binding cookie if it is new, the password rules, the
/// login page).
fn form_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    name: &str,
    extra: minijinja::Value,
) -> HttpResponse {
    let (binding_value, new_cookie) = browser::binding(state, req);
    let base = context! {
        brand => brand(tenant),
        csrf => browser::csrf_token(state, tenant.id, &binding_value),
        min_length => state.settings.passwords.min_length,
        login => TenantUrls::path(&tenant.slug, Endpoint::Login),
    };
    let mut response = page(status, name, context! { ..base, ..extra });
    if let Some(c) = new_cookie {
        let _ = response.add_cookie(&c);
    }
    response
}

/// A 303 to one of the tenant's pages, with a notice for it to show (never free text).
fn to_page(tenant: &Tenant, endpoint: Endpoint, notice: &str) -> HttpResponse {
    see_other(&format!(
        "{}?notice={notice}",
        TenantUrls::path(&tenant.slug, endpoint)
    ))
}

/// Starts a session for `user` after a sign-in by `method`, ending the browser's previous one
/// at this tenant; the cookie to set.
async fn begin_session(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    user: &User,
    amr: Vec<crate::model::session::Amr>,
    method: crate::model::session::LoginMethod,
) -> Result<actix_web::cookie::Cookie<'static>, ServiceError> {
    let name = browser::session_cookie_name(state, &tenant.slug);
    let previous = req.cookie(&name).map(|c| c.value().to_owned());
    let origin = browser::origin(state, req);
    let begun = state
        .sessions()
        .begin(tenant.id, user, amr, method, &origin, previous.as_deref())
        .await?;
    Ok(browser::cookie(state, name, begun.token))
}

/// A 303 to `location` (RFC 9110 §15.4.4: the browser follows with a GET).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn message(status: StatusCode, tenant: &Tenant, title: &str, text: &str) -> HttpResponse {
    page(
        status,
        "message.html",
        context! { brand => brand(tenant), title, message => text, role => "alert" },
    )
}

/// A post that failed the CSRF or origin check.
fn forged(tenant: &Tenant, why: Forgery) -> HttpResponse {
    let text = match why {
        Forgery::CrossSite => "This form was sent from another site, so it was ignored.",
        Forgery::BadToken => {
            "This form has expired or your browser blocks cookies. Go back, reload the page and try again."
        }
    };
    message(why.status(), tenant, "The form could not be accepted", text)
}

/// A service failure as a page: "busy" is a 429 to retry in a second, anything else a 503
/// (the database or the shared cache is unreachable). Never a 500.
fn failure(tenant: &Tenant, e: ServiceError) -> HttpResponse {
    match e {
        ServiceError::Busy(_) => {
            let mut r = message(
                StatusCode::TOO_MANY_REQUESTS,
                tenant,
                "Busy",
                "Too many people are signing in right now. Try again in a moment.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        ServiceError::NotFound(_) => message(
            StatusCode::NOT_FOUND,
            tenant,
            "Not found",
            "What you asked for does not exist, or no longer does.",
        ),
        ServiceError::Invalid(why) | ServiceError::Conflict(why) => {
            message(StatusCode::BAD_REQUEST, tenant, "That did not work", &why)
        }
        e => {
            tracing::warn!(error = %e, "page failed");
            let mut r = message(
                StatusCode::SERVICE_UNAVAILABLE,
                tenant,
                "Temporarily unavailable",
                "The service cannot answer right now. Try again in a minute.",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            r
        }
    }
}

/// A posted form's fields, once the body parsed and the CSRF and origin checks passed; else
/// the page to answer with.
fn posted_form(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &[u8],
) -> Result<std::collections::HashMap<String, String>, Box<HttpResponse>> {
    let fields = browser::form(body).map_err(|why| {
        Box::new(message(
            StatusCode::BAD_REQUEST,
            tenant,
            "That did not work",
            &why,
        ))
    })?;
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or("");
    browser::check_post(state, req, tenant.id, csrf)
        .map_err(|why| Box::new(forged(tenant, why)))?;
    Ok(fields)
}

/// The browser's session at `tenant`, if it holds one that is live: the cookie token, the
/// session and its user.
async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<Option<(String, Session, User)>, ServiceError> {
    let Some(cookie) = req.cookie(&browser::session_cookie_name(state, &tenant.slug)) else {
        return Ok(None);
    };
    let token = cookie.value().to_owned();
    if token.len() != 43 {
        return Ok(None);
    }
    Ok(state
        .sessions()
        .current(tenant.id, &token)
        .await?
        .map(|(s, u)| (token, s, u)))
}
