//! What the outbox carries, and the single-use links mailed to people. No I/O.

use serde::{Deserialize, Serialize};

use super::wire_enum;

wire_enum! {
    /// What an outbox row delivers.
    pub enum OutboxKind {
        Mail = "mail",
        /// OpenID Connect Back-Channel Logout notifications (the sign-in issue).
        BackchannelLogout = "backchannel_logout",
    }
}

/// A mail to send: plain text, one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl Mail {
    /// A security notice to the account's address, if it has one: "a way to sign in to your
    /// account changed; if it was not you, act". Never a secret in it.
    pub fn notice(
        to: Option<&super::user::Email>,
        tenant_name: &str,
        username: &str,
        what: &str,
    ) -> Option<serde_json::Value> {
        let mail = Mail {
            to: to?.as_str().to_owned(),
            subject: format!("Security notice from {tenant_name}: {what}"),
            text: format!(
                "Hello,\n\nFor the account \"{username}\" at {tenant_name}: {what}.\n\n\
                 If this was you, there is nothing to do. If it was not, sign in, review your \
                 passkeys and sessions, and change your password, or tell your administrator.\n"
            ),
        };
        serde_json::to_value(mail).ok()
    }
}

/// A claimed outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: uuid::Uuid,
    pub tenant: super::TenantId,
    /// When it was queued (back-channel logout gives up a day later).
    pub created_at: i64,
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
    /// Attempts made before this one.
    pub attempts: i32,
}

wire_enum! {
    /// What a mailed link is for.
    pub enum LinkPurpose {
        PasswordReset = "password_reset",
        EmailVerification = "email_verification",
    }
}

/// The wait before attempt `attempts + 1` after a failure: 30 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 7)).unwrap_or(7);
    (30_i64 << exponent).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(0), 30);
        assert_eq!(backoff(1), 60);
        assert_eq!(backoff(6), 1920);
        assert_eq!(backoff(7), 3600);
        assert_eq!(backoff(50), 3600);
        assert_eq!(backoff(-3), 30);
    }
}
