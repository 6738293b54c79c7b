//! One end-to-end run in real headless Chromium (Debian's `chromium`, over CDP) with the CDP
//! virtual authenticator (CTAP2, internal transport, resident keys, user verification): sign in
//! with a password, add a passkey where the page offers it, sign out, sign in with the passkey
//! through the button and then through the username field's autofill (conditional UI), typing
//! no username either time. With `LATCHKEY_SCREENSHOTS=DIR` it saves the pages' screenshots
//! there (docs/screenshots holds the committed ones).

use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::page::RemoveScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::cdp::browser_protocol::web_authn::{
    AddVirtualAuthenticatorParams, AuthenticatorProtocol, AuthenticatorTransport, EnableParams,
    GetCredentialsParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;

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
async fn passkeys_in_a_real_browser() {
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

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
}
