//! Password reset and email verification through the outbox, delivered over SMTP to a local
//! sink; the outbox's claims and retries.

use std::sync::Arc;

use latchkey::mail::deliver_due;

use crate::harness::browser::Browser;
use crate::harness::smtp::SmtpSink;
use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(
    a_mailed_link_resets_the_password_once,
    a_mailed_link_verifies_the_address,
    outbox_rows_are_sent_once_and_retried,
);

const PASSWORD: &str = "correct horse battery staple";

async fn app_with_smtp(backend: Backend, sink: &SmtpSink) -> TestApp {
    let data = Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let url = sink.url();
    TestApp::start_on(data, move |s| {
        s.mail.smtp_url = Some(latchkey::config::Secret::new(url));
    })
    .await
}

async fn ask_reset(browser: &Browser, issuer: &str, typed: &str) -> String {
    let form = browser.get(&format!("{issuer}/password/forgot")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("csrf"), "{}", form.body);
    let done = browser
        .post(
            &format!("{issuer}/password/forgot"),
            &[("csrf", &form.csrf()), ("username", typed)],
        )
        .await;
    assert_eq!(done.status, 200);
    done.body
}

async fn a_mailed_link_resets_the_password_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = app_with_smtp(backend, &sink).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let signed_in = Browser::new();
    assert_eq!(
        signed_in.login(&issuer, "alice", PASSWORD).await.status,
        303
    );

    let browser = Browser::new();
    let known = ask_reset(&browser, &issuer, "alice").await;
    let unknown = ask_reset(&browser, &issuer, "nobody").await;
    assert!(known.contains("Check your mail"));
    assert_eq!(
        known, unknown,
        "the same page whether or not the account exists"
    );
    assert_eq!(
        deliver_due(&app.state, "w1").await.unwrap(),
        1,
        "one mail: the known account's"
    );
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 0, "sent once");
    assert_eq!(sink.count(), 1);
    let mail = sink.text(0);
    assert!(mail.contains("To: alice@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Reset your Default password"),
        "{mail}"
    );
    let link = sink.link(0);
    assert!(
        link.starts_with(&format!("{issuer}/password/reset?token=")),
        "{link}"
    );

    // Opening the link changes nothing; the form's post does.
    let form = browser.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(
        form.input("username").as_deref(),
        Some("alice"),
        "for password managers"
    );
    let token = form.input("token").unwrap();
    let post = async |password: &str| {
        browser
            .post(
                &format!("{issuer}/password/reset"),
                &[
                    ("csrf", &form.csrf()),
                    ("token", &token),
                    ("new_password", password),
                ],
            )
            .await
    };
    let weak = post("alice123").await;
    assert!(weak.body.contains("error"), "{}", weak.body);
    let done = post("a completely new passphrase").await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/t/default/login?notice=password-reset");
    assert_eq!(
        post("yet another passphrase here").await.status,
        400,
        "single use"
    );
    assert_eq!(browser.get(&link).await.status, 400);
    assert_eq!(
        Browser::new()
            .login(&issuer, "alice", PASSWORD)
            .await
            .status,
        200
    );
    assert_eq!(
        Browser::new()
            .login(&issuer, "alice", "a completely new passphrase")
            .await
            .status,
        303
    );
    assert_eq!(
        signed_in.get(&format!("{issuer}/account")).await.status,
        303,
        "sessions end"
    );

    // A newer link replaces an older one...
    ask_reset(&browser, &issuer, "alice@example.com").await;
    ask_reset(&browser, &issuer, "alice").await;
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 2);
    assert_eq!(browser.get(&sink.link(1)).await.status, 400, "superseded");
    let newest = sink.link(2);
    assert_eq!(browser.get(&newest).await.status, 200);
    // ...and expires.
    app.state.clock.advance(3601);
    assert_eq!(browser.get(&newest).await.status, 400, "expired");
    // A fourth request within the hour mails nothing (the page says the same).
    ask_reset(&browser, &issuer, "alice").await;
    assert_eq!(
        deliver_due(&app.state, "w1").await.unwrap(),
        0,
        "at most three an hour"
    );
}

