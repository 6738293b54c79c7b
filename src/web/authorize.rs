//! `{issuer}/authorize` (GET and POST, OpenID Connect Core §3.1.2.1) and the steps a request
//! passes through in the browser: sign-in, account choice, consent. The request waits
//! server-side under a handle (only the handle is in the URL), on any replica, until its
//! answer is issued; the protocol is in [`crate::oauth::authorize`].

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use minijinja::context;
use serde::Deserialize;

use super::pages::allow_form_target;
use super::{PageTenant, failure, form_page, message, see_other, signed_in};
use crate::app::AppState;
use crate::error::AuthorizationError;
use crate::error::browser::redirect_response;
use crate::model::Tenant;
use crate::model::authorization::PendingAuthorization;
use crate::model::client::{Client, ClientId};
use crate::model::session::Session;
use crate::model::user::User;
use crate::oauth::authorization_request::{
    AuthorizationFailure, AuthorizationRequest, error_redirect,
};
use crate::oauth::authorize::{REQUEST_URI_PREFIX, asked_scope, confidential_pkce, par_required};
use crate::oauth::params::Params;
use crate::oauth::prompt::{Next, decide};
use crate::urls::{Endpoint, TenantUrls};

type Signed = Option<(String, Session, User)>;

/// The parameters that say whom an authorization response goes to: repeated, the request
/// is refused on a page, never redirected.
const WHOM: &[&str] = &[
    "client_id",
    "redirect_uri",
    "state",
    "response_mode",
    "scope",
];

/// `GET {issuer}/authorize`.
pub async fn get(req: HttpRequest, state: web::Data<AppState>, tenant: PageTenant) -> HttpResponse {
    let pairs = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    start(&state, &req, &tenant.0, pairs, false).await
}

/// `POST {issuer}/authorize` (form-encoded, OIDC Core §3.1.2.1). No CSRF token: relying
/// parties post here from their own pages. The request is kept and answered with a 303 to a
/// same-origin GET, which carries the SameSite=Lax session cookie a cross-site POST lacks.
pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let pairs = url::form_urlencoded::parse(&body).into_owned().collect();
    start(&state, &req, &tenant.0, pairs, true).await
}

/// A request that cannot be answered to any client (RFC 6749 §4.1.2.1): shown, not redirected.
fn refused_page(code: AuthorizationError, detail: &str) -> HttpResponse {
    AuthorizationFailure {
        error: code,
        description: detail.to_owned(),
        redirect: None,
    }
    .error_response()
}

fn gone_page(tenant: &Tenant) -> HttpResponse {
    message(
        StatusCode::BAD_REQUEST,
        tenant,
        "This sign-in has ended",
        "It was completed already, or it waited too long. Go back to the application and start again.",
    )
}

async fn start(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    pairs: Vec<(String, String)>,
    posted: bool,
) -> HttpResponse {
    let authz = state.authorizations();
    let issuer = state.settings.issuer(&tenant.slug);
    let (params, repeated) = Params::parse_lenient(pairs);
    // Whom to answer must be unambiguous before anything is redirected.
    if let Some(name) = repeated.iter().find(|n| WHOM.contains(&n.as_str())) {
        return refused_page(
            AuthorizationError::InvalidRequest,
            &format!("parameter '{name}' is repeated"),
        );
    }
    let Some(client_id) = params.get("client_id").and_then(ClientId::parse) else {
        return refused_page(AuthorizationError::InvalidRequest, "client_id is missing");
    };
    let client = match state.clients().find(tenant.id, &client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return refused_page(AuthorizationError::InvalidRequest, "unknown client_id"),
        Err(e) => return failure(tenant, e),
    };
    if let Some(name) = repeated.first() {
        return match error_redirect(&params, &client, &issuer) {
            Ok(to) => AuthorizationFailure {
                error: AuthorizationError::InvalidRequest,
                description: format!("parameter '{name}' is repeated"),
                redirect: Some(Box::new(to)),
            }
            .error_response(),
            Err(page) => page.error_response(),
        };
    }
    let session = match signed_in(state, req, tenant).await {
        Ok(s) => s,
        Err(e) => return failure(tenant, e),
    };
    // RFC 9126 §4: a pushed request, by reference; only its own parameters count.
    if let Some(uri) = params.get("request_uri") {
        let handle = uri.strip_prefix(REQUEST_URI_PREFIX).unwrap_or("");
        let pending = match authz.load(tenant, handle).await {
            Ok(Some(p)) if p.pushed && p.request.client_id == client.client_id => p,
            Ok(_) => {
                return refused_page(
                    AuthorizationError::InvalidRequestUri,
                    "request_uri is unknown, expired, used or another client's",
                );
            }
            Err(e) => return failure(tenant, e),
        };
        let pending = if pending.in_browser {
            pending
        } else {
            // Its first visit: the browser's clock starts now.
            let fresh = authz.pending(pending.request, session.as_ref().map(|(_, s, _)| s));
            let fresh = PendingAuthorization {
                pushed: true,
                ..fresh
            };
            if let Err(e) = authz.stash(tenant, &fresh, Some(handle)).await {
                return failure(tenant, e);
            }
            fresh
        };
        return proceed(
            state,
            req,
            tenant,
            &client,
            pending,
            Some(handle.to_owned()),
            session,
            false,
        )
        .await;
    }
    if par_required(tenant, &client) {
        return match error_redirect(&params, &client, &issuer) {
            Ok(to) => AuthorizationFailure {
                error: AuthorizationError::InvalidRequest,
                description: "this client's authorization requests must be pushed (RFC 9126)"
                    .into(),
                redirect: Some(Box::new(to)),
            }
            .error_response(),
            Err(page) => page.error_response(),
        };
    }
    let params = match params.get("request") {
        None => params,
        Some(object) => {
            match state
                .request_objects()
                .resolve(tenant, &client, &params, object)
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(refused)) => return refused.error_response(),
                Err(e) => return failure(tenant, e),
            }
        }
    };
    let mut request = match AuthorizationRequest::parse(
        &params,
        &client,
        &issuer,
        confidential_pkce(tenant, &client),
    ) {
        Ok(r) => r,
        Err(refused) => return refused.error_response(),
    };
    request.scope = asked_scope(&request, &client);
    let pending = authz.pending(request, session.as_ref().map(|(_, s, _)| s));
    if posted {
        return match keep(state, req, tenant, &pending, None).await {
            Ok(handle) => see_other(&continue_path(tenant, &handle)),
            Err(e) => failure(tenant, e),
        };
    }
    proceed(state, req, tenant, &client, pending, None, session, false).await
}

