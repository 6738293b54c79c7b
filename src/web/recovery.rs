//! The pages behind mailed links: asking for a password reset, setting the new password, and
//! confirming an email address. A GET never changes anything (mail scanners open links); the
//! change is the POST of the page the link shows.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use serde::Deserialize;

use super::browser;
use super::{PageTenant, failure, form_page, message, posted_form, to_page};
use crate::app::AppState;
use crate::cache::CacheKey;
use crate::error::ServiceError;
use crate::model::Tenant;
use crate::model::outbox::LinkPurpose;
use crate::urls::{Endpoint, TenantUrls};

/// Reset requests one address may make per hour.
const RESETS_PER_ADDRESS_HOUR: i64 = 10;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn expired(tenant: &Tenant) -> HttpResponse {
    message(
        StatusCode::BAD_REQUEST,
        tenant,
        "This link does not work",
        "It was already used, or it expired. Ask for a new one.",
    )
}

pub async fn forgot_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
) -> HttpResponse {
    let tenant = &tenant.0;
    let action = TenantUrls::new(&state.settings, &tenant.slug).endpoint(Endpoint::PasswordForgot);
    form_page(
        &state,
        &req,
        tenant,
        StatusCode::OK,
        "forgot.html",
        context! { title => "Reset your password", action },
    )
}

pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let fields = match posted_form(&state, &req, tenant, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let address = browser::address(&state, &req);
    let key = CacheKey::ResetsFrom {
        tenant: tenant.id,
        subject: &address,
    };
    match state.cache.count(&key, Duration::from_secs(3600)).await {
        Ok(n) if n > RESETS_PER_ADDRESS_HOUR => {
            let mut r = message(
                StatusCode::TOO_MANY_REQUESTS,
                tenant,
                "Too many requests",
                "Too many reset requests from your network. Try again in an hour.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static("3600"),
            );
            return r;
        }
        Ok(_) => {}
        Err(e) => return failure(tenant, e.into()),
    }
    let typed = fields.get("username").map(String::as_str).unwrap_or("");
    if let Err(e) = state.links().request_reset(tenant, typed).await {
        return failure(tenant, e);
    }
    // The same answer whether or not an account matched (no enumeration).
    message(
        StatusCode::OK,
        tenant,
        "Check your mail",
        "If an account matches and has an email address, a link to set a new password is on its way. It works once, for a limited time.",
    )
}

pub async fn reset_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    let tenant = &tenant.0;
    let user = match state
        .links()
        .check(tenant.id, &query.token, LinkPurpose::PasswordReset)
        .await
    {
        Ok(Some(id)) => state.users().get(tenant.id, id).await.ok(),
        Ok(None) => return expired(tenant),
        Err(e) => return failure(tenant, e),
    };
    let action = TenantUrls::new(&state.settings, &tenant.slug).endpoint(Endpoint::PasswordReset);
    form_page(
        &state,
        &req,
        tenant,
        StatusCode::OK,
        "reset.html",
        context! {
            title => "Choose a new password",
            action,
            token => query.token,
            username => user.map(|u| u.username.as_str().to_owned()),
        },
    )
}

pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let fields = match posted_form(&state, &req, tenant, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let token = fields.get("token").cloned().unwrap_or_default();
    let password = fields.get("new_password").cloned().unwrap_or_default();
    match state
        .links()
        .reset_password(tenant.id, &token, password)
        .await
    {
        Ok(Some(_)) => to_page(tenant, Endpoint::Login, "password-reset"),
        Ok(None) => expired(tenant),
        Err(ServiceError::Invalid(why)) => {
            let action =
                TenantUrls::new(&state.settings, &tenant.slug).endpoint(Endpoint::PasswordReset);
            form_page(
                &state,
                &req,
                tenant,
                StatusCode::OK,
                "reset.html",
                context! { title => "Choose a new password", action, token, error => why },
            )
        }
        Err(e) => failure(tenant, e),
    }
}

pub async fn verify_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    query: web::Query<TokenQuery>,
) -> HttpResponse {
    let tenant = &tenant.0;
    match state
        .links()
        .check(tenant.id, &query.token, LinkPurpose::EmailVerification)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return expired(tenant),
        Err(e) => return failure(tenant, e),
    }
    let action = TenantUrls::new(&state.settings, &tenant.slug).endpoint(Endpoint::EmailVerify);
    form_page(
        &state,
        &req,
        tenant,
        StatusCode::OK,
        "verify.html",
        context! { title => "Confirm your email address", action, token => query.token },
    )
}

pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let fields = match posted_form(&state, &req, tenant, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let token = fields.get("token").cloned().unwrap_or_default();
    match state.links().verify_email(tenant.id, &token).await {
        Ok(Some(_)) => message(
            StatusCode::OK,
            tenant,
            "Address confirmed",
            "Your email address is verified. You can close this page.",
        ),
        Ok(None) => expired(tenant),
        Err(e) => failure(tenant, e),
    }
}

/// The account page's "send a verification email".
pub async fn send_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let p = match super::account::posted(&state, &req, tenant, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match state.links().request_verification(tenant, &p.user).await {
        Ok(()) => to_page(tenant, Endpoint::Account, "verification-sent"),
        Err(e) => failure(tenant, e),
    }
}
