//! The authorization endpoint and the `authorization_code` grant over HTTP (RFC 6749 §4.1;
//! RFC 7636; RFC 9207; RFC 9700; OpenID Connect Core §3.1): sign-in, consent, codes, PKCE,
//! redirect URIs, prompt and max_age, form_post, POSTed requests.

use serde_json::Value;

use crate::harness::browser::Browser;
use crate::harness::clients::oauth_error;
use crate::harness::flow::{
    self, PASSWORD, REDIRECT, at_hash_sha256, authorize_url, callback, code_for, follow, pkce,
    pkce_url, redeem, submit_login, tokens, verify_signed,
};
use crate::harness::{Backend, TestApp};
use latchkey::model::TenantSlug;

backends!(
    a_person_signs_in_consents_and_the_client_gets_tokens,
    a_code_is_single_use_and_its_reuse_revokes_the_grant,
    pkce_is_required_checked_and_cannot_be_downgraded,
    redirect_uris_and_codes_are_bound_to_their_client,
    prompt_none_answers_without_a_page,
    prompt_login_and_max_age_ask_for_a_fresh_sign_in,
    consent_is_remembered_forced_by_prompt_and_denial_is_access_denied,
    first_party_clients_skip_consent,
    removing_an_app_in_the_account_ends_its_grants,
    form_post_and_posted_requests,
    refresh_for_people_ends_with_the_person_and_the_session,
);

pub async fn configure(
    app: &TestApp,
    tenant: &str,
    change: impl FnOnce(&mut latchkey::model::TenantSettings),
) {
    let slug = TenantSlug::parse(tenant).unwrap();
    let mut settings = app
        .state
        .tenants()
        .get(&slug)
        .await
        .unwrap()
        .settings
        .clone();
    change(&mut settings);
    app.state
        .tenants()
        .configure(&slug, settings)
        .await
        .unwrap();
}

/// Redeems `code` as the public client `client` (its id in the form, no secret).
async fn redeem_public(
    app: &TestApp,
    client: &crate::harness::clients::TestClient,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client.id.as_str()),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    app.client
        .post(app.url(&format!("/t/{}/token", client.tenant)))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn a_person_signs_in_consents_and_the_client_gets_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.user("alice", PASSWORD).await;
    let client = app.rp("default").create().await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    let p = pkce();
    let url = pkce_url(&issuer, &client, &p, &[]);

    // No session: to the sign-in page, the request kept server-side under a handle.
    let start = browser.get(&url).await;
    assert_eq!(start.status, 303);
    let login = start.location().to_owned();
    assert!(login.starts_with("/t/default/login?return_to="), "{login}");
    assert!(
        !login.contains("nonce") && !login.contains(&p.challenge),
        "only a handle"
    );
    let page = browser.get(&app.url(&login)).await;
    assert_eq!(page.status, 200);
    // CSP form-action also names the client's origin (the 303 chain after the post).
    assert!(
        page.header("content-security-policy")
            .contains("form-action 'self' http://127.0.0.1"),
        "{}",
        page.header("content-security-policy")
    );
    let signed = submit_login(&browser, &format!("{issuer}/login"), &page, "alice").await;
    assert_eq!(signed.status, 303);
    assert!(
        signed
            .location()
            .starts_with("/t/default/authorize/continue?id=")
    );
    let consent = browser.get(&app.url(signed.location())).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    for shown in [
        "Example App",
        "See your email address",
        "See your name",
        "127.0.0.1",
    ] {
        assert!(consent.body.contains(shown), "{shown}: {}", consent.body);
    }
    let answered = flow::consent(&browser, &consent, "allow").await;
    let params = callback(&answered);
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], issuer, "RFC 9207");
    let code = &params["code"];

    let body = tokens(&app, &client, code, &p.verifier).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    let access = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let (header, claims) = verify_signed(&app, "default", id_token).await;
    assert_eq!(
        header["alg"], "RS256",
        "RS256 unless the client registered another"
    );
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], client.id);
    assert_eq!(claims["azp"], client.id);
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["at_hash"], at_hash_sha256(access));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims["sid"].is_string() && claims["acr"].is_string());
    assert!(
        claims.get("email").is_none(),
        "profile claims come from userinfo"
    );

    // The access token works at userinfo, for this person.
    let info: Value = app
        .client
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], alice.id.to_string());
    assert_eq!(info["email"], "alice@example.com");
    assert!(info.get("phone_number").is_none(), "no phone scope");

    // A second request: the session and the consent stand, so the code comes at once.
    let p2 = pkce();
    let again = browser.get(&pkce_url(&issuer, &client, &p2, &[])).await;
    let params = callback(&again);
    assert!(params.contains_key("code"));
    tokens(&app, &client, &params["code"], &p2.verifier).await;
}

