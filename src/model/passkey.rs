//! A user's passkey (WebAuthn credential) as latchkey keeps it. No I/O.

use super::user::UserId;

/// A stored passkey. `credential` is webauthn-rs's serialised credential, opaque here.
#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyRecord {
    pub id: uuid::Uuid,
    pub user: UserId,
    pub credential_id: Vec<u8>,
    /// What the person calls it ("Work laptop").
    pub name: String,
    pub credential: serde_json::Value,
    /// The authenticator's signature counter at its last use (0: it keeps none).
    pub sign_count: u32,
    /// Whether the credential may be synced to other devices (a synced passkey), and whether
    /// it is (WebAuthn §6.1 flags BE and BS).
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A passkey name: 1–64 characters, no control characters.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("a passkey name has 1 to 64 characters".into());
    }
    Ok(name.to_owned())
}
