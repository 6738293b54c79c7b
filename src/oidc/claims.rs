//! Which claims about a person are released, and where (OpenID Connect Core §5.1 standard
//! claims, §5.4 scopes, §5.5 the `claims` request parameter). No I/O.

use serde_json::{Map, Value};

use crate::model::token::Scope;
use crate::model::user::User;

/// Where claims are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    IdToken,
    Userinfo,
}

impl Target {
    /// The member of the `claims` parameter for this target (§5.5).
    fn member(self) -> &'static str {
        match self {
            Target::IdToken => "id_token",
            Target::Userinfo => "userinfo",
        }
    }
}

/// §5.4: the claims each scope value asks for.
pub const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// The scopes this server understands for people (Discovery `scopes_supported`).
pub const PEOPLE_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// Discovery `claims_supported`: every claim latchkey can release.
pub fn supported() -> Vec<&'static str> {
    let mut out = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "at_hash",
        "sid",
    ];
    for (_, claims) in SCOPE_CLAIMS {
        out.extend_from_slice(claims);
    }
    out
}

/// Every standard claim the user has a value for (§5.1), `sub` aside.
pub fn available(user: &User) -> Map<String, Value> {
    let mut out = match serde_json::to_value(&user.profile) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // §5.1: an address is an object; an empty one is no claim.
    if out
        .get("address")
        .is_some_and(|a| a.as_object().is_some_and(Map::is_empty))
    {
        out.remove("address");
    }
    out.insert("preferred_username".into(), user.username.as_str().into());
    out.insert("updated_at".into(), user.updated_at.into());
    if let Some(email) = &user.email {
        out.insert("email".into(), email.as_str().into());
        out.insert("email_verified".into(), user.email_verified.into());
    }
    if out.contains_key("phone_number") {
        out.insert(
            "phone_number_verified".into(),
            user.profile.phone_number_verified.into(),
        );
    } else {
        out.remove("phone_number_verified");
    }
    out
}

/// The scope whose consent covers the standard claim `name` (§5.4), if one does.
pub fn scope_of(name: &str) -> Option<&'static str> {
    SCOPE_CLAIMS
        .iter()
        .find(|(_, members)| members.contains(&name))
        .map(|(scope, _)| *scope)
}

/// The scope values the `claims` parameter implies (§5.5): asking for `email` by name asks
/// for what the `email` scope covers, so the person is asked for it like for the scope.
pub fn implied_scopes(claims: Option<&Value>) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for target in [Target::IdToken, Target::Userinfo] {
        let asked = claims
            .and_then(|c| c.get(target.member()))
            .and_then(Value::as_object);
        for name in asked.into_iter().flat_map(|m| m.keys()) {
            if let Some(scope) = scope_of(name)
                && !out.contains(&scope)
            {
                out.push(scope);
            }
        }
    }
    out
}

