//! The authorization request (RFC 6749 §4.1.1, §4.1.2.1; RFC 7636 §4.3; OAuth 2.1 §4.1.1;
//! OpenID Connect Core §3.1.2.1; RFC 8707 §2; RFC 9207), parsed at the edge into a value that
//! can be stored: pushed authorization requests (RFC 9126) persist it, and the sign-in pages
//! carry it between steps.
//!
//! Parsing happens in the order RFC 6749 §4.1.2.1 demands: first whom to answer (the client
//! and its redirect URI; a failure there is shown to the person, never redirected), then
//! everything else, whose failures go back to the verified redirect URI.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AuthorizationError;
use crate::model::client::{Client, ClientId, GrantType, ResponseType, check_resource};
use crate::model::redirect_uri::RedirectUri;
use crate::model::token::Scope;
use crate::model::wire_enum;
use crate::oauth::params::Params;

/// Longest `state` and `nonce` accepted (they are echoed back and stored).
const MAX_ECHOED: usize = 2048;

wire_enum! {
    /// How the authorization response is returned (OAuth 2.0 Multiple Response Type
    /// Encoding Practices §2.1; OAuth 2.0 Form Post Response Mode §2).
    pub enum ResponseMode {
        /// In the redirect URI's query (the default for `code`).
        Query = "query",
        /// In the redirect URI's fragment.
        Fragment = "fragment",
        /// POSTed by an auto-submitting HTML form.
        FormPost = "form_post",
    }
}

wire_enum! {
    /// `prompt` values (OIDC Core §3.1.2.1; Initiating User Registration 1.0 §4).
    pub enum Prompt {
        /// Show no page; fail with `login_required` and the like instead.
        None = "none",
        /// Authenticate again, even with a session.
        Login = "login",
        /// Ask for consent again.
        Consent = "consent",
        /// Let the person choose an account.
        SelectAccount = "select_account",
        /// Start at sign-up.
        Create = "create",
    }
}

wire_enum! {
    /// PKCE transformations (RFC 7636 §4.2). Only `S256` is accepted: `plain` protects
    /// nothing once the request is seen, and every current client library sends `S256`.
    pub enum CodeChallengeMethod {
        S256 = "S256",
        Plain = "plain",
    }
}

/// A PKCE code challenge (RFC 7636 §4.2): 43–128 characters of `[A-Za-z0-9-._~]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeChallenge {
    pub challenge: String,
    pub method: CodeChallengeMethod,
}

/// Where an authorization error may be sent: a redirect URI already matched against the
/// client's registered ones. Only this module makes one, so nothing can redirect an error to
/// a URI the client did not register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    uri: RedirectUri,
    mode: ResponseMode,
    state: Option<String>,
    /// RFC 9207 §2: the issuer, on every authorization response.
    iss: String,
}

impl ErrorRedirect {
    pub fn uri(&self) -> &RedirectUri {
        &self.uri
    }

    pub fn mode(&self) -> ResponseMode {
        self.mode
    }

    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    pub fn iss(&self) -> &str {
        &self.iss
    }
}

/// A refused authorization request: redirected to the client when its redirect URI is
/// known and verified, else shown to the person as an HTML page (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationFailure {
    pub error: AuthorizationError,
    pub description: String,
    /// Boxed: failures travel in every `Result` of the endpoint and should stay small.
    pub redirect: Option<Box<ErrorRedirect>>,
}

/// A valid authorization request, ready for authentication and consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    /// Where the response goes: the URI sent (its loopback port may differ from the
    /// registered one) or the client's only registered URI.
    pub redirect_uri: RedirectUri,
    /// Whether `redirect_uri` was sent: then the token request must repeat it
    /// (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    pub scope: Scope,
    pub state: Option<String>,
    /// OIDC Core §3.1.2.1: echoed in the ID token.
    pub nonce: Option<String>,
    pub code_challenge: Option<CodeChallenge>,
    pub prompt: Vec<Prompt>,
    /// OIDC Core §3.1.2.1: the most seconds since the person last authenticated.
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub acr_values: Vec<String>,
    pub ui_locales: Vec<String>,
    /// RFC 8707 §2: the resources the tokens are for.
    pub resources: Vec<String>,
    /// OIDC Core §5.5: individual claims asked for.
    pub claims: Option<Value>,
}