/// New requests kept per address and minute before the browser is asked to slow down: each
/// holds a cache entry for up to `oauth.authorization_request_ttl_secs`.
const NEW_REQUESTS_PER_MINUTE: i64 = 120;

/// Keeps `pending` under `handle`, or under a new handle if the browser's address has not
/// started too many requests this minute (their entries would fill the shared cache).
async fn keep(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    pending: &PendingAuthorization,
    handle: Option<&str>,
) -> Result<String, crate::error::ServiceError> {
    if handle.is_none() {
        admit(state, req, tenant).await?;
    }
    state.authorizations().stash(tenant, pending, handle).await
}

/// Counts a new request kept for the browser's address this minute; `Busy` past the limit.
pub(super) async fn admit(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
) -> Result<(), crate::error::ServiceError> {
    let address = super::browser::address(state, req);
    let n = state
        .cache
        .count(
            &crate::cache::CacheKey::AuthorizationsFrom {
                tenant: tenant.id,
                subject: &address,
            },
            std::time::Duration::from_secs(60),
        )
        .await?;
    if n > NEW_REQUESTS_PER_MINUTE {
        return Err(crate::error::ServiceError::Busy(
            "too many sign-in requests from one address".into(),
        ));
    }
    Ok(())
}

fn continue_path(tenant: &Tenant, handle: &str) -> String {
    format!(
        "{}?id={handle}",
        TenantUrls::path(&tenant.slug, Endpoint::AuthorizeContinue)
    )
}

/// Takes the next step of a request. `consent_given`: the person just allowed it.
#[expect(clippy::too_many_arguments, reason = "one call per step of the flow")]
async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    client: &Client,
    pending: PendingAuthorization,
    handle: Option<String>,
    session: Signed,
    consent_given: bool,
) -> HttpResponse {
    let authz = state.authorizations();
    let signed = session.map(|(_, s, u)| (s, u));
    let situation = match authz
        .situation(tenant, client, &pending, signed.as_ref())
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(refused)) => return answer_error(state, tenant, handle.as_deref(), refused).await,
        Err(e) => return failure(tenant, e),
    };
    let next = match decide(&pending, &situation) {
        Next::Consent if consent_given => Next::Issue,
        next => next,
    };
    match (next, signed) {
        (Next::Issue, Some((session, user))) => {
            issue(
                state,
                tenant,
                client,
                &pending.request,
                handle.as_deref(),
                &session,
                &user,
            )
            .await
        }
        (Next::Refuse(code, why), _) => {
            let refused = authz.failure(tenant, &pending.request, code, why);
            answer_error(state, tenant, handle.as_deref(), refused).await
        }
        (Next::ChooseAccount, Some((_, user))) => {
            match keep(state, req, tenant, &pending, handle.as_deref()).await {
                Ok(h) => choose_page(state, req, tenant, &pending, &h, &user),
                Err(e) => failure(tenant, e),
            }
        }
        (Next::Consent, Some((_, user))) => {
            match keep(state, req, tenant, &pending, handle.as_deref()).await {
                Ok(h) => consent_page(state, req, tenant, client, &pending, &h, &user),
                Err(e) => failure(tenant, e),
            }
        }
        // Sign in first (also what Issue, ChooseAccount and Consent mean without a session).
        _ => match keep(state, req, tenant, &pending, handle.as_deref()).await {
            Ok(h) => {
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                query.append_pair("return_to", &continue_path(tenant, &h));
                if let Some(hint) = &pending.request.login_hint {
                    query.append_pair("username", hint);
                }
                see_other(&format!(
                    "{}?{}",
                    TenantUrls::path(&tenant.slug, Endpoint::Login),
                    query.finish()
                ))
            }
            Err(e) => failure(tenant, e),
        },
    }
}