async fn a_code_is_single_use_and_its_reuse_revokes_the_grant(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let client = app.rp("default").create().await;
    let browser = Browser::new();
    let p = pkce();
    let url = authorize_url(
        &app.issuer("default"),
        &client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
            ("scope", "openid offline_access"),
            ("prompt", "consent"),
        ],
    );
    let params = code_for(&app, &browser, &url, "alice").await;
    let first = tokens(&app, &client, &params["code"], &p.verifier).await;
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"]
        .as_str()
        .expect("offline_access: a refresh token");
    assert_eq!(app.introspect(&client, access).await["active"], true);

    // RFC 6749 §4.1.2: a second use is refused and revokes what the code issued.
    let again = redeem(&app, &client, &params["code"], Some(&p.verifier)).await;
    oauth_error(again, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&client, access).await["active"], false);
    let refreshed = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    oauth_error(refreshed, 400, "invalid_grant").await;

    // A code expires within a minute (mock clock).
    let p = pkce();
    let url = authorize_url(
        &app.issuer("default"),
        &client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let params = code_for(&app, &browser, &url, "alice").await;
    app.state.clock.advance(61);
    let late = redeem(&app, &client, &params["code"], Some(&p.verifier)).await;
    oauth_error(late, 400, "invalid_grant").await;

    // A code whose sign-in ended before it was redeemed gives nothing.
    let params = code_for(&app, &browser, &url, "alice").await;
    let account = browser.get(&app.url("/t/default/account")).await;
    browser
        .post(
            &app.url("/t/default/account/logout"),
            &[("csrf", &account.csrf())],
        )
        .await;
    let ended = redeem(&app, &client, &params["code"], Some(&p.verifier)).await;
    oauth_error(ended, 400, "invalid_grant").await;
}

async fn pkce_is_required_checked_and_cannot_be_downgraded(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let confidential = app.rp("default").create().await;
    let public = app.rp("default").auth_method("none").create().await;
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;

    // Required for both by default (the tenant's require_pkce), refused as plain.
    for client in [&confidential, &public] {
        let res = browser.get(&authorize_url(&issuer, client, &[])).await;
        let params = callback(&res);
        assert_eq!(params["error"], "invalid_request");
        assert!(params["error_description"].contains("code_challenge"));
        assert_eq!(params["iss"], issuer);
        assert_eq!(params["state"], "st-1");
    }
    let plain = browser
        .get(&authorize_url(
            &issuer,
            &public,
            &[
                ("code_challenge", &"a".repeat(43)),
                ("code_challenge_method", "plain"),
            ],
        ))
        .await;
    assert_eq!(callback(&plain)["error"], "invalid_request");
    let implicit_plain = browser
        .get(&authorize_url(
            &issuer,
            &public,
            &[("code_challenge", &"a".repeat(43))],
        ))
        .await;
    assert_eq!(callback(&implicit_plain)["error"], "invalid_request");

    // A wrong or missing verifier fails the redemption.
    let p = pkce();
    let with = [
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &public, &with),
        "alice",
    )
    .await;
    let wrong = redeem_public(&app, &public, &params["code"], Some(&pkce().verifier)).await;
    oauth_error(wrong, 400, "invalid_grant").await;
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &public, &with),
        "alice",
    )
    .await;
    let missing = redeem_public(&app, &public, &params["code"], None).await;
    oauth_error(missing, 400, "invalid_grant").await;

    // Without the tenant's requirement a confidential client may go without (the OpenID
    // Foundation's plans do), a public one never; a verifier for a code issued without a
    // challenge is a downgrade (RFC 9700 §2.1.1).
    configure(&app, "default", |s| s.require_pkce = Some(false)).await;
    let res = browser.get(&authorize_url(&issuer, &public, &[])).await;
    assert_eq!(callback(&res)["error"], "invalid_request");
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &confidential, &[]),
        "alice",
    )
    .await;
    let downgrade = redeem(&app, &confidential, &params["code"], Some(&pkce().verifier)).await;
    oauth_error(downgrade, 400, "invalid_grant").await;
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &confidential, &[]),
        "alice",
    )
    .await;
    let res = redeem(&app, &confidential, &params["code"], None).await;
    assert_eq!(res.status(), 200);
    // A client's own policy overrides the tenant's.
    let strict = app
        .rp("default")
        .policy(|p| p.require_pkce = Some(true))
        .create()
        .await;
    let res = browser.get(&authorize_url(&issuer, &strict, &[])).await;
    assert_eq!(callback(&res)["error"], "invalid_request");
}

