//! People: the user record, its OpenID Connect standard claims (Core §5.1) and the rules for
//! what may be stored in them. No I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user's id: a random UUID, which is also their `sub` (OIDC Core §2: unique within the
/// issuer, never reassigned, at most 255 ASCII characters). Random rather than time-ordered,
/// so it tells nobody when the account was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub uuid::Uuid);

impl UserId {
    pub fn parse(raw: &str) -> Option<UserId> {
        // Only the hyphenated form: one spelling per user.
        uuid::Uuid::try_parse(raw)
            .ok()
            .filter(|u| u.hyphenated().to_string() == raw)
            .map(UserId)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A username as typed: 1–64 characters from `A–Z a–z 0–9 . _ - +`. Compared without
/// regard to case ([`Username::key`]); shown as it was registered. Restricting it to ASCII
/// keeps look-alike names (Cyrillic `а` for Latin `a`) from being two accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Username, String> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(format!("a username has 1 to {} characters", Self::MAX_LEN));
        }
        // No `@`: a username shaped like an email address could shadow another account's
        // address at sign-in and password reset.
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        {
            return Err("a username may contain only letters A-Z, digits and . _ - +".into());
        }
        // Nor the shape of a user id: an administrator naming "that user" must get that user.
        if uuid::Uuid::try_parse(raw).is_ok() {
            return Err("a username cannot look like a user id".into());
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and lookups use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, checked only for shape (the verification mail proves the rest): one
/// `@` with something on both sides, a dot in the domain, at most 254 octets (RFC 5321
/// §4.5.3.1.3), no spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let bad = || format!("'{}' is not an email address", clip(raw));
        if raw.len() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return Err(bad());
        };
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains('@')
        {
            return Err(bad());
        }
        Ok(Email(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and lookups use. Local parts are case-sensitive in theory
    /// (RFC 5321 §2.4) and never in practice; two accounts differing only in case would be a
    /// trap for password reset.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// At most 80 characters of `s`, for messages that quote what was sent.
pub fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// OIDC Core §5.1.1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    fn is_empty(&self) -> bool {
        *self == Address::default()
    }
}

/// The standard claims of OIDC Core §5.1 a user carries besides `sub`, `preferred_username`
/// (the username), `email`, `email_verified` and `updated_at`, which have their own fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// URLs (profile page, photo, web site).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// `YYYY-MM-DD`, `0000-MM-DD` or `YYYY` (§5.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// An IANA time zone name such as `Europe/Paris`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// A BCP 47 language tag such as `en-US`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// E.164 is recommended (`+1 (425) 555-1212` is accepted as typed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub phone_number_verified: bool,
    #[serde(skip_serializing_if = "Address::is_empty")]
    pub address: Address,
}

/// Longest value of any one profile member.
const MAX_CLAIM_LEN: usize = 512;

