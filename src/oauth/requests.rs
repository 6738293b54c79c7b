//! Requests of the token-handling endpoints parsed at the edge (RFC 6749 §3.2, §4.4.2, §6;
//! RFC 8693 §2.1; RFC 8707 §2; RFC 7009 §2.1; RFC 7662 §2.1): after this, no endpoint reads a
//! form parameter by name.

use crate::error::{OAuthError, TokenError};
use crate::model::client::GrantType;
use crate::model::token::{Scope, TokenType, TokenTypeHint};
use crate::oauth::params::Params;

/// A token presented for revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1).
#[derive(Debug, Clone)]
pub struct TokenReference {
    /// `token`, REQUIRED.
    pub token: String,
    /// `token_type_hint`, OPTIONAL: it only orders the search, and an unknown value is
    /// ignored (both RFCs).
    pub hint: Option<TokenTypeHint>,
}

impl TokenReference {
    pub fn parse(params: &Params) -> Result<TokenReference, OAuthError> {
        Ok(TokenReference {
            token: params.required("token")?.to_owned(),
            hint: params.get("token_type_hint").and_then(|h| h.parse().ok()),
        })
    }
}

/// A token request, tagged by `grant_type`.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    /// RFC 6749 §4.4.2.
    ClientCredentials {
        scope: Option<Scope>,
        resources: Vec<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: String,
        scope: Option<Scope>,
        resources: Vec<String>,
    },
    /// RFC 8693 §2.1.
    TokenExchange(ExchangeRequest),
    /// RFC 6749 §4.1.3.
    AuthorizationCode(crate::oauth::grants::authorization_code::CodeRequest),
}

/// An RFC 8693 §2.1 request.
#[derive(Debug, Clone)]
pub struct ExchangeRequest {
    pub subject_token: String,
    pub subject_token_type: TokenType,
    /// The actor token and its type: both or neither (§2.1).
    pub actor: Option<(String, TokenType)>,
    /// `requested_token_type`, an access token unless asked otherwise.
    pub requested: TokenType,
    pub scope: Option<Scope>,
    pub resources: Vec<String>,
    pub audiences: Vec<String>,
}

/// `scope` as sent: RFC 6749 §3.3 syntax, or `invalid_scope`.
fn scope(params: &Params) -> Result<Option<Scope>, OAuthError> {
    params
        .get("scope")
        .map(|raw| Scope::parse(raw).map_err(|e| TokenError::InvalidScope.because(e)))
        .transpose()
}

fn token_type(params: &Params, name: &str) -> Result<Option<TokenType>, OAuthError> {
    params
        .get(name)
        .map(|raw| {
            raw.parse::<TokenType>()
                .map_err(|_| TokenError::InvalidRequest.because(format!("unsupported {name}")))
        })
        .transpose()
}

impl TokenRequest {
    /// The request for `grant` (already checked as supported and allowed for the client).
    pub fn parse(grant: GrantType, params: &Params) -> Result<TokenRequest, OAuthError> {
        let resources = params.all("resource").to_vec();
        Ok(match grant {
            GrantType::ClientCredentials => TokenRequest::ClientCredentials {
                scope: scope(params)?,
                resources,
            },
            GrantType::RefreshToken => TokenRequest::RefreshToken {
                refresh_token: params.required("refresh_token")?.to_owned(),
                scope: scope(params)?,
                resources,
            },
            GrantType::TokenExchange => {
                let subject_token = params.required("subject_token")?.to_owned();
                let subject_token_type =
                    token_type(params, "subject_token_type")?.ok_or_else(|| {
                        TokenError::InvalidRequest.because("missing parameter 'subject_token_type'")
                    })?;
                // §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT appear
                // without.
                let actor = match (
                    params.get("actor_token"),
                    token_type(params, "actor_token_type")?,
                ) {
                    (Some(token), Some(kind)) => Some((token.to_owned(), kind)),
                    (None, None) => None,
                    _ => {
                        return Err(TokenError::InvalidRequest
                            .because("actor_token and actor_token_type go together"));
                    }
                };
                TokenRequest::TokenExchange(ExchangeRequest {
                    subject_token,
                    subject_token_type,
                    actor,
                    requested: token_type(params, "requested_token_type")?
                        .unwrap_or(TokenType::AccessToken),
                    scope: scope(params)?,
                    resources,
                    audiences: params.all("audience").to_vec(),
                })
            }
            GrantType::AuthorizationCode => TokenRequest::AuthorizationCode(
                crate::oauth::grants::authorization_code::CodeRequest {
                    code: params.required("code")?.to_owned(),
                    redirect_uri: params.get("redirect_uri").map(str::to_owned),
                    code_verifier: params.get("code_verifier").map(str::to_owned),
                    resources,
                },
            ),
            other => {
                return Err(TokenError::UnsupportedGrantType
                    .because(format!("the {other} grant is not supported")));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn token_references_ignore_unknown_hints() {
        let r = TokenReference::parse(&Params::of(&[
            ("token", "t"),
            ("token_type_hint", "refresh_token"),
        ]))
        .unwrap();
        assert_eq!(r.hint, Some(TokenTypeHint::RefreshToken));
        let r = TokenReference::parse(&Params::of(&[("token", "t"), ("token_type_hint", "x")]))
            .unwrap();
        assert_eq!((r.token.as_str(), r.hint), ("t", None));
        assert!(TokenReference::parse(&Params::of(&[])).is_err());
    }

    #[test]
    fn requests_parse_by_grant() {
        let cc = TokenRequest::parse(
            GrantType::ClientCredentials,
            &Params::of(&[("scope", "b a"), ("resource", "https://r/")]),
        )
        .unwrap();
        assert!(matches!(
            cc,
            TokenRequest::ClientCredentials { scope: Some(s), resources }
                if s.to_string() == "a b" && resources == ["https://r/"]
        ));
        let bad_scope = TokenRequest::parse(
            GrantType::ClientCredentials,
            &Params::of(&[("scope", "a\"")]),
        );
        assert_eq!(bad_scope.unwrap_err().code, ErrorCode::InvalidScope);
        let no_token = TokenRequest::parse(GrantType::RefreshToken, &Params::of(&[]));
        assert_eq!(no_token.unwrap_err().code, ErrorCode::InvalidRequest);
        let half_actor = TokenRequest::parse(
            GrantType::TokenExchange,
            &Params::of(&[
                ("subject_token", "s"),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("actor_token", "a"),
            ]),
        );
        assert_eq!(half_actor.unwrap_err().code, ErrorCode::InvalidRequest);
        let exchange = TokenRequest::parse(
            GrantType::TokenExchange,
            &Params::of(&[
                ("subject_token", "s"),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("audience", "x"),
                ("audience", "y"),
            ]),
        )
        .unwrap();
        let TokenRequest::TokenExchange(e) = exchange else {
            panic!("not an exchange");
        };
        assert_eq!(e.requested, TokenType::AccessToken);
        assert_eq!(e.audiences, ["x", "y"]);
        assert!(TokenRequest::parse(GrantType::Implicit, &Params::of(&[])).is_err());
    }
}