/// Sends an error to the client, ending the request (a pushed one is consumed).
async fn answer_error(
    state: &AppState,
    tenant: &Tenant,
    handle: Option<&str>,
    refused: AuthorizationFailure,
) -> HttpResponse {
    if let Some(h) = handle {
        match state.authorizations().take(tenant, h).await {
            Ok(Some(_)) => {}
            Ok(None) => return gone_page(tenant),
            Err(e) => return failure(tenant, e),
        }
    }
    refused.error_response()
}

/// Answers with a code (RFC 6749 §4.1.2; RFC 9207 `iss`), once.
async fn issue(
    state: &AppState,
    tenant: &Tenant,
    client: &Client,
    request: &AuthorizationRequest,
    handle: Option<&str>,
    session: &Session,
    user: &User,
) -> HttpResponse {
    let authz = state.authorizations();
    if let Some(h) = handle {
        match authz.take(tenant, h).await {
            Ok(Some(_)) => {}
            Ok(None) => return gone_page(tenant),
            Err(e) => return failure(tenant, e),
        }
    }
    let code = match authz
        .issue_code(tenant, client, request, session, user)
        .await
    {
        Ok(c) => c,
        Err(e) => return failure(tenant, e),
    };
    let issuer = state.settings.issuer(&tenant.slug);
    let to = request.error_redirect(&issuer);
    let mut params = vec![("code", code.0.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &issuer));
    redirect_response(&to, &params)
}

#[derive(Debug, Deserialize)]
pub struct ContinueQuery {
    #[serde(default)]
    id: String,
}

/// `GET {issuer}/authorize/continue?id=…`: the request resumes (after sign-in, or a reload).
pub async fn resume(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    query: web::Query<ContinueQuery>,
) -> HttpResponse {
    let tenant = &tenant.0;
    let found = match waiting(&state, tenant, &query.id).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let Some((pending, client)) = found else {
        return gone_page(tenant);
    };
    let session = match signed_in(&state, &req, tenant).await {
        Ok(s) => s,
        Err(e) => return failure(tenant, e),
    };
    proceed(
        &state,
        &req,
        tenant,
        &client,
        pending,
        Some(query.id.clone()),
        session,
        false,
    )
    .await
}

/// The request waiting under `handle` and its client, if both still exist.
async fn waiting(
    state: &AppState,
    tenant: &Tenant,
    handle: &str,
) -> Result<Option<(PendingAuthorization, std::sync::Arc<Client>)>, Box<HttpResponse>> {
    let pending = match state.authorizations().load(tenant, handle).await {
        // A pushed request starts at /authorize with its request_uri (RFC 9126 §4), never
        // at a step in between.
        Ok(Some(p)) if p.pushed && !p.in_browser => return Ok(None),
        Ok(Some(p)) => p,
        Ok(None) => return Ok(None),
        Err(e) => return Err(Box::new(failure(tenant, e))),
    };
    match state
        .clients()
        .find(tenant.id, &pending.request.client_id)
        .await
    {
        Ok(Some(c)) => Ok(Some((pending, c))),
        Ok(None) => Ok(None),
        Err(e) => Err(Box::new(failure(tenant, e))),
    }
}

