//! The passkey endpoints the pages' script calls (JSON in, JSON out, same origin only, the
//! CSRF token in `X-CSRF-Token`), and the rename and delete forms of the account page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::browser::{self, check_post, safe_return};
use super::{PageTenant, begin_session, failure, signed_in};
use crate::app::AppState;
use crate::error::ServiceError;
use crate::model::Tenant;
use crate::model::session::LoginMethod;
use crate::people::passkeys::{CEREMONY_TTL, PasskeyError};
use crate::urls::{Endpoint, TenantUrls};

fn problem(status: StatusCode, error: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    // RFC 6585 §4: say when to come back ("busy" is a second; the rate limits, their window).
    match (status, error) {
        (StatusCode::TOO_MANY_REQUESTS, "busy") => {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        (StatusCode::TOO_MANY_REQUESTS, _) => {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "3600"));
        }
        _ => {}
    }
    response.json(json!({ "error": error, "message": message }))
}

/// Ceremonies one address may start per minute (each holds cache space for five minutes).
const CEREMONIES_PER_ADDRESS_MINUTE: i64 = 60;

/// A sign-in this recent may add a credential; an older session signs in again first, so a
/// session stolen from an unattended browser cannot plant a way back in.
pub const REAUTH_SECS: i64 = 600;

/// Whether `address` may start another ceremony now.
async fn ceremony_allowed(
    state: &AppState,
    tenant: &Tenant,
    req: &HttpRequest,
) -> Result<bool, ServiceError> {
    let address = browser::address(state, req);
    let key = crate::cache::CacheKey::CeremoniesFrom {
        tenant: tenant.id,
        subject: &address,
    };
    Ok(state
        .cache
        .count(&key, std::time::Duration::from_secs(60))
        .await?
        <= CEREMONIES_PER_ADDRESS_MINUTE)
}

fn service_problem(e: ServiceError) -> HttpResponse {
    match e {
        ServiceError::Invalid(why) => problem(StatusCode::BAD_REQUEST, "invalid", &why),
        ServiceError::Conflict(why) => problem(StatusCode::CONFLICT, "conflict", &why),
        ServiceError::NotFound(why) => problem(StatusCode::NOT_FOUND, "not_found", &why),
        ServiceError::Busy(why) => problem(StatusCode::TOO_MANY_REQUESTS, "busy", &why),
        e => {
            tracing::warn!(error = %e, "passkey endpoint failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service cannot answer right now. Try again in a minute.",
            )
        }
    }
}

/// A refusal before any work, answered as [`problem`].
struct Refusal(StatusCode, &'static str, &'static str);

impl Refusal {
    fn response(self) -> HttpResponse {
        problem(self.0, self.1, self.2)
    }
}

/// The checks every call passes first: JSON, same origin, the CSRF token.
fn guard(state: &AppState, req: &HttpRequest, tenant: &Tenant) -> Result<(), Refusal> {
    let json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid",
            "send application/json",
        ));
    }
    let token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if tenant.settings.passkeys.disabled {
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            "not_found",
            "passkeys are switched off here",
        ));
    }
    check_post(state, req, tenant.id, token).map_err(|_| {
        Refusal(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This page has expired. Reload it and try again.",
        )
    })
}

/// [`guard`], then the JSON body.
fn json_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    bytes: &[u8],
) -> Result<T, Refusal> {
    guard(state, req, tenant)?;
    body(bytes)
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes)
        .map_err(|_| Refusal(StatusCode::BAD_REQUEST, "invalid", "malformed request"))
}

fn with_ceremony(state: &AppState, options: serde_json::Value, id: String) -> HttpResponse {
    let mut cookie = browser::cookie(state, browser::ceremony_cookie_name(state), id);
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(
        i64::try_from(CEREMONY_TTL.as_secs()).unwrap_or(300),
    ));
    let mut response = HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({ "options": options }));
    let _ = response.add_cookie(&cookie);
    response
}

fn ceremony_id(state: &AppState, req: &HttpRequest) -> Option<String> {
    req.cookie(&browser::ceremony_cookie_name(state))
        .map(|c| c.value().to_owned())
}

