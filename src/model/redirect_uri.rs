//! Redirection endpoints (RFC 6749 §3.1.2; OAuth 2.1 §2.3; RFC 8252 §7 for native apps): what
//! may be registered, and how a `redirect_uri` sent at the authorization endpoint is matched
//! against the registered ones (exact string comparison; the port of a loopback IP literal
//! is ignored).

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::model::client::ApplicationType;

/// Longest redirect URI accepted.
const MAX_LEN: usize = 2000;

/// An absolute redirect URI without a fragment, kept as it was written: comparison is of the
/// exact string (OAuth 2.1 §2.3.1), never of a normalised form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

/// Why a string is not a usable redirect URI; the text is for the developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRedirectUri(pub String);

fn clip(raw: &str) -> String {
    raw.chars().take(100).collect()
}

/// Loopback hosts (RFC 8252 §7.3, §8.3): `localhost`, 127.0.0.0/8 and `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    is_loopback_ip(url)
        || matches!(url.host(), Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"))
}

/// A loopback IP literal (not `localhost`): the hosts whose port a native app picks at
/// run time (RFC 8252 §7.3).
fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// RFC 8252 §7.1: a private-use scheme is a reverse domain name, so it holds a period.
fn is_private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.')
        && !matches!(
            scheme,
            "http" | "https" | "javascript" | "data" | "file" | "vbscript" | "about" | "blob"
        )
}

/// `raw` without the port of its authority (`http://127.0.0.1:8765/cb` → `http://127.0.0.1/cb`),
/// everything else byte for byte. `None` unless the authority is exactly a host, or a host and
/// a port of digits: no userinfo, nothing a parser could read differently.
fn without_port(raw: &str) -> Option<String> {
    let (scheme, rest) = raw.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let host = match authority.rfind(':') {
        // An IPv6 literal's colons are inside the brackets.
        Some(i) if !authority[i..].contains(']') => {
            let port = &authority[i + 1..];
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &authority[..i]
        }
        _ => authority,
    };
    Some(format!("{scheme}://{host}{tail}"))
}