/// A scope value in plain words, for the consent page.
pub(super) fn scope_words(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are on this site (an account identifier)".into(),
        "profile" => "See your name and profile details".into(),
        "email" => "See your email address".into(),
        "address" => "See your postal address".into(),
        "phone" => "See your phone number".into(),
        "offline_access" => "Keep access while you are not using it".into(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

pub(super) fn client_name(client: &Client) -> String {
    client
        .metadata
        .client_name
        .clone()
        .unwrap_or_else(|| client.client_id.to_string())
}

fn consent_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    client: &Client,
    pending: &PendingAuthorization,
    handle: &str,
    user: &User,
) -> HttpResponse {
    let urls = TenantUrls::new(&state.settings, &tenant.slug);
    let scopes: Vec<String> = pending.request.scope.iter().map(scope_words).collect();
    let m = &client.metadata;
    let mut response = form_page(
        state,
        req,
        tenant,
        StatusCode::OK,
        "consent.html",
        context! {
            title => "Allow access?",
            action => urls.endpoint(Endpoint::AuthorizeConsent),
            id => handle,
            client_name => client_name(client),
            logo_uri => m.logo_uri,
            client_uri => m.client_uri,
            policy_uri => m.policy_uri,
            tos_uri => m.tos_uri,
            redirect_host => pending.request.redirect_uri.url().host_str(),
            scopes,
            username => user.username.as_str(),
        },
    );
    allow_form_target(&mut response, pending.request.redirect_uri.url());
    response
}

fn choose_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    pending: &PendingAuthorization,
    handle: &str,
    user: &User,
) -> HttpResponse {
    let urls = TenantUrls::new(&state.settings, &tenant.slug);
    let mut response = form_page(
        state,
        req,
        tenant,
        StatusCode::OK,
        "choose_account.html",
        context! {
            title => "Choose an account",
            action => urls.endpoint(Endpoint::AuthorizeAccount),
            id => handle,
            username => user.username.as_str(),
            email => user.email.as_ref().map(|e| e.as_str()),
        },
    );
    allow_form_target(&mut response, pending.request.redirect_uri.url());
    response
}

/// `POST {issuer}/authorize/consent`: allow (remembered for next time) or deny
/// (`access_denied`, OIDC Core §3.1.2.6).
pub async fn consent(
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
    let handle = fields.get("id").cloned().unwrap_or_default();
    let found = match waiting(&state, tenant, &handle).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let Some((pending, client)) = found else {
        return gone_page(tenant);
    };
    let session = match signed_in(&state, &req, tenant).await {
        Ok(s) => s,
        Err(e) => return failure(tenant, e),
    };
    let Some((_, _, user)) = &session else {
        // Signed out in between: sign in again, then decide.
        return see_other(&continue_path(tenant, &handle));
    };
    let authz = state.authorizations();
    if fields.get("decision").map(String::as_str) != Some("allow") {
        let refused = authz.failure(
            tenant,
            &pending.request,
            AuthorizationError::AccessDenied,
            "the user did not allow the request",
        );
        return answer_error(&state, tenant, Some(&handle), refused).await;
    }
    if let Err(e) = authz
        .remember_consent(tenant, user, &client, &pending.request.scope)
        .await
    {
        return failure(tenant, e);
    }
    proceed(
        &state,
        &req,
        tenant,
        &client,
        pending,
        Some(handle),
        session,
        true,
    )
    .await
}

/// `POST {issuer}/authorize/account`: continue as the account shown, or sign in as another.
pub async fn account(
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
    let handle = fields.get("id").cloned().unwrap_or_default();
    let found = match waiting(&state, tenant, &handle).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let Some((mut pending, client)) = found else {
        return gone_page(tenant);
    };
    pending.account_chosen = true;
    if let Err(e) = state
        .authorizations()
        .stash(tenant, &pending, Some(&handle))
        .await
    {
        return failure(tenant, e);
    }
    if fields.get("choice").map(String::as_str) == Some("other") {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("return_to", &continue_path(tenant, &handle));
        return see_other(&format!(
            "{}?{}",
            TenantUrls::path(&tenant.slug, Endpoint::Login),
            query.finish()
        ));
    }
    let session = match signed_in(&state, &req, tenant).await {
        Ok(s) => s,
        Err(e) => return failure(tenant, e),
    };
    proceed(
        &state,
        &req,
        tenant,
        &client,
        pending,
        Some(handle),
        session,
        false,
    )
    .await
}

/// The form target of an authorization step waiting under `return_to`, if it is one: the
/// sign-in page lets its form lead there (see [`allow_form_target`]).
pub async fn target_of(state: &AppState, tenant: &Tenant, return_to: &str) -> Option<url::Url> {
    let prefix = format!(
        "{}?id=",
        TenantUrls::path(&tenant.slug, Endpoint::AuthorizeContinue)
    );
    let handle = return_to.strip_prefix(&prefix)?;
    let pending = state.authorizations().load(tenant, handle).await.ok()??;
    Some(pending.request.redirect_uri.url().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_plain_words() {
        assert_eq!(scope_words("email"), "See your email address");
        assert!(scope_words("api:read").contains("api:read"));
    }

    #[test]
    fn the_error_page_for_untrusted_requests_is_html() {
        let r = refused_page(AuthorizationError::InvalidRequest, "x");
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
}
