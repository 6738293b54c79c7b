//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at `{issuer}/logout`, GET and
//! POST. With an `id_token_hint` of the signed-in person the session ends at once; without
//! one (or for another person) the person confirms first (§2: the OP SHOULD ask). Only a
//! `post_logout_redirect_uri` registered by the client the request is verified to come from
//! is ever redirected to (§3), with `state`. Ending the session queues the back-channel
//! notifications ([`crate::oidc::backchannel`]) in the same transaction.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;

use super::pages::allow_form_target;
use super::{PageTenant, failure, form_page, message, see_other, signed_in};
use crate::app::AppState;
use crate::cache::{CacheKey, SharedState};
use crate::model::Tenant;
use crate::model::client::{Client, ClientId};
use crate::model::redirect_uri::RedirectUri;
use crate::oauth::params::Params;
use crate::urls::{Endpoint, TenantUrls};

/// How long a POSTed logout request waits for its same-origin GET.
const WAIT: Duration = Duration::from_secs(600);

/// A logout request, verified.
struct Verified {
    /// The client it is verified to come from (by the hint's audience or `client_id`).
    client: Option<std::sync::Arc<Client>>,
    /// The subject of a valid `id_token_hint`.
    hint_subject: Option<String>,
    /// Where to send the browser afterwards, and the `state` to add.
    then: Option<(RedirectUri, Option<String>)>,
}

fn refused(tenant: &Tenant, why: &str) -> HttpResponse {
    message(
        StatusCode::BAD_REQUEST,
        tenant,
        "This sign-out request is not valid",
        why,
    )
}

/// Checks the request's parameters (§2, §3). Errors are pages, never redirects.
async fn verify(
    state: &AppState,
    tenant: &Tenant,
    params: &Params,
) -> Result<Verified, Box<HttpResponse>> {
    let page = |why: &str| Box::new(refused(tenant, why));
    let hint = match params.get("id_token_hint") {
        None => None,
        // §2: signature and issuer; an expired hint is still one (the OP SHOULD accept it).
        Some(h) => match state.id_tokens().hint(tenant, h).await {
            Ok(Some(claims)) => Some(claims),
            Ok(None) => return Err(page("id_token_hint is not an ID token of this issuer.")),
            Err(e) => return Err(Box::new(failure(tenant, e))),
        },
    };
    let client_id = match params.get("client_id") {
        Some(raw) => {
            let id = ClientId::parse(raw).ok_or_else(|| page("client_id is malformed."))?;
            // §2: when both are given, the hint must have been issued to this client.
            if let Some(h) = &hint
                && !h.aud.contains(id.as_str())
            {
                return Err(page("id_token_hint was not issued to this client_id."));
            }
            Some(id)
        }
        None => hint
            .as_ref()
            .and_then(|h| {
                h.azp.clone().or_else(|| {
                    let mut all = h.aud.to_vec();
                    if all.len() == 1 { all.pop() } else { None }
                })
            })
            .and_then(|id| ClientId::parse(&id)),
    };
    let client = match &client_id {
        None => None,
        Some(id) => match state.clients().find(tenant.id, id).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => return Err(page("The application is not known here.")),
            Err(e) => return Err(Box::new(failure(tenant, e))),
        },
    };
    let then = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(raw) => {
            let sent = RedirectUri::parse(raw)
                .map_err(|_| page("post_logout_redirect_uri is malformed."))?;
            // §3: registered by the client the request verifiably comes from, or ignored
            // nowhere: an unverifiable target is refused, never followed.
            let Some(c) = &client else {
                return Err(page(
                    "post_logout_redirect_uri needs an id_token_hint or a client_id.",
                ));
            };
            if !c
                .metadata
                .post_logout_redirect_uris
                .iter()
                .any(|r| sent.matches(r))
            {
                return Err(page(
                    "post_logout_redirect_uri is not registered for this application.",
                ));
            }
            Some((sent, params.get("state").map(str::to_owned)))
        }
    };
    Ok(Verified {
        client,
        hint_subject: hint.map(|h| h.sub),
        then,
    })
}

/// `GET {issuer}/logout` (also the same-origin continuation of a POSTed request).
pub async fn get(req: HttpRequest, state: web::Data<AppState>, tenant: PageTenant) -> HttpResponse {
    let tenant = &tenant.0;
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    if let [(name, handle)] = pairs.as_slice()
        && name == "resume"
    {
        let key = CacheKey::Logout {
            tenant: tenant.id,
            handle,
        }
        .render();
        pairs = match state.cache.take(&key).await {
            Ok(Some(raw)) => serde_json::from_slice(&raw).unwrap_or_default(),
            Ok(None) => {
                return message(
                    StatusCode::BAD_REQUEST,
                    tenant,
                    "This sign-out request has ended",
                    "Go back to the application and sign out again.",
                );
            }
            Err(e) => return failure(tenant, e.into()),
        };
    }
    answer(&state, &req, tenant, pairs).await
}

