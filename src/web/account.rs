//! `{issuer}/account`: what a signed-in person sees of their account (profile, password,
//! sessions, sign-in history) and the forms that change it. Without a session it sends the
//! browser to the login page and back.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use serde::Deserialize;

use super::browser::{self, check_post};
use super::{PageTenant, failure, forged, see_other, signed_in};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::model::Tenant;
use crate::model::session::{Session, SessionId};
use crate::model::user::User;
use crate::people::gate::Outcome;
use crate::urls::{Endpoint, TenantUrls};

#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    notice: Option<String>,
    /// `passkey`: right after a password sign-in, offer to add one.
    #[serde(default)]
    offer: Option<String>,
    /// Where to go on after the offer (a page of this tenant).
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

/// What the page says above its sections.
#[derive(Default)]
struct Banner<'a> {
    notice: Option<&'a str>,
    error: Option<&'a str>,
    offer_passkey: bool,
    next: Option<String>,
}

fn notice(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "password" => Some("Your password was changed, and your other sessions were signed out."),
        "session" => Some("That session was signed out."),
        "passkey" => Some("Your passkey was added. Next time, sign in with it."),
        "passkey-renamed" => Some("The passkey was renamed."),
        "passkey-deleted" => Some("The passkey was deleted."),
        "verification-sent" => Some("A confirmation link is on its way to your address."),
        "app-removed" => Some("The application's access was removed."),
        _ => None,
    }
}

/// The page for the signed-in `user` in `session`.
async fn render(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    (session, user): (&Session, &User),
    status: StatusCode,
    banner: Banner<'_>,
) -> HttpResponse {
    let sessions = match state.sessions().of(tenant.id, user.id).await {
        Ok(s) => s,
        Err(e) => return failure(tenant, e),
    };
    let history = match state.sessions().history(tenant.id, user.id, 20).await {
        Ok(h) => h,
        Err(e) => return failure(tenant, e),
    };
    let passkeys_on = state.passkeys().available(tenant);
    let passkey_list = if passkeys_on {
        match state.passkeys().of(tenant.id, user).await {
            Ok(p) => p,
            Err(e) => return failure(tenant, e),
        }
    } else {
        Vec::new()
    };
    let apps = match apps_of(state, tenant, user).await {
        Ok(a) => a,
        Err(e) => return failure(tenant, e),
    };
    let urls = TenantUrls::new(&state.settings, &tenant.slug);
    let methods: Vec<&str> = session.amr.iter().map(|a| a.as_str()).collect();
    super::form_page(
        state,
        req,
        tenant,
        status,
        "account.html",
        context! {
            title => "Your account",
            notice => banner.notice,
            error => banner.error,
            offer_passkey => banner.offer_passkey && passkey_list.is_empty(),
            next => banner.next,
            user => context! {
                username => user.username.as_str(),
                name => user.profile.name,
                email => user.email.as_ref().map(|e| e.as_str()),
                email_verified => user.email_verified,
                has_password => user.has_password,
            },
            session => context! { auth_time => rfc3339(session.auth_time), methods => methods.join(", ") },
            sessions => sessions.iter().map(|s| context! {
                id => s.id.to_string(),
                current => s.id == session.id,
                user_agent => s.user_agent,
                ip => s.ip,
                created_at => rfc3339(s.created_at),
            }).collect::<Vec<_>>(),
            history => history.iter().map(|e| context! {
                at => rfc3339(e.at),
                method => e.method.as_str(),
                result => e.result.as_str().replace('_', " "),
                ip => e.ip,
                user_agent => e.user_agent,
            }).collect::<Vec<_>>(),
            min_length => state.settings.passwords.min_length,
            password_action => urls.endpoint(Endpoint::AccountPassword),
            revoke_action => urls.endpoint(Endpoint::AccountSessions),
            logout_action => urls.endpoint(Endpoint::AccountLogout),
            verify_action => (user.email.is_some() && !user.email_verified)
                .then(|| urls.endpoint(Endpoint::AccountVerifyEmail)),
            passkeys => passkeys_on,
            passkey_list => passkey_list.iter().map(|p| context! {
                id => p.id.to_string(),
                name => p.name,
                created_at => rfc3339(p.created_at),
                last_used_at => p.last_used_at.map(rfc3339),
                backed_up => p.backed_up,
            }).collect::<Vec<_>>(),
            passkey_register_start => urls.endpoint(Endpoint::PasskeyRegisterStart),
            passkey_register_finish => urls.endpoint(Endpoint::PasskeyRegisterFinish),
            passkey_rename => urls.endpoint(Endpoint::PasskeyRename),
            passkey_delete => urls.endpoint(Endpoint::PasskeyDelete),
            apps,
            apps_action => urls.endpoint(Endpoint::AccountApps),
        },
    )
}