async fn redirect_uris_and_codes_are_bound_to_their_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app.rp("default").create().await;
    let other = app.rp("default").create().await;
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;
    let p = pkce();
    let with = [
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    // An unregistered redirect URI is never redirected to: an HTML page says why.
    let mut url = url::Url::parse(&authorize_url(&issuer, &client, &with)).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k, "https://evil.example/cb".into())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(&pairs);
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status, 400);
    assert!(page.headers.get("location").is_none());
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.body.contains("redirect_uri"));
    // Unknown client, likewise.
    let page = browser
        .get(&format!(
            "{issuer}/authorize?response_type=code&client_id=nobody&redirect_uri={REDIRECT}"
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.headers.get("location").is_none());

    // RFC 8252 §7.3: the port of a loopback IP redirect URI may differ.
    let ported =
        authorize_url(&issuer, &client, &with).replace("127.0.0.1%2Fcb", "127.0.0.1%3A53123%2Fcb");
    let res = follow(&app, &browser, browser.get(&ported).await, "alice").await;
    assert_eq!(res.status, 303);
    assert!(
        res.location()
            .starts_with("http://127.0.0.1:53123/cb?code="),
        "{}",
        res.location()
    );

    // The code is bound to its client and redirect URI.
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &client, &with),
        "alice",
    )
    .await;
    let stolen = redeem(&app, &other, &params["code"], Some(&p.verifier)).await;
    oauth_error(stolen, 400, "invalid_grant").await;
    // ...and another client's attempt does not spend it.
    tokens(&app, &client, &params["code"], &p.verifier).await;
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &client, &with),
        "alice",
    )
    .await;
    let moved = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("redirect_uri", "http://127.0.0.1/other"),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    oauth_error(moved, 400, "invalid_grant").await;
    let params = code_for(
        &app,
        &browser,
        &authorize_url(&issuer, &client, &with),
        "alice",
    )
    .await;
    let omitted = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    oauth_error(omitted, 400, "invalid_grant").await;

    // Repeated parameters are refused (to the verified redirect URI); resource may repeat.
    let twice = format!("{}&nonce=again", authorize_url(&issuer, &client, &with));
    let refused = callback(&browser.get(&twice).await);
    assert_eq!(refused["error"], "invalid_request");
    assert!(refused["error_description"].contains("nonce"));
    // ...but a repeated state or redirect_uri leaves no one to answer: a page.
    let ambiguous = format!("{}&state=again", authorize_url(&issuer, &client, &with));
    assert_eq!(browser.get(&ambiguous).await.status, 400);
    let resources = format!(
        "{}&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F",
        authorize_url(&issuer, &client, &with)
    );
    let res = browser.get(&resources).await;
    let params = callback(&res);
    assert_ne!(
        params.get("error").map(String::as_str),
        Some("invalid_request"),
        "{params:?}"
    );
    let unsupported =
        authorize_url(&issuer, &client, &with).replace("response_type=code", "response_type=token");
    assert_eq!(
        callback(&browser.get(&unsupported).await)["error"],
        "unsupported_response_type"
    );
    // Unknown parameters are ignored.
    let extra = format!(
        "{}&frobnicate=1&display=page&ui_locales=de",
        authorize_url(&issuer, &client, &with)
    );
    assert!(callback(&browser.get(&extra).await).contains_key("code"));
}

