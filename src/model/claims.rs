//! The claim sets latchkey signs, named with their specs' words: access tokens (RFC 9068 §2.2),
//! ID tokens (OpenID Connect Core 1.0 §2) and logout tokens (OpenID Connect Back-Channel
//! Logout 1.0 §2.4). Registered claims are fields; a token's JSON is derived from them, so a
//! claim name is written once.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::token::Scope;

/// `aud` (RFC 7519 §4.1.3): one audience as a string, several as an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// The audience of `list`: a single member is written as a plain string.
    pub fn of(mut list: Vec<String>) -> Audience {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }

    /// Every audience, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(all) => all.clone(),
        }
    }

    /// Whether `who` is among them.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Audience::One(a) => a == who,
            Audience::Many(all) => all.iter().any(|a| a == who),
        }
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2), or of an opaque one's stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// REQUIRED: the tenant's issuer identifier.
    pub iss: String,
    /// REQUIRED: the resource owner, or the client itself for client credentials.
    pub sub: String,
    /// REQUIRED: the resource(s) the token is for (RFC 8707).
    pub aud: Audience,
    /// REQUIRED: expiry, seconds since the epoch.
    pub exp: i64,
    /// REQUIRED: issue time.
    pub iat: i64,
    /// REQUIRED: a unique identifier, for revocation (RFC 9068 §2.2; RFC 7009).
    pub jti: String,
    /// REQUIRED (RFC 8693 §4.3): the client the token was issued to.
    pub client_id: String,
    /// RFC 9068 §2.2.3: the granted scope, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// RFC 8693 §4.1: the acting party, for delegation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    /// RFC 8693 §4.4: who may act for the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_act: Option<Value>,
    /// RFC 7800 §3.1: the key the token is bound to (DPoP `jkt`, mTLS `x5t#S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
    /// Private claim (RFC 7519 §4.3): the refresh token family (grant) it came from, so
    /// revoking the grant ends it too (RFC 7009 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_family: Option<uuid::Uuid>,
    /// OIDC Core §2: when the user authenticated, for tokens of a sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// OIDC Core §2: the authentication context class reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// RFC 8176: the authentication methods used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Private claim: the claims the authorization request asked the userinfo endpoint for
    /// by name (OIDC Core §5.5 `claims.userinfo`), which the scope alone does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_claims: Option<Vec<String>>,
}

impl AccessTokenClaims {
    /// The claims as a JSON object (what is signed, stored and introspected).
    pub fn to_map(&self) -> Map<String, Value> {
        to_map(self)
    }

    /// Reads claims back; `None` if a registered claim is missing or malformed.
    pub fn from_map(map: &Map<String, Value>) -> Option<AccessTokenClaims> {
        serde_json::from_value(Value::Object(map.clone())).ok()
    }
}

/// The registered claims of an ID token, which profile claims may not carry.
const REGISTERED_ID_TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
    "jti",
    "nbf",
];

/// The claims of an ID token (OIDC Core §2, §3.1.3.6, §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// REQUIRED: the issuer identifier.
    pub iss: String,
    /// REQUIRED: the subject identifier, never reassigned.
    pub sub: String,
    /// REQUIRED: the relying party's `client_id` (and nothing else here).
    pub aud: Audience,
    /// REQUIRED: expiry.
    pub exp: i64,
    /// REQUIRED: issue time.
    pub iat: i64,
    /// When the user authenticated: REQUIRED when `max_age` was asked for or
    /// `auth_time` is an essential claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authentication request's `nonce`, unmodified: REQUIRED when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The authorized party: the `client_id` the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// §3.1.3.6: the left half of the access token's hash, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// §3.3.2.11: the left half of the authorization code's hash, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_hash: Option<String>,
    /// Front-/Back-Channel Logout: the session identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Standard claims (§5.1) released for the granted scopes.
    #[serde(flatten)]
    pub profile: Map<String, Value>,
}

impl IdTokenClaims {
    /// The claims as a JSON object. A profile claim never replaces a registered one.
    pub fn to_map(&self) -> Map<String, Value> {
        let registered = IdTokenClaims {
            profile: Map::new(),
            ..self.clone()
        };
        let mut map = to_map(&registered);
        for (name, value) in &self.profile {
            if !map.contains_key(name) && !REGISTERED_ID_TOKEN_CLAIMS.contains(&name.as_str()) {
                map.insert(name.clone(), value.clone());
            }
        }
        map
    }

    pub fn from_map(map: &Map<String, Value>) -> Option<IdTokenClaims> {
        serde_json::from_value(Value::Object(map.clone())).ok()
    }
}