pub async fn login_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
) -> HttpResponse {
    let tenant = &tenant.0;
    if let Err(r) = guard(&state, &req, tenant) {
        return r.response();
    }
    match ceremony_allowed(&state, tenant, &req).await {
        Ok(true) => {}
        Ok(false) => {
            return problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many passkey requests from your network. Wait a minute.",
            );
        }
        Err(e) => return service_problem(e),
    }
    match state.passkeys().start_login(tenant).await {
        Ok((options, id)) => with_ceremony(&state, options, id),
        Err(e) => service_problem(e),
    }
}

#[derive(Deserialize)]
pub struct LoginFinish {
    credential: PublicKeyCredential,
    #[serde(default)]
    return_to: String,
}

pub async fn login_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let finish: LoginFinish = match json_request(&state, &req, tenant, &bytes) {
        Ok(b) => b,
        Err(r) => return r.response(),
    };
    let Some(id) = ceremony_id(&state, &req) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expired",
            &PasskeyError::Expired.to_string(),
        );
    };
    let origin = browser::origin(&state, &req);
    let (user, amr) = match state
        .passkeys()
        .finish_login(tenant, &id, &finish.credential, &origin)
        .await
    {
        Ok(found) => found,
        Err(PasskeyError::Service(e)) => return service_problem(e),
        Err(e @ PasskeyError::Disabled) => {
            return problem(StatusCode::FORBIDDEN, "disabled", &e.to_string());
        }
        Err(e) => return problem(StatusCode::BAD_REQUEST, "rejected", &e.to_string()),
    };
    let cookie = match begin_session(&state, &req, tenant, &user, amr, LoginMethod::Passkey).await {
        Ok(c) => c,
        Err(e) => return service_problem(e),
    };
    let target = safe_return(tenant, &finish.return_to)
        .unwrap_or_else(|| TenantUrls::path(&tenant.slug, Endpoint::Account));
    let mut response = HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({ "redirect": target }));
    let _ = response.add_cookie(&cookie);
    let _ = response.add_cookie(&browser::removal(
        &state,
        browser::ceremony_cookie_name(&state),
    ));
    response
}

pub async fn register_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
) -> HttpResponse {
    let tenant = &tenant.0;
    if let Err(r) = guard(&state, &req, tenant) {
        return r.response();
    }
    let user = match signed_in(&state, &req, tenant).await {
        Ok(Some((_, session, user))) => {
            if state.clock.now() - session.auth_time > REAUTH_SECS {
                return problem(
                    StatusCode::FORBIDDEN,
                    "reauthenticate",
                    "For your safety, sign out and sign in again before adding a passkey.",
                );
            }
            user
        }
        Ok(None) => return problem(StatusCode::FORBIDDEN, "signed_out", "Sign in first."),
        Err(e) => return service_problem(e),
    };
    match state.passkeys().start_registration(tenant, &user).await {
        Ok((options, id)) => with_ceremony(&state, options, id),
        Err(e) => service_problem(e),
    }
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    credential: RegisterPublicKeyCredential,
    name: String,
}

pub async fn register_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let finish: RegisterFinish = match json_request(&state, &req, tenant, &bytes) {
        Ok(b) => b,
        Err(r) => return r.response(),
    };
    let user = match signed_in(&state, &req, tenant).await {
        Ok(Some((_, _, user))) => user,
        Ok(None) => return problem(StatusCode::FORBIDDEN, "signed_out", "Sign in first."),
        Err(e) => return service_problem(e),
    };
    let Some(id) = ceremony_id(&state, &req) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expired",
            "the registration took too long; try again",
        );
    };
    match state
        .passkeys()
        .finish_registration(tenant, &user, &id, &finish.credential, &finish.name)
        .await
    {
        Ok(record) => {
            let mut response = HttpResponse::Ok().json(json!({
                "id": record.id.to_string(),
                "redirect": format!("{}?notice=passkey", TenantUrls::path(&tenant.slug, Endpoint::Account)),
            }));
            let _ = response.add_cookie(&browser::removal(
                &state,
                browser::ceremony_cookie_name(&state),
            ));
            response
        }
        Err(e) => service_problem(e),
    }
}

