//! Tenants: isolated issuers, each at `{public_url}/t/{slug}`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::wire_enum;

use crate::store::TenantId;

/// A tenant's URL name: 1–63 lowercase letters, digits and inner hyphens (a DNS label).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

/// Why a slug was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant name '{0}': use 1-63 lowercase letters, digits and inner hyphens")]
pub struct InvalidSlug(pub String);

impl TenantSlug {
    /// The tenant every fresh install creates.
    pub fn default_tenant() -> TenantSlug {
        TenantSlug("default".to_owned())
    }

    /// Validates a slug.
    pub fn parse(raw: &str) -> Result<TenantSlug, InvalidSlug> {
        let bytes = raw.as_bytes();
        let valid = (1..=63).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-');
        if valid {
            Ok(TenantSlug(raw.to_owned()))
        } else {
            Err(InvalidSlug(raw.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: TenantSlug,
    pub display_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Per-tenant policy; unset members fall back to the server configuration.
    pub settings: TenantSettings,
}

wire_enum! {
    /// Who may register clients at `{issuer}/register` (RFC 7591 §3).
    pub enum RegistrationMode {
        /// Anyone (rate limited per IP address and per tenant).
        Open = "open",
        /// Only holders of an initial access token (made with the CLI).
        Token = "token",
        /// Nobody: registration answers 403.
        Closed = "closed",
    }
}

/// A tenant's own policy. Every member is optional: unset means the server-wide default from
/// the `[oauth]` configuration section.
/// The shortest idle time after which unused dynamic clients may be deleted: last use is
/// recorded at most hourly per replica, and a client in use must never be purged.
pub const MIN_DYNAMIC_CLIENT_TTL_SECS: u64 = 86_400;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Who may use the registration endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationMode>,
    /// Keys (a JWKS) whose signed software statements (RFC 7591 §2.3) are trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_statement_jwks: Option<serde_json::Value>,
    /// Scopes dynamically registered clients may ask for; without it they get none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_scope: Option<crate::model::token::Scope>,
    /// Refuse registrations without a trusted software statement.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_software_statement: bool,
    /// Access token lifetime for clients that set none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<u64>,
    /// Dynamically registered clients unused for this long are deleted (0: kept; else at
    /// least [`MIN_DYNAMIC_CLIENT_TTL_SECS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_client_ttl_secs: Option<u64>,
    /// How the tenant's sign-in and account pages look.
    #[serde(skip_serializing_if = "Branding::is_empty")]
    pub branding: Branding,
    /// Passkeys (on unless switched off).
    #[serde(skip_serializing_if = "PasskeyPolicy::is_default")]
    pub passkeys: PasskeyPolicy,
    /// PKCE for confidential clients too (on unless `false`; public clients always use it).
    /// The OpenID Foundation's plans and Authlib's defaults run without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
    /// Every authorization request must be pushed first (RFC 9126 §5).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
    /// Accept unsigned (`alg: none`) request objects (RFC 9101 §6.1; off by default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_unsigned_request_objects: bool,
    /// Hosts and CIDR blocks of internal relying parties the server may call (back-channel
    /// logout) although they are loopback or private addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outbound_allow: Vec<String>,
}

impl TenantSettings {
    /// Whether confidential clients must use PKCE unless their policy says otherwise.
    pub fn pkce_required(&self) -> bool {
        self.require_pkce.unwrap_or(true)
    }

    /// Whether the server may call `host` (resolved to `ip`) although `ip` is not public:
    /// the host name, or a block holding the address, is in `outbound_allow`.
    pub fn outbound_allowed(&self, host: &str, ip: std::net::IpAddr) -> bool {
        self.outbound_allow
            .iter()
            .any(|entry| match entry.parse::<ipnet::IpNet>() {
                Ok(net) => net.contains(&ip),
                Err(_) => match entry.parse::<std::net::IpAddr>() {
                    Ok(one) => one == ip,
                    Err(_) => entry.eq_ignore_ascii_case(host),
                },
            })
    }

    /// `outbound_allow` entries are host names, addresses or CIDR blocks.
    pub fn check_outbound_allow(&self) -> Result<(), String> {
        for entry in &self.outbound_allow {
            let ok = entry.parse::<ipnet::IpNet>().is_ok()
                || entry.parse::<std::net::IpAddr>().is_ok()
                || (!entry.is_empty()
                    && entry.len() <= 253
                    && entry
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            if !ok {
                return Err(format!(
                    "outbound_allow: {entry:?} is not a host name, an address or a CIDR block"
                ));
            }
        }
        Ok(())
    }
}

/// A tenant's passkey policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasskeyPolicy {
    /// Switch passkeys off (they are on by default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Let people create an account with a passkey and no password at `{issuer}/signup`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub signup: bool,
}

impl PasskeyPolicy {
    pub fn is_default(&self) -> bool {
        *self == PasskeyPolicy::default()
    }
}

/// A tenant's look on its pages: the name shown is the tenant's display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Branding {
    /// An `https` image URL shown above the forms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// `#rrggbb`: buttons, links and focus rings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
}

impl Branding {
    pub fn is_empty(&self) -> bool {
        self.logo_url.is_none() && self.accent_color.is_none()
    }

    /// The rules stored branding keeps (it ends up in pages and a stylesheet).
    pub fn check(&self) -> Result<(), String> {
        if let Some(logo) = &self.logo_url {
            let ok = logo.len() <= 2048
                && url::Url::parse(logo).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !ok {
                return Err("branding.logo_url must be an https URL".into());
            }
        }
        if let Some(colour) = &self.accent_color {
            let hex = colour.strip_prefix('#').unwrap_or("");
            if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("branding.accent_color must be #rrggbb".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod outbound_tests {
    use super::*;

    #[test]
    fn the_outbound_allowlist_takes_hosts_addresses_and_blocks() {
        let settings = TenantSettings {
            outbound_allow: vec!["127.0.0.0/8".into(), "rp.internal".into(), "::1".into()],
            ..Default::default()
        };
        assert!(settings.check_outbound_allow().is_ok());
        let lo = "127.0.0.9".parse().unwrap();
        let private = "10.0.0.1".parse().unwrap();
        assert!(settings.outbound_allowed("anything", lo));
        assert!(settings.outbound_allowed("RP.internal", private));
        assert!(!settings.outbound_allowed("other.internal", private));
        assert!(settings.outbound_allowed("x", "::1".parse().unwrap()));
        let bad = TenantSettings {
            outbound_allow: vec!["http://x/".into()],
            ..Default::default()
        };
        assert!(bad.check_outbound_allow().is_err());
    }
}

#[cfg(test)]
impl Tenant {
    /// A tenant for unit tests of rules that need no store.
    pub fn for_tests(slug: &str) -> Tenant {
        Tenant {
            id: TenantId::for_tests(1),
            slug: TenantSlug::parse(slug).unwrap(),
            display_name: slug.to_owned(),
            created_at: 0,
            settings: TenantSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branding_is_an_https_logo_and_a_hex_colour() {
        let ok = Branding {
            logo_url: Some("https://cdn.example.com/logo.svg".into()),
            accent_color: Some("#0a7F3c".into()),
        };
        assert_eq!(ok.check(), Ok(()));
        for (logo, colour) in [
            (Some("http://x.io/l.png"), None),
            (Some("javascript:alert(1)"), None),
            (None, Some("red")),
            (None, Some("#12345")),
            (None, Some("#123456;}body{")),
        ] {
            let b = Branding {
                logo_url: logo.map(str::to_owned),
                accent_color: colour.map(str::to_owned),
            };
            assert!(b.check().is_err(), "{b:?}");
        }
    }

    #[test]
    fn slugs() {
        for ok in ["default", "a", "acme-corp", "t1", &"x".repeat(63)] {
            assert!(TenantSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "ä",
            "a b",
            "../x",
            &"x".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
