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
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (
        data.dir.path().join("cert.pem"),
        data.dir.path().join("key.pem"),
    );
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = TestApp::start_on(data.clone(), |s| {
        s.server.tls_cert_file = Some(cert.clone());
        s.server.tls_key_file = Some(key.clone());
    })
    .await;
    assert!(app.base.starts_with("https://"));
    let registered = app.client("default").create().await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .add_root_certificate(
            openidconnect::reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap(),
        )
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
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