/// The applications the person consented to, with what they may do, in plain words.
async fn apps_of(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<minijinja::Value>, crate::error::ServiceError> {
    let mut apps = Vec::new();
    for consent in state.store.consents_of(tenant.id, user.id).await? {
        // A deleted client's consent grants nothing; it is not shown.
        let Some(client) = state.clients().find(tenant.id, &consent.client_id).await? else {
            continue;
        };
        apps.push(context! {
            client_id => client.client_id.as_str(),
            name => super::authorize::client_name(&client),
            scopes => consent.scope.iter().map(super::authorize::scope_words).collect::<Vec<_>>(),
            since => rfc3339(consent.created_at),
        });
    }
    Ok(apps)
}

/// Removes an application's access: the consent is forgotten (it asks again next time) and
/// every grant the person gave it ends, its refresh and access tokens with it.
pub async fn remove_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let p = match posted(&state, &req, tenant, &body).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(client) = p
        .fields
        .get("client_id")
        .and_then(|c| crate::model::client::ClientId::parse(c))
    else {
        return failure(
            tenant,
            crate::error::ServiceError::NotFound("no such application".into()),
        );
    };
    let ended = async {
        state
            .store
            .delete_consent(tenant.id, p.user.id, &client)
            .await?;
        state
            .store
            .revoke_grants_of(
                tenant.id,
                &p.user.id.to_string(),
                Some(&client),
                state.clock.now(),
            )
            .await?;
        Ok::<(), crate::store::StoreError>(())
    };
    match ended.await {
        Ok(()) => super::to_page(tenant, Endpoint::Account, "app-removed"),
        Err(e) => failure(tenant, e.into()),
    }
}

/// To the login page, coming back to the account page afterwards.
fn to_login(tenant: &Tenant) -> HttpResponse {
    let back = TenantUrls::path(&tenant.slug, Endpoint::Account);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &back)
        .finish();
    see_other(&format!(
        "{}?{query}",
        TenantUrls::path(&tenant.slug, Endpoint::Login)
    ))
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    query: web::Query<AccountQuery>,
) -> HttpResponse {
    let tenant = &tenant.0;
    match signed_in(&state, &req, tenant).await {
        Ok(Some((_, session, user))) => {
            render(
                &state,
                &req,
                tenant,
                (&session, &user),
                StatusCode::OK,
                Banner {
                    notice: notice(query.notice.as_deref()),
                    offer_passkey: query.offer.as_deref() == Some("passkey"),
                    next: query
                        .next
                        .as_deref()
                        .and_then(|n| browser::safe_return(tenant, n)),
                    ..Banner::default()
                },
            )
            .await
        }
        Ok(None) => to_login(tenant),
        Err(e) => failure(tenant, e),
    }
}

/// A posted account form: its fields once the CSRF check and the session passed.
pub(super) struct Posted {
    pub fields: std::collections::HashMap<String, String>,
    pub token: String,
    pub session: Session,
    pub user: User,
}

