//! One end-to-end run in real headless Chromium (Debian's `chromium`, over CDP) with the CDP
//! virtual authenticator (CTAP2, internal transport, resident keys, user verification): sign in
//! with a password, add a passkey where the page offers it, sign out, sign in with the passkey
//! through the button and then through the username field's autofill (conditional UI), typing
//! no username either time; then a relying party (the example, on the `openidconnect` crate)
//! sends the browser to `/authorize`, the person signs in with the passkey and consents, and
//! the relying party receives and validates the ID token. With `LATCHKEY_SCREENSHOTS=DIR` it
//! saves the pages' screenshots there (docs/screenshots holds the committed ones).

use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::page::RemoveScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::cdp::browser_protocol::web_authn::{
    AddVirtualAuthenticatorParams, AuthenticatorProtocol, AuthenticatorTransport, EnableParams,
    GetCredentialsParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;

use std::sync::{Arc, Mutex};

use crate::harness::clients::TestClient;
use crate::harness::rp::{self, Config, RelyingParty};
use crate::harness::{Backend, TestApp};

const PASSWORD: &str = "correct horse battery staple";

/// Waits until the page at a URL matching `at` shows `text` (the URL changes before the new
/// document is in).
async fn wait_for_text(page: &Page, at: impl Fn(&str) -> bool, text: &str) -> String {
    let start = Instant::now();
    loop {
        let url = page.url().await.ok().flatten().unwrap_or_default();
        let html = page.content().await.unwrap_or_default();
        if at(&url) && html.contains(text) {
            return html;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("timed out waiting for {text:?}; at {url}:\n{html}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `expression` is true in the page (its script has run).
async fn wait_js(page: &Page, expression: &str) {
    let start = Instant::now();
    loop {
        let ok = page
            .evaluate(expression)
            .await
            .ok()
            .and_then(|r| r.into_value::<bool>().ok())
            .unwrap_or(false);
        if ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {expression}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shoot(page: &Page, name: &str) {
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot of {name}");
    if let Ok(dir) = std::env::var("LATCHKEY_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

async fn js(page: &Page, script: &str) {
    page.evaluate(script).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_and_a_relying_party_sign_in_in_a_real_browser() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let chromium =
        std::env::var("LATCHKEY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: scripts/test.sh installs Debian's chromium"
    );
    let profile = tempfile::tempdir().unwrap();
    let (mut browser, mut handler) = Browser::launch(
        BrowserConfig::builder()
            .chrome_executable(chromium)
            .user_data_dir(profile.path())
            .no_sandbox()
            .arg("--headless=new")
            .arg("--disable-gpu")
            .window_size(1000, 1200)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let page = browser.new_page("about:blank").await.unwrap();
    page.execute(EnableParams::default()).await.unwrap();
    let authenticator = page
        .execute(AddVirtualAuthenticatorParams::new(
            VirtualAuthenticatorOptions::builder()
                .protocol(AuthenticatorProtocol::Ctap2)
                .transport(AuthenticatorTransport::Internal)
                .has_resident_key(true)
                .has_user_verification(true)
                .is_user_verified(true)
                .automatic_presence_simulation(true)
                .build()
                .unwrap(),
        ))
        .await
        .unwrap()
        .result
        .authenticator_id;
    // The first sign-in is by password: keep the autofill passkey request from starting.
    let no_autofill = page
        .evaluate_on_new_document(
            "PublicKeyCredential.isConditionalMediationAvailable = async () => false;",
        )
        .await
        .unwrap();

    page.goto(format!("{issuer}/login")).await.unwrap();
    page.wait_for_navigation().await.unwrap();
    let html = page.content().await.unwrap();
    assert!(
        html.contains(r#"autocomplete="username webauthn""#),
        "{html}"
    );
    shoot(&page, "login").await;
    page.find_element("#username")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("alice")
        .await
        .unwrap();
    page.find_element("#password")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(PASSWORD)
        .await
        .unwrap();
    page.find_element("form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        &page,
        |u| u.contains("/account?offer=passkey"),
        "add a passkey to this device",
    )
    .await;
    wait_js(&page, "!document.querySelector('#add-passkey').hidden").await;

    // Add a passkey where the page offers it.
    page.find_element("#add-passkey")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        &page,
        |u| u.ends_with("notice=passkey"),
        "Your passkey was added",
    )
    .await;
    let credentials = page
        .execute(GetCredentialsParams::new(authenticator.clone()))
        .await
        .unwrap()
        .result
        .credentials;
    assert_eq!(credentials.len(), 1);
    assert!(
        credentials[0].is_resident_credential,
        "a discoverable credential"
    );
    shoot(&page, "account").await;

    // Sign out, then in with the button: no username typed.
    page.find_element("form[action$='account/logout'] button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        &page,
        |u| u.contains("/login?notice=signed-out"),
        "You are signed out.",
    )
    .await;
    wait_js(
        &page,
        "!document.querySelector('[data-passkey-only]').hidden",
    )
    .await;
    page.find_element("#passkey-button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let html = wait_for_text(&page, |u| u.contains("/account"), "alice@example.com").await;
    assert!(
        html.contains("hwk, user") || html.contains("swk, user"),
        "passkey amr: {html}"
    );

    // Sign out, then in through the autofill (conditional UI) with the request left on.
    page.execute(RemoveScriptToEvaluateOnNewDocumentParams::new(no_autofill))
        .await
        .unwrap();
    let tenant = app.default_tenant().await;
    let alice = app.state.users().resolve(tenant.id, "alice").await.unwrap();
    let sign_ins = async || {
        app.state
            .sessions()
            .history(tenant.id, alice.id, 10)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(sign_ins().await, 2);
    js(
        &page,
        "document.querySelector(\"form[action$='account/logout'] button\").click()",
    )
    .await;
    // The login page starts the conditional request as it loads, and the virtual authenticator
    // answers it by itself (a person would pick the passkey from the field's autofill): the
    // browser may be back on the account page before a poll sees the login page.
    let start = Instant::now();
    while sign_ins().await < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no conditional sign-in"
        );
        if let Ok(field) = page.find_element("#username").await {
            let _ = field.focus().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_text(&page, |u| u.contains("/account"), "alice@example.com").await;

    // Three sign-ins, the last two with the passkey.
    let history = app
        .state
        .sessions()
        .history(tenant.id, alice.id, 10)
        .await
        .unwrap();
    let methods: Vec<&str> = history.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(methods, ["passkey", "passkey", "password"]);
    let passkeys = app.state.passkeys().of(tenant.id, &alice).await.unwrap();
    assert!(passkeys[0].last_used_at.is_some());

    // A relying party sends the browser to /authorize; the person signs in with the passkey
    // (the button, autofill held back again) and allows the application.
    let client = app.rp("default").create().await;
    let rp = RpServer::start(&app, &client).await;
    page.evaluate_on_new_document(
        "PublicKeyCredential.isConditionalMediationAvailable = async () => false;",
    )
    .await
    .unwrap();
    js(
        &page,
        "document.querySelector(\"form[action$='account/logout'] button\").click()",
    )
    .await;
    wait_for_text(
        &page,
        |u| u.contains("/login?notice=signed-out"),
        "You are signed out.",
    )
    .await;
    page.goto(format!("{}/login", rp.base)).await.unwrap();
    wait_for_text(
        &page,
        |u| u.contains("/t/default/login?return_to="),
        "Sign in",
    )
    .await;
    wait_js(
        &page,
        "!document.querySelector('[data-passkey-only]').hidden",
    )
    .await;
    shoot(&page, "authorize-login").await;
    page.find_element("#passkey-button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(
        &page,
        |u| u.contains("/authorize/continue"),
        "Allow Example App",
    )
    .await;
    shoot(&page, "consent").await;
    page.find_element("#allow")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let html = wait_for_text(&page, |u| u.starts_with(&rp.base), "Signed in as").await;
    assert!(html.contains(&alice.id.to_string()), "{html}");
    let signed = rp
        .signed
        .lock()
        .unwrap()
        .take()
        .expect("the relying party signed the person in");
    assert_eq!(signed.subject, alice.id.to_string());
    let amr: Vec<String> = signed
        .claims
        .auth_method_refs()
        .map(|all| all.iter().map(|a| a.to_string()).collect())
        .unwrap_or_default();
    assert!(
        amr.iter().any(|a| a == "hwk" || a == "swk"),
        "a passkey sign-in: {amr:?}"
    );
    assert_eq!(
        signed.userinfo.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    // The account page lists the application; sign-out without a hint asks first.
    page.goto(format!("{issuer}/account")).await.unwrap();
    wait_for_text(
        &page,
        |u| u.contains("/account"),
        "Applications you allowed",
    )
    .await;
    shoot(&page, "account-apps").await;
    page.goto(format!("{issuer}/logout")).await.unwrap();
    wait_for_text(&page, |u| u.contains("/logout"), "Sign out?").await;
    shoot(&page, "logout").await;

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
}

/// The example relying party as a web app on a loopback port: `/login` sends the browser to
/// the provider, `/cb` validates the answer (registered as `http://127.0.0.1/cb`; the port
/// differs, as RFC 8252 §7.3 lets native and development clients do).
struct RpServer {
    base: String,
    signed: Arc<Mutex<Option<rp::SignedIn>>>,
    _server: actix_web::dev::ServerHandle,
}

impl RpServer {
    async fn start(app: &TestApp, client: &TestClient) -> RpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let relying_party = Arc::new(
            RelyingParty::discover(Config {
                issuer: app.issuer("default"),
                client_id: Some(client.id.clone()),
                client_secret: client.secret.clone(),
                initial_access_token: None,
                redirect_uri: format!("{base}/cb"),
                post_logout_redirect_uri: None,
                scopes: vec!["email".into()],
                http: openidconnect::reqwest::ClientBuilder::new()
                    .redirect(openidconnect::reqwest::redirect::Policy::none())
                    .build()
                    .unwrap(),
            })
            .await
            .expect("discovery"),
        );
        let pending: Arc<Mutex<Option<rp::Pending>>> = Arc::default();
        let signed: Arc<Mutex<Option<rp::SignedIn>>> = Arc::default();
        let (slot, done) = (pending.clone(), signed.clone());
        let server = actix_web::HttpServer::new(move || {
            let (rp1, rp2) = (relying_party.clone(), relying_party.clone());
            let (slot1, slot2, done) = (slot.clone(), slot.clone(), done.clone());
            actix_web::App::new()
                .route(
                    "/login",
                    actix_web::web::get().to(move || {
                        let started = rp1.start();
                        let to = started.url.to_string();
                        *slot1.lock().unwrap() = Some(started);
                        async move {
                            actix_web::HttpResponse::SeeOther()
                                .insert_header(("location", to))
                                .finish()
                        }
                    }),
                )
                .route(
                    "/cb",
                    actix_web::web::get().to(move |req: actix_web::HttpRequest| {
                        let (rp, slot, done) = (rp2.clone(), slot2.clone(), done.clone());
                        async move {
                            let started = slot.lock().unwrap().take().expect("a sign-in started");
                            let signed =
                                rp.finish(started, req.query_string()).await.expect("valid");
                            let body = format!("<p>Signed in as {}</p>", signed.subject);
                            *done.lock().unwrap() = Some(signed);
                            actix_web::HttpResponse::Ok()
                                .content_type("text/html")
                                .body(body)
                        }
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        RpServer {
            base,
            signed,
            _server: handle,
        }
    }
}
