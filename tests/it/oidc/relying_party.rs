//! The example relying party (`examples/relying_party/rp.rs`, on the `openidconnect` crate)
//! against a server over HTTPS: discovery, a static and a dynamically registered client,
//! sign-in with PKCE through the pages, ID token validation, userinfo, refresh, logout.

use std::sync::Arc;

use serde_json::json;

use crate::harness::browser::Browser;
use crate::harness::flow::{PASSWORD, REDIRECT, follow};
use crate::harness::rp::{self, Config, RelyingParty};
use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(the_example_relying_party_signs_a_person_in_refreshes_and_signs_out);

const AFTER: &str = "http://127.0.0.1/signed-out";

async fn sign_in(app: &TestApp, browser: &Browser, rp: &RelyingParty) -> rp::SignedIn {
    let pending = rp.start();
    let start = browser.get(pending.url.as_str()).await;
    let end = follow(app, browser, start, "alice").await;
    assert_eq!(end.status, 303, "{}", end.body);
    let location = url::Url::parse(end.location()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    rp.finish(pending, location.query().unwrap_or(""))
        .await
        .expect("the relying party accepts the sign-in")
}

async fn the_example_relying_party_signs_a_person_in_refreshes_and_signs_out(backend: Backend) {
    let data = Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let (app, cert_pem) = TestApp::start_https(data).await;
    let alice = app.user("alice", PASSWORD).await;
    let registered = app
        .rp("default")
        .meta("post_logout_redirect_uris", json!([AFTER]))
        .create()
        .await;
    let config = |client_id: Option<String>, secret: Option<String>| Config {
        issuer: app.issuer("default"),
        client_id,
        client_secret: secret,
        initial_access_token: None,
        redirect_uri: REDIRECT.into(),
        post_logout_redirect_uri: Some(AFTER.into()),
        scopes: vec!["profile".into(), "email".into(), "offline_access".into()],
        http: TestApp::oidc_http(&cert_pem),
    };
    let rp = RelyingParty::discover(config(
        Some(registered.id.clone()),
        registered.secret.clone(),
    ))
    .await
    .expect("discovery");
    let browser = Browser::trusting(&cert_pem);
    let signed = sign_in(&app, &browser, &rp).await;
    assert_eq!(signed.subject, alice.id.to_string());
    assert_eq!(
        signed.userinfo.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert!(signed.claims.auth_time().is_some());
    assert!(signed.refresh_token.is_some(), "offline_access was granted");

    let renewed = rp.refresh(&signed).await.expect("refresh");
    assert_eq!(renewed.subject, signed.subject);

    let logout = rp.logout_url(&renewed, "bye").unwrap();
    let res = browser.get(logout.as_str()).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), format!("{AFTER}?state=bye"));
    assert_eq!(
        browser
            .get(&format!("{}/account", app.issuer("default")))
            .await
            .status,
        303,
        "signed out at the provider"
    );

    // A client that registers itself with nothing but its redirect URI (as libraries do).
    let token = app.initial_access_token(None, Some(1)).await;
    let dynamic = RelyingParty::discover(Config {
        post_logout_redirect_uri: None,
        initial_access_token: Some(token),
        ..config(None, None)
    })
    .await
    .expect("dynamic registration");
    assert_ne!(dynamic.client_id, registered.id);
    let signed = sign_in(&app, &browser, &dynamic).await;
    assert_eq!(signed.subject, alice.id.to_string());
    assert!(signed.userinfo.email().is_some());
}
