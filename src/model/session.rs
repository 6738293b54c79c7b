//! Browser sessions and sign-in history: what a person proved, when and how. No I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::user::UserId;
use super::wire_enum;

/// A session's public id (listing and revocation); the cookie carries a separate random token
/// of which only the digest is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub uuid::Uuid);

impl SessionId {
    pub fn parse(raw: &str) -> Option<SessionId> {
        uuid::Uuid::try_parse(raw)
            .ok()
            .filter(|u| u.hyphenated().to_string() == raw)
            .map(SessionId)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

wire_enum! {
    /// Authentication method references (RFC 8176 §2) latchkey records.
    pub enum Amr {
        /// A password.
        Pwd = "pwd",
        /// Proof of possession of a hardware-bound key (a device-bound passkey).
        Hwk = "hwk",
        /// Proof of possession of a software-secured key (a synced passkey).
        Swk = "swk",
        /// User presence and verification on the authenticator (biometric or PIN).
        User = "user",
        /// More than one factor.
        Mfa = "mfa",
    }
}

/// The authentication context class (OIDC Core §2 `acr`) a sign-in by `amr` reaches: `phrh`
/// for a device-bound passkey, `phr` for a synced one (OpenID Connect EAP ACR Values 1.0:
/// phishing-resistant, hardware-protected), `1` for a password.
pub fn acr_for(amr: &[Amr]) -> &'static str {
    if amr.contains(&Amr::Hwk) {
        "phrh"
    } else if amr.contains(&Amr::Swk) {
        "phr"
    } else {
        "1"
    }
}

/// Discovery `acr_values_supported`, strongest first.
pub const ACR_VALUES: &[&str] = &["phrh", "phr", "1"];

wire_enum! {
    /// How a sign-in was attempted.
    pub enum LoginMethod {
        Password = "password",
        Passkey = "passkey",
    }
}

wire_enum! {
    /// How a sign-in attempt of a known user ended.
    pub enum LoginResult {
        Success = "success",
        WrongPassword = "wrong_password",
        /// Refused without checking: the account or address was locked out.
        Locked = "locked",
        /// The account is disabled.
        Disabled = "disabled",
        /// A passkey assertion that did not verify.
        Failed = "failed",
    }
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user: UserId,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The absolute end, whatever the activity.
    pub expires_at: i64,
    /// When the person last proved who they are (OIDC `auth_time`).
    pub auth_time: i64,
    pub amr: Vec<Amr>,
    pub acr: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Session {
    /// Whether the session still holds at `now`, given the idle timeout.
    pub fn live_at(&self, now: i64, idle_timeout: i64) -> bool {
        now < self.expires_at && now < self.last_seen_at.saturating_add(idle_timeout)
    }
}

/// One sign-in attempt of a known user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginEvent {
    pub at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: LoginMethod,
    pub result: LoginResult,
}

/// A user agent as stored: at most 256 characters, control characters dropped.
pub fn user_agent(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(last_seen_at: i64, expires_at: i64) -> Session {
        Session {
            id: SessionId(uuid::Uuid::nil()),
            user: UserId(uuid::Uuid::nil()),
            created_at: 0,
            last_seen_at,
            expires_at,
            auth_time: 0,
            amr: vec![Amr::Pwd],
            acr: None,
            ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn sessions_end_when_idle_or_at_their_absolute_end() {
        let s = session(100, 1000);
        assert!(s.live_at(100, 60));
        assert!(s.live_at(159, 60));
        assert!(!s.live_at(160, 60), "idle for the whole timeout");
        let busy = session(990, 1000);
        assert!(busy.live_at(999, 60));
        assert!(
            !busy.live_at(1000, 60),
            "activity never passes the absolute end"
        );
    }

    #[test]
    fn method_references_are_rfc_8176_names() {
        assert_eq!(serde_json::to_string(&Amr::Hwk).unwrap(), "\"hwk\"");
        assert_eq!("user".parse::<Amr>(), Ok(Amr::User));
        assert!(user_agent("a\u{0}b\nc").eq("abc"));
        assert_eq!(user_agent(&"x".repeat(1000)).len(), 256);
    }
}