/// The claim names released to `target`: those of the granted scopes (§5.4: from the userinfo
/// endpoint when an access token is issued, as in the code flow) and those asked for by
/// name in the `claims` parameter's member for `target` (§5.5) whose scope was granted too
/// (the request asked for it: [`implied_scopes`]), so nothing is released without consent.
pub fn requested(scope: &Scope, claims: Option<&Value>, target: Target) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if target == Target::Userinfo {
        for (value, members) in SCOPE_CLAIMS {
            if scope.contains(value) {
                names.extend(members.iter().map(|m| (*m).to_owned()));
            }
        }
    }
    if let Some(asked) = claims
        .and_then(|c| c.get(target.member()))
        .and_then(Value::as_object)
    {
        for name in asked.keys() {
            let granted = scope_of(name).is_none_or(|s| scope.contains(s));
            if granted && !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// The user's values for `names`, of standard claims only (a name we do not know is
/// ignored, §5.5: "Claims not understood ... MUST be ignored").
pub fn release(user: &User, names: &[String]) -> Map<String, Value> {
    let all = available(user);
    names
        .iter()
        .filter_map(|n| all.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

/// Whether the `claims` parameter asks for `name` in `target` as essential (§5.5.1).
pub fn essential(claims: Option<&Value>, target: Target, name: &str) -> bool {
    claims
        .and_then(|c| c.get(target.member()))
        .and_then(|m| m.get(name))
        .and_then(|c| c.get("essential"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The values the `claims` parameter asks `name` to have in either target (§5.5.1 `value`,
/// `values`), if it constrains them.
pub fn wanted_values(claims: Option<&Value>, name: &str) -> Option<Vec<String>> {
    let mut out: Option<Vec<String>> = None;
    for target in [Target::IdToken, Target::Userinfo] {
        let Some(spec) = claims
            .and_then(|c| c.get(target.member()))
            .and_then(|m| m.get(name))
        else {
            continue;
        };
        let mut values: Vec<String> = Vec::new();
        if let Some(v) = spec.get("value").and_then(Value::as_str) {
            values.push(v.to_owned());
        }
        if let Some(list) = spec.get("values").and_then(Value::as_array) {
            values.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if !values.is_empty() {
            out.get_or_insert_with(Vec::new).extend(values);
        }
    }
    out
}

/// Whether a `claims` parameter is shaped as §5.5 says: an object whose `id_token` and
/// `userinfo` members, when present, are objects of `null` or objects.
pub fn well_formed(claims: &Value) -> bool {
    let Some(top) = claims.as_object() else {
        return false;
    };
    ["id_token", "userinfo"].iter().all(|m| match top.get(*m) {
        None => true,
        Some(Value::Object(members)) => members.values().all(|v| v.is_null() || v.is_object()),
        Some(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user::{Email, Profile, UserId, Username};
    use serde_json::json;

    fn user() -> User {
        User {
            id: UserId(uuid::Uuid::nil()),
            username: Username::parse("alice").unwrap(),
            email: Some(Email::parse("alice@example.com").unwrap()),
            email_verified: true,
            profile: Profile {
                name: Some("Alice Liddell".into()),
                ..Profile::default()
            },
            roles: vec![],
            groups: vec![],
            has_password: true,
            password_changed_at: None,
            disabled_at: None,
            created_at: 1,
            updated_at: 2,
            last_login_at: None,
        }
    }

    #[test]
    fn scopes_release_their_claims_at_userinfo_only() {
        let scope = Scope::parse("openid email").unwrap();
        let names = requested(&scope, None, Target::Userinfo);
        let out = release(&user(), &names);
        assert_eq!(
            Value::Object(out),
            json!({"email": "alice@example.com", "email_verified": true})
        );
        assert!(requested(&scope, None, Target::IdToken).is_empty());
    }

    #[test]
    fn the_claims_parameter_asks_by_name_per_target() {
        let claims = json!({"id_token": {"name": {"essential": true}, "x-unknown": null},
                            "userinfo": {"preferred_username": null}});
        let scope = Scope::parse("openid profile").unwrap();
        let id = release(&user(), &requested(&scope, Some(&claims), Target::IdToken));
        assert_eq!(Value::Object(id), json!({"name": "Alice Liddell"}));
        let ui = release(&user(), &requested(&scope, Some(&claims), Target::Userinfo));
        assert_eq!(ui["preferred_username"], "alice");
        // A claim by name needs its scope granted (the request implied it: the person was
        // asked), else it is not released.
        assert_eq!(implied_scopes(Some(&claims)), vec!["profile"]);
        let bare = Scope::parse("openid").unwrap();
        assert!(release(&user(), &requested(&bare, Some(&claims), Target::IdToken)).is_empty());
        assert!(essential(Some(&claims), Target::IdToken, "name"));
        assert!(!essential(Some(&claims), Target::Userinfo, "name"));
        assert!(well_formed(&claims));
        assert!(!well_formed(&json!({"id_token": ["name"]})));
        assert!(!well_formed(&json!("x")));
        let acr = json!({"id_token": {"acr": {"essential": true, "values": ["phr", "1"]}}});
        assert_eq!(
            wanted_values(Some(&acr), "acr"),
            Some(vec!["phr".to_owned(), "1".to_owned()])
        );
        assert_eq!(wanted_values(Some(&acr), "sub"), None);
    }

    #[test]
    fn profile_scope_covers_the_standard_names() {
        let mut u = user();
        u.profile.phone_number = Some("+1 425 555 1212".into());
        let names = requested(
            &Scope::parse("profile phone address").unwrap(),
            None,
            Target::Userinfo,
        );
        let out = release(&u, &names);
        assert_eq!(out["preferred_username"], "alice");
        assert_eq!(out["updated_at"], 2);
        assert_eq!(out["phone_number_verified"], false);
        assert!(!out.contains_key("address"), "no empty address object");
        assert!(!out.contains_key("email"));
    }
}
