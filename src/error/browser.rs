//! The browser error surface: an authorization error goes back to the client's verified
//! redirect URI (RFC 6749 §4.1.2.1, with `state` and RFC 9207's `iss`) in the response mode
//! asked for, or, when the redirect URI cannot be trusted, is shown as an HTML page.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use base64::Engine;

use crate::crypto::sha256;
use crate::oauth::authorization_request::{AuthorizationFailure, ErrorRedirect, ResponseMode};

const ERROR_PAGE: &str = include_str!("../../templates/error.html");
const FORM_POST_PAGE: &str = include_str!("../../templates/form_post.html");
/// Submits the form_post form; its hash is the page's only script permission.
const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `template` in one pass: `{{name}}` with the escaped value, `{{{name}}}` with trusted
/// markup. Inserted values are never scanned again, so a value cannot inject a placeholder.
/// An unknown placeholder renders as nothing.
fn render(template: &str, text: &[(&str, &str)], markup: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let (raw, open, close) = if after.starts_with("{{{") {
            (true, 3, "}}}")
        } else {
            (false, 2, "}}")
        };
        let Some(end) = after[open..].find(close) else {
            out.push_str(after);
            return out;
        };
        let name = after[open..open + end].trim();
        let table = if raw { markup } else { text };
        if let Some((_, value)) = table.iter().find(|(n, _)| *n == name) {
            if raw {
                out.push_str(value);
            } else {
                out.push_str(&escape(value));
            }
        }
        rest = &after[open + end + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Headers every page of ours carries: never cached, never framed, no referrer leaked.
fn page(status: StatusCode, csp: &str, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp.to_owned()))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(html)
}

/// The HTML error page.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    code: &str,
    detail: &str,
) -> HttpResponse {
    let html = render(
        ERROR_PAGE,
        &[
            ("title", title),
            ("message", message),
            ("code", code),
            ("detail", detail),
        ],
        &[],
    );
    page(
        status,
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'",
        html,
    )
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
            found(url.as_str())
        }
        ResponseMode::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            url.set_fragment(Some(&fragment));
            found(url.as_str())
        }
        ResponseMode::FormPost => {
            let inputs: String = params
                .iter()
                .map(|(name, value)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                        escape(name),
                        escape(value)
                    )
                })
                .collect();
            let html = render(
                FORM_POST_PAGE,
                &[("action", to.uri().as_str())],
                &[("inputs", &inputs), ("script", SUBMIT_SCRIPT)],
            );
            let hash =
                base64::engine::general_purpose::STANDARD.encode(sha256(SUBMIT_SCRIPT.as_bytes()));
            // form-action is left open: the target is the client's registered URI.
            page(
                StatusCode::OK,
                &format!("default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'none'"),
                html,
            )
        }
    }
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
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
            Some(_) => StatusCode::FOUND,
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
    fn values_are_escaped_and_never_rescanned() {
        let html = render(
            "<p>{{a}}</p><i>{{{b}}}</i>{{missing}}",
            &[("a", "<script>{{b}}</script>")],
            &[("b", "<b>ok</b>")],
        );
        assert_eq!(
            html,
            "<p>&lt;script&gt;{{b}}&lt;/script&gt;</p><i><b>ok</b></i>"
        );
    }

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
        assert!(body.contains("&#39;&quot;&gt;&lt;img"));
        assert!(!body.contains("<img"));
    }
}
