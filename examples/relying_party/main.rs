//! An example web application that signs people in with latchkey (or any OpenID Provider).
//!
//! ```sh
//! latchkey client create --tenant default --name "Example App" \
//!     --grant-type authorization_code --grant-type refresh_token \
//!     --redirect-uri http://127.0.0.1:8090/callback
//! RP_ISSUER=http://localhost:8080/t/default RP_CLIENT_ID=… RP_CLIENT_SECRET=… \
//!     cargo run --example relying_party
//! ```
//!
//! To come back after signing out, register `post_logout_redirect_uris` (for example
//! `["http://127.0.0.1:8090/"]`, with `--metadata-file`) and set
//! `RP_POST_LOGOUT_REDIRECT_URI=http://127.0.0.1:8090/`.
//!
//! Without `RP_CLIENT_ID` it registers itself (dynamic registration, with
//! `RP_INITIAL_ACCESS_TOKEN` from `latchkey initial-access-token create` unless the tenant
//! registration is open). Open
//! <http://127.0.0.1:8090/>. The protocol is in `rp.rs`; this file is the web app around it.

mod rp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::cookie::Cookie;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rp::{Config, Pending, RelyingParty, SignedIn};

#[derive(Default)]
struct Sessions {
    pending: HashMap<String, Pending>,
    signed_in: HashMap<String, SignedIn>,
}

struct AppState {
    rp: RelyingParty,
    sessions: Mutex<Sessions>,
}

const COOKIE: &str = "rp-session";
const BASE: &str = "http://127.0.0.1:8090";

fn session_of(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).map(|c| c.value().to_owned())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn home(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
    let body = match session_of(&req).and_then(|s| sessions.signed_in.get(&s)) {
        Some(signed) => format!(
            "<h1>Signed in</h1><p>subject <code>{}</code>, email {}</p>\
             <p><a href=\"/refresh\">Refresh the tokens</a> · <a href=\"/logout\">Sign out</a></p>",
            escape(&signed.subject),
            escape(
                signed
                    .userinfo
                    .email()
                    .map(|e| e.as_str())
                    .unwrap_or("(none)")
            ),
        ),
        None => "<h1>Example App</h1><p><a href=\"/login\">Sign in</a></p>".into(),
    };
    HttpResponse::Ok().content_type("text/html").body(body)
}

async fn login(state: web::Data<AppState>) -> HttpResponse {
    let pending = state.rp.start();
    let to = pending.url.to_string();
    let id = openidconnect::CsrfToken::new_random().secret().clone();
    state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pending
        .insert(id.clone(), pending);
    HttpResponse::SeeOther()
        .cookie(Cookie::build(COOKIE, id).http_only(true).path("/").finish())
        .insert_header(("location", to))
        .finish()
}

async fn callback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(id) = session_of(&req) else {
        return HttpResponse::BadRequest().body("no sign-in in progress");
    };
    let pending = state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pending
        .remove(&id);
    let Some(pending) = pending else {
        return HttpResponse::BadRequest().body("no sign-in in progress");
    };
    match state.rp.finish(pending, req.query_string()).await {
        Ok(signed) => {
            state
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .signed_in
                .insert(id, signed);
            HttpResponse::SeeOther()
                .insert_header(("location", "/"))
                .finish()
        }
        Err(e) => HttpResponse::BadRequest().body(format!("sign-in failed: {e}")),
    }
}

async fn refresh(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(id) = session_of(&req) else {
        return HttpResponse::SeeOther()
            .insert_header(("location", "/"))
            .finish();
    };
    let current = state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .signed_in
        .remove(&id);
    let Some(current) = current else {
        return HttpResponse::SeeOther()
            .insert_header(("location", "/"))
            .finish();
    };
    match state.rp.refresh(&current).await {
        Ok(renewed) => {
            state
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .signed_in
                .insert(id, renewed);
            HttpResponse::SeeOther()
                .insert_header(("location", "/"))
                .finish()
        }
        Err(e) => HttpResponse::BadRequest().body(format!("refresh failed: {e}")),
    }
}

async fn logout(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let signed = session_of(&req).and_then(|id| {
        state
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .signed_in
            .remove(&id)
    });
    match signed.map(|s| state.rp.logout_url(&s, "bye")) {
        Some(Ok(url)) => HttpResponse::SeeOther()
            .insert_header(("location", url.to_string()))
            .finish(),
        _ => HttpResponse::SeeOther()
            .insert_header(("location", "/"))
            .finish(),
    }
}

#[actix_web::main]
async fn main() -> Result<(), rp::Error> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()?;
    let rp = RelyingParty::discover(Config {
        issuer: var("RP_ISSUER").unwrap_or_else(|| "http://localhost:8080/t/default".into()),
        client_id: var("RP_CLIENT_ID"),
        client_secret: var("RP_CLIENT_SECRET"),
        initial_access_token: var("RP_INITIAL_ACCESS_TOKEN"),
        redirect_uri: format!("{BASE}/callback"),
        // Only where the client registered it (latchkey follows registered targets only).
        post_logout_redirect_uri: var("RP_POST_LOGOUT_REDIRECT_URI"),
        scopes: vec!["profile".into(), "email".into(), "offline_access".into()],
        http,
    })
    .await?;
    println!("signing in as client {} — open {BASE}/", rp.client_id);
    let state = web::Data::new(AppState {
        rp,
        sessions: Mutex::default(),
    });
    let state = Arc::new(state);
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::clone(&state))
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login))
            .route("/callback", web::get().to(callback))
            .route("/refresh", web::get().to(refresh))
            .route("/logout", web::get().to(logout))
    })
    .bind(("127.0.0.1", 8090))?
    .run()
    .await?;
    Ok(())
}