async fn a_mailed_link_verifies_the_address(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = app_with_smtp(backend, &sink).await;
    let user = app.user("bob", PASSWORD).await;
    let tenant = app.default_tenant().await;
    let issuer = app.issuer("default");
    let browser = Browser::new();
    assert_eq!(browser.login(&issuer, "bob", PASSWORD).await.status, 303);
    let account = browser.get(&format!("{issuer}/account")).await;
    assert!(account.body.contains("not verified"));
    let sent = browser
        .post(
            &format!("{issuer}/account/email/verify"),
            &[("csrf", &account.csrf())],
        )
        .await;
    assert_eq!(sent.status, 303);
    assert_eq!(
        sent.location(),
        "/t/default/account?notice=verification-sent"
    );
    assert_eq!(deliver_due(&app.state, "w1").await.unwrap(), 1);
    let link = sink.link(0);
    let confirm = browser.get(&link).await;
    assert_eq!(confirm.status, 200);
    let still = app.state.users().get(tenant.id, user.id).await.unwrap();
    assert!(!still.email_verified, "opening the link verifies nothing");
    let done = browser
        .post(
            &format!("{issuer}/email/verify"),
            &[
                ("csrf", &confirm.csrf()),
                ("token", &confirm.input("token").unwrap()),
            ],
        )
        .await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("verified"));
    assert!(
        app.state
            .users()
            .get(tenant.id, user.id)
            .await
            .unwrap()
            .email_verified
    );
    // A link for an address the account no longer has verifies nothing.
    app.state
        .users()
        .update(
            tenant.id,
            user.id,
            latchkey::people::users::UserChange {
                email: Some(Some("new@example.com".into())),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let fresh = app.state.users().get(tenant.id, user.id).await.unwrap();
    app.state
        .links()
        .request_verification(&tenant, &fresh)
        .await
        .unwrap();
    deliver_due(&app.state, "w1").await.unwrap();
    let link = sink.link(1);
    assert!(sink.text(1).contains("To: new@example.com"));
    app.state
        .users()
        .update(
            tenant.id,
            user.id,
            latchkey::people::users::UserChange {
                email: Some(Some("other@example.com".into())),
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    let token = link.split("token=").nth(1).unwrap();
    app.state
        .links()
        .verify_email(tenant.id, token)
        .await
        .unwrap();
    assert!(
        !app.state
            .users()
            .get(tenant.id, user.id)
            .await
            .unwrap()
            .email_verified
    );
}

async fn outbox_rows_are_sent_once_and_retried(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = app_with_smtp(backend, &sink).await;
    let tenant = app.default_tenant().await;
    for i in 0..6 {
        app.state
            .store
            .enqueue(
                tenant.id,
                latchkey::model::outbox::OutboxKind::Mail,
                serde_json::json!({"to": format!("u{i}@example.com"), "subject": "s", "text": "t"}),
                app.state.clock.now(),
            )
            .await
            .unwrap();
    }
    // Two workers at once (two replicas): every row goes out once.
    let (a, b) = tokio::join!(
        deliver_due(&app.state, "replica-a"),
        deliver_due(&app.state, "replica-b")
    );
    assert_eq!(a.unwrap() + b.unwrap(), 6);
    assert_eq!(sink.count(), 6);
    let mut to: Vec<String> = (0..6)
        .map(|n| {
            sink.text(n)
                .lines()
                .find(|l| l.starts_with("To:"))
                .unwrap()
                .to_owned()
        })
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 6, "no mail twice");

    // A temporary failure is retried after the backoff, not before.
    *sink.refuse.lock().unwrap() = 1;
    app.state
        .store
        .enqueue(
            tenant.id,
            latchkey::model::outbox::OutboxKind::Mail,
            serde_json::json!({"to": "late@example.com", "subject": "s", "text": "t"}),
            app.state.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(deliver_due(&app.state, "w").await.unwrap(), 0);
    assert_eq!(
        deliver_due(&app.state, "w").await.unwrap(),
        0,
        "waiting for the backoff"
    );
    app.state.clock.advance(31);
    assert_eq!(deliver_due(&app.state, "w").await.unwrap(), 1);
    assert_eq!(sink.count(), 7);
}

/// Without `mail.smtp_url`, mail goes to the log and to `data_dir/outbox/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mail_is_written_to_the_data_dir() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.user("carol", PASSWORD).await;
    let browser = Browser::new();
    ask_reset(&browser, &app.issuer("default"), "carol").await;
    assert_eq!(deliver_due(&app.state, "w").await.unwrap(), 1);
    let dir = app.data.dir.path().join("outbox");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(text.contains("carol@example.com"));
    assert!(
        text.replace("=\r\n", "")
            .replace("=3D", "=")
            .contains("/password/reset?token=")
    );
}
