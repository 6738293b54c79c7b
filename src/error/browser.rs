//! The browser error surface: an authorization error goes back to the client's verified
//! redirect URI (RFC 6749 §4.1.2.1, with `state` and RFC 9207's `iss`) in the response mode
//! asked for, or, when the redirect URI cannot be trusted, is shown as an HTML page.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};

use crate::oauth::authorization_request::{AuthorizationFailure, ErrorRedirect, ResponseMode};
use crate::web::pages::{PAGE_CSP, Pages, html};

/// The HTML error page.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    code: &str,
    detail: &str,
) -> HttpResponse {
    let body = Pages::get().render(
        "error.html",
        minijinja::context! { title, message, code, detail },
    );
    html(status, PAGE_CSP, body)
}

/// The parameters of an error response (RFC 6749 §4.1.2.1; RFC 9207 §2).
fn error_params<'a>(
    failure: &AuthorizationFailure,
    description: &'a str,
    to: &'a ErrorRedirect,
) -> Vec<(&'static str, &'a str)> {
    let mut params = vec![
        ("error", failure.error.code().as_str()),
        ("error_description", description),
    ];
    if let Some(state) = to.state() {
        params.push(("state", state));
    }
    params.push(("iss", to.iss()));
    params
}

/// Sends `params` to a verified redirect URI in its response mode.
pub fn redirect_response(to: &ErrorRedirect, params: &[(&str, &str)]) -> HttpResponse {
    let mut url = to.uri().url().clone();
    match to.mode() {
        ResponseMode::Query => {
            // RFC 6749 §3.1.2: the URI's own query is kept, the parameters added to it.
            url.query_pairs_mut().extend_pairs(params);
            see_other(url.as_str())
        }
        ResponseMode::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            url.set_fragment(Some(&fragment));
            see_other(url.as_str())
        }
        ResponseMode::FormPost => {
            let body = Pages::get().render(
                "form_post.html",
                minijinja::context! { action => to.uri().as_str(), fields => params },
            );
            // The form may go to the client's verified redirect URI and nowhere else.
            let csp = format!(
                "default-src 'none'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                 form-action {}",
                crate::web::pages::csp_source(to.uri().url())
            );
            html(StatusCode::OK, &csp, body)
        }
    }
}

/// Every redirect to a client is a 303 (RFC 9700 §4.12): a 307 after a POST would resend the
/// form, credentials included, to the client.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

impl std::fmt::Display for AuthorizationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl ResponseError for AuthorizationFailure {
    fn status_code(&self) -> StatusCode {
        match &self.redirect {
            Some(_) => StatusCode::SEE_OTHER,
            None => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match &self.redirect {
            Some(to) => {
                let description = super::description_text(&self.description);
                redirect_response(to, &error_params(self, &description, to))
            }
            // RFC 6749 §4.1.2.1: with no trustworthy redirect URI, the resource owner is
            // told, and the user agent is not sent anywhere.
            None => error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in link does not work",
                "The application that sent you here made a request this server cannot accept. \
                 Go back to the application and try again; if it keeps happening, tell its \
                 developers.",
                self.error.code().as_str(),
                &self.description,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_page_escapes_what_the_client_sent() {
        let res = error_page(
            StatusCode::BAD_REQUEST,
            "t",
            "m",
            "invalid_request",
            "'\"><img src=x onerror=alert(1)>",
        );
        assert_eq!(res.status(), 400);
        let csp = res.headers().get(header::CONTENT_SECURITY_POLICY).unwrap();
        assert!(csp.to_str().unwrap().contains("default-src 'none'"));
        let body = actix_web::body::MessageBody::try_into_bytes(res.into_body()).unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("&quot;&gt;&lt;img"), "{body}");
        assert!(!body.contains("<img"));
    }
}
