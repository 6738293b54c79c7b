//! The one route table. Every path answers unknown methods with 405 and unknown paths with 404,
//! in the error format of its surface; malformed bodies, paths and queries are 400s, bodies
//! over [`MAX_BODY`] 413s.

use actix_web::http::header::ALLOW;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{FromRequest, Handler, HttpResponse, Responder, ResponseError, error, guard, web};

use crate::error::{ErrorCode, OAuthError, Problem};
use crate::urls::Endpoint;
use crate::{admin, oauth, oidc, ops, web as pages};

/// Request bodies above this are refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

fn json_overflow(e: &error::JsonPayloadError) -> bool {
    matches!(
        e,
        error::JsonPayloadError::Overflow { .. }
            | error::JsonPayloadError::OverflowKnownLength { .. }
    )
}

fn form_overflow(e: &error::UrlencodedError) -> bool {
    matches!(e, error::UrlencodedError::Overflow { .. })
}

fn oauth_body_error(overflow: bool, e: impl std::fmt::Display) -> actix_web::Error {
    if overflow {
        OAuthError::invalid_request("request body too large")
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .into()
    } else {
        OAuthError::invalid_request(format!("malformed request body: {e}")).into()
    }
}

fn problem_body_error(overflow: bool, e: impl std::fmt::Display) -> actix_web::Error {
    if overflow {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into()
    } else {
        Problem::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")).into()
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY)
            .error_handler(|e, _| oauth_body_error(json_overflow(&e), e)),
    )
    .app_data(
        web::FormConfig::default()
            .limit(MAX_BODY)
            .error_handler(|e, _| oauth_body_error(form_overflow(&e), e)),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|_, _| OAuthError::not_found("no such resource").into()),
    )
    .app_data(
        web::QueryConfig::default().error_handler(|e, _| {
            OAuthError::invalid_request(format!("malformed query: {e}")).into()
        }),
    );

    read(cfg, "/healthz", ops::healthz);
    read(cfg, "/readyz", ops::readyz);
    read(cfg, "/metrics", ops::metrics);
    // What browser-based clients call gets CORS (not /authorize, a top-level navigation).
    cors_read(
        cfg,
        "/.well-known/oauth-authorization-server/t/{tenant}",
        oidc::discovery::oauth_authorization_server,
    );
    cors_read(
        cfg,
        &Endpoint::OpenidConfiguration.route(),
        oidc::discovery::openid_configuration,
    );
    cors_read(cfg, &Endpoint::Jwks.route(), oidc::jwks::jwks);
    cors_post(cfg, &Endpoint::Token.route(), oauth::token::token);
    post(
        cfg,
        &Endpoint::Introspect.route(),
        oauth::introspection::introspect,
    );
    cors_post(cfg, &Endpoint::Revoke.route(), oauth::revocation::revoke);
    post(cfg, &Endpoint::Par.route(), oauth::par::push);
    // OIDC Core §5.3.1: GET and POST.
    cfg.service(
        web::resource(Endpoint::Userinfo.route())
            .wrap(cors("GET, POST, OPTIONS"))
            .route(web::get().to(oidc::userinfo::userinfo))
            .route(web::post().to(oidc::userinfo::userinfo))
            .route(web::method(Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed("GET, POST, OPTIONS"))),
    );
    // RFC 7591/7592, with CORS so browser-based clients can register themselves.
    cfg.service(
        web::resource(Endpoint::Register.route())
            .wrap(cors("POST, OPTIONS"))
            .route(web::post().to(oauth::registration::register))
            .route(web::method(Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed("POST, OPTIONS"))),
    );
    cfg.service(
        web::resource(format!("{}/{{client_id}}", Endpoint::Register.route()))
            .wrap(cors("GET, PUT, DELETE, OPTIONS"))
            .route(web::get().to(oauth::registration::read))
            .route(web::put().to(oauth::registration::update))
            .route(web::delete().to(oauth::registration::delete))
            .route(web::method(Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed("GET, PUT, DELETE, OPTIONS"))),
    );

    // The browser pages (DESIGN §4).
    read(cfg, "/assets/{name}", pages::assets::asset);
    read(cfg, &Endpoint::BrandingCss.route(), pages::assets::branding);
    page_form(
        cfg,
        Endpoint::Login,
        pages::login::show,
        pages::login::submit,
    );
    // OpenID Connect Core §3.1.2.1: GET and POST.
    page_form(
        cfg,
        Endpoint::Authorize,
        pages::authorize::get,
        pages::authorize::post,
    );
    read(
        cfg,
        &Endpoint::AuthorizeContinue.route(),
        pages::authorize::resume,
    );
    page_post(cfg, Endpoint::AuthorizeConsent, pages::authorize::consent);
    page_post(cfg, Endpoint::AuthorizeAccount, pages::authorize::account);
    // RP-Initiated Logout §2: GET and POST.
    page_form(
        cfg,
        Endpoint::EndSession,
        pages::logout::get,
        pages::logout::post,
    );
    read(cfg, &Endpoint::Account.route(), pages::account::show);
    page_post(
        cfg,
        Endpoint::AccountPassword,
        pages::account::change_password,
    );
    page_post(
        cfg,
        Endpoint::AccountSessions,
        pages::account::revoke_session,
    );
    page_post(cfg, Endpoint::AccountLogout, pages::account::logout);
    page_post(cfg, Endpoint::AccountApps, pages::account::remove_app);
    page_post(
        cfg,
        Endpoint::PasskeyLoginStart,
        pages::passkeys::login_start,
    );
    page_post(
        cfg,
        Endpoint::PasskeyLoginFinish,
        pages::passkeys::login_finish,
    );
    page_post(
        cfg,
        Endpoint::PasskeyRegisterStart,
        pages::passkeys::register_start,
    );
    page_post(
        cfg,
        Endpoint::PasskeyRegisterFinish,
        pages::passkeys::register_finish,
    );
    page_post(cfg, Endpoint::PasskeyRename, pages::passkeys::rename);
    page_post(cfg, Endpoint::PasskeyDelete, pages::passkeys::delete);
    page_post(
        cfg,
        Endpoint::AccountVerifyEmail,
        pages::recovery::send_verification,
    );
    page_form(
        cfg,
        Endpoint::PasswordForgot,
        pages::recovery::forgot_form,
        pages::recovery::forgot,
    );
    page_form(
        cfg,
        Endpoint::PasswordReset,
        pages::recovery::reset_form,
        pages::recovery::reset,
    );
    page_form(
        cfg,
        Endpoint::EmailVerify,
        pages::recovery::verify_form,
        pages::recovery::verify,
    );
    read(cfg, &Endpoint::Signup.route(), pages::passkeys::signup_page);
    page_post(cfg, Endpoint::SignupStart, pages::passkeys::signup_start);
    page_post(cfg, Endpoint::SignupFinish, pages::passkeys::signup_finish);

    cfg.service(
        web::scope("/admin")
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_BODY)
                    .error_handler(|e, _| problem_body_error(json_overflow(&e), e)),
            )
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                Problem::new(StatusCode::NOT_FOUND, "no such resource").into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                Problem::new(StatusCode::BAD_REQUEST, format!("malformed query: {e}")).into()
            }))
            .service(
                web::resource("/tenants")
                    .route(web::get().to(admin::tenants::list))
                    .route(web::post().to(admin::tenants::create))
                    .default_service(web::to(admin_method_not_allowed("GET, POST"))),
            )
            .service(
                web::resource("/tenants/{tenant}")
                    .route(web::get().to(admin::tenants::show))
                    .route(web::delete().to(admin::tenants::delete))
                    .default_service(web::to(admin_method_not_allowed("GET, DELETE"))),
            )
            .service(
                web::resource("/tenants/{tenant}/keys")
                    .route(web::get().to(admin::tenants::list_keys))
                    .default_service(web::to(admin_method_not_allowed("GET"))),
            )
            .service(
                web::resource("/tenants/{tenant}/keys/rotate")
                    .route(web::post().to(admin::tenants::rotate_keys))
                    .default_service(web::to(admin_method_not_allowed("POST"))),
            )
            .service(
                web::resource("/tenants/{tenant}/keys/{kid}")
                    .route(web::delete().to(admin::tenants::delete_key))
                    .default_service(web::to(admin_method_not_allowed("DELETE"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users")
                    .route(web::get().to(admin::users::list))
                    .route(web::post().to(admin::users::create))
                    .default_service(web::to(admin_method_not_allowed("GET, POST"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}")
                    .route(web::get().to(admin::users::show))
                    .route(web::patch().to(admin::users::update))
                    .route(web::delete().to(admin::users::delete))
                    .default_service(web::to(admin_method_not_allowed("GET, PATCH, DELETE"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/password")
                    .route(web::put().to(admin::users::set_password))
                    .route(web::delete().to(admin::users::remove_password))
                    .default_service(web::to(admin_method_not_allowed("PUT, DELETE"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/disable")
                    .route(web::post().to(admin::users::disable))
                    .default_service(web::to(admin_method_not_allowed("POST"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/enable")
                    .route(web::post().to(admin::users::enable))
                    .default_service(web::to(admin_method_not_allowed("POST"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/logins")
                    .route(web::get().to(admin::users::logins))
                    .default_service(web::to(admin_method_not_allowed("GET"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/sessions")
                    .route(web::get().to(admin::users::sessions))
                    .route(web::delete().to(admin::users::end_sessions))
                    .default_service(web::to(admin_method_not_allowed("GET, DELETE"))),
            )
            .service(
                web::resource("/tenants/{tenant}/users/{user}/audit")
                    .route(web::get().to(admin::users::audit))
                    .default_service(web::to(admin_method_not_allowed("GET"))),
            )
            .default_service(web::to(|| async {
                Problem::new(StatusCode::NOT_FOUND, "no such admin resource").error_response()
            })),
    )
    .default_service(web::to(not_found));
}

/// A read-only resource: GET, and HEAD answered like GET without a body.
fn read<F, Args>(cfg: &mut web::ServiceConfig, path: &str, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .route(
                web::route()
                    .guard(guard::Any(guard::Get()).or(guard::Head()))
                    .to(handler),
            )
            .default_service(web::to(method_not_allowed("GET, HEAD"))),
    );
}

/// A read-only resource that browser apps may fetch from any origin.
fn cors_read<F, Args>(cfg: &mut web::ServiceConfig, path: &str, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .wrap(cors("GET, HEAD, OPTIONS"))
            .route(
                web::route()
                    .guard(guard::Any(guard::Get()).or(guard::Head()))
                    .to(handler),
            )
            .route(web::method(Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed("GET, HEAD, OPTIONS"))),
    );
}

/// A form-posting OAuth endpoint that browser apps call (public clients with PKCE).
fn cors_post<F, Args>(cfg: &mut web::ServiceConfig, path: &str, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .wrap(cors("POST, OPTIONS"))
            .route(web::post().to(handler))
            .route(web::method(Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed("POST, OPTIONS"))),
    );
}

/// A form-posting OAuth endpoint.
fn post<F, Args>(cfg: &mut web::ServiceConfig, path: &str, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .route(web::post().to(handler))
            .default_service(web::to(method_not_allowed("POST"))),
    );
}

/// A page that shows a form (GET, HEAD) and takes its post.
fn page_form<G, GArgs, P, PArgs>(cfg: &mut web::ServiceConfig, endpoint: Endpoint, show: G, take: P)
where
    G: Handler<GArgs>,
    GArgs: FromRequest + 'static,
    G::Output: Responder + 'static,
    P: Handler<PArgs>,
    PArgs: FromRequest + 'static,
    P::Output: Responder + 'static,
{
    cfg.service(
        web::resource(endpoint.route())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(
                web::route()
                    .guard(guard::Any(guard::Get()).or(guard::Head()))
                    .to(show),
            )
            .route(web::post().to(take))
            .default_service(web::to(method_not_allowed("GET, HEAD, POST"))),
    );
}

/// A page's form target: POST only, bodies up to [`MAX_BODY`].
fn page_post<F, Args>(cfg: &mut web::ServiceConfig, endpoint: Endpoint, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    cfg.service(
        web::resource(endpoint.route())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route(web::post().to(handler))
            .default_service(web::to(method_not_allowed("POST"))),
    );
}

/// CORS headers for every response of a resource, errors included (a browser client must be
/// able to read the error).
fn cors(methods: &'static str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Access-Control-Allow-Origin", "*"))
        .add(("Access-Control-Allow-Methods", methods))
        .add((
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, DPoP",
        ))
        // Readable by scripts: the DPoP nonce (RFC 9449 §8) and the challenge of a 401.
        .add((
            "Access-Control-Expose-Headers",
            "DPoP-Nonce, WWW-Authenticate",
        ))
        .add(("Access-Control-Max-Age", "600"))
}

async fn preflight() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

async fn not_found() -> HttpResponse {
    OAuthError::not_found("no such resource").error_response()
}

fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone {
    move || {
        std::future::ready(
            OAuthError::new(ErrorCode::MethodNotAllowed)
                .describe("method not allowed")
                .with_header(ALLOW, allow)
                .error_response(),
        )
    }
}

fn admin_method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone {
    move || {
        std::future::ready(
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                .with_header(ALLOW, allow)
                .error_response(),
        )
    }
}