impl RedirectUri {
    /// Parses an absolute URI without a fragment (RFC 6749 §3.1.2). Scheme rules depend on
    /// the client: see [`RedirectUri::registrable`].
    pub fn parse(raw: &str) -> Result<RedirectUri, InvalidRedirectUri> {
        if raw.len() > MAX_LEN {
            return Err(InvalidRedirectUri("redirect URI too long".into()));
        }
        // URL parsers drop or rewrite these (a backslash ends the authority for the WHATWG
        // parser a browser uses), so the string compared would not be the one followed.
        if raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(InvalidRedirectUri(
                "a redirect URI may not contain whitespace, control characters or '\\'".into(),
            ));
        }
        let url = Url::parse(raw)
            .map_err(|_| InvalidRedirectUri(format!("'{}' is not an absolute URI", clip(raw))))?;
        // RFC 6749 §3.1.2: the endpoint URI MUST NOT include a fragment component.
        if url.fragment().is_some() {
            return Err(InvalidRedirectUri(format!(
                "'{}' has a fragment",
                clip(raw)
            )));
        }
        Ok(RedirectUri {
            raw: raw.to_owned(),
            url,
        })
    }

    /// A redirect URI a client of type `app` may register (RFC 6749 §3.1.2, RFC 8252 §7,
    /// OIDC Registration §2).
    pub fn registrable(raw: &str, app: ApplicationType) -> Result<RedirectUri, InvalidRedirectUri> {
        let uri = RedirectUri::parse(raw)?;
        let url = &uri.url;
        match (url.scheme(), app) {
            ("https", _) if url.host().is_some() => Ok(uri),
            // RFC 8252 §7.3 loopback redirection over plain http, for every application type:
            // OIDC Registration §2 restricts only implicit-flow web clients, which are not
            // served, and relying-party libraries register local clients without
            // `application_type`.
            ("http", _) if is_loopback(url) => Ok(uri),
            ("http", _) => Err(InvalidRedirectUri(format!(
                "'{}': http is allowed only on loopback hosts (localhost, 127.0.0.0/8, [::1])",
                clip(raw)
            ))),
            (scheme, ApplicationType::Native) if is_private_use_scheme(scheme) => Ok(uri),
            (scheme, _) => Err(InvalidRedirectUri(format!(
                "'{}': scheme '{scheme}' is not allowed (https; for native apps also http \
                 loopback or a reverse-domain private-use scheme)",
                clip(raw)
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether this URI, sent at the authorization endpoint, is the `registered` one: the
    /// same string (OAuth 2.1 §2.3.1: simple string comparison), except that the port of an
    /// http loopback IP literal is ignored (RFC 8252 §7.3; every application type, since CLI
    /// and agent clients that register dynamically rarely say `native`). `localhost` is
    /// matched exactly.
    pub fn matches(&self, registered: &RedirectUri) -> bool {
        if self.raw == registered.raw {
            return true;
        }
        let loopback = |u: &RedirectUri| {
            u.url.scheme() == "http"
                && is_loopback_ip(&u.url)
                && u.url.username().is_empty()
                && u.url.password().is_none()
        };
        loopback(self)
            && loopback(registered)
            && self.url.host() == registered.url.host()
            && without_port(&self.raw).is_some_and(|a| Some(a) == without_port(&registered.raw))
    }

    /// The registered URI a request's `redirect_uri` stands for, and the URI to redirect to
    /// (the one sent, whose loopback port may differ). Without one sent, the only registered
    /// URI, if there is exactly one (OAuth 2.1 §2.3.2).
    pub fn choose<'a>(
        sent: Option<&'a RedirectUri>,
        registered: &'a [RedirectUri],
    ) -> Option<&'a RedirectUri> {
        match sent {
            Some(sent) => registered.iter().any(|r| sent.matches(r)).then_some(sent),
            None => match registered {
                [only] => Some(only),
                _ => None,
            },
        }
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for RedirectUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for RedirectUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        RedirectUri::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(raw: &str) -> RedirectUri {
        RedirectUri::parse(raw).unwrap()
    }

    #[test]
    fn matching_is_exact_except_loopback_ip_ports() {
        let cases = [
            ("https://app.example/cb", "https://app.example/cb", true),
            ("https://app.example/cb", "https://app.example/cb/", false),
            ("https://app.example/cb", "https://APP.example/cb", false),
            (
                "https://app.example/cb?a=1",
                "https://app.example/cb?a=1",
                true,
            ),
            (
                "https://app.example/cb",
                "https://app.example/cb?a=1",
                false,
            ),
            (
                "https://app.example:8443/cb",
                "https://app.example:9443/cb",
                false,
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true),
            (
                "http://127.0.0.1:8000/cb",
                "http://127.0.0.1:51234/cb",
                true,
            ),
            ("http://[::1]:8000/cb", "http://[::1]:9/cb", true),
            (
                "http://127.0.0.1:8000/cb",
                "http://127.0.0.1:51234/other",
                false,
            ),
            (
                "http://127.0.0.1:8000/cb",
                "http://127.0.0.2:8000/cb",
                false,
            ),
            (
                "http://localhost:3000/cb",
                "http://localhost:3001/cb",
                false,
            ),
            ("http://localhost:3000/cb", "http://localhost:3000/cb", true),
            (
                "https://127.0.0.1:8000/cb",
                "https://127.0.0.1:8001/cb",
                false,
            ),
        ];
        for (registered, sent, expected) in cases {
            assert_eq!(
                uri(sent).matches(&uri(registered)),
                expected,
                "{sent} against {registered}"
            );
        }
    }

    #[test]
    fn choosing_needs_a_match_or_a_single_registration() {
        let one = vec![uri("https://a.example/cb")];
        let two = vec![uri("https://a.example/cb"), uri("https://a.example/other")];
        assert_eq!(RedirectUri::choose(None, &one), Some(&one[0]));
        assert_eq!(RedirectUri::choose(None, &two), None);
        let sent = uri("https://a.example/other");
        assert_eq!(RedirectUri::choose(Some(&sent), &two), Some(&sent));
        let stranger = uri("https://evil.example/cb");
        assert_eq!(RedirectUri::choose(Some(&stranger), &two), None);
    }

    #[test]
    fn ports_come_off_only_the_authority() {
        assert_eq!(
            without_port("http://[::1]:80/a:b?c=:1").as_deref(),
            Some("http://[::1]/a:b?c=:1")
        );
        assert_eq!(
            without_port("http://127.0.0.1/cb").as_deref(),
            Some("http://127.0.0.1/cb")
        );
    }

    #[test]
    fn stored_values_deserialise_only_when_well_formed() {
        assert!(serde_json::from_str::<RedirectUri>(r#""https://a.example/cb""#).is_ok());
        assert!(serde_json::from_str::<RedirectUri>(r#""https://a.example/cb#x""#).is_err());
        assert!(serde_json::from_str::<RedirectUri>(r#""/cb""#).is_err());
        for bad in [
            "http://127.0.0.1:80\\evil\\x/cb",
            "https://a.example/c b",
            "https://a.example/cb\t",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }
}