/// The rename and delete forms of the account page.
async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
    delete: bool,
) -> HttpResponse {
    let tenant = &tenant.0;
    let p = match super::account::posted(&state, &req, tenant, &bytes).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(id) = p
        .fields
        .get("passkey")
        .and_then(|s| uuid::Uuid::try_parse(s).ok())
    else {
        return failure(tenant, ServiceError::NotFound("no such passkey".into()));
    };
    let result = if delete {
        state.passkeys().delete(tenant.id, &p.user, id).await
    } else {
        let name = p.fields.get("name").map(String::as_str).unwrap_or("");
        state.passkeys().rename(tenant.id, &p.user, id, name).await
    };
    match result {
        Ok(()) => super::to_page(
            tenant,
            Endpoint::Account,
            if delete {
                "passkey-deleted"
            } else {
                "passkey-renamed"
            },
        ),
        Err(e) => failure(tenant, e),
    }
}

pub async fn rename(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
) -> HttpResponse {
    change(req, state, tenant, bytes, false).await
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
) -> HttpResponse {
    change(req, state, tenant, bytes, true).await
}

/// Sign-ups one address may start per hour.
const SIGNUPS_PER_ADDRESS_HOUR: i64 = 10;

/// `{issuer}/signup`: the passkey-only sign-up page, when the tenant allows it.
pub async fn signup_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
) -> HttpResponse {
    let tenant = &tenant.0;
    if !tenant.settings.passkeys.signup || !state.passkeys().available(tenant) {
        return failure(
            tenant,
            ServiceError::NotFound("sign-up is not open here".into()),
        );
    }
    let urls = TenantUrls::new(&state.settings, &tenant.slug);
    super::form_page(
        &state,
        &req,
        tenant,
        StatusCode::OK,
        "signup.html",
        minijinja::context! {
            title => "Create an account",
            start => urls.endpoint(Endpoint::SignupStart),
            finish => urls.endpoint(Endpoint::SignupFinish),
        },
    )
}

#[derive(Deserialize)]
pub struct SignupStart {
    username: String,
    #[serde(default)]
    email: Option<String>,
}

pub async fn signup_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let start: SignupStart = match json_request(&state, &req, tenant, &bytes) {
        Ok(b) => b,
        Err(r) => return r.response(),
    };
    let address = browser::address(&state, &req);
    let key = crate::cache::CacheKey::SignupsFrom {
        tenant: tenant.id,
        subject: &address,
    };
    match state
        .cache
        .count(&key, std::time::Duration::from_secs(3600))
        .await
    {
        Ok(n) if n > SIGNUPS_PER_ADDRESS_HOUR => {
            return problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many sign-ups from your network. Try again later.",
            );
        }
        Ok(_) => {}
        Err(e) => return service_problem(e.into()),
    }
    match state
        .passkeys()
        .start_signup(tenant, &start.username, start.email.as_deref())
        .await
    {
        Ok((options, id)) => with_ceremony(&state, options, id),
        Err(e) => service_problem(e),
    }
}

pub async fn signup_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    bytes: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    #[derive(Deserialize)]
    struct Finish {
        credential: RegisterPublicKeyCredential,
    }
    let finish: Finish = match json_request(&state, &req, tenant, &bytes) {
        Ok(b) => b,
        Err(r) => return r.response(),
    };
    let Some(id) = ceremony_id(&state, &req) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expired",
            "the sign-up took too long; try again",
        );
    };
    let (user, amr) = match state
        .passkeys()
        .finish_signup(tenant, &id, &finish.credential)
        .await
    {
        Ok(done) => done,
        Err(e) => return service_problem(e),
    };
    let cookie = match begin_session(&state, &req, tenant, &user, amr, LoginMethod::Passkey).await {
        Ok(c) => c,
        Err(e) => return service_problem(e),
    };
    let mut response = HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({ "redirect": TenantUrls::path(&tenant.slug, Endpoint::Account) }));
    let _ = response.add_cookie(&cookie);
    let _ = response.add_cookie(&browser::removal(
        &state,
        browser::ceremony_cookie_name(&state),
    ));
    response
}
