//! API keys: long-lived credentials held by a service account (a client) or a user. The raw
//! key is shown once; only its SHA-256 digest is stored.

use serde::Serialize;

use crate::model::client::ClientId;
use crate::model::token::Scope;

/// Who holds an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ApiKeyOwner {
    /// A client acting as a service account.
    Client(ClientId),
    /// A user, by subject identifier.
    User(String),
}

impl ApiKeyOwner {
    /// The `sub` of the key's holder.
    pub fn subject(&self) -> &str {
        match self {
            ApiKeyOwner::Client(id) => id.as_str(),
            ApiKeyOwner::User(sub) => sub,
        }
    }
}

/// An API key as stored: everything but the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// The public part of the key, also its name in the CLI.
    pub key_id: String,
    pub owner: ApiKeyOwner,
    pub label: String,
    pub scope: Scope,
    /// Unix seconds: valid from.
    pub not_before: i64,
    /// Unix seconds: valid until (none: until revoked).
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
    pub created_at: i64,
    #[serde(skip)]
    pub key_hash: [u8; 32],
}

impl ApiKey {
    /// Usable at `now`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        !self.revoked && self.not_before <= now && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// The prefix of every raw key, so scanners and people recognise one.
pub const API_KEY_PREFIX: &str = "lk_";

/// Splits a raw key `lk_{key_id}.{secret}` into its id and secret.
pub fn split_raw_key(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    let ok = id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && (32..=64).contains(&secret.len());
    ok.then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_split() {
        let secret = "a".repeat(43);
        let raw = format!("lk_0123456789abcdef.{secret}");
        assert_eq!(
            split_raw_key(&raw),
            Some(("0123456789abcdef", secret.as_str()))
        );
        for bad in [
            "",
            "lk_",
            "lk_0123.abc",
            "xx_0123456789abcdef.aaaa",
            "lk_0123456789abcdef",
        ] {
            assert_eq!(split_raw_key(bad), None, "{bad}");
        }
    }
}
