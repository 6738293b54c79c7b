//! `/t/{tenant}/account`: the password change and the sessions a person holds.

use crate::harness::browser::Browser;
use crate::harness::{Backend, TestApp};

backends!(
    changing_the_password_needs_the_current_one_and_ends_other_sessions,
    a_person_signs_out_their_other_sessions,
);

const PASSWORD: &str = "correct horse battery staple";

async fn changing_the_password_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("heidi", PASSWORD).await;
    let issuer = app.issuer("default");
    let (laptop, phone) = (Browser::new(), Browser::new());
    assert_eq!(laptop.login(&issuer, "heidi", PASSWORD).await.status, 303);
    assert_eq!(phone.login(&issuer, "heidi", PASSWORD).await.status, 303);
    let page = laptop.get(&format!("{issuer}/account")).await;
    let change = async |current: &str, new: &str| {
        laptop
            .post(
                &format!("{issuer}/account/password"),
                &[
                    ("csrf", &page.csrf()),
                    ("current_password", current),
                    ("new_password", new),
                ],
            )
            .await
    };
    let wrong = change("not it at all", "a brand new passphrase").await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("The current password is not right."));
    let weak = change(PASSWORD, "password123").await;
    assert!(weak.body.contains("common"), "{}", weak.body);
    let done = change(PASSWORD, "a brand new passphrase").await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/t/default/account?notice=password");
    assert_eq!(laptop.get(&format!("{issuer}/account")).await.status, 200);
    assert_eq!(
        phone.get(&format!("{issuer}/account")).await.status,
        303,
        "other sessions end"
    );
    assert_eq!(
        Browser::new()
            .login(&issuer, "heidi", PASSWORD)
            .await
            .status,
        200
    );
    assert_eq!(
        Browser::new()
            .login(&issuer, "heidi", "a brand new passphrase")
            .await
            .status,
        303
    );
    // Without a session, the form sends the browser to sign in.
    let stranger = Browser::new();
    let form = stranger.get(&format!("{issuer}/login")).await;
    let anon = stranger
        .post(
            &format!("{issuer}/account/password"),
            &[("csrf", &form.csrf()), ("new_password", "whatever it is")],
        )
        .await;
    assert_eq!(anon.status, 303);
    assert!(anon.location().starts_with("/t/default/login?return_to="));
}

async fn a_person_signs_out_their_other_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("ivan", PASSWORD).await;
    app.user("judy", PASSWORD).await;
    let issuer = app.issuer("default");
    let (laptop, mut phone, other) = (Browser::new(), Browser::new(), Browser::new());
    phone.user_agent = "PhoneBrowser/2".into();
    assert_eq!(laptop.login(&issuer, "ivan", PASSWORD).await.status, 303);
    assert_eq!(phone.login(&issuer, "ivan", PASSWORD).await.status, 303);
    assert_eq!(other.login(&issuer, "judy", PASSWORD).await.status, 303);
    let tenant = app.default_tenant().await;
    let ivan = app.state.users().resolve(tenant.id, "ivan").await.unwrap();
    let judy = app.state.users().resolve(tenant.id, "judy").await.unwrap();
    let sessions = app.state.sessions().of(tenant.id, ivan.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let phone_session = sessions
        .iter()
        .find(|s| s.user_agent.as_deref() == Some("PhoneBrowser/2"))
        .unwrap();
    let page = laptop.get(&format!("{issuer}/account")).await;
    assert!(page.body.contains("PhoneBrowser"));
    // Judy's session cannot be ended from Ivan's account.
    let judys = app.state.sessions().of(tenant.id, judy.id).await.unwrap()[0]
        .id
        .to_string();
    let refused = laptop
        .post(
            &format!("{issuer}/account/sessions/revoke"),
            &[("csrf", &page.csrf()), ("session", &judys)],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(other.get(&format!("{issuer}/account")).await.status, 200);
    let done = laptop
        .post(
            &format!("{issuer}/account/sessions/revoke"),
            &[
                ("csrf", &page.csrf()),
                ("session", &phone_session.id.to_string()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(phone.get(&format!("{issuer}/account")).await.status, 303);
    assert_eq!(laptop.get(&format!("{issuer}/account")).await.status, 200);
    let history = laptop.get(&format!("{issuer}/account")).await;
    assert!(
        history.body.contains("success"),
        "the sign-in history is shown"
    );
}