fn space_list(raw: Option<&str>) -> Vec<String> {
    raw.map(|r| {
        r.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Whom an authorization request answers to: the client's redirect URI, matched. Failures
/// here are never redirected.
pub fn error_redirect(
    params: &Params,
    client: &Client,
    issuer: &str,
) -> Result<ErrorRedirect, AuthorizationFailure> {
    let page = |error: AuthorizationError, description: String| AuthorizationFailure {
        error,
        description,
        redirect: None,
    };
    let sent = params
        .get("redirect_uri")
        .map(RedirectUri::parse)
        .transpose()
        .map_err(|e| page(AuthorizationError::InvalidRequest, e.0))?;
    // OIDC Core §3.1.2.1: an OpenID Connect request always names its redirect URI.
    let oidc = params
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|t| t == "openid"));
    if sent.is_none() && oidc {
        return Err(page(
            AuthorizationError::InvalidRequest,
            "redirect_uri is required in OpenID Connect requests".into(),
        ));
    }
    let uri = RedirectUri::choose(sent.as_ref(), &client.metadata.redirect_uris)
        .cloned()
        .ok_or_else(|| {
            page(
                AuthorizationError::InvalidRequest,
                match sent {
                    Some(_) => "redirect_uri is not registered for this client".into(),
                    None => "redirect_uri is required (the client has several or none)".into(),
                },
            )
        })?;
    // An unusable response_mode falls back to the default for the error itself.
    let mode = params
        .get("response_mode")
        .and_then(|m| m.parse().ok())
        .unwrap_or(ResponseMode::Query);
    Ok(ErrorRedirect {
        uri,
        mode,
        state: params
            .get("state")
            .filter(|s| s.len() <= MAX_ECHOED)
            .map(str::to_owned),
        iss: issuer.to_owned(),
    })
}

impl AuthorizationRequest {
    /// Parses the request of `client` (already looked up by `client_id`).
    /// `confidential_pkce`: whether a confidential client must use PKCE too (the tenant's
    /// `require_pkce`, or the client's override); public clients always must.
    pub fn parse(
        params: &Params,
        client: &Client,
        issuer: &str,
        confidential_pkce: bool,
    ) -> Result<AuthorizationRequest, AuthorizationFailure> {
        let target = error_redirect(params, client, issuer)?;
        let fail = |error: AuthorizationError, description: &str| AuthorizationFailure {
            error,
            description: description.to_owned(),
            redirect: Some(Box::new(target.clone())),
        };
        use AuthorizationError as E;

        // `request` and `request_uri` are resolved before this (RFC 9101 §6.3, RFC 9126 §4):
        // what is parsed here are the request's own parameters.
        if params.get("registration").is_some() {
            return Err(fail(
                E::RegistrationNotSupported,
                "the registration parameter is not supported",
            ));
        }
        let response_type = match params.get("response_type") {
            None => return Err(fail(E::InvalidRequest, "missing parameter 'response_type'")),
            Some("code") => ResponseType::Code,
            Some(_) => {
                return Err(fail(
                    E::UnsupportedResponseType,
                    "only response_type=code is supported",
                ));
            }
        };
        if !client.metadata.response_types.contains(&response_type)
            || !client.allows_grant(GrantType::AuthorizationCode)
        {
            return Err(fail(
                E::UnauthorizedClient,
                "this client is not registered for the authorization code flow",
            ));
        }
        let response_mode = match params.get("response_mode") {
            None => ResponseMode::Query,
            Some(m) => m
                .parse()
                .map_err(|_| fail(E::InvalidRequest, "unsupported response_mode"))?,
        };
        let scope = match params.get("scope") {
            Some(raw) => Scope::parse(raw)
                .map_err(|_| fail(E::InvalidScope, "scope is malformed (RFC 6749 section 3.3)"))?,
            None => Scope::default(),
        };
        let state = params.get("state").map(str::to_owned);
        let nonce = params.get("nonce").map(str::to_owned);
        if state.iter().chain(&nonce).any(|v| v.len() > MAX_ECHOED) {
            return Err(fail(
                E::InvalidRequest,
                "state and nonce are at most 2048 bytes",
            ));
        }
        let code_challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        ) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(fail(
                    E::InvalidRequest,
                    "code_challenge_method without code_challenge",
                ));
            }
            (Some(challenge), method) => {
                // RFC 7636 §4.3: without a method, `plain` is meant, which is refused.
                let method = method.unwrap_or("plain");
                if method != CodeChallengeMethod::S256.as_str() {
                    return Err(fail(
                        E::InvalidRequest,
                        "code_challenge_method must be S256",
                    ));
                }
                let ok = (43..=128).contains(&challenge.len())
                    && challenge
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                if !ok {
                    return Err(fail(
                        E::InvalidRequest,
                        "code_challenge is malformed (RFC 7636 section 4.2)",
                    ));
                }
                Some(CodeChallenge {
                    challenge: challenge.to_owned(),
                    method: CodeChallengeMethod::S256,
                })
            }
        };
        // OAuth 2.1 §7.5.1: PKCE always for public clients; for confidential ones by policy
        // (a tenant or client that turns it off accepts codes bound by nothing but the
        // client's credentials, as the OpenID Foundation's plans and OIDC Core allow).
        if code_challenge.is_none() && (client.is_public() || confidential_pkce) {
            return Err(fail(
                E::InvalidRequest,
                "code_challenge (PKCE, S256) is required",
            ));
        }
        let mut prompt = Vec::new();
        for raw in space_list(params.get("prompt")) {
            let p: Prompt = raw
                .parse()
                .map_err(|_| fail(E::InvalidRequest, "unsupported prompt value"))?;
            if !prompt.contains(&p) {
                prompt.push(p);
            }
        }
        // OIDC Core §3.1.2.1: `none` with any other value is an error.
        if prompt.contains(&Prompt::None) && prompt.len() > 1 {
            return Err(fail(E::InvalidRequest, "prompt=none cannot be combined"));
        }
        let max_age = params
            .get("max_age")
            .map(|m| {
                m.parse::<u64>()
                    .map_err(|_| fail(E::InvalidRequest, "max_age must be a non-negative integer"))
            })
            .transpose()?
            // OIDC Dynamic Client Registration §2: the client's default_max_age applies unless
            // the request says otherwise.
            .or(client.metadata.default_max_age);
        let resources = params.all("resource").to_vec();
        for r in &resources {
            // A fixed text: what the request said is not echoed to the client.
            check_resource(r).map_err(|_| {
                fail(
                    E::InvalidTarget,
                    "each resource must be an absolute URI without a fragment (RFC 8707 section 2)",
                )
            })?;
        }
        let claims = params
            .get("claims")
            .map(|raw| {
                serde_json::from_str::<Value>(raw)
                    .ok()
                    .filter(crate::oidc::claims::well_formed)
                    .ok_or_else(|| {
                        fail(
                            E::InvalidRequest,
                            "claims must be a JSON object as OpenID Connect Core section 5.5 says",
                        )
                    })
            })
            .transpose()?;
        Ok(AuthorizationRequest {
            client_id: client.client_id.clone(),
            redirect_uri_sent: params.get("redirect_uri").is_some(),
            redirect_uri: target.uri.clone(),
            response_type,
            response_mode,
            scope,
            state,
            nonce,
            code_challenge,
            prompt,
            max_age,
            login_hint: params.get("login_hint").map(str::to_owned),
            id_token_hint: params.get("id_token_hint").map(str::to_owned),
            acr_values: space_list(params.get("acr_values")),
            ui_locales: space_list(params.get("ui_locales")),
            resources,
            claims,
        })
    }

    /// Where this request's own errors (after consent, say) are sent.
    pub fn error_redirect(&self, issuer: &str) -> ErrorRedirect {
        ErrorRedirect {
            uri: self.redirect_uri.clone(),
            mode: self.response_mode,
            state: self.state.clone(),
            iss: issuer.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::header;

    use super::*;
    use crate::model::client::{MetadataRequest, ValidationRules};

    const ISS: &str = "https://id.example/t/acme";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(metadata: Value) -> Client {
        let metadata = serde_json::from_value::<MetadataRequest>(metadata)
            .unwrap()
            .validate(ValidationRules {
                allow_http_jwks_uri: false,
            })
            .unwrap();
        Client {
            client_id: ClientId::parse("app").unwrap(),
            metadata,
            policy: Default::default(),
            secret_hash: None,
            secret_sealed: None,
            secret_expires_at: None,
            registration_token_hash: None,
            dynamic: false,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    fn public() -> Client {
        client(serde_json::json!({
            "redirect_uris": ["http://127.0.0.1/cb", "https://app.example/cb?x=1"],
            "token_endpoint_auth_method": "none"
        }))
    }

    fn parse(
        client: &Client,
        pairs: &[(&str, &str)],
    ) -> Result<AuthorizationRequest, AuthorizationFailure> {
        AuthorizationRequest::parse(&Params::of(pairs), client, ISS, true)
    }

    const GOOD: &[(&str, &str)] = &[
        ("response_type", "code"),
        ("redirect_uri", "https://app.example/cb?x=1"),
        ("state", "s1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];

    fn with(
        extra: &[(&'static str, &'static str)],
        without: &[&str],
    ) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<_> = GOOD
            .iter()
            .copied()
            .filter(|(k, _)| !without.contains(k) && !extra.iter().any(|(e, _)| e == k))
            .collect();
        out.extend_from_slice(extra);
        out
    }

    #[test]
    fn untrusted_redirect_uris_get_a_page_not_a_redirect() {
        let c = public();
        for pairs in [
            with(&[("redirect_uri", "https://evil.example/cb")], &[]),
            with(&[("redirect_uri", "https://app.example/cb")], &[]),
            with(&[("redirect_uri", "https://app.example/cb?x=1#f")], &[]),
            // Two registered: it must be sent.
            with(&[], &["redirect_uri"]),
        ] {
            let failure = parse(&c, &pairs).unwrap_err();
            assert_eq!(failure.redirect, None, "{pairs:?}");
            assert_eq!(failure.error, AuthorizationError::InvalidRequest);
            let res = failure.error_response();
            assert_eq!(res.status(), 400);
            assert!(res.headers().get(header::LOCATION).is_none());
        }
    }

    #[test]
    fn later_errors_go_back_with_state_and_iss() {
        let c = public();
        let cases: Vec<(Vec<(&str, &str)>, AuthorizationError)> = vec![
            (
                with(&[], &["response_type"]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[("response_type", "token")], &[]),
                AuthorizationError::UnsupportedResponseType,
            ),
            (
                with(&[], &["code_challenge", "code_challenge_method"]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[("code_challenge_method", "plain")], &[]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[], &["code_challenge_method"]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[("code_challenge", "short")], &[]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[("prompt", "none login")], &[]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[("max_age", "-1")], &[]),
                AuthorizationError::InvalidRequest,
            ),
            (
                with(&[("scope", "a\"b")], &[]),
                AuthorizationError::InvalidScope,
            ),
            (
                with(&[("resource", "/relative")], &[]),
                AuthorizationError::InvalidTarget,
            ),
            (
                with(&[("response_mode", "web_message")], &[]),
                AuthorizationError::InvalidRequest,
            ),
        ];
        for (pairs, code) in cases {
            let failure = parse(&c, &pairs).unwrap_err();
            assert_eq!(failure.error, code, "{pairs:?}");
            let res = failure.error_response();
            assert_eq!(res.status(), 303, "{pairs:?}");
            let location = res
                .headers()
                .get(header::LOCATION)
                .unwrap()
                .to_str()
                .unwrap();
            let url = url::Url::parse(location).unwrap();
            let got: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
            assert_eq!(got["x"], "1", "the registered query is kept");
            assert_eq!(got["error"], code.code().as_str());
            assert_eq!(got["state"], "s1");
            assert_eq!(got["iss"], ISS);
            // RFC 6749 §4.1.2.1: printable ASCII but '"' and '\\', and nothing of the request.
            let description = &got["error_description"];
            assert!(
                description
                    .chars()
                    .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
                "{description}"
            );
            assert!(!description.contains("relative"));
        }
    }

    #[test]
    fn response_modes_shape_the_error() {
        let c = public();
        let failure = parse(
            &c,
            &with(&[("response_mode", "fragment")], &["response_type"]),
        )
        .unwrap_err();
        let res = failure.error_response();
        let location = res
            .headers()
            .get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(location.starts_with("https://app.example/cb?x=1#error=invalid_request&"));
        let failure = parse(
            &c,
            &with(
                &[("response_mode", "form_post"), ("state", "<s>")],
                &["response_type"],
            ),
        )
        .unwrap_err();
        let res = failure.error_response();
        assert_eq!(res.status(), 200);
        let csp = res
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        // The form submits through our static script: no inline code, so no hash.
        assert!(csp.contains("script-src 'self'"));
        let body = actix_web::body::MessageBody::try_into_bytes(res.into_body()).unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains(r#"src="/assets/form-post.js""#));
        assert!(!body.contains("<script>"));
        // minijinja escapes `/` as well.
        assert!(body.contains(r#"action="https:&#x2f;&#x2f;app.example&#x2f;cb?x=1""#));
        assert!(body.contains(r#"name="state" value="&lt;s&gt;""#));
        assert!(
            body.contains(r#"name="iss" value="https:&#x2f;&#x2f;id.example&#x2f;t&#x2f;acme""#)
        );
    }

    #[test]
    fn a_good_request_is_stored_as_parsed() {
        let c = public();
        let request = parse(
            &c,
            &with(
                &[
                    ("redirect_uri", "http://127.0.0.1:51234/cb"),
                    ("scope", "openid profile"),
                    ("prompt", "login consent"),
                    ("max_age", "300"),
                    ("resource", "https://api.example/"),
                    ("claims", r#"{"id_token":{"email":null}}"#),
                ],
                &[],
            ),
        )
        .unwrap();
        // RFC 8252 §7.3: any port on the loopback IP; the response goes to the one sent.
        assert_eq!(request.redirect_uri.as_str(), "http://127.0.0.1:51234/cb");
        assert!(request.redirect_uri_sent);
        assert_eq!(request.prompt, vec![Prompt::Login, Prompt::Consent]);
        assert_eq!(request.max_age, Some(300));
        let stored = serde_json::to_string(&request).unwrap();
        let back: AuthorizationRequest = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn pkce_is_required_of_public_clients_and_of_confidential_ones_by_policy() {
        let confidential = client(serde_json::json!({"redirect_uris": ["https://app.example/cb"]}));
        let base = [
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", "https://app.example/cb"),
            ("nonce", "n-0S6_WzA2Mj"),
        ];
        let lenient = AuthorizationRequest::parse(&Params::of(&base), &confidential, ISS, false);
        assert!(lenient.unwrap().redirect_uri_sent);
        assert_eq!(
            parse(&confidential, &base).unwrap_err().error,
            AuthorizationError::InvalidRequest,
            "require_pkce is on by default"
        );
        let mut public_nonce = base.to_vec();
        public_nonce[2] = ("redirect_uri", "http://127.0.0.1/cb");
        assert!(
            AuthorizationRequest::parse(&Params::of(&public_nonce), &public(), ISS, false).is_err(),
            "public clients always use PKCE"
        );
        // OIDC Core §3.1.2.1: redirect_uri is required with openid, even with one registered;
        // plain OAuth may leave it out (OAuth 2.1 §2.3.2).
        let unnamed = [
            ("response_type", "code"),
            ("scope", "openid"),
            ("nonce", "n-0S6_WzA2Mj"),
        ];
        assert_eq!(parse(&confidential, &unnamed).unwrap_err().redirect, None);
        let oauth = parse(
            &confidential,
            &[
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        assert!(!oauth.redirect_uri_sent, "the only registered URI");
    }
}
