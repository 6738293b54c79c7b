//! Token vocabulary: scopes (RFC 6749 §3.3), token type identifiers (RFC 8693 §3) and
//! revocation/introspection hints (RFC 7009 §2.1).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::wire_enum;

/// A set of scope tokens. RFC 6749 §3.3: space-delimited, case-sensitive, each
/// `1*( %x21 / %x23-5B / %x5D-7E )`; order carries no meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

/// A scope string breaking RFC 6749 §3.3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope: tokens are printable ASCII except '\"' and '\\', separated by one space")]
pub struct InvalidScope;

impl Scope {
    /// Parses a space-delimited scope string. Empty means no scope.
    pub fn parse(raw: &str) -> Result<Scope, InvalidScope> {
        if raw.is_empty() {
            return Ok(Scope::default());
        }
        let mut set = BTreeSet::new();
        for token in raw.split(' ') {
            let valid = !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(InvalidScope);
            }
            set.insert(token.to_owned());
        }
        Ok(Scope(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens in both.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
        }
        Ok(())
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Scope::parse(&raw).map_err(serde::de::Error::custom)
    }
}

wire_enum! {
    /// Token type identifiers (RFC 8693 §3).
    pub enum TokenType {
        /// An OAuth 2.0 access token.
        AccessToken = "urn:ietf:params:oauth:token-type:access_token",
        /// An OAuth 2.0 refresh token.
        RefreshToken = "urn:ietf:params:oauth:token-type:refresh_token",
        /// An OpenID Connect ID token.
        IdToken = "urn:ietf:params:oauth:token-type:id_token",
        /// A JWT (RFC 7519).
        Jwt = "urn:ietf:params:oauth:token-type:jwt",
    }
}

wire_enum! {
    /// What kind of token a revocation or introspection request names (RFC 7009 §2.1).
    pub enum TokenTypeHint {
        /// An access token.
        AccessToken = "access_token",
        /// A refresh token.
        RefreshToken = "refresh_token",
    }
}

wire_enum! {
    /// How a client's access tokens are represented.
    pub enum TokenFormat {
        /// Self-contained RFC 9068 JWTs: no storage, verifiable offline.
        Jwt = "jwt",
        /// Opaque reference tokens, stored hashed and introspected.
        Opaque = "opaque",
    }
}

/// An initial access token (RFC 7591 §3) as stored: everything but the token.
#[derive(Debug, Clone, Serialize)]
pub struct InitialAccessToken {
    pub id: uuid::Uuid,
    pub label: String,
    /// Unix seconds; none: until used up.
    pub expires_at: Option<i64>,
    /// Registrations left; none: unlimited until it expires.
    pub uses_left: Option<i64>,
    pub created_at: i64,
}

/// An opaque access token as stored (by hash).
#[derive(Debug, Clone)]
pub struct StoredAccessToken {
    pub client_id: crate::model::client::ClientId,
    /// The claims the token stands for (RFC 9068 §2.2 members).
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub expires_at: i64,
    pub revoked: bool,
}

/// Where one refresh token stands. `Valid → Consumed` by a rotation (once: one conditional
/// update), `Valid | Consumed → Revoked` with its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenState {
    /// Not used yet.
    Valid,
    /// Rotated at this time: presented again, it is reuse (OAuth 2.1 §4.3.1).
    Consumed { at: i64 },
    /// Revoked at this time, with its family.
    Revoked { at: i64 },
}

impl RefreshTokenState {
    /// From the row's timestamps; revocation wins over use.
    pub fn from_times(used_at: Option<i64>, revoked_at: Option<i64>) -> RefreshTokenState {
        match (used_at, revoked_at) {
            (_, Some(at)) => RefreshTokenState::Revoked { at },
            (Some(at), None) => RefreshTokenState::Consumed { at },
            (None, None) => RefreshTokenState::Valid,
        }
    }
}

/// Where a refresh token family (one grant, rotated many times) stands: `Active → Revoked`,
/// never back. Every use of any token of the family checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyState {
    Active,
    Revoked { at: i64 },
}

/// A refresh token as stored (by hash), with the state of its family.
#[derive(Debug, Clone)]
pub struct StoredRefreshToken {
    pub id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub client_id: crate::model::client::ClientId,
    /// What a token refreshed from it carries: sub, scope, aud, act, ...
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub expires_at: i64,
    pub state: RefreshTokenState,
    pub family: FamilyState,
    /// The family's absolute end.
    pub family_expires_at: i64,
    /// The browser session the family lives with (a person's grant without
    /// `offline_access`): it ends when the session does.
    pub family_session: Option<crate::model::session::SessionId>,
}

impl StoredRefreshToken {
    /// Usable now: valid itself, in a live family, neither expired.
    pub fn is_live(&self, now: i64) -> bool {
        self.state == RefreshTokenState::Valid && self.family_is_live(now) && now < self.expires_at
    }

    /// Its family is neither revoked nor past its end.
    pub fn family_is_live(&self, now: i64) -> bool {
        self.family == FamilyState::Active && now < self.family_expires_at
    }
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: [u8; 32],
    pub client_id: crate::model::client::ClientId,
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// The outcome of a rotation or of joining a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The new token is stored (and the old one, if any, consumed).
    Done,
    /// The old token was already consumed or revoked: reuse.
    Reused,
    /// The family is revoked or over: nothing was written.
    FamilyEnded,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parsing_follows_rfc6749() {
        let s = Scope::parse("b a b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert!(Scope::parse("").unwrap().is_empty());
        for bad in [" a", "a ", "a  b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Scope::parse("a").unwrap().is_subset(&s));
        assert!(!Scope::parse("c").unwrap().is_subset(&s));
    }
}
