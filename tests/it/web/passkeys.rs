//! Passkey ceremonies through the HTTP endpoints with webauthn-authenticator-rs's soft passkey
//! (the test plays the browser): registration, sign-in, single-use ceremonies, origin checks,
//! tenants apart, and a ceremony started on one replica finished on another.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::harness::browser::{Browser, Page};
use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(
    passkeys_register_and_sign_in_through_the_endpoints,
    ceremonies_are_guarded,
    a_tenant_may_let_people_sign_up_with_a_passkey_only,
);

const PASSWORD: &str = "correct horse battery staple";

async fn call(browser: &Browser, url: &str, csrf: &str, body: Value) -> Page {
    browser
        .post_json(url, &body, &[("x-csrf-token", csrf)])
        .await
}

/// Adds a passkey for the signed-in browser; the authenticator's credential id.
async fn register(browser: &Browser, issuer: &str, origin: &str, key: &mut SoftPasskey) -> Vec<u8> {
    let account = browser.get(&format!("{issuer}/account")).await;
    let csrf = account.csrf();
    let started = call(
        browser,
        &format!("{issuer}/account/passkeys/register/start"),
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let options: Value = serde_json::from_str(&started.body).unwrap();
    let ccr = serde_json::from_value(options["options"].clone()).unwrap();
    let response = key
        .do_registration(url::Url::parse(origin).unwrap(), ccr)
        .unwrap();
    let id = URL_SAFE_NO_PAD.decode(&response.id).unwrap();
    let finished = call(
        browser,
        &format!("{issuer}/account/passkeys/register/finish"),
        &csrf,
        json!({ "credential": response, "name": "Soft key" }),
    )
    .await;
    assert_eq!(finished.status, 200, "{}", finished.body);
    id
}

/// A sign-in assertion for the ceremony `browser` starts at `issuer`; the soft key keeps no
/// user handle, so the test adds it as a discoverable authenticator would.
async fn assert_with(
    browser: &Browser,
    issuer: &str,
    origin: &str,
    key: &mut SoftPasskey,
    credential_id: &[u8],
    user: uuid::Uuid,
) -> (String, Value) {
    let login = browser.get(&format!("{issuer}/login")).await;
    let csrf = login.csrf();
    let started = call(
        browser,
        &format!("{issuer}/passkeys/login/start"),
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let mut options: Value = serde_json::from_str(&started.body).unwrap();
    assert_eq!(options["options"]["mediation"], "conditional");
    assert_eq!(
        options["options"]["publicKey"]["allowCredentials"],
        json!([]),
        "discoverable"
    );
    options["options"]["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(credential_id) }]);
    let rcr = serde_json::from_value(options["options"].clone()).unwrap();
    let assertion = key
        .do_authentication(url::Url::parse(origin).unwrap(), rcr)
        .unwrap();
    let mut assertion = serde_json::to_value(assertion).unwrap();
    assertion["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(user.as_bytes()));
    (csrf, assertion)
}

async fn passkeys_register_and_sign_in_through_the_endpoints(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    assert_eq!(browser.login(&issuer, "alice", PASSWORD).await.status, 303);
    let mut key = SoftPasskey::new(true);
    let credential_id = register(&browser, &issuer, &app.base, &mut key).await;
    let tenant = app.default_tenant().await;
    let stored = app.state.passkeys().of(tenant.id, &alice).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].credential_id, credential_id);
    assert_eq!(stored[0].name, "Soft key");
    let page = browser.get(&format!("{issuer}/account")).await;
    assert!(page.body.contains("Soft key"));
    // The owner is told (development mail lands in data_dir/outbox).
    assert_eq!(
        latchkey::mail::deliver_due(&app.state, "w").await.unwrap(),
        1
    );
    let mail = std::fs::read_dir(app.data.dir.path().join("outbox"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .next()
        .unwrap();
    assert!(
        mail.contains("alice@example.com") && mail.contains("was added"),
        "{mail}"
    );

    // The same authenticator cannot be registered twice (the exclusion list says so to the
    // authenticator; the soft key refuses).
    let csrf = page.csrf();
    let again = call(
        &browser,
        &format!("{issuer}/account/passkeys/register/start"),
        &csrf,
        json!({}),
    )
    .await;
    let options: Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(
        options["options"]["publicKey"]["excludeCredentials"][0]["id"],
        URL_SAFE_NO_PAD.encode(&credential_id)
    );

    // A sign-in older than ten minutes must be renewed before a credential is added.
    app.state.clock.advance(601);
    let stale = call(
        &browser,
        &format!("{issuer}/account/passkeys/register/start"),
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    assert!(stale.body.contains("reauthenticate"));

    // Sign in with it in a fresh browser: no username anywhere.
    let fresh = Browser::new();
    let (csrf, assertion) = assert_with(
        &fresh,
        &issuer,
        &app.base,
        &mut key,
        &credential_id,
        alice.id.0,
    )
    .await;
    let done = call(
        &fresh,
        &format!("{issuer}/passkeys/login/finish"),
        &csrf,
        json!({ "credential": assertion, "return_to": "/t/default/account?notice=passkey" }),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let done_body: Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(done_body["redirect"], "/t/default/account?notice=passkey");
    let account = fresh.get(&format!("{issuer}/account")).await;
    assert_eq!(account.status, 200);
    assert!(
        account.body.contains("hwk, user") || account.body.contains("swk, user"),
        "{}",
        account.body
    );
    // The ceremony was taken: the same assertion again finds nothing to finish.
    let replay = call(
        &fresh,
        &format!("{issuer}/passkeys/login/finish"),
        &csrf,
        json!({ "credential": assertion }),
    )
    .await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    // Nor does it answer a new ceremony (another challenge).
    let started = call(
        &fresh,
        &format!("{issuer}/passkeys/login/start"),
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(started.status, 200);
    let stale = call(
        &fresh,
        &format!("{issuer}/passkeys/login/finish"),
        &csrf,
        json!({ "credential": assertion }),
    )
    .await;
    assert_eq!(stale.status, 400);
    let history = app
        .state
        .sessions()
        .history(tenant.id, alice.id, 10)
        .await
        .unwrap();
    assert_eq!(
        history[0].result.as_str(),
        "failed",
        "the refused assertion is in the history"
    );
    assert_eq!(history[1].method.as_str(), "passkey");
    assert_eq!(history[1].result.as_str(), "success");

    // An assertion made for another origin is refused.
    let before = app
        .state
        .sessions()
        .history(tenant.id, alice.id, 10)
        .await
        .unwrap()
        .len();
    let other = Browser::new();
    // Another port is another origin (a page served elsewhere on the same host).
    let evil = "http://localhost:1".to_owned();
    let login = other.get(&format!("{issuer}/login")).await;
    let csrf = login.csrf();
    let started = call(
        &other,
        &format!("{issuer}/passkeys/login/start"),
        &csrf,
        json!({}),
    )
    .await;
    let mut options: Value = serde_json::from_str(&started.body).unwrap();
    options["options"]["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(&credential_id) }]);
    // The soft key signs for that origin (its host matches the RP ID); latchkey accepts only
    // its own origin.
    let assertion = key
        .do_authentication(
            url::Url::parse(&evil).unwrap(),
            serde_json::from_value(options["options"].clone()).unwrap(),
        )
        .unwrap();
    let mut assertion = serde_json::to_value(assertion).unwrap();
    assertion["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(alice.id.0.as_bytes()));
    let refused = call(
        &other,
        &format!("{issuer}/passkeys/login/finish"),
        &csrf,
        json!({ "credential": assertion }),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let after = app
        .state
        .sessions()
        .history(tenant.id, alice.id, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[0].result.as_str(), "failed");

    // Rename and delete from the account page; the last way in cannot be deleted when there
    // is no password.
    let page = browser.get(&format!("{issuer}/account")).await;
    let id = page.input("passkey").unwrap();
    let renamed = browser
        .post(
            &format!("{issuer}/account/passkeys/rename"),
            &[("csrf", &page.csrf()), ("passkey", &id), ("name", "Laptop")],
        )
        .await;
    assert_eq!(renamed.status, 303);
    assert_eq!(
        app.state.passkeys().of(tenant.id, &alice).await.unwrap()[0].name,
        "Laptop"
    );
    app.state
        .users()
        .set_password(tenant.id, alice.id, None, "test")
        .await
        .unwrap();
    let alice = app.state.users().get(tenant.id, alice.id).await.unwrap();
    let refused = browser
        .post(
            &format!("{issuer}/account/passkeys/delete"),
            &[("csrf", &page.csrf()), ("passkey", &id)],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("only way to sign in"));
    app.state
        .users()
        .set_password(
            tenant.id,
            alice.id,
            Some("another long passphrase".into()),
            "test",
        )
        .await
        .unwrap();
    let deleted = browser
        .post(
            &format!("{issuer}/account/passkeys/delete"),
            &[("csrf", &page.csrf()), ("passkey", &id)],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert!(
        app.state
            .passkeys()
            .of(tenant.id, &alice)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn ceremonies_are_guarded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    let csrf = browser.get(&format!("{issuer}/login")).await.csrf();
    let url = format!("{issuer}/passkeys/login/start");
    assert_eq!(
        call(&browser, &url, "", json!({})).await.status,
        403,
        "no CSRF token"
    );
    let form = browser.post(&url, &[("csrf", &csrf)]).await;
    assert_eq!(form.status, 415, "JSON only");
    let cross = browser
        .post_json(
            &url,
            &json!({}),
            &[("x-csrf-token", &csrf), ("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403);
    // Registration needs a session.
    let anon = call(
        &browser,
        &format!("{issuer}/account/passkeys/register/start"),
        &csrf,
        json!({}),
    )
    .await;
    assert_eq!(anon.status, 403);
    // No ceremony cookie, or garbage.
    let none = call(
        &browser,
        &format!("{issuer}/passkeys/login/finish"),
        &csrf,
        json!({"credential": {}}),
    )
    .await;
    assert_eq!(none.status, 400);
    assert!(!none.body.is_empty());
    // A tenant that switched passkeys off.
    let tenant = app.default_tenant().await;
    let mut settings = tenant.settings.clone();
    settings.passkeys.disabled = true;
    app.state
        .tenants()
        .configure(&tenant.slug, settings)
        .await
        .unwrap();
    let off = call(&browser, &url, &csrf, json!({})).await;
    assert_eq!(off.status, 404, "{}", off.body);
    let page = browser.get(&format!("{issuer}/login")).await;
    assert!(!page.body.contains("passkeys.js"), "no passkey UI when off");
}

/// A ceremony started on one replica finishes on another (the state is in Redis), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceremony_started_on_one_replica_finishes_on_another() {
    let data = Arc::new(TestData::new(Backend::Postgres, CacheKind::Redis).await);
    let a = TestApp::start_on(data.clone(), |_| {}).await;
    // Behind one public URL, as replicas behind a load balancer are.
    let public = a.base.clone();
    let b = TestApp::start_on(data, |s| s.server.public_url = public.clone()).await;
    let bob = a.user("bob", PASSWORD).await;
    let browser = Browser::new();
    assert_eq!(
        browser
            .login(&a.issuer("default"), "bob", PASSWORD)
            .await
            .status,
        303
    );
    let mut key = SoftPasskey::new(true);
    let credential_id = register(&browser, &a.issuer("default"), &a.base, &mut key).await;
    // Started on A, finished on B.
    let fresh = Browser::new();
    let (csrf, assertion) = assert_with(
        &fresh,
        &a.issuer("default"),
        &a.base,
        &mut key,
        &credential_id,
        bob.id.0,
    )
    .await;
    let on_b = format!("{}/t/default/passkeys/login/finish", b.base);
    let done = call(&fresh, &on_b, &csrf, json!({ "credential": assertion })).await;
    assert_eq!(done.status, 200, "{}", done.body);
    // And only once, on either.
    let again = call(&fresh, &on_b, &csrf, json!({ "credential": assertion })).await;
    assert_eq!(again.status, 400);
    let on_a = format!("{}/passkeys/login/finish", a.issuer("default"));
    assert_eq!(
        call(&fresh, &on_a, &csrf, json!({ "credential": assertion }))
            .await
            .status,
        400
    );
}

async fn a_tenant_may_let_people_sign_up_with_a_passkey_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    assert_eq!(
        browser.get(&format!("{issuer}/signup")).await.status,
        404,
        "off by default"
    );
    let tenant = app.default_tenant().await;
    let mut settings = tenant.settings.clone();
    settings.passkeys.signup = true;
    app.state
        .tenants()
        .configure(&tenant.slug, settings)
        .await
        .unwrap();
    let login = browser.get(&format!("{issuer}/login")).await;
    assert!(login.body.contains("Create an account"));
    let page = browser.get(&format!("{issuer}/signup")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    app.user("taken", PASSWORD).await;
    let clash = call(
        &browser,
        &format!("{issuer}/signup/start"),
        &csrf,
        json!({"username": "TAKEN"}),
    )
    .await;
    assert_eq!(clash.status, 409);
    let bad = call(
        &browser,
        &format!("{issuer}/signup/start"),
        &csrf,
        json!({"username": "no spaces please"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    let started = call(
        &browser,
        &format!("{issuer}/signup/start"),
        &csrf,
        json!({"username": "newbie", "email": "newbie@example.com"}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let options: Value = serde_json::from_str(&started.body).unwrap();
    assert_eq!(
        options["options"]["publicKey"]["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    let user_handle = options["options"]["publicKey"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        app.state
            .users()
            .resolve(tenant.id, "newbie")
            .await
            .is_err(),
        "no account before the passkey exists"
    );
    let mut key = SoftPasskey::new(true);
    let response = key
        .do_registration(
            url::Url::parse(&app.base).unwrap(),
            serde_json::from_value(options["options"].clone()).unwrap(),
        )
        .unwrap();
    let credential_id = URL_SAFE_NO_PAD.decode(&response.id).unwrap();
    let done = call(
        &browser,
        &format!("{issuer}/signup/finish"),
        &csrf,
        json!({"credential": response}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let account = browser.get(&format!("{issuer}/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("newbie@example.com"));
    assert!(
        account.body.contains("Set a password"),
        "a passkey-only account has no password"
    );
    let newbie = app
        .state
        .users()
        .resolve(tenant.id, "newbie")
        .await
        .unwrap();
    assert!(!newbie.has_password);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(newbie.id.0.as_bytes()),
        user_handle,
        "the credential names the account"
    );
    // The ceremony is spent; and the new passkey signs in.
    let again = call(
        &browser,
        &format!("{issuer}/signup/finish"),
        &csrf,
        json!({"credential": {}}),
    )
    .await;
    assert_eq!(again.status, 400);
    let fresh = Browser::new();
    let (csrf, assertion) = assert_with(
        &fresh,
        &issuer,
        &app.base,
        &mut key,
        &credential_id,
        newbie.id.0,
    )
    .await;
    let signed = call(
        &fresh,
        &format!("{issuer}/passkeys/login/finish"),
        &csrf,
        json!({"credential": assertion}),
    )
    .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    // Nor can a password be tried against it.
    assert_eq!(
        Browser::new()
            .login(&issuer, "newbie", "anything at all")
            .await
            .status,
        200
    );
}