/// `POST {issuer}/logout`: a relying party's form (§2 allows POST), kept and answered with a
/// 303 to a same-origin GET that carries the SameSite=Lax session cookie; or the
/// confirmation form of [`confirm_page`].
pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: PageTenant,
    body: web::Bytes,
) -> HttpResponse {
    let tenant = &tenant.0;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if pairs.iter().any(|(k, _)| k == "confirm") {
        return confirmed(&state, &req, tenant, &body).await;
    }
    if let Err(e) = super::authorize::admit(&state, &req, tenant).await {
        return failure(tenant, e);
    }
    let handle = state.rng.token::<32>();
    let key = CacheKey::Logout {
        tenant: tenant.id,
        handle: &handle,
    }
    .render();
    let value = serde_json::to_vec(&pairs).unwrap_or_default();
    if let Err(e) = state.cache.set(&key, &value, WAIT).await {
        return failure(tenant, e.into());
    }
    see_other(&format!(
        "{}?resume={handle}",
        TenantUrls::path(&tenant.slug, Endpoint::EndSession)
    ))
}

async fn answer(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    pairs: Vec<(String, String)>,
) -> HttpResponse {
    let params = match Params::parse(pairs) {
        Ok(p) => p,
        Err(e) => {
            return refused(
                tenant,
                e.description.as_deref().unwrap_or("malformed request"),
            );
        }
    };
    let verified = match verify(state, tenant, &params).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let session = match signed_in(state, req, tenant).await {
        Ok(s) => s,
        Err(e) => return failure(tenant, e),
    };
    match session {
        // Signed out already: nothing to end.
        None => done(state, tenant, &verified, false),
        Some((token, _, user))
            if verified.hint_subject.as_deref() == Some(user.id.to_string().as_str()) =>
        {
            sign_out(state, tenant, &token, &verified).await
        }
        Some((_, _, user)) => confirm_page(state, req, tenant, &verified, user.username.as_str()),
    }
}

async fn sign_out(state: &AppState, tenant: &Tenant, token: &str, then: &Verified) -> HttpResponse {
    if let Err(e) = state.sessions().end(tenant.id, token).await {
        return failure(tenant, e);
    }
    done(state, tenant, then, true)
}

/// Where the browser goes once signed out: the verified `post_logout_redirect_uri` with
/// `state` (a 303), or the sign-in page saying so.
fn done(state: &AppState, tenant: &Tenant, verified: &Verified, ended: bool) -> HttpResponse {
    let mut response = match &verified.then {
        Some((uri, client_state)) => {
            let mut url = uri.url().clone();
            if let Some(s) = client_state {
                url.query_pairs_mut().append_pair("state", s);
            }
            see_other(url.as_str())
        }
        None => super::to_page(tenant, Endpoint::Login, "signed-out"),
    };
    if ended {
        let _ = response.add_cookie(&super::browser::removal(
            state,
            super::browser::session_cookie_name(state, &tenant.slug),
        ));
    }
    response
}

/// "Sign out of {tenant}?", for a request that does not show it comes from the person's
/// own sign-in (§2: the OP SHOULD ask; it protects against forced sign-out).
fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    verified: &Verified,
    username: &str,
) -> HttpResponse {
    let urls = TenantUrls::new(&state.settings, &tenant.slug);
    let client = verified.client.as_deref();
    let mut response = form_page(
        state,
        req,
        tenant,
        StatusCode::OK,
        "logout.html",
        context! {
            title => "Sign out?",
            action => urls.endpoint(Endpoint::EndSession),
            account => TenantUrls::path(&tenant.slug, Endpoint::Account),
            username,
            client_name => client.map(|c| c.metadata.client_name.clone().unwrap_or_else(|| c.client_id.to_string())),
            client_id => client.map(|c| c.client_id.as_str().to_owned()),
            post_logout_redirect_uri => verified.then.as_ref().map(|(u, _)| u.as_str().to_owned()),
            state => verified.then.as_ref().and_then(|(_, s)| s.clone()),
        },
    );
    if let Some((uri, _)) = &verified.then {
        allow_form_target(&mut response, uri.url());
    }
    response
}

/// The confirmation form's post: checked like every form, then verified again.
async fn confirmed(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    body: &[u8],
) -> HttpResponse {
    let fields = match super::posted_form(state, req, tenant, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let pairs: Vec<(String, String)> = ["client_id", "post_logout_redirect_uri", "state"]
        .into_iter()
        .filter_map(|k| fields.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect();
    let params = match Params::parse(pairs) {
        Ok(p) => p,
        Err(_) => return refused(tenant, "malformed request"),
    };
    let verified = match verify(state, tenant, &params).await {
        Ok(v) => v,
        Err(page) => return *page,
    };
    match signed_in(state, req, tenant).await {
        Ok(Some((token, _, _))) => sign_out(state, tenant, &token, &verified).await,
        Ok(None) => done(state, tenant, &verified, false),
        Err(e) => failure(tenant, e),
    }
}
