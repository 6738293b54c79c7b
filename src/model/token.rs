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

/// A refresh token as stored (by hash). Tokens of one family descend from one grant.
#[derive(Debug, Clone)]
pub struct StoredRefreshToken {
    pub id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub client_id: crate::model::client::ClientId,
    /// What a token refreshed from it carries: sub, scope, aud, act, ...
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
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