impl Profile {
    /// The rules a stored profile keeps: bounded text without control characters, `https`
    /// URLs for the URL claims, the §5.1 birthdate forms, a plausible time zone and language tag.
    pub fn check(&self) -> Result<(), String> {
        let a = &self.address;
        let texts = [
            ("name", &self.name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("middle_name", &self.middle_name),
            ("nickname", &self.nickname),
            ("gender", &self.gender),
            ("phone_number", &self.phone_number),
            ("address.street_address", &a.street_address),
            ("address.locality", &a.locality),
            ("address.region", &a.region),
            ("address.postal_code", &a.postal_code),
            ("address.country", &a.country),
        ];
        for (name, value) in texts {
            if let Some(v) = value {
                check_text(name, v, false)?;
            }
        }
        // §5.1.1: the formatted address may hold line breaks.
        if let Some(v) = &a.formatted {
            check_text("address.formatted", v, true)?;
        }
        for (name, value) in [
            ("profile", &self.profile),
            ("picture", &self.picture),
            ("website", &self.website),
        ] {
            if let Some(v) = value {
                check_text(name, v, false)?;
                let ok = url::Url::parse(v)
                    .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
                if !ok {
                    return Err(format!("{name} must be an https URL"));
                }
            }
        }
        if let Some(v) = &self.birthdate
            && !is_birthdate(v)
        {
            return Err("birthdate must be YYYY-MM-DD, 0000-MM-DD or YYYY".into());
        }
        if let Some(v) = &self.zoneinfo {
            let ok = v.len() <= 64
                && v.contains('/')
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b));
            if !ok && v != "UTC" {
                return Err("zoneinfo must be a time zone name such as Europe/Paris".into());
            }
        }
        if let Some(v) = &self.locale {
            let ok = !v.is_empty()
                && v.len() <= 35
                && v.split(['-', '_']).all(|part| {
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !ok {
                return Err("locale must be a language tag such as en-US".into());
            }
        }
        Ok(())
    }
}

fn check_text(name: &str, value: &str, multiline: bool) -> Result<(), String> {
    if value.is_empty() || value.chars().count() > MAX_CLAIM_LEN {
        return Err(format!("{name} must have 1 to {MAX_CLAIM_LEN} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r')))
    {
        return Err(format!("{name} must not contain control characters"));
    }
    Ok(())
}

fn is_birthdate(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match v.split('-').collect::<Vec<_>>().as_slice() {
        [y] => y.len() == 4 && digits(y),
        [y, m, d] => {
            if !(y.len() == 4
                && m.len() == 2
                && d.len() == 2
                && digits(y)
                && digits(m)
                && digits(d))
            {
                return false;
            }
            let (m, d): (u8, u8) = (m.parse().unwrap_or(0), d.parse().unwrap_or(0));
            (1..=12).contains(&m) && (1..=31).contains(&d)
        }
        _ => false,
    }
}

/// A role or group name: 1–128 characters without spaces or control characters.
pub fn check_label(kind: &str, value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.chars().count() > 128
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "a {kind} name has 1 to 128 characters and no spaces"
        ));
    }
    Ok(())
}

/// A user as stored (without the password hash, which only the password check reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Option<Email>,
    pub email_verified: bool,
    pub profile: Profile,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// Whether a password is set (a passkey-only account has none).
    pub has_password: bool,
    pub password_changed_at: Option<i64>,
    /// When an administrator disabled the account; a disabled user cannot sign in.
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// One entry of the audit trail: who (`admin-api`, `cli`) did what (`user.create`, …) to which
/// object (a user's id), with details that never include a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_ascii_and_compared_without_case() {
        let u = Username::parse("Alice.Smith+ops").unwrap();
        assert_eq!(u.key(), "alice.smith+ops");
        assert_eq!(u.as_str(), "Alice.Smith+ops");
        for bad in [
            "",
            "a b",
            "аlice",
            "a/b",
            "x\u{0}",
            &"a".repeat(65),
            "victim@example.com",
            "0a1b2c3d-0000-4000-8000-000000000001",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn emails_are_checked_for_shape_only() {
        assert_eq!(
            Email::parse("Bob@Example.COM").unwrap().key(),
            "bob@example.com"
        );
        for bad in [
            "",
            "bob",
            "@x.io",
            "bob@",
            "bob@x",
            "bob@.x.io",
            "bob@x.io.",
            "b ob@x.io",
            "a@b@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_have_one_spelling() {
        let id = UserId(uuid::Uuid::from_u128(0xabc));
        assert_eq!(UserId::parse(&id.to_string()), Some(id));
        assert_eq!(UserId::parse(&id.to_string().to_uppercase()), None);
        assert_eq!(UserId::parse(&id.0.simple().to_string()), None);
    }

    #[test]
    fn profiles_keep_the_standard_claims_shapes() {
        let ok: Profile = serde_json::from_value(serde_json::json!({
            "name": "Jane Doe", "given_name": "Jane", "picture": "https://x.io/j.png",
            "birthdate": "0000-04-01", "zoneinfo": "Europe/Paris", "locale": "fr-FR",
            "phone_number": "+33 1 23 45 67 89", "phone_number_verified": true,
            "address": {"formatted": "1 rue X\n75001 Paris", "country": "FR"}
        }))
        .unwrap();
        assert_eq!(ok.check(), Ok(()));
        for bad in [
            serde_json::json!({"picture": "http://x.io/j.png"}),
            serde_json::json!({"website": "javascript:alert(1)"}),
            serde_json::json!({"birthdate": "1990-13-01"}),
            serde_json::json!({"birthdate": "90"}),
            serde_json::json!({"zoneinfo": "Paris time"}),
            serde_json::json!({"locale": "en US"}),
            serde_json::json!({"name": "a\u{7}b"}),
            serde_json::json!({"name": ""}),
        ] {
            let p: Profile = serde_json::from_value(bad.clone()).unwrap();
            assert!(p.check().is_err(), "{bad}");
        }
        // Unknown members are refused, not dropped.
        assert!(serde_json::from_value::<Profile>(serde_json::json!({"nmae": "x"})).is_err());
    }
}
