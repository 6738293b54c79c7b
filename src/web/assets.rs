//! The pages' static files (`/assets/…`, embedded) and each tenant's branding stylesheet
//! (`/t/{tenant}/branding.css`): styles and scripts come from files, so the pages' CSP needs
//! no inline code.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::PageTenant;
use crate::crypto::{b64url, sha256};

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "latchkey.css",
        "text/css; charset=utf-8",
        include_str!("../../templates/assets/latchkey.css"),
    ),
    (
        "passkeys.js",
        "text/javascript; charset=utf-8",
        include_str!("../../templates/assets/passkeys.js"),
    ),
    (
        "form-post.js",
        "text/javascript; charset=utf-8",
        include_str!("../../templates/assets/form-post.js"),
    ),
];

fn served(content_type: &str, body: String, max_age: u32) -> HttpResponse {
    let etag = format!("\"{}\"", &b64url(&sha256(body.as_bytes()))[..16]);
    HttpResponse::Ok()
        .content_type(content_type.to_owned())
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

pub async fn asset(path: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(name, _, _)| *name == path.as_str()) {
        Some((_, content_type, body)) => served(content_type, (*body).to_owned(), 3600),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset"),
    }
}

/// The tenant's accent colour as a stylesheet (the colour was checked to be `#rrggbb` when
/// stored, so it cannot break out of the declaration).
pub async fn branding(tenant: PageTenant) -> HttpResponse {
    let css = match &tenant.0.settings.branding.accent_color {
        Some(colour) => format!(":root {{ --accent: {colour}; }}\n"),
        None => String::new(),
    };
    served("text/css; charset=utf-8", css, 300)
}
