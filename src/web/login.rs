//! `{issuer}/login`: the sign-in page. A plain form (`username`, `password`) that password
//! managers and scripts understand, with passkeys offered beside it when the browser has
//! them; the password goes through the [`crate::people::gate`] like on every surface.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use serde::Deserialize;

use super::browser::{self, safe_return};
use super::{PageTenant, begin_session, failure, form_page, see_other};
use crate::app::AppState;
use crate::model::Tenant;
use crate::model::session::{Amr, LoginMethod};
use crate::people::gate::Outcome;
use crate::people::throttle::Refusal;
use crate::urls::{Endpoint, TenantUrls};

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    return_to: Option<String>,
    /// Pre-fills the username (OIDC `login_hint`, or after an error).
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

/// What the form shows.
struct Form<'a> {
    return_to: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    form: Form<'_>,
) -> HttpResponse {
    let urls = TenantUrls::new(&state.settings, &tenant.slug);
    let passkeys = state.passkeys().available(tenant);
    form_page(
        state,
        req,
        tenant,
        status,
        "login.html",
        context! {
            title => "Sign in",
            action => urls.endpoint(Endpoint::Login),
            return_to => form.return_to,
            username => form.username,
            error => form.error,
            notice => form.notice,
            passkeys,
            passkey_start => urls.endpoint(Endpoint::PasskeyLoginStart),
            passkey_finish => urls.endpoint(Endpoint::PasskeyLoginFinish),
            reset => urls.endpoint(Endpoint::PasswordForgot),
            signup => (tenant.settings.passkeys.signup && passkeys)
                .then(|| urls.endpoint(Endpoint::Signup)),
        },
    )
}

/// Notices another page may ask the login page to show (never free text from the URL).
fn notice(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "signed-out" => Some("You are signed out."),
        "password-reset" => Some("Your password was changed. Sign in with the new one."),
        _ => None,
    }
}

/// The page, letting its form lead on to the client when it signs in for an authorization
/// request (the 303 chain after the post is checked against `form-action`).
async fn render_for(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    status: StatusCode,
    form: Form<'_>,
) -> HttpResponse {
    let target = super::authorize::target_of(state, tenant, form.return_to).await;
    let mut response = render(state, req, tenant, status, form);
    if let Some(target) = target {
        super::pages::allow_form_target(&mut response, &target);
    }
    response
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let tenant = &tenant.0;
    let return_to = query
        .return_to
        .as_deref()
        .and_then(|r| safe_return(tenant, r))
        .unwrap_or_default();
    let username: String = query
        .username
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(254)
        .collect();
    render_for(
        &state,
        &req,
        tenant,
        StatusCode::OK,
        Form {
            return_to: &return_to,
            username: &username,
            error: None,
            notice: notice(query.notice.as_deref()),
        },
    )
    .await
}

/// The answer to a refused check: 429 with `Retry-After` (RFC 6585 §4).
fn refused(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    refusal: Refusal,
    form: Form<'_>,
) -> HttpResponse {
    let text = match refusal {
        Refusal::Throttled(_) => {
            "Too many sign-in attempts from your network. Wait a minute and try again."
        }
        Refusal::LockedOut(_) => {
            "Too many failed attempts. Sign-in with a password is paused for this account or network; try again later, or sign in with a passkey."
        }
    };
    let mut response = render(
        state,
        req,
        tenant,
        StatusCode::TOO_MANY_REQUESTS,
        Form {
            error: Some(text),
            ..form
        },
    );
    if let Ok(v) = header::HeaderValue::from_str(&refusal.retry_after().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let fields = match super::posted_form(&state, &req, tenant, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let return_to = safe_return(tenant, field("return_to")).unwrap_or_default();
    let username: String = field("username").trim().chars().take(254).collect();
    let form = Form {
        return_to: &return_to,
        username: &username,
        error: None,
        notice: None,
    };
    let password = field("password");
    if username.is_empty() || password.is_empty() {
        return render(
            &state,
            &req,
            tenant,
            StatusCode::OK,
            Form {
                error: Some("Enter your username and your password."),
                ..form
            },
        );
    }
    let origin = browser::origin(&state, &req);
    let address = browser::address(&state, &req);
    let outcome = match state
        .password_gate()
        .check(tenant.id, &username, password, &address, &origin)
        .await
    {
        Ok(o) => o,
        Err(e) => return failure(tenant, e),
    };
    let user = match outcome {
        Outcome::Refused(refusal) => return refused(&state, &req, tenant, refusal, form),
        Outcome::Wrong => {
            return render_for(
                &state,
                &req,
                tenant,
                StatusCode::OK,
                Form {
                    error: Some("The username or password is not right."),
                    ..form
                },
            )
            .await;
        }
        Outcome::Disabled(_) => {
            return render_for(
                &state,
                &req,
                tenant,
                StatusCode::FORBIDDEN,
                Form {
                    error: Some("This account is disabled. Ask your administrator."),
                    ..form
                },
            )
            .await;
        }
        Outcome::Right(user) => user,
    };
    // The browser's previous session (if any) ends here: a session id planted before sign-in
    // is worth nothing after it (session fixation).
    let cookie = match begin_session(
        &state,
        &req,
        tenant,
        &user,
        vec![Amr::Pwd],
        LoginMethod::Password,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return failure(tenant, e),
    };
    // After a password, offer a passkey (the account page asks, then continues).
    // Not in the middle of an authorization: the application is waiting.
    let authorizing =
        return_to.starts_with(&TenantUrls::path(&tenant.slug, Endpoint::AuthorizeContinue));
    let offer = !authorizing
        && state.passkeys().available(tenant)
        && state
            .passkeys()
            .of(tenant.id, &user)
            .await
            .is_ok_and(|p| p.is_empty());
    let account = TenantUrls::path(&tenant.slug, Endpoint::Account);
    let target = if offer {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("offer", "passkey");
        if !return_to.is_empty() {
            query.append_pair("continue", &return_to);
        }
        format!("{account}?{}", query.finish())
    } else if return_to.is_empty() {
        account
    } else {
        return_to
    };
    let mut response = see_other(&target);
    let _ = response.add_cookie(&cookie);
    response
}
