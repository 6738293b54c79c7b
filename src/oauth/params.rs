//! Form parameters of the OAuth endpoints (RFC 6749 §3.1, §3.2): `application/x-www-form-urlencoded`,
//! empty values treated as omitted, and no parameter more than once, except those specs let
//! repeat (`resource`, RFC 8707 §2; `audience`, RFC 8693 §2.1).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::error::OAuthError;

/// Parameters that may appear more than once.
const REPEATABLE: &[&str] = &["resource", "audience"];

/// A request's form parameters.
#[derive(Debug, Default)]
pub struct Params {
    single: HashMap<String, String>,
    repeated: HashMap<String, Vec<String>>,
}

impl Params {
    /// Collects decoded pairs, refusing repeated parameters.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        match Params::parse_lenient(pairs) {
            (params, repeated) if repeated.is_empty() => Ok(params),
            (_, repeated) => Err(OAuthError::invalid_request(format!(
                "parameter '{}' is repeated",
                repeated[0]
            ))),
        }
    }

    /// Collects decoded pairs keeping the first value of a repeated parameter, and names
    /// the repeated ones: the authorization endpoint must know whom to answer before it
    /// can refuse the repetition (RFC 6749 §4.1.2.1).
    pub fn parse_lenient(pairs: Vec<(String, String)>) -> (Params, Vec<String>) {
        let mut params = Params::default();
        let mut repeated = Vec::new();
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_str()) {
                params.repeated.entry(name).or_default().push(value);
                continue;
            }
            match params.single.entry(name) {
                Entry::Occupied(taken) => {
                    if !repeated.contains(taken.key()) {
                        repeated.push(taken.key().chars().take(40).collect());
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        (params, repeated)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// A parameter the request must carry.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter '{name}'")))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> &[String] {
        self.repeated.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
impl Params {
    /// Parameters from literal pairs, for unit tests (a repeat panics).
    pub(crate) fn of(pairs: &[(&str, &str)]) -> Params {
        Params::parse(
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn repeats_and_empties() {
        assert!(Params::parse(pairs(&[("scope", "a"), ("scope", "b")])).is_err());
        let p = Params::parse(pairs(&[
            ("resource", "https://a"),
            ("resource", "https://b"),
            ("scope", ""),
        ]))
        .unwrap();
        assert_eq!(p.all("resource").len(), 2);
        assert_eq!(p.get("scope"), None);
        assert!(p.required("grant_type").is_err());
    }
}
