//! `/t/{tenant}/login`: the form, CSRF, sessions, no enumeration, throttling and lockout
//! (across two replicas on one PostgreSQL + Redis).

use std::sync::Arc;

use crate::harness::browser::Browser;
use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(
    a_password_signs_in_and_the_session_is_a_cookie,
    unknown_users_and_wrong_passwords_look_alike,
    forged_and_cross_site_posts_are_refused,
    session_ids_rotate_on_sign_in,
    sessions_end_when_idle_or_too_old,
    disabled_users_cannot_sign_in_or_use_their_sessions,
    the_admin_api_shows_sign_ins_and_ends_sessions,
    pages_carry_the_tenants_branding,
    cookies_are_secure_and_host_prefixed_behind_https,
);

const PASSWORD: &str = "correct horse battery staple";

async fn a_password_signs_in_and_the_session_is_a_cookie(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();

    let form = browser.get(&format!("{issuer}/login")).await;
    assert_eq!(form.status, 200);
    assert_eq!(form.header("content-type"), "text/html; charset=utf-8");
    let csp = form.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!form.body.contains("<script>") && !form.body.contains("style="));
    assert!(
        form.body.contains(r#"name="username""#)
            && form
                .body
                .contains(r#"type="password" autocomplete="current-password""#)
            || form.body.contains(r#"name="password" type="password""#)
    );
    assert!(
        form.body.contains(r#"<label for="username">"#)
            && form.body.contains(r#"<label for="password">"#)
    );
    let binding = form.set_cookie("latchkey-csrf").expect("a binding cookie");
    assert!(
        binding.contains("HttpOnly")
            && binding.contains("SameSite=Lax")
            && binding.contains("Path=/")
    );
    assert!(!binding.contains("Secure"), "plain http in development");

    let done = browser
        .post(
            &format!("{issuer}/login"),
            &[
                ("csrf", &form.csrf()),
                ("username", "Alice"),
                ("password", PASSWORD),
                ("return_to", "/t/default/account"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    // No passkey yet: the account page offers one, then continues where the person was going.
    assert_eq!(
        done.location(),
        "/t/default/account?offer=passkey&continue=%2Ft%2Fdefault%2Faccount"
    );
    let offer = browser
        .get(&format!("{}{}", app.base, done.location()))
        .await;
    assert!(
        offer.body.contains("add a passkey to this device"),
        "{}",
        offer.body
    );
    assert!(offer.body.contains(r#"id="continue""#));
    let session = done
        .set_cookie("latchkey-session-default")
        .expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(!session.to_ascii_lowercase().contains("max-age") && !session.contains("Expires"));
    let token = browser.cookie("latchkey-session-default").unwrap();
    assert_eq!(token.len(), 43, "256 random bits");

    let account = browser.get(&format!("{issuer}/account")).await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert!(account.body.contains("alice@example.com"));
    assert!(account.body.contains("This browser"));
    // (minijinja escapes `/` too.)
    assert!(
        account.body.contains("latchkey-tests"),
        "the session's user agent is shown"
    );

    // An unsafe return_to is ignored: the account page, never another site.
    let other = Browser::new();
    let form = other
        .get(&format!("{issuer}/login?return_to=https://evil.example/"))
        .await;
    assert_eq!(form.input("return_to").as_deref(), Some(""));
    let done = other
        .post(
            &format!("{issuer}/login"),
            &[
                ("csrf", &form.csrf()),
                ("username", "alice@EXAMPLE.com"),
                ("password", PASSWORD),
                ("return_to", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "an email address signs in too");
    assert_eq!(done.location(), "/t/default/account?offer=passkey");

    // Signing out ends the session; the account page then sends the browser to sign in.
    let account = browser.get(&format!("{issuer}/account")).await;
    let out = browser
        .post(
            &format!("{issuer}/account/logout"),
            &[("csrf", &account.csrf())],
        )
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/t/default/login?notice=signed-out");
    assert!(
        browser.cookie("latchkey-session-default").is_none(),
        "the cookie is removed"
    );
    browser.set("latchkey-session-default", &token);
    let after = browser.get(&format!("{issuer}/account")).await;
    assert_eq!(after.status, 303, "the old token is worthless");
    assert_eq!(
        after.location(),
        "/t/default/login?return_to=%2Ft%2Fdefault%2Faccount"
    );
    let notice = browser
        .get(&format!("{}{}", app.base, out.location()))
        .await;
    assert!(notice.body.contains("You are signed out."));
}

async fn unknown_users_and_wrong_passwords_look_alike(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("bob", PASSWORD).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    let form = browser.get(&format!("{issuer}/login")).await;
    let attempt = async |username: &str, password: &str| {
        browser
            .post(
                &format!("{issuer}/login"),
                &[
                    ("csrf", &form.csrf()),
                    ("username", username),
                    ("password", password),
                    ("return_to", ""),
                ],
            )
            .await
    };
    let wrong = attempt("bob", "not the password").await;
    let unknown = attempt("nobody", "not the password").await;
    assert_eq!(wrong.status, 200);
    assert_eq!(unknown.status, wrong.status);
    assert!(
        wrong
            .body
            .contains("The username or password is not right.")
    );
    // The same page but for the username echoed into the form.
    assert_eq!(
        wrong.body.replace("value=\"bob\"", ""),
        unknown.body.replace("value=\"nobody\"", "")
    );
    // Wrong attempts of a known user are in their history; unknown names leave nothing.
    let history = app
        .state
        .sessions()
        .history(
            app.default_tenant().await.id,
            app.state
                .users()
                .resolve(app.default_tenant().await.id, "bob")
                .await
                .unwrap()
                .id,
            10,
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].result.as_str(), "wrong_password");
    let empty = attempt("bob", "").await;
    assert!(
        empty
            .body
            .contains("Enter your username and your password.")
    );
}

async fn forged_and_cross_site_posts_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("carol", PASSWORD).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    let form = browser.get(&format!("{issuer}/login")).await;
    let fields = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("username".to_owned(), "carol".to_owned()),
            ("password".to_owned(), PASSWORD.to_owned()),
        ]
    };
    let post = async |csrf: &str, headers: &[(&str, &str)], b: &Browser| {
        let f = fields(csrf);
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        b.post_with(&format!("{issuer}/login"), &refs, headers)
            .await
    };
    let no_token = post("", &[], &browser).await;
    assert_eq!(no_token.status, 403);
    assert!(no_token.body.contains("expired"));
    let wrong_token = post("AAAA", &[], &browser).await;
    assert_eq!(wrong_token.status, 403);
    // Another browser's token does not fit this browser's binding cookie.
    let other = Browser::new();
    let theirs = other.get(&format!("{issuer}/login")).await.csrf();
    assert_eq!(post(&theirs, &[], &browser).await.status, 403);
    // Nor does a token of another tenant.
    app.tenant("other").await;
    let elsewhere = browser
        .get(&format!("{}/login", app.issuer("other")))
        .await
        .csrf();
    assert_ne!(elsewhere, form.csrf());
    assert_eq!(post(&elsewhere, &[], &browser).await.status, 403);
    let cross = post(
        &form.csrf(),
        &[("origin", "https://evil.example")],
        &browser,
    )
    .await;
    assert_eq!(cross.status, 403);
    assert!(cross.body.contains("another site"));
    let fetch = post(&form.csrf(), &[("sec-fetch-site", "cross-site")], &browser).await;
    assert_eq!(fetch.status, 403);
    let repeated = browser
        .post(
            &format!("{issuer}/login"),
            &[
                ("csrf", &form.csrf()),
                ("csrf", &form.csrf()),
                ("username", "carol"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(repeated.status, 400);
    let same_origin = post(&form.csrf(), &[("origin", &app.base)], &browser).await;
    assert_eq!(same_origin.status, 303, "{}", same_origin.body);
    // Unknown tenants get a page, not JSON.
    let missing = browser.get(&format!("{}/t/nope/login", app.base)).await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-type").starts_with("text/html"));
}

async fn session_ids_rotate_on_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("dan", PASSWORD).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    assert_eq!(browser.login(&issuer, "dan", PASSWORD).await.status, 303);
    let first = browser.cookie("latchkey-session-default").unwrap();
    assert_eq!(browser.login(&issuer, "dan", PASSWORD).await.status, 303);
    let second = browser.cookie("latchkey-session-default").unwrap();
    assert_ne!(first, second);
    let thief = Browser::new();
    thief.set("latchkey-session-default", &first);
    assert_eq!(
        thief.get(&format!("{issuer}/account")).await.status,
        303,
        "the replaced session ended"
    );
    assert_eq!(browser.get(&format!("{issuer}/account")).await.status, 200);
    // A planted token (fixation) is not adopted: sign-in issues a fresh one.
    let victim = Browser::new();
    victim.set(
        "latchkey-session-default",
        "planted-by-an-attacker-0000000000000000000",
    );
    assert_eq!(victim.login(&issuer, "dan", PASSWORD).await.status, 303);
    assert_ne!(
        victim.cookie("latchkey-session-default").unwrap(),
        "planted-by-an-attacker-0000000000000000000"
    );
}

async fn sessions_end_when_idle_or_too_old(backend: Backend) {
    let data = Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let app = TestApp::start_on(data, |s| {
        s.sessions.idle_timeout_secs = 600;
        s.sessions.max_lifetime_secs = 3600;
    })
    .await;
    app.user("erin", PASSWORD).await;
    let issuer = app.issuer("default");
    let account = format!("{issuer}/account");
    let browser = Browser::new();
    assert_eq!(browser.login(&issuer, "erin", PASSWORD).await.status, 303);
    // Busy: each visit within the idle timeout keeps it alive...
    for _ in 0..7 {
        app.state.clock.advance(500);
        assert_eq!(browser.get(&account).await.status, 200);
    }
    // ...until the absolute end, however busy.
    app.state.clock.advance(500);
    assert_eq!(
        browser.get(&account).await.status,
        303,
        "past max_lifetime_secs"
    );
    assert_eq!(browser.login(&issuer, "erin", PASSWORD).await.status, 303);
    app.state.clock.advance(599);
    assert_eq!(browser.get(&account).await.status, 200);
    app.state.clock.advance(600);
    assert_eq!(
        browser.get(&account).await.status,
        303,
        "idle past idle_timeout_secs"
    );
}

async fn disabled_users_cannot_sign_in_or_use_their_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("frank", PASSWORD).await;
    let tenant = app.default_tenant().await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    assert_eq!(browser.login(&issuer, "frank", PASSWORD).await.status, 303);
    app.state
        .users()
        .set_disabled(tenant.id, user.id, true, "test")
        .await
        .unwrap();
    assert_eq!(browser.get(&format!("{issuer}/account")).await.status, 303);
    let refused = Browser::new().login(&issuer, "frank", PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("disabled"));
    let wrong = Browser::new()
        .login(&issuer, "frank", "nope nope nope")
        .await;
    assert!(
        wrong.body.contains("not right"),
        "the state is told only to the right password"
    );
    app.state
        .users()
        .set_disabled(tenant.id, user.id, false, "test")
        .await
        .unwrap();
    assert_eq!(
        browser.get(&format!("{issuer}/account")).await.status,
        200,
        "enabling restores it"
    );
}

/// Two replicas on one PostgreSQL and one Redis: failures counted on one lock the account on
/// the other; the lockout stops password checks (even the right password) but not the
/// sessions already held; the per-address rate applies across replicas too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_and_throttling_hold_across_replicas() {
    let data = Arc::new(TestData::new(Backend::Postgres, CacheKind::Redis).await);
    let adjust = |s: &mut latchkey::config::Settings| {
        s.passwords.lockout_after = 3;
        s.passwords.lockout_secs = 120;
        s.passwords.attempts_per_minute = 1000;
    };
    let a = TestApp::start_on(data.clone(), adjust).await;
    let b = TestApp::start_on(data.clone(), adjust).await;
    a.user("grace", PASSWORD).await;
    let holder = Browser::new();
    assert_eq!(
        holder
            .login(&a.issuer("default"), "grace", PASSWORD)
            .await
            .status,
        303
    );

    let attacker = Browser::new();
    for i in 0..3 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let r = attacker
            .login(&replica.issuer("default"), "GRACE", "guess guess guess")
            .await;
        assert_eq!(r.status, 200, "attempt {i}");
    }
    for replica in [&a, &b] {
        let locked = attacker
            .login(&replica.issuer("default"), "grace", PASSWORD)
            .await;
        assert_eq!(locked.status, 429, "{}", locked.body);
        assert_eq!(locked.header("retry-after"), "120");
        assert!(locked.body.contains("Too many failed attempts"));
    }
    // The account is locked, not the spelling: its email address shares the count.
    let by_email = attacker
        .login(&a.issuer("default"), "grace@example.com", PASSWORD)
        .await;
    assert_eq!(by_email.status, 429);
    // The person already signed in stays signed in, on both replicas.
    assert_eq!(
        holder
            .get(&format!("{}/account", a.issuer("default")))
            .await
            .status,
        200
    );
    assert_eq!(
        holder
            .get(&format!("{}/account", b.issuer("default")))
            .await
            .status,
        200
    );
    // An unknown username locks the same way (nothing tells the two apart).
    for _ in 0..3 {
        attacker
            .login(&b.issuer("default"), "ghost", "guess guess guess")
            .await;
    }
    assert_eq!(
        attacker
            .login(&a.issuer("default"), "ghost", "x")
            .await
            .status,
        429
    );
    let history = a
        .state
        .sessions()
        .history(
            a.default_tenant().await.id,
            a.state
                .users()
                .resolve(a.default_tenant().await.id, "grace")
                .await
                .unwrap()
                .id,
            10,
        )
        .await
        .unwrap();
    // Each replica has its own mock clock, so only the multiset is certain.
    let mut results: Vec<&str> = history.iter().map(|e| e.result.as_str()).collect();
    results.sort();
    assert_eq!(
        results,
        [
            "locked",
            "locked",
            "locked",
            "success",
            "wrong_password",
            "wrong_password",
            "wrong_password"
        ]
    );

    // The per-address rate, shared by both replicas.
    let c = TestApp::start_on(data.clone(), |s| s.passwords.attempts_per_minute = 4).await;
    let d = TestApp::start_on(data, |s| s.passwords.attempts_per_minute = 4).await;
    let fast = Browser::new();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let replica = if i % 2 == 0 { &c } else { &d };
        statuses.push(
            fast.login(
                &replica.issuer("default"),
                &format!("user{i}"),
                "pw pw pw pw",
            )
            .await
            .status,
        );
    }
    // The 429s: attempts 5 and 6 of this minute (the lockout's counts from above are another key).
    assert_eq!(statuses[4..], [429, 429], "{statuses:?}");
    let throttled = fast.login(&c.issuer("default"), "x", "y").await;
    assert_eq!(throttled.header("retry-after"), "60");
}

async fn the_admin_api_shows_sign_ins_and_ends_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("kim", PASSWORD).await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    Browser::new()
        .login(&issuer, "kim", "wrong wrong wrong")
        .await;
    assert_eq!(browser.login(&issuer, "kim", PASSWORD).await.status, 303);
    let logins: serde_json::Value = app
        .admin(
            reqwest::Method::GET,
            "/admin/tenants/default/users/kim/logins",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results: Vec<&str> = logins
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["success", "wrong_password"]);
    assert_eq!(logins[0]["method"], "password");
    assert_eq!(
        logins[0]["user_agent"],
        "latchkey-tests/1.0 (scripted browser)"
    );
    let sessions: serde_json::Value = app
        .admin(
            reqwest::Method::GET,
            "/admin/tenants/default/users/kim/sessions",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["amr"], serde_json::json!(["pwd"]));
    let ended: serde_json::Value = app
        .admin(
            reqwest::Method::DELETE,
            "/admin/tenants/default/users/kim/sessions",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended["ended"], 1);
    assert_eq!(browser.get(&format!("{issuer}/account")).await.status, 303);
}

async fn pages_carry_the_tenants_branding(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.default_tenant().await;
    let mut settings = tenant.settings.clone();
    settings.branding.logo_url = Some("https://cdn.example.com/logo.svg".into());
    settings.branding.accent_color = Some("#0a7f3c".into());
    app.state
        .tenants()
        .configure(&tenant.slug, settings.clone())
        .await
        .unwrap();
    let page = Browser::new()
        .get(&format!("{}/login", app.issuer("default")))
        .await;
    assert!(
        page.body
            .contains(r#"src="https:&#x2f;&#x2f;cdn.example.com&#x2f;logo.svg""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"alt="Default""#),
        "the logo names the tenant"
    );
    assert!(page.body.contains("branding.css"));
    let css = app.get("/t/default/branding.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.text().await.unwrap(), ":root { --accent: #0a7f3c; }\n");
    let style = app.get("/assets/latchkey.css").await;
    assert_eq!(style.status(), 200);
    assert!(
        style.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert_eq!(app.get("/assets/nope.js").await.status(), 404);
    settings.branding.accent_color = Some("red;}body{display:none".into());
    assert!(
        app.state
            .tenants()
            .configure(&tenant.slug, settings)
            .await
            .is_err()
    );
}

/// Behind a TLS-terminating proxy (`public_url` https), the cookies are `Secure` and carry the
/// `__Host-` prefix (which also pins them to `Path=/` without a `Domain`).
async fn cookies_are_secure_and_host_prefixed_behind_https(backend: Backend) {
    let data = Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let app = TestApp::start_on(data, |s| {
        s.server.public_url = "https://id.example.test".into();
    })
    .await;
    app.user("lena", PASSWORD).await;
    let local = format!("{}/t/default", app.base);
    let browser = Browser::new();
    let form = browser.get(&format!("{local}/login")).await;
    let binding = form
        .set_cookie("__Host-latchkey-csrf")
        .expect("a __Host- binding cookie");
    assert!(
        binding.contains("Secure") && binding.contains("Path=/") && !binding.contains("Domain")
    );
    // The form posts to the public URL; here the test posts to the server itself.
    assert!(
        form.body.contains(
            r#"action="https:&#x2f;&#x2f;id.example.test&#x2f;t&#x2f;default&#x2f;login""#
        )
    );
    let done = browser
        .post(
            &format!("{local}/login"),
            &[
                ("csrf", &form.csrf()),
                ("username", "lena"),
                ("password", PASSWORD),
                ("return_to", ""),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done
        .set_cookie("__Host-latchkey-session-default")
        .expect("a __Host- session cookie");
    assert!(
        session.contains("Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
    );
    assert!(done.set_cookie("latchkey-session-default").is_none());
    // A cookie without the prefix (set by a sibling host over http, say) is not a session.
    let planted = Browser::new();
    planted.set(
        "latchkey-session-default",
        &browser.cookie("__Host-latchkey-session-default").unwrap(),
    );
    assert_eq!(planted.get(&format!("{local}/account")).await.status, 303);
    assert_eq!(browser.get(&format!("{local}/account")).await.status, 200);
}
