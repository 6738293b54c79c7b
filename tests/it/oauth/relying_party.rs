//! A real client library against a running server over HTTPS: the `openidconnect` crate drives
//! client credentials, introspection (RFC 7662) and revocation (RFC 7009, which it only allows
//! over https).

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreClient, CoreJsonWebKeySet, CoreRevocableToken, CoreTokenType};
use openidconnect::{
    ClientId, ClientSecret, IntrospectionUrl, IssuerUrl, JsonWebKeySetUrl, OAuth2TokenResponse,
    RevocationUrl, Scope, TokenIntrospectionResponse, TokenUrl,
};

use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(openidconnect_drives_client_credentials_introspection_and_revocation);

async fn openidconnect_drives_client_credentials_introspection_and_revocation(backend: Backend) {
    let data = Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let (app, cert_pem) = TestApp::start_https(data).await;
    let registered = app.client("default").create().await;
    let http = TestApp::oidc_http(&cert_pem);
    let issuer = app.issuer("default");
    let jwks = CoreJsonWebKeySet::fetch_async(
        &JsonWebKeySetUrl::new(format!("{issuer}/jwks")).unwrap(),
        &http,
    )
    .await
    .expect("the crate reads our JWKS");
    assert!(jwks.keys().len() >= 6);
    let client = CoreClient::new(
        ClientId::new(registered.id.clone()),
        IssuerUrl::new(issuer.clone()).unwrap(),
        jwks,
    )
    .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
    .set_token_uri(TokenUrl::new(format!("{issuer}/token")).unwrap())
    .set_introspection_url(IntrospectionUrl::new(format!("{issuer}/introspect")).unwrap())
    .set_revocation_url(RevocationUrl::new(format!("{issuer}/revoke")).unwrap());

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("api:read".into()))
        .request_async(&http)
        .await
        .expect("client credentials");
    assert_eq!(*token.token_type(), CoreTokenType::Bearer);
    assert_eq!(token.expires_in(), Some(Duration::from_secs(600)));
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["api:read".to_owned()])
    );

    let info = client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(registered.id.as_str())
    );
    assert_eq!(info.sub(), Some(registered.id.as_str()));
    assert_eq!(info.iss(), Some(issuer.as_str()));
    assert!(info.exp().is_some() && info.jti().is_some());

    client
        .revoke_token(CoreRevocableToken::from(token.access_token().clone()))
        .expect("https revocation endpoint")
        .request_async(&http)
        .await
        .expect("revocation");
    let after = client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(!after.active());

    // A wrong secret is an invalid_client the crate understands.
    let wrong = client
        .clone()
        .set_client_secret(ClientSecret::new("wrong".into()));
    let refused = wrong
        .exchange_client_credentials()
        .request_async(&http)
        .await;
    match refused {
        Err(openidconnect::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().to_string(), "invalid_client");
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}
