//! The page renderer: minijinja templates from `templates/` (embedded in the binary; a
//! deployment may override any of them from `pages.templates_dir`), HTML auto-escaping, and
//! the headers every page carries.
//!
//! minijinja rather than askama: askama compiles templates into the binary, so a deployment
//! could not restyle its pages without rebuilding; minijinja loads them at start (and checks
//! them then: a broken override stops the server at start, never a request).

use std::path::PathBuf;
use std::sync::{LazyLock, OnceLock};

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

/// `[pages]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageSettings {
    /// A directory whose files replace the embedded templates of the same name.
    pub templates_dir: Option<PathBuf>,
}

/// The embedded templates (see templates/README.md for what each receives).
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("message.html", include_str!("../../templates/message.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
    ("forgot.html", include_str!("../../templates/forgot.html")),
    ("reset.html", include_str!("../../templates/reset.html")),
    ("verify.html", include_str!("../../templates/verify.html")),
    ("signup.html", include_str!("../../templates/signup.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    (
        "choose_account.html",
        include_str!("../../templates/choose_account.html"),
    ),
    ("logout.html", include_str!("../../templates/logout.html")),
];

/// The policy of our pages: scripts and styles from our own origin only, no inline code,
/// never framed, forms posting back here (DESIGN §4).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' https: data:; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

static INSTALLED: OnceLock<Pages> = OnceLock::new();
static EMBEDDED: LazyLock<Pages> = LazyLock::new(Pages::embedded_only);

impl Pages {
    fn embedded_only() -> Pages {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "embedded template does not compile");
            }
        }
        Pages { env }
    }

    /// The embedded templates with the overrides of `settings` applied; every template is
    /// compiled now.
    pub fn load(settings: &PageSettings) -> Result<Pages, String> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            let custom = settings
                .templates_dir
                .as_ref()
                .map(|dir| dir.join(name))
                .filter(|path| path.is_file());
            match custom {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("pages.templates_dir: {}: {e}", path.display()))?;
                    env.add_template_owned(name.to_string(), text)
                        .map_err(|e| format!("pages.templates_dir: {}: {e}", path.display()))?;
                }
                None => env
                    .add_template(name, source)
                    .map_err(|e| format!("embedded template {name}: {e}"))?,
            }
        }
        Ok(Pages { env })
    }

    /// Makes these the pages every response renders (the first call wins; tests in one
    /// process share the embedded ones).
    pub fn install(self) {
        let _ = INSTALLED.set(self);
    }

    /// The installed pages, or the embedded ones.
    pub fn get() -> &'static Pages {
        INSTALLED.get().unwrap_or(&EMBEDDED)
    }

    /// Renders `name`; a failing override falls back to the embedded template, so a
    /// deployment's mistake costs its look, never the page.
    pub fn render(&self, name: &str, context: minijinja::Value) -> String {
        let rendered = self.env.get_template(name).and_then(|t| t.render(&context));
        match rendered {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed; using the embedded one");
                EMBEDDED
                    .env
                    .get_template(name)
                    .and_then(|t| t.render(&context))
                    .unwrap_or_else(|e| {
                        format!(
                            "<!doctype html><title>Error</title><p>{}</p>",
                            escape(&e.to_string())
                        )
                    })
            }
        }
    }
}

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

/// A page with the headers every page of ours carries: never cached, never framed, no
/// referrer leaked to other sites, no sniffing. `same-origin`, not `no-referrer`: under
/// `no-referrer` browsers send `Origin: null` with form posts, and the same-origin check of
/// [`super::browser::check_post`] needs the real origin.
pub fn html(status: StatusCode, csp: &str, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp.to_owned()))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// The CSP source expression of `target`'s origin: `https://host:port`, or `scheme:` for a
/// private-use scheme (RFC 8252 §7.1), whose origins are opaque.
pub fn csp_source(target: &url::Url) -> String {
    let origin = target.origin();
    if origin.is_tuple() {
        origin.ascii_serialization()
    } else {
        format!("{}:", target.scheme())
    }
}

/// Lets a page's forms lead to `target`: CSP `form-action` also governs the redirects that
/// follow a submission (CSP 3 §6.4.1), so a sign-in or consent form whose answer is a 303 to
/// the client must name the client's redirect URI.
pub fn allow_form_target(response: &mut HttpResponse, target: &url::Url) {
    let csp = PAGE_CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", csp_source(target)),
    );
    if let Ok(value) = header::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Renders `name` as a page under [`PAGE_CSP`].
pub fn page(status: StatusCode, name: &str, context: minijinja::Value) -> HttpResponse {
    html(status, PAGE_CSP, Pages::get().render(name, context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_compiles_and_escapes() {
        let pages = Pages::load(&PageSettings::default()).unwrap();
        let html = pages.render(
            "message.html",
            minijinja::context! { title => "<b>x</b>", message => "'\"><img src=x>" },
        );
        assert!(html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"), "{html}");
        assert!(!html.contains("<img"));
    }

    #[test]
    fn overrides_replace_templates_and_broken_ones_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("message.html"), "custom {{ title }}").unwrap();
        let settings = PageSettings {
            templates_dir: Some(dir.path().to_owned()),
        };
        let pages = Pages::load(&settings).unwrap();
        assert_eq!(
            pages.render("message.html", minijinja::context! { title => "<t>" }),
            "custom &lt;t&gt;"
        );
        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        assert!(Pages::load(&settings).unwrap_err().contains("login.html"));
    }
}