async fn prompt_none_answers_without_a_page(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app.rp("default").create().await;
    let browser = Browser::new();
    let p = pkce();
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = vec![
            ("code_challenge", p.challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        authorize_url(&issuer, &client, &borrowed)
    };
    let none = with(&[("prompt", "none")]);
    let params = callback(&browser.get(&none).await);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], issuer);
    browser.login(&issuer, "alice", PASSWORD).await;
    assert_eq!(
        callback(&browser.get(&none).await)["error"],
        "consent_required"
    );
    // Consent given once, prompt=none succeeds silently.
    code_for(&app, &browser, &with(&[]), "alice").await;
    assert!(callback(&browser.get(&none).await).contains_key("code"));
    // `none` with anything else is malformed.
    let mixed = with(&[("prompt", "none login")]);
    assert_eq!(
        callback(&browser.get(&mixed).await)["error"],
        "invalid_request"
    );
    // An id_token_hint for someone else: the person must interact.
    app.user("bob", PASSWORD).await;
    let other = Browser::new();
    let bob_code = code_for(&app, &other, &with(&[]), "bob").await;
    let bob = tokens(&app, &client, &bob_code["code"], &p.verifier).await;
    let hinted = authorize_url(
        &issuer,
        &client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
            ("prompt", "none"),
            ("id_token_hint", bob["id_token"].as_str().unwrap()),
        ],
    );
    let params = callback(&browser.get(&hinted).await);
    assert!(
        [
            "login_required",
            "interaction_required",
            "account_selection_required"
        ]
        .contains(&params["error"].as_str()),
        "{params:?}"
    );
    // A hint that is not ours is the request's error.
    let forged = authorize_url(
        &issuer,
        &client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
            ("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
        ],
    );
    assert_eq!(
        callback(&browser.get(&forged).await)["error"],
        "invalid_request"
    );
}

