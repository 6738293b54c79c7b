//! What every browser page needs: the cookies (a binding cookie for CSRF tokens, the tenant's
//! session cookie), CSRF tokens, the same-origin check of form posts, where a request came
//! from, and safe `return_to` targets.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;

use crate::app::AppState;
use crate::crypto::b64url;
use crate::model::{Tenant, TenantId, TenantSlug};
use crate::people::sessions::Origin;

/// Whether the server is reached over https (then cookies are `Secure` and `__Host-`).
pub fn secure(state: &AppState) -> bool {
    state.settings.server.public_url.starts_with("https://")
}

fn cookie_name(state: &AppState, base: &str) -> String {
    if secure(state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The binding cookie: a random value per browser that CSRF tokens are bound to.
pub fn binding_cookie_name(state: &AppState) -> String {
    cookie_name(state, "latchkey-csrf")
}

/// The cookie naming a passkey ceremony in progress (its state is in the shared cache).
pub fn ceremony_cookie_name(state: &AppState) -> String {
    cookie_name(state, "latchkey-ceremony")
}

/// A tenant's session cookie (one per tenant: each is its own issuer).
pub fn session_cookie_name(state: &AppState, tenant: &TenantSlug) -> String {
    cookie_name(state, &format!("latchkey-session-{tenant}"))
}

/// A cookie as DESIGN §4 wants them: HttpOnly, SameSite=Lax, Path=/, Secure on https, and no
/// expiry (it ends with the browser; the server ends sessions on its own clock).
pub fn cookie(state: &AppState, name: String, value: String) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_path("/");
    c.set_secure(secure(state));
    c
}

/// A cookie that removes `name`.
pub fn removal(state: &AppState, name: String) -> Cookie<'static> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

/// The browser's binding value, and the cookie to set when it had none.
pub fn binding(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    let name = binding_cookie_name(state);
    match req.cookie(&name) {
        Some(c) if c.value().len() >= 32 => (c.value().to_owned(), None),
        _ => {
            let value = state.rng.token::<32>();
            let set = cookie(state, name, value.clone());
            (value, Some(set))
        }
    }
}

/// What a CSRF token is the MAC of: the tenant and the browser's binding value.
fn csrf_message(tenant: TenantId, binding: &str) -> Vec<u8> {
    [
        tenant.uuid().as_bytes().as_slice(),
        b"\0",
        binding.as_bytes(),
    ]
    .concat()
}

/// The CSRF token of forms shown to the browser with this binding, at this tenant.
pub fn csrf_token(state: &AppState, tenant: TenantId, binding: &str) -> String {
    state
        .master_key
        .mac_key(b"csrf")
        .map(|key| b64url(ring::hmac::sign(&key, &csrf_message(tenant, binding)).as_ref()))
        .unwrap_or_default()
}

/// Why a form post is refused before anything else is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// Sent from another site (`Origin` or `Sec-Fetch-Site`).
    CrossSite,
    /// No binding cookie, or a token that does not match it.
    BadToken,
}

impl Forgery {
    pub fn status(self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

/// Checks a form post: same origin (when the browser says where it came from) and a CSRF
/// token matching the browser's binding cookie, compared in constant time.
pub fn check_post(
    state: &AppState,
    req: &HttpRequest,
    tenant: TenantId,
    presented: &str,
) -> Result<(), Forgery> {
    if let Some(origin) = req.headers().get("origin") {
        let ours = state
            .settings
            .public_url()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if origin.to_str().unwrap_or_default() != ours {
            return Err(Forgery::CrossSite);
        }
    }
    if req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v == "cross-site")
    {
        return Err(Forgery::CrossSite);
    }
    let binding = req
        .cookie(&binding_cookie_name(state))
        .map(|c| c.value().to_owned())
        .ok_or(Forgery::BadToken)?;
    let key = state
        .master_key
        .mac_key(b"csrf")
        .map_err(|_| Forgery::BadToken)?;
    let message = csrf_message(tenant, &binding);
    let tag = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        presented.as_bytes(),
    )
    .map_err(|_| Forgery::BadToken)?;
    ring::hmac::verify(&key, &message, &tag).map_err(|_| Forgery::BadToken)
}

/// Where the request came from, for sessions and sign-in history.
pub fn origin(state: &AppState, req: &HttpRequest) -> Origin {
    Origin {
        ip: crate::http::client_ip(req, &state.settings.server.trusted_proxies)
            .map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(crate::model::session::user_agent),
    }
}

/// The rate-limit subject of the request's address.
pub fn address(state: &AppState, req: &HttpRequest) -> String {
    crate::http::client_ip(req, &state.settings.server.trusted_proxies)
        .map(crate::http::rate_limit_subject)
        .unwrap_or_else(|| "unknown".into())
}

/// `raw` if it is a path under this tenant on this server (no scheme, no host, no `//`, no
/// backslash, no control characters): never an open redirect.
pub fn safe_return(tenant: &Tenant, raw: &str) -> Option<String> {
    let prefix = format!("/t/{}/", tenant.slug);
    let path = raw.split(['?', '#']).next().unwrap_or("");
    let lower = raw.to_ascii_lowercase();
    let ok = raw.len() <= 2048
        && raw.starts_with(&prefix)
        && !raw.contains("//")
        && !raw.contains('\\')
        // Dot segments, plain or percent-encoded: browsers resolve them, out of the tenant.
        && !path.split('/').any(|segment| segment == "." || segment == "..")
        && !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then(|| raw.to_owned())
}

/// A form body as name/value pairs; a repeated name is refused (two CSRF tokens, two
/// passwords), as is an unparseable body.
pub fn form(body: &[u8]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!(
                "the field {} was sent twice",
                crate::model::user::clip(&k)
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_targets_stay_on_the_tenant() {
        let tenant = Tenant::for_tests("acme");
        assert_eq!(
            safe_return(&tenant, "/t/acme/account").as_deref(),
            Some("/t/acme/account")
        );
        assert!(safe_return(&tenant, "/t/acme/authorize/continue?handle=a.b").is_some());
        for bad in [
            "https://evil.example/t/acme/",
            "//evil.example/t/acme/",
            "/t/acme//evil.example",
            "/t/other/account",
            "/t/acme/../other/account",
            "/t/acme/..",
            "/t/acme/%2e%2e/other/account",
            "/t/acme/%2E./other",
            "/t/acme/.%2e/other",
            "/t/acme/a%2f..%2f..%2fother",
            "/t/acme/\\evil",
            "/t/acme/a b",
            "/t/acmex/account",
            "",
        ] {
            assert_eq!(safe_return(&tenant, bad), None, "{bad}");
        }
    }

    #[test]
    fn forms_refuse_repeated_fields() {
        assert_eq!(form(b"a=1&b=%20x").unwrap()["b"], " x");
        assert!(form(b"csrf=1&csrf=2").is_err());
    }
}
