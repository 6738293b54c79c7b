//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and back-channel logout
//! (Back-Channel Logout 1.0) over HTTP, with a relying party that records what it receives.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::super::oauth::authorize::configure;
use crate::harness::browser::Browser;
use crate::harness::clients::{TestClient, jwt_parts};
use crate::harness::flow::{PASSWORD, authorize_url, code_for, pkce, tokens, verify_signed};
use crate::harness::{Backend, CacheKind, TestApp, TestData};
use latchkey::mail::deliver_due;

backends!(
    a_hint_of_the_signed_in_person_signs_out_and_returns_to_the_client,
    without_a_hint_the_person_confirms,
    only_registered_targets_of_the_verified_client_are_followed,
    back_channel_logout_reaches_every_client_of_the_session,
    back_channel_logout_retries_stops_and_guards_its_targets,
);

const AFTER: &str = "http://127.0.0.1/signed-out";

/// Signs `username` in through `client` in `browser`; the token response.
async fn signed_in(app: &TestApp, browser: &Browser, client: &TestClient, username: &str) -> Value {
    let p = pkce();
    let url = authorize_url(
        &app.issuer("default"),
        client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let params = code_for(app, browser, &url, username).await;
    tokens(app, client, &params["code"], &p.verifier).await
}

fn logout_url(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/t/default/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

async fn is_signed_in(app: &TestApp, browser: &Browser) -> bool {
    browser.get(&app.url("/t/default/account")).await.status == 200
}

async fn a_hint_of_the_signed_in_person_signs_out_and_returns_to_the_client(backend: Backend) {
    let data = std::sync::Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let app = TestApp::start_on(data, |s| s.oauth.id_token_ttl_secs = 60).await;
    app.user("alice", PASSWORD).await;
    let client = app
        .rp("default")
        .meta("post_logout_redirect_uris", json!([AFTER]))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    let body = signed_in(&app, &browser, &client, "alice").await;
    assert!(is_signed_in(&app, &browser).await);
    // An expired hint is still a hint (the OP SHOULD accept it).
    app.state.clock.advance(120);
    let hint = body["id_token"].as_str().unwrap();
    let res = browser
        .get(&logout_url(
            &app,
            &[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", AFTER),
                ("state", "bye"),
            ],
        ))
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), format!("{AFTER}?state=bye"));
    assert!(!is_signed_in(&app, &browser).await);
    // The session's refresh token ended with it.
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);

    // A relying party's POST: kept, then a 303 to a same-origin GET carrying the cookie.
    let body = signed_in(&app, &browser, &client, "alice").await;
    let posted = browser
        .post(
            &app.url("/t/default/logout"),
            &[
                ("id_token_hint", body["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", AFTER),
            ],
        )
        .await;
    assert_eq!(posted.status, 303);
    assert!(posted.location().starts_with("/t/default/logout?resume="));
    let done = browser.get(&app.url(posted.location())).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), AFTER);
    assert!(!is_signed_in(&app, &browser).await);
    // Already signed out: straight on.
    let again = browser
        .get(&logout_url(
            &app,
            &[
                ("client_id", &client.id),
                ("post_logout_redirect_uri", AFTER),
            ],
        ))
        .await;
    assert_eq!(again.location(), AFTER);
    // Discovery names the endpoint.
    let meta = app
        .get_json("/t/default/.well-known/openid-configuration")
        .await;
    assert_eq!(meta["end_session_endpoint"], app.url("/t/default/logout"));
}