/// Back-Channel Logout 1.0 §2.4: the `events` member that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    /// REQUIRED.
    pub iss: String,
    /// REQUIRED: the relying party's `client_id`.
    pub aud: Audience,
    /// REQUIRED.
    pub iat: i64,
    /// REQUIRED (§2.4 lets it be short; OIDC certification checks it is present).
    pub exp: i64,
    /// REQUIRED: unique, so relying parties can detect replays.
    pub jti: String,
    /// REQUIRED: `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: Map<String, Value>,
    /// OPTIONAL, but `sub` or `sid` MUST be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl LogoutTokenClaims {
    /// A logout token for a session, a subject, or both. `None` when both are absent (§2.4:
    /// one of them MUST be present).
    pub fn new(
        iss: String,
        client_id: String,
        iat: i64,
        exp: i64,
        jti: String,
        sub: Option<String>,
        sid: Option<String>,
    ) -> Option<LogoutTokenClaims> {
        if sub.is_none() && sid.is_none() {
            return None;
        }
        let mut events = Map::new();
        events.insert(BACKCHANNEL_LOGOUT_EVENT.into(), Value::Object(Map::new()));
        Some(LogoutTokenClaims {
            iss,
            aud: Audience::One(client_id),
            iat,
            exp,
            jti,
            events,
            sub,
            sid,
        })
    }

    pub fn to_map(&self) -> Map<String, Value> {
        to_map(self)
    }
}

fn to_map(claims: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        // Structs of strings, numbers and JSON values always serialise to an object.
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn access_token_claims_round_trip_with_spec_names() {
        let claims = AccessTokenClaims {
            iss: "https://id.example/t/acme".into(),
            sub: "svc".into(),
            aud: Audience::of(vec!["https://api.example/".into()]),
            exp: 2000,
            iat: 1000,
            jti: "j".into(),
            client_id: "svc".into(),
            scope: Some(Scope::parse("b a").unwrap()),
            act: None,
            may_act: None,
            cnf: Some(json!({"jkt": "x"})),
            refresh_family: Some(uuid::Uuid::nil()),
            auth_time: None,
            acr: None,
            amr: None,
            userinfo_claims: None,
        };
        let map = claims.to_map();
        assert_eq!(
            Value::Object(map.clone()),
            json!({
                "iss": "https://id.example/t/acme", "sub": "svc",
                "aud": "https://api.example/", "exp": 2000, "iat": 1000, "jti": "j",
                "client_id": "svc", "scope": "a b", "cnf": {"jkt": "x"},
                "refresh_family": "00000000-0000-0000-0000-000000000000"
            })
        );
        assert_eq!(AccessTokenClaims::from_map(&map), Some(claims));
        let mut missing = map;
        missing.remove("jti");
        assert_eq!(AccessTokenClaims::from_map(&missing), None);
    }

    #[test]
    fn audiences_of_one_are_strings() {
        assert_eq!(json!(Audience::of(vec!["a".into()])), json!("a"));
        let many = Audience::of(vec!["a".into(), "b".into()]);
        assert_eq!(json!(many), json!(["a", "b"]));
        assert!(many.contains("b") && !many.contains("c"));
    }

    #[test]
    fn id_tokens_carry_profile_claims_beside_registered_ones() {
        let map = json!({
            "iss": "i", "sub": "s", "aud": "c", "exp": 2, "iat": 1, "nonce": "n",
            "email": "a@example.com"
        });
        let Value::Object(map) = map else {
            unreachable!()
        };
        let claims = IdTokenClaims::from_map(&map).unwrap();
        assert_eq!(claims.nonce.as_deref(), Some("n"));
        assert_eq!(claims.profile["email"], "a@example.com");
        assert_eq!(claims.to_map(), map);
        // A profile claim cannot stand in for a registered one.
        let mut forged = claims.clone();
        forged.profile.insert("sub".into(), json!("mallory"));
        forged.profile.insert("nonce".into(), json!("other"));
        forged.nonce = None;
        let out = forged.to_map();
        assert_eq!(out["sub"], "s");
        assert!(out.get("nonce").is_none());
    }

    #[test]
    fn logout_tokens_need_sub_or_sid_and_the_event() {
        assert!(
            LogoutTokenClaims::new("i".into(), "c".into(), 1, 2, "j".into(), None, None).is_none()
        );
        let t = LogoutTokenClaims::new(
            "i".into(),
            "c".into(),
            1,
            2,
            "j".into(),
            None,
            Some("s".into()),
        )
        .unwrap()
        .to_map();
        assert_eq!(t["events"], json!({BACKCHANNEL_LOGOUT_EVENT: {}}));
        assert!(t.get("sub").is_none());
        assert!(t.get("nonce").is_none());
    }
}
