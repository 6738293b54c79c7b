//! The outbox worker (DESIGN §5a): mail, and back-channel logout notifications
//! ([`crate::oidc::backchannel`], retried for a day, each attempt with a fresh logout token).
//!
//! Outgoing mail, and the two ways it delivers. With
//! `mail.smtp_url` set, over SMTP (lettre; `smtps://` for TLS, `smtp://…?tls=required` for
//! STARTTLS); without it, a development install writes each mail to the log and to
//! `data_dir/outbox/`, and says so at start.
//!
//! A row is claimed (a lease, by a conditional update) before it is sent, so two workers on
//! two replicas never send the same row; a crash between the SMTP server's acceptance and the
//! mark "sent" is the one case that sends again once the lease ends (SMTP offers no
//! exactly-once).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::config::Secret;
use crate::model::outbox::{Mail, OutboxItem, OutboxKind, backoff};
use crate::oidc::backchannel::{self, Delivery};

/// `[mail]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://user:pass@host:587?tls=required`, `smtps://host:465`; unset: development mode.
    pub smtp_url: Option<Secret>,
    /// The sender, `Name <address>`.
    pub from: String,
    /// How often each replica looks for mail to send (seconds).
    pub poll_interval_secs: u64,
    /// Attempts before a mail is abandoned (logged as an error).
    pub max_attempts: i32,
    /// How long a password-reset or verification link works (seconds).
    pub link_ttl_secs: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp_url: None,
            from: "latchkey <no-reply@localhost>".into(),
            poll_interval_secs: 5,
            max_attempts: 10,
            link_ttl_secs: 3600,
        }
    }
}

/// How mail leaves this replica.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Mailbox),
    /// Development: the log and this directory.
    Dev(PathBuf, Mailbox),
}

impl Mailer {
    pub fn new(settings: &MailSettings, data_dir: &std::path::Path) -> Result<Mailer, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("mail.from: {e}"))?;
        match &settings.smtp_url {
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                .map(|b| Mailer::Smtp(b.timeout(Some(Duration::from_secs(20))).build(), from))
                .map_err(|e| format!("mail.smtp_url: {e}")),
            None => Ok(Mailer::Dev(data_dir.join("outbox"), from)),
        }
    }

    pub fn is_dev(&self) -> bool {
        matches!(self, Mailer::Dev(..))
    }

    async fn send(&self, id: uuid::Uuid, mail: &Mail) -> Result<(), String> {
        let (from, to) = match self {
            Mailer::Smtp(_, from) | Mailer::Dev(_, from) => {
                (from.clone(), mail.to.parse::<Mailbox>())
            }
        };
        let to = to.map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{id}@latchkey>")))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| format!("message: {e}"))?;
        match self {
            Mailer::Smtp(transport, _) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("smtp: {e}")),
            Mailer::Dev(dir, _) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("{id}.eml"));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                // Development only: the link is the point of reading it.
                tracing::info!(to = %mail.to, subject = %mail.subject, file = %path.display(), "mail (development: not sent)\n{}", mail.text);
                Ok(())
            }
        }
    }
}

/// A replica's name in claims.
fn worker_name() -> String {
    format!("{}-{}", hostname_or_unknown(), std::process::id())
}

fn hostname_or_unknown() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "latchkey".into())
}

/// One pass: claims what is due and delivers it. Returns how many were sent.
pub async fn deliver_due(
    state: &AppState,
    worker: &str,
) -> Result<usize, crate::error::ServiceError> {
    // The lease outlasts the whole batch: each send may take the 20 s SMTP timeout, so a
    // slow batch is never taken over by another replica half-way.
    const BATCH: i64 = 10;
    let now = state.clock.now();
    let lease = now + 60 + BATCH * 25;
    let items = state.store.claim_outbox(worker, now, lease, BATCH).await?;
    let mut sent = 0;
    for item in items {
        let attempts = item.attempts + 1;
        let next = state.clock.now() + backoff(item.attempts);
        let failed = match deliver(state, &item).await {
            Delivery::Delivered => None,
            Delivery::Stop(error) => Some((error, None)),
            Delivery::Retry(error) => {
                let again = match item.kind {
                    OutboxKind::Mail => attempts < state.settings.mail.max_attempts,
                    // Back-channel logout: retried for a day, however many attempts that is.
                    OutboxKind::BackchannelLogout => {
                        next <= item.created_at + backchannel::GIVE_UP_AFTER
                    }
                };
                Some((error, again.then_some(next)))
            }
        };
        let settled = match failed {
            None => {
                sent += 1;
                Ok(())
            }
            Some((error, retry)) => {
                if retry.is_none() {
                    tracing::error!(id = %item.id, attempts, error = %error, "outbox item abandoned");
                } else {
                    tracing::warn!(id = %item.id, attempts, error = %error, "outbox delivery failed; will retry");
                }
                Err((error, retry))
            }
        };
        state
            .store
            .settle_outbox(item.id, worker, state.clock.now(), settled)
            .await?;
    }
    Ok(sent)
}

async fn deliver(state: &AppState, item: &OutboxItem) -> Delivery {
    match item.kind {
        OutboxKind::Mail => match serde_json::from_value::<Mail>(item.payload.clone()) {
            Err(e) => Delivery::Stop(format!("malformed mail: {e}")),
            Ok(mail) => match state.mailer.send(item.id, &mail).await {
                Ok(()) => Delivery::Delivered,
                Err(e) => Delivery::Retry(e),
            },
        },
        OutboxKind::BackchannelLogout => backchannel::deliver(state, item).await,
    }
}

/// Runs [`deliver_due`] every `mail.poll_interval_secs` until the state shuts down.
pub fn spawn(state: &AppState) {
    let state = state.clone();
    let mut stop = state.stopping();
    let worker = worker_name();
    if state.mailer.is_dev() {
        tracing::warn!(
            dir = %state.settings.data_dir().join("outbox").display(),
            "mail.smtp_url is not set: mail is written to the log and to data_dir/outbox, not sent"
        );
    }
    tokio::spawn(async move {
        let mut ticks =
            tokio::time::interval(Duration::from_secs(state.settings.mail.poll_interval_secs));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = deliver_due(&state, &worker).await {
                tracing::warn!(error = %e, "outbox pass failed; will retry");
            }
        }
    });
}