async fn without_a_hint_the_person_confirms(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    app.user("bob", PASSWORD).await;
    let client = app
        .rp("default")
        .meta("post_logout_redirect_uris", json!([AFTER]))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    signed_in(&app, &browser, &client, "alice").await;
    let page = browser
        .get(&logout_url(
            &app,
            &[
                ("client_id", &client.id),
                ("post_logout_redirect_uri", AFTER),
                ("state", "s1"),
            ],
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?") && page.body.contains("Example App"));
    assert!(is_signed_in(&app, &browser).await, "not before the answer");
    assert!(
        page.header("content-security-policy")
            .contains("http://127.0.0.1")
    );
    // A forged confirmation is refused.
    let forged = browser
        .post_with(
            &app.url("/t/default/logout"),
            &[("confirm", "yes"), ("csrf", "nope")],
            &[],
        )
        .await;
    assert!(forged.status == 403 || forged.status == 400);
    assert!(is_signed_in(&app, &browser).await);
    let done = browser
        .post(
            &app.url("/t/default/logout"),
            &[
                ("csrf", &page.csrf()),
                ("confirm", "yes"),
                ("client_id", &page.input("client_id").unwrap()),
                (
                    "post_logout_redirect_uri",
                    &page.input("post_logout_redirect_uri").unwrap(),
                ),
                ("state", &page.input("state").unwrap()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), format!("{AFTER}?state=s1"));
    assert!(!is_signed_in(&app, &browser).await);

    // A hint of someone else than the person signed in also asks.
    let other = Browser::new();
    let bobs = signed_in(&app, &other, &client, "bob").await;
    signed_in(&app, &browser, &client, "alice").await;
    let page = browser
        .get(&logout_url(
            &app,
            &[("id_token_hint", bobs["id_token"].as_str().unwrap())],
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?"));
    assert!(is_signed_in(&app, &browser).await);
    // Without any target, the sign-in page says "signed out".
    let done = browser
        .post(
            &app.url("/t/default/logout"),
            &[("csrf", &page.csrf()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 303);
    assert!(done.location().contains("notice=signed-out"));
    assert!(!is_signed_in(&app, &browser).await);
}

async fn only_registered_targets_of_the_verified_client_are_followed(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let client = app
        .rp("default")
        .meta("post_logout_redirect_uris", json!([AFTER]))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let other = app.rp("default").create().await;
    let browser = Browser::new();
    let body = signed_in(&app, &browser, &client, "alice").await;
    let hint = body["id_token"].as_str().unwrap();
    let access = body["access_token"].as_str().unwrap();
    for pairs in [
        // Not registered.
        vec![
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        // No way to know whose target it is.
        vec![("post_logout_redirect_uri", AFTER)],
        // The hint was issued to another client.
        vec![("id_token_hint", hint), ("client_id", other.id.as_str())],
        // Not one of our ID tokens.
        vec![("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")],
        // Repeated.
        vec![("state", "a"), ("state", "b")],
        // One of our JWTs, but an access token, not an ID token.
        vec![("id_token_hint", access)],
    ] {
        let page = browser.get(&logout_url(&app, &pairs)).await;
        assert_eq!(page.status, 400, "{pairs:?}");
        assert!(page.headers.get("location").is_none());
        assert!(is_signed_in(&app, &browser).await);
    }
}

/// A relying party's back-channel logout endpoint: answers with `statuses` in turn (the
/// last one repeated) and records each form it receives.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<String>>>,
    _server: actix_web::dev::ServerHandle,
}

async fn receiver(statuses: Vec<u16>) -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = received.clone();
    let statuses = Arc::new(statuses);
    let server = actix_web::HttpServer::new(move || {
        let log = log.clone();
        let statuses = statuses.clone();
        actix_web::App::new().route(
            "/backchannel",
            actix_web::web::post().to(move |req: actix_web::HttpRequest, body: String| {
                let log = log.clone();
                let statuses = statuses.clone();
                async move {
                    assert_eq!(
                        req.headers().get("content-type").unwrap(),
                        "application/x-www-form-urlencoded"
                    );
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(body);
                        log.len()
                    };
                    let status = statuses[(n - 1).min(statuses.len() - 1)];
                    actix_web::HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).unwrap(),
                    )
                    .finish()
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
    Receiver {
        url: format!("http://127.0.0.1:{port}/backchannel"),
        received,
        _server: handle,
    }
}

fn logout_token(form: &str) -> String {
    url::form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("a logout_token")
}

async fn back_channel_logout_reaches_every_client_of_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.user("alice", PASSWORD).await;
    configure(&app, "default", |s| {
        s.outbound_allow = vec!["127.0.0.1".into()]
    })
    .await;
    let first = receiver(vec![204]).await;
    let second = receiver(vec![200]).await;
    let a = app
        .rp("default")
        .meta("backchannel_logout_uri", json!(first.url))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let b = app
        .rp("default")
        .meta("backchannel_logout_uri", json!(second.url))
        .meta("id_token_signed_response_alg", json!("ES256"))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    let tokens_a = signed_in(&app, &browser, &a, "alice").await;
    signed_in(&app, &browser, &b, "alice").await;
    let (_, id_claims) = jwt_parts(tokens_a["id_token"].as_str().unwrap());
    let sid = id_claims["sid"].as_str().unwrap().to_owned();

    // Nothing is sent in the person's request; the outbox worker delivers.
    let account = browser.get(&app.url("/t/default/account")).await;
    browser
        .post(
            &app.url("/t/default/account/logout"),
            &[("csrf", &account.csrf())],
        )
        .await;
    assert!(first.received.lock().unwrap().is_empty());
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 2);
    for (rp, client, alg) in [(&first, &a, "RS256"), (&second, &b, "ES256")] {
        let forms = rp.received.lock().unwrap().clone();
        assert_eq!(forms.len(), 1);
        let token = logout_token(&forms[0]);
        let (header, claims) = verify_signed(&app, "default", &token).await;
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], alg, "the client's ID token algorithm");
        assert_eq!(claims["iss"], app.issuer("default"));
        assert_eq!(claims["aud"], client.id);
        assert_eq!(claims["sub"], alice.id.to_string());
        assert_eq!(claims["sid"], sid);
        assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
        assert!(claims.get("nonce").is_none());
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert!(exp - iat <= 120);
        assert!(claims["jti"].is_string());
    }
    // Delivered once.
    app.state.clock.advance(3600);
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    assert_eq!(first.received.lock().unwrap().len(), 1);

    // Deleting the person ends their sessions too, and the clients are told.
    signed_in(&app, &browser, &a, "alice").await;
    let tenant = app.default_tenant().await;
    app.state
        .users()
        .delete(tenant.id, alice.id, "test")
        .await
        .unwrap();
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 1);
    let forms = first.received.lock().unwrap().clone();
    assert_eq!(forms.len(), 2);
    let (_, claims) = jwt_parts(&logout_token(&forms[1]));
    assert_eq!(claims["sub"], alice.id.to_string());
}

async fn back_channel_logout_retries_stops_and_guards_its_targets(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let flaky = receiver(vec![503, 500, 204]).await;
    let refusing = receiver(vec![400]).await;
    let client_of = |uri: &str| {
        app.rp("default")
            .meta("backchannel_logout_uri", json!(uri))
            .policy(|p| p.first_party = true)
            .create()
    };
    let flaky_client = client_of(&flaky.url).await;
    let refusing_client = client_of(&refusing.url).await;
    let end_session = |client: TestClient| {
        let app = &app;
        async move {
            let browser = Browser::new();
            let body = signed_in(app, &browser, &client, "alice").await;
            let res = browser
                .get(&logout_url(
                    app,
                    &[("id_token_hint", body["id_token"].as_str().unwrap())],
                ))
                .await;
            assert_eq!(res.status, 303);
        }
    };

    // Loopback is refused unless the tenant allows it: nothing is sent, and not retried.
    end_session(flaky_client.clone()).await;
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    app.state.clock.advance(7200);
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    assert!(
        flaky.received.lock().unwrap().is_empty(),
        "the SSRF guard held"
    );

    configure(&app, "default", |s| {
        s.outbound_allow = vec!["127.0.0.0/8".into()]
    })
    .await;
    // 5xx: retried with backoff, each attempt with a fresh token, until a 2xx.
    end_session(flaky_client).await;
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    assert_eq!(
        deliver_due(&app.state, "w1").await.unwrap(),
        0,
        "not before the backoff"
    );
    assert_eq!(flaky.received.lock().unwrap().len(), 1);
    app.state.clock.advance(31);
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    app.state.clock.advance(61);
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 1);
    let forms = flaky.received.lock().unwrap().clone();
    assert_eq!(forms.len(), 3);
    let jtis: std::collections::HashSet<String> = forms
        .iter()
        .map(|f| {
            jwt_parts(&logout_token(f)).1["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(jtis.len(), 3, "a fresh logout token per attempt");

    // 400: the client refused it; never sent again.
    end_session(refusing_client).await;
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    app.state.clock.advance(7200);
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0);
    assert_eq!(refusing.received.lock().unwrap().len(), 1);
}