async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app
        .rp("default")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;
    let p = pkce();
    let url = |extra: &[(&str, &str)]| {
        let mut all = vec![
            ("code_challenge", p.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        all.extend_from_slice(extra);
        authorize_url(&issuer, &client, &all)
    };
    // Signed in: the code comes at once.
    assert!(callback(&browser.get(&url(&[])).await).contains_key("code"));

    // prompt=login: the sign-in page even with a session, then a code with a new auth_time.
    app.state.clock.advance(30);
    let res = browser.get(&url(&[("prompt", "login")])).await;
    assert_eq!(res.status, 303);
    assert!(
        res.location().starts_with("/t/default/login"),
        "{}",
        res.location()
    );
    let end = follow(&app, &browser, res, "alice").await;
    let body = tokens(&app, &client, &callback(&end)["code"], &p.verifier).await;
    let (_, claims) = verify_signed(&app, "default", body["id_token"].as_str().unwrap()).await;
    let fresh_auth = claims["auth_time"].as_i64().unwrap();
    assert_eq!(fresh_auth, app.state.clock.now());

    // max_age: within it, a code; past it, sign in again (prompt=none: login_required).
    app.state.clock.advance(120);
    let ok = browser.get(&url(&[("max_age", "300")])).await;
    assert!(callback(&ok).contains_key("code"));
    let stale = browser.get(&url(&[("max_age", "60")])).await;
    assert_eq!(stale.status, 303);
    assert!(stale.location().starts_with("/t/default/login"));
    let silent = browser
        .get(&url(&[("max_age", "60"), ("prompt", "none")]))
        .await;
    assert_eq!(callback(&silent)["error"], "login_required");
    let end = follow(&app, &browser, stale, "alice").await;
    let body = tokens(&app, &client, &callback(&end)["code"], &p.verifier).await;
    let (_, claims) = verify_signed(&app, "default", body["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["auth_time"].as_i64().unwrap(), app.state.clock.now());
    // login_hint pre-fills the sign-in page.
    let other = Browser::new();
    let res = other.get(&url(&[("login_hint", "alice")])).await;
    let page = other.get(&app.url(res.location())).await;
    assert_eq!(page.input("username").as_deref(), Some("alice"));
}

async fn consent_is_remembered_forced_by_prompt_and_denial_is_access_denied(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app.rp("default").create().await;
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;
    let p = pkce();
    let url = |extra: &[(&str, &str)]| {
        let mut all = vec![
            ("code_challenge", p.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        all.extend_from_slice(extra);
        authorize_url(&issuer, &client, &all)
    };
    // Denied: access_denied, to the client, with state and iss.
    let page = browser.get(&url(&[])).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"name="decision""#));
    let params = callback(&flow::consent(&browser, &page, "deny").await);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], issuer);
    // The request is over: its handle does not come back.
    let replay = flow::consent(&browser, &page, "allow").await;
    assert_eq!(replay.status, 400);

    // Allowed once, remembered for the same (or a smaller) scope, asked again for more.
    let page = browser.get(&url(&[])).await;
    callback(&flow::consent(&browser, &page, "allow").await);
    assert!(callback(&browser.get(&url(&[])).await).contains_key("code"));
    assert!(callback(&browser.get(&url(&[("scope", "openid email")])).await).contains_key("code"));
    let more = browser.get(&url(&[("scope", "openid email phone")])).await;
    assert_eq!(more.status, 200, "a new scope asks again");
    assert!(more.body.contains("See your phone number"));
    // prompt=consent always asks.
    let forced = browser.get(&url(&[("prompt", "consent")])).await;
    assert_eq!(forced.status, 200);
    assert!(forced.body.contains(r#"name="decision""#));
    // Claims asked for by name need the consent their scope would (OIDC Core §5.5).
    let by_name = browser
        .get(&url(&[
            ("scope", "openid"),
            ("claims", r#"{"userinfo":{"phone_number":null}}"#),
        ]))
        .await;
    assert_eq!(by_name.status, 200, "a claim by name asks too");
    assert!(by_name.body.contains("See your phone number"));
    // A cross-site post of the consent form is refused.
    let forged = browser
        .post_with(
            &flow::form_action(&forced),
            &[
                ("csrf", "x"),
                ("id", &forced.input("id").unwrap()),
                ("decision", "allow"),
            ],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(
        forged.status == 403 || forged.status == 400,
        "{}",
        forged.status
    );
}

async fn first_party_clients_skip_consent(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app
        .rp("default")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    let p = pkce();
    let url = pkce_url(&issuer, &client, &p, &[]);
    let start = browser.get(&url).await;
    let page = browser.get(&app.url(start.location())).await;
    let signed = submit_login(&browser, &format!("{issuer}/login"), &page, "alice").await;
    let next = browser.get(&app.url(signed.location())).await;
    assert!(callback(&next).contains_key("code"), "no consent page");
    // prompt=consent still asks.
    let forced = browser.get(&format!("{url}&prompt=consent")).await;
    assert_eq!(forced.status, 200);
}

async fn form_post_and_posted_requests(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app
        .rp("default")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;
    let p = pkce();
    let url = authorize_url(
        &issuer,
        &client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
            ("response_mode", "form_post"),
        ],
    );
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!(r#"action="{}""#, REDIRECT.replace('/', "&#x2f;")))
            || page.body.contains(&format!(r#"action="{REDIRECT}""#)),
        "{}",
        page.body
    );
    assert!(page.body.contains("/assets/form-post.js") && page.body.contains("<noscript>"));
    assert!(!page.body.contains("<script>"), "no inline script");
    let csp = page.header("content-security-policy");
    assert!(csp.contains("form-action http://127.0.0.1"), "{csp}");
    let code = page.input("code").expect("the code field");
    assert_eq!(page.input("state").as_deref(), Some("st-1"));
    assert_eq!(page.input("iss").as_deref(), Some(issuer.as_str()));
    tokens(&app, &client, &code, &p.verifier).await;

    // A POSTed request is kept and answered with a 303 to a same-origin GET.
    let query = url::Url::parse(&pkce_url(&issuer, &client, &p, &[])).unwrap();
    let fields: Vec<(String, String)> = query.query_pairs().into_owned().collect();
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let posted = browser
        .post(&format!("{issuer}/authorize"), &borrowed)
        .await;
    assert_eq!(posted.status, 303);
    assert!(
        posted
            .location()
            .starts_with("/t/default/authorize/continue?id=")
    );
    let answer = browser.get(&app.url(posted.location())).await;
    let params = callback(&answer);
    tokens(&app, &client, &params["code"], &p.verifier).await;
    // The handle is spent.
    let replay = browser.get(&app.url(posted.location())).await;
    assert_eq!(replay.status, 400);
}

async fn refresh_for_people_ends_with_the_person_and_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app
        .rp("default")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    let p = pkce();
    let url = |scope: &str| {
        authorize_url(
            &issuer,
            &client,
            &[
                ("code_challenge", &p.challenge),
                ("code_challenge_method", "S256"),
                ("scope", scope),
            ],
        )
    };
    let online = tokens(
        &app,
        &client,
        &code_for(&app, &browser, &url("openid email"), "alice").await["code"],
        &p.verifier,
    )
    .await;
    let offline = tokens(
        &app,
        &client,
        &code_for(&app, &browser, &url("openid offline_access"), "alice").await["code"],
        &p.verifier,
    )
    .await;
    let refresh = |token: &str| {
        let token = token.to_owned();
        let app = &app;
        let client = &client;
        async move {
            app.token(
                client,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    // A refresh gives a new ID token for the same person and sign-in.
    let res = refresh(online["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let renewed: Value = res.json().await.unwrap();
    let (_, claims) = verify_signed(&app, "default", renewed["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["aud"], client.id);

    // Signing out ends the session's grants, not the offline one.
    let account = browser.get(&format!("{issuer}/account")).await;
    let out = browser
        .post(
            &format!("{issuer}/account/logout"),
            &[("csrf", &account.csrf())],
        )
        .await;
    assert_eq!(out.status, 303);
    let res = refresh(renewed["refresh_token"].as_str().unwrap()).await;
    oauth_error(res, 400, "invalid_grant").await;
    let res = refresh(offline["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let kept: Value = res.json().await.unwrap();

    // A disabled person's tokens stop working: refresh, and the access token at userinfo.
    let tenant = app.default_tenant().await;
    app.state
        .users()
        .set_disabled(tenant.id, alice.id, true, "test")
        .await
        .unwrap();
    let res = refresh(kept["refresh_token"].as_str().unwrap()).await;
    oauth_error(res, 400, "invalid_grant").await;
    let res = app
        .client
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(kept["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    oauth_error(res, 401, "invalid_token").await;
}

async fn removing_an_app_in_the_account_ends_its_grants(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app.rp("default").create().await;
    let browser = Browser::new();
    let p = pkce();
    let url = authorize_url(
        &issuer,
        &client,
        &[
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
            ("scope", "openid email offline_access"),
        ],
    );
    let params = code_for(&app, &browser, &url, "alice").await;
    let body = tokens(&app, &client, &params["code"], &p.verifier).await;
    let account = browser.get(&format!("{issuer}/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("Applications you allowed"));
    assert!(account.body.contains("Example App"), "{}", account.body);
    assert!(account.body.contains("See your email address"));
    let removed = browser
        .post(
            &format!("{issuer}/account/apps/revoke"),
            &[("csrf", &account.csrf()), ("client_id", &client.id)],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(removed.location(), "/t/default/account?notice=app-removed");
    let account = browser.get(&format!("{issuer}/account")).await;
    assert!(!account.body.contains("Example App"));
    // Its tokens ended, and the next request asks again.
    assert_eq!(
        app.introspect(&client, body["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    oauth_error(res, 400, "invalid_grant").await;
    let again = browser.get(&url).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains(r#"name="decision""#));
}
