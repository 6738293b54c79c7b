//! Request objects by value (RFC 9101 §4–6; OpenID Connect Core §6.1): the authorization
//! request as a JWT signed with one of the client's registered keys. Only the object's
//! parameters are used (RFC 9101 §6.3); unsigned objects only where the tenant allows them.

use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{AuthorizationError, ServiceError};
use crate::jose::jwt::{self, Exp, TimeRules};
use crate::model::Tenant;
use crate::model::client::{ASYMMETRIC_ALGS, Client};
use crate::oauth::authorization_request::{AuthorizationFailure, error_redirect};
use crate::oauth::client_auth::ClientAuth;
use crate::oauth::params::Params;

/// Clock skew allowed on `exp`, `nbf` and `iat` (FAPI 2.0 §5.3.1 item 10: 10 s ahead).
const SKEW: i64 = 10;

/// JWT members of the object that are not authorization request parameters.
const JWT_MEMBERS: &[&str] = &["iss", "aud", "exp", "iat", "nbf", "jti", "sub"];

/// Request objects: what checks them.
#[derive(Clone, Copy)]
pub struct RequestObjects<'a> {
    pub client_auth: ClientAuth<'a>,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
}

/// The object's members as request parameters: strings as they are, numbers and booleans in
/// their JSON text, objects (`claims`) as JSON, arrays of strings as repeated parameters.
pub fn params_of(claims: &Map<String, Value>) -> Result<Params, String> {
    let mut pairs = Vec::new();
    for (name, value) in claims {
        if JWT_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        match value {
            Value::String(s) => pairs.push((name.clone(), s.clone())),
            Value::Number(n) => pairs.push((name.clone(), n.to_string())),
            Value::Bool(b) => pairs.push((name.clone(), b.to_string())),
            Value::Object(_) => pairs.push((name.clone(), value.to_string())),
            Value::Array(items) => {
                for item in items {
                    let Some(s) = item.as_str() else {
                        return Err(format!("{name} must be a string or strings"));
                    };
                    pairs.push((name.clone(), s.to_owned()));
                }
            }
            Value::Null => {}
        }
    }
    Params::parse(pairs).map_err(|e| e.description.unwrap_or_default())
}

impl RequestObjects<'_> {
    /// The parameters of the request object `object` sent by `client` with `query`.
    /// `Ok(Err(_))`: refused, to the verified redirect URI of the query when it has one.
    pub async fn resolve(
        &self,
        tenant: &Tenant,
        client: &Client,
        query: &Params,
        object: &str,
    ) -> Result<Result<Params, AuthorizationFailure>, ServiceError> {
        let issuer = self.settings.issuer(&tenant.slug);
        let refuse = |why: &str| {
            let mut failure = AuthorizationFailure {
                error: AuthorizationError::InvalidRequestObject,
                description: why.to_owned(),
                redirect: None,
            };
            if let Ok(to) = error_redirect(query, client, &issuer) {
                failure.redirect = Some(Box::new(to));
            }
            failure
        };
        let Ok(header) = jwt::peek_header(object) else {
            return Ok(Err(refuse("the request object is not a JWT")));
        };
        let registered = client.metadata.request_object_signing_alg.as_deref();
        let claims = if header.alg == "none" {
            // RFC 9101 §6.1: unsigned objects carry no proof of the client; off by default.
            if !tenant.settings.allow_unsigned_request_objects
                || registered.is_some_and(|r| r != "none")
            {
                return Ok(Err(refuse("unsigned request objects are not accepted")));
            }
            match jwt::peek_claims(object) {
                Ok(c) => c,
                Err(_) => return Ok(Err(refuse("the request object is malformed"))),
            }
        } else {
            let allowed: Vec<String> = match registered {
                Some("none") => {
                    return Ok(Err(refuse(
                        "this client registered unsigned request objects",
                    )));
                }
                Some(alg) => vec![alg.to_owned()],
                None => ASYMMETRIC_ALGS.iter().map(|a| (*a).to_owned()).collect(),
            };
            match self
                .client_auth
                .signed_by_client(tenant, client, object, allowed)
                .await
            {
                Ok(c) => c,
                Err(why) => {
                    tracing::info!(client_id = %client.client_id, error = %why, "request object refused");
                    return Ok(Err(refuse(
                        "the request object is not signed by one of the client's keys",
                    )));
                }
            }
        };
        // RFC 9101 §6.2 (and §10.2): issued by the client, for us, and live.
        if claims.get("iss").and_then(Value::as_str) != Some(client.client_id.as_str()) {
            return Ok(Err(refuse(
                "the request object's iss must be the client_id",
            )));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == issuer,
            Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(issuer.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Ok(Err(refuse("the request object's aud must be the issuer")));
        }
        let rules = TimeRules {
            exp: Exp::Required,
            skew: SKEW,
            max_lifetime: None,
            check_iat: true,
        };
        if let Err(e) = jwt::check_times(&claims, self.clock.now(), rules) {
            return Ok(Err(refuse(&format!("the request object {e}"))));
        }
        // §5: the query's client_id must be the object's.
        if claims.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
            return Ok(Err(refuse(
                "the request object's client_id must equal the request's",
            )));
        }
        if claims.contains_key("request") || claims.contains_key("request_uri") {
            return Ok(Err(refuse("a request object cannot hold another")));
        }
        Ok(params_of(&claims).map_err(|why| refuse(&why)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_members_become_parameters() {
        let claims = serde_json::json!({
            "iss": "app", "aud": "https://id.example/t/acme", "exp": 9,
            "client_id": "app", "response_type": "code", "max_age": 300,
            "claims": {"userinfo": {"email": null}}, "resource": ["https://a/", "https://b/"]
        });
        let Value::Object(map) = claims else {
            unreachable!()
        };
        let params = params_of(&map).unwrap();
        assert_eq!(params.get("max_age"), Some("300"));
        assert_eq!(params.get("response_type"), Some("code"));
        assert_eq!(params.get("iss"), None);
        assert_eq!(params.all("resource").len(), 2);
        let claims: Value = serde_json::from_str(params.get("claims").unwrap()).unwrap();
        assert_eq!(claims["userinfo"]["email"], Value::Null);
        let bad = serde_json::json!({"scope": ["a", 1]});
        let Value::Object(bad) = bad else {
            unreachable!()
        };
        assert!(params_of(&bad).is_err());
    }
}