pub(super) async fn posted(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &[u8],
) -> Result<Posted, HttpResponse> {
    let fields = browser::form(body).map_err(|why| {
        super::message(StatusCode::BAD_REQUEST, tenant, "That did not work", &why)
    })?;
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or("");
    check_post(state, req, tenant.id, csrf).map_err(|why| forged(tenant, why))?;
    match signed_in(state, req, tenant).await {
        Ok(Some((token, session, user))) => Ok(Posted {
            fields,
            token,
            session,
            user,
        }),
        Ok(None) => Err(to_login(tenant)),
        Err(e) => Err(failure(tenant, e)),
    }
}

/// Changes (or sets) the password: the current one goes through the password gate like a
/// sign-in; the other sessions end.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let p = match posted(&state, &req, tenant, &body).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let field = |name: &str| p.fields.get(name).cloned().unwrap_or_default();
    let again = async |status, error: &str| {
        render(
            &state,
            &req,
            tenant,
            (&p.session, &p.user),
            status,
            Banner {
                error: Some(error),
                ..Banner::default()
            },
        )
        .await
    };
    // Adding a first password adds a way in: it needs a recent sign-in, like a new passkey.
    if !p.user.has_password
        && state.clock.now() - p.session.auth_time > super::passkeys::REAUTH_SECS
    {
        return again(
            StatusCode::FORBIDDEN,
            "For your safety, sign out and sign in again before setting a password.",
        )
        .await;
    }
    if p.user.has_password {
        let origin = browser::origin(&state, &req);
        let address = browser::address(&state, &req);
        let outcome = state
            .password_gate()
            .check(
                tenant.id,
                p.user.username.as_str(),
                &field("current_password"),
                &address,
                &origin,
            )
            .await;
        match outcome {
            Ok(Outcome::Right(user)) if user.id == p.user.id => {}
            Ok(Outcome::Refused(refusal)) => {
                let mut r = again(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts; try again later.",
                )
                .await;
                if let Ok(v) = actix_web::http::header::HeaderValue::from_str(
                    &refusal.retry_after().to_string(),
                ) {
                    r.headers_mut()
                        .insert(actix_web::http::header::RETRY_AFTER, v);
                }
                return r;
            }
            Ok(_) => return again(StatusCode::OK, "The current password is not right.").await,
            Err(e) => return failure(tenant, e),
        }
    }
    let new = field("new_password");
    if let Err(e) = state
        .users()
        .set_password(tenant.id, p.user.id, Some(new), "self")
        .await
    {
        return match e {
            crate::error::ServiceError::Invalid(why) => again(StatusCode::OK, &why).await,
            e => failure(tenant, e),
        };
    }
    if let Err(e) = state
        .sessions()
        .revoke_others(tenant.id, p.user.id, Some(p.session.id))
        .await
    {
        return failure(tenant, e);
    }
    super::to_page(tenant, Endpoint::Account, "password")
}

/// Signs out one of the person's sessions (this one included).
pub async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let p = match posted(&state, &req, tenant, &body).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(id) = p.fields.get("session").and_then(|s| SessionId::parse(s)) else {
        return failure(
            tenant,
            crate::error::ServiceError::NotFound("no such session".into()),
        );
    };
    if id == p.session.id {
        return sign_out(&state, tenant, &p.token).await;
    }
    match state.sessions().revoke(tenant.id, p.user.id, id).await {
        Ok(()) => super::to_page(tenant, Endpoint::Account, "session"),
        Err(e) => failure(tenant, e),
    }
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    match posted(&state, &req, tenant, &body).await {
        Ok(p) => sign_out(&state, tenant, &p.token).await,
        Err(response) => response,
    }
}

async fn sign_out(state: &AppState, tenant: &Tenant, token: &str) -> HttpResponse {
    if let Err(e) = state.sessions().end(tenant.id, token).await {
        return failure(tenant, e);
    }
    let mut response = super::to_page(tenant, Endpoint::Login, "signed-out");
    let _ = response.add_cookie(&browser::removal(
        state,
        browser::session_cookie_name(state, &tenant.slug),
    ));
    response
}
