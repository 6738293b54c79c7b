//! A relying party on the `openidconnect` crate, as an application would write it: discovery,
//! a static or dynamically registered client, sign-in with PKCE and a nonce, the callback's
//! `state` and `iss` checked (RFC 9207), the ID token verified (signature, issuer, audience,
//! expiry, nonce, `at_hash`), userinfo, refresh, and RP-initiated logout.
//!
//! `main.rs` serves it as a small web app; latchkey's tests drive these same functions.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientRegistrationRequest, CoreIdToken,
    CoreIdTokenClaims, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

type Oidc = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the application is configured with.
pub struct Config {
    /// `https://HOST/t/TENANT`.
    pub issuer: String,
    /// A registered client; without one, the client registers itself (RFC 7591).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// For dynamic registration where the provider asks for one (latchkey does by default).
    pub initial_access_token: Option<String>,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: Option<String>,
    pub scopes: Vec<String>,
    /// Never follows redirects (the crate's advice: SSRF).
    pub http: openidconnect::reqwest::Client,
}

pub struct RelyingParty {
    client: Oidc,
    metadata: ProviderMetadataWithLogout,
    http: openidconnect::reqwest::Client,
    post_logout_redirect_uri: Option<String>,
    scopes: Vec<String>,
    /// The client id it signs in with (registered, or given).
    pub client_id: String,
}

/// A sign-in on its way: the URL to send the browser to, and what the callback is checked
/// against (kept server-side, per browser).
pub struct Pending {
    pub url: url::Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

/// A person signed in.
pub struct SignedIn {
    pub subject: String,
    pub claims: CoreIdTokenClaims,
    pub userinfo: CoreUserInfoClaims,
    pub id_token: CoreIdToken,
    pub refresh_token: Option<RefreshToken>,
}

impl RelyingParty {
    /// Discovers the provider and sets the client up (registering it when needed).
    pub async fn discover(config: Config) -> Result<RelyingParty, Error> {
        let issuer = IssuerUrl::new(config.issuer.clone())?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &config.http).await?;
        let (client_id, client_secret) = match config.client_id {
            Some(id) => (id, config.client_secret),
            None => {
                let endpoint = metadata
                    .registration_endpoint()
                    .ok_or("the provider offers no dynamic registration")?;
                let registered = CoreClientRegistrationRequest::new(
                    vec![RedirectUrl::new(config.redirect_uri.clone())?],
                    Default::default(),
                )
                .set_initial_access_token(config.initial_access_token.map(AccessToken::new))
                .register_async(endpoint, &config.http)
                .await?;
                (
                    registered.client_id().to_string(),
                    registered.client_secret().map(|s| s.secret().clone()),
                )
            }
        };
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.clone()),
            client_secret.map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(config.redirect_uri)?);
        Ok(RelyingParty {
            client,
            metadata,
            http: config.http,
            post_logout_redirect_uri: config.post_logout_redirect_uri,
            scopes: config.scopes,
            client_id,
        })
    }

    /// Starts a sign-in with PKCE (S256), a `state` and a `nonce`.
    pub fn start(&self) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Pending {
            url,
            state,
            nonce,
            verifier,
        }
    }

    /// Finishes a sign-in from the callback's query string.
    pub async fn finish(&self, pending: Pending, query: &str) -> Result<SignedIn, Error> {
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        // RFC 9207 §2.4: the response comes from the issuer we sent the person to.
        if params.get("iss").map(String::as_str) != Some(self.metadata.issuer().as_str()) {
            return Err("the authorization response's iss is not our issuer".into());
        }
        if params.get("state").map(String::as_str) != Some(pending.state.secret().as_str()) {
            return Err("the authorization response's state does not match".into());
        }
        if let Some(error) = params.get("error") {
            return Err(format!("the provider refused: {error}").into());
        }
        let code = params.get("code").ok_or("no code in the callback")?;
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code.clone()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await?;
        let id_token = tokens.id_token().ok_or("no ID token")?.clone();
        let verifier = self.client.id_token_verifier();
        let claims = id_token.claims(&verifier, &pending.nonce)?.clone();
        // OIDC Core §3.1.3.8: the access token belongs with this ID token.
        if let Some(expected) = claims.access_token_hash() {
            let actual = AccessTokenHash::from_token(
                tokens.access_token(),
                id_token.signing_alg()?,
                id_token.signing_key(&verifier)?,
            )?;
            if actual != *expected {
                return Err("the access token does not match the ID token's at_hash".into());
            }
        }
        let userinfo = self.userinfo(tokens.access_token(), &claims).await?;
        Ok(SignedIn {
            subject: claims.subject().to_string(),
            claims,
            userinfo,
            id_token,
            refresh_token: tokens.refresh_token().cloned(),
        })
    }

    /// Refreshes the tokens; a new ID token comes with them and must name the same person.
    pub async fn refresh(&self, signed: &SignedIn) -> Result<SignedIn, Error> {
        let refresh = signed.refresh_token.as_ref().ok_or("no refresh token")?;
        let tokens = self
            .client
            .exchange_refresh_token(refresh)?
            .request_async(&self.http)
            .await?;
        let id_token = tokens.id_token().ok_or("no ID token on refresh")?.clone();
        // OIDC Core §12.2: no nonce on refresh; the subject must stay the same.
        let claims = id_token
            .claims(&self.client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))?
            .clone();
        if claims.subject() != signed.claims.subject() {
            return Err("the refreshed ID token names someone else".into());
        }
        let userinfo = self.userinfo(tokens.access_token(), &claims).await?;
        Ok(SignedIn {
            subject: claims.subject().to_string(),
            claims,
            userinfo,
            id_token,
            refresh_token: tokens
                .refresh_token()
                .cloned()
                .or_else(|| signed.refresh_token.clone()),
        })
    }

    /// The userinfo of the person `claims` names (OIDC Core §5.3.2: the same `sub`).
    async fn userinfo(
        &self,
        access_token: &AccessToken,
        claims: &CoreIdTokenClaims,
    ) -> Result<CoreUserInfoClaims, Error> {
        Ok(self
            .client
            .user_info(access_token.clone(), Some(claims.subject().clone()))?
            .request_async(&self.http)
            .await?)
    }

    /// Where to send the browser to sign out at the provider (RP-Initiated Logout §2).
    pub fn logout_url(&self, signed: &SignedIn, state: &str) -> Result<url::Url, Error> {
        let endpoint = self
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()
            .ok_or("the provider has no end_session_endpoint")?;
        let mut request = openidconnect::LogoutRequest::from(endpoint)
            .set_id_token_hint(&signed.id_token)
            .set_client_id(ClientId::new(self.client_id.clone()));
        if let Some(after) = &self.post_logout_redirect_uri {
            request = request
                .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(after.clone())?)
                .set_state(CsrfToken::new(state.to_owned()));
        }
        Ok(request.http_get_url())
    }
}
