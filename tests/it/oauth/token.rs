//! The token endpoint and the client credentials grant (RFC 6749 §4.4, §5), RFC 9068 JWT
//! access tokens, opaque tokens, scopes (§3.3) and resource indicators (RFC 8707).

use latchkey::model::SigningAlg;
use latchkey::model::token::TokenFormat;
use serde_json::Value;

use crate::harness::clients::{jwt_parts, oauth_error};
use crate::harness::{Backend, TestApp};

backends!(
    client_credentials_issues_an_rfc9068_jwt,
    scopes_are_limited_to_the_registered_ones,
    resource_indicators_set_the_audience,
    opaque_tokens_are_stored_hashed_and_introspectable,
    malformed_token_requests_get_rfc6749_errors,
    lifetimes_follow_client_then_tenant_then_server,
    concurrent_opaque_tokens_are_each_committed,
    clients_may_ask_for_rs256_access_tokens,
);

async fn verify_with_jwks(app: &TestApp, token: &str) -> Value {
    let jwks = app.get_json("/t/default/jwks").await;
    let (header, _) = jwt_parts(token);
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("signing key is published");
    let verifier = latchkey::jose::verifier(SigningAlg::Es256, jwk.as_object().unwrap()).unwrap();
    Value::Object(latchkey::jose::jwt::verify(token, verifier.as_ref()).expect("signature"))
}

async fn client_credentials_issues_an_rfc9068_jwt(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    let res = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "api:read")],
        )
        .await;
    assert_eq!(res.status(), 200);
    // RFC 6749 §5.1.
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "api:read");
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3");
    let token = body["access_token"].as_str().unwrap();
    let (header, _) = jwt_parts(token);
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 §2.1");
    assert_eq!(header["alg"], "ES256");
    let claims = verify_with_jwks(&app, token).await;
    let issuer = app.issuer("default");
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["aud"], issuer.as_str(), "no resource: the issuer");
    assert_eq!(claims["scope"], "api:read");
    let now = app.state.clock.now();
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 600);
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    // Without a scope parameter the registered scope is granted (RFC 6749 §3.3 default).
    let all = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(all["scope"], "api:read api:write");
    // Two tokens never share a jti.
    let other = verify_with_jwks(&app, all["access_token"].as_str().unwrap()).await;
    assert_ne!(other["jti"], claims["jti"]);
}

async fn scopes_are_limited_to_the_registered_ones(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    for bad in ["api:admin", "api:read api:admin"] {
        let res = app
            .token(
                &client,
                &[("grant_type", "client_credentials"), ("scope", bad)],
            )
            .await;
        oauth_error(res, 400, "invalid_scope").await;
    }
    let res = app
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "a\"b")],
        )
        .await;
    oauth_error(res, 400, "invalid_scope").await;
    let scopeless = app
        .client("default")
        .meta("scope", Value::Null)
        .create()
        .await;
    let res = app
        .token(
            &scopeless,
            &[("grant_type", "client_credentials"), ("scope", "api:read")],
        )
        .await;
    oauth_error(res, 400, "invalid_scope").await;
}

async fn resource_indicators_set_the_audience(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .policy(|p| {
            p.resources = vec![
                "https://api.example.com/".into(),
                "https://billing.example.com/".into(),
            ]
        })
        .create()
        .await;
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example.com/"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(jwt_parts(&token).1["aud"], "https://api.example.com/");
    let both = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example.com/"),
                ("resource", "https://billing.example.com/"),
            ],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        jwt_parts(both["access_token"].as_str().unwrap()).1["aud"],
        serde_json::json!(["https://api.example.com/", "https://billing.example.com/"])
    );
    // Without a resource: every resource the client may address.
    let default = app.access_token(&client).await;
    assert_eq!(jwt_parts(&default).1["aud"].as_array().unwrap().len(), 2);
    // RFC 8707 §2: absolute URI, no fragment, and one the server knows for this client.
    for bad in [
        "https://other.example.com/",
        "relative/path",
        "https://api.example.com/#frag",
    ] {
        let res = app
            .token(
                &client,
                &[("grant_type", "client_credentials"), ("resource", bad)],
            )
            .await;
        oauth_error(res, 400, "invalid_target").await;
    }
}

async fn opaque_tokens_are_stored_hashed_and_introspectable(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    let token = app.access_token(&client).await;
    assert_eq!(token.split('.').count(), 1, "not a JWT: {token}");
    assert!(token.len() >= 43, "256 bits");
    let tenant = app.default_tenant().await;
    // Stored under its digest, never in the clear.
    let by_digest = app
        .state
        .store
        .access_token(tenant.id, latchkey::crypto::sha256(token.as_bytes()))
        .await
        .unwrap()
        .expect("stored by digest");
    assert_eq!(by_digest.client_id.as_str(), client.id);
    if backend == Backend::Sqlite {
        let db = std::fs::read(app.data.dir.path().join("latchkey.db")).unwrap();
        let wal = std::fs::read(app.data.dir.path().join("latchkey.db-wal")).unwrap_or_default();
        for bytes in [db, wal] {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the raw token is on disk"
            );
        }
    }
    let info = app.introspect(&client, &token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], client.id.as_str());
    assert_eq!(info["scope"], "api:read api:write");
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["iss"], app.issuer("default").as_str());
}

async fn malformed_token_requests_get_rfc6749_errors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    let res = app.token(&client, &[]).await;
    oauth_error(res, 400, "invalid_request").await;
    let res = app.token(&client, &[("grant_type", "password")]).await;
    oauth_error(res, 400, "unsupported_grant_type").await;
    let res = app.token(&client, &[("grant_type", "made_up")]).await;
    oauth_error(res, 400, "unsupported_grant_type").await;
    // RFC 6749 §3.2: parameters MUST NOT be included more than once.
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    oauth_error(res, 400, "invalid_request").await;
    // A grant the client is not registered for.
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    oauth_error(res, 400, "unauthorized_client").await;
    // Not a form.
    let res = app
        .client
        .post(app.url("/t/default/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .get(app.url("/t/default/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST, OPTIONS");
    let res = app
        .client
        .post(app.url("/t/nope/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth_error(res, 404, "not_found").await;
}

async fn lifetimes_follow_client_then_tenant_then_server(backend: Backend) {
    let app = TestApp::start(backend).await;
    let plain = app.client("default").create().await;
    let short = app
        .client("default")
        .policy(|p| p.access_token_ttl_secs = Some(60))
        .create()
        .await;
    assert_eq!(expires_in(&app, &plain).await, 600);
    assert_eq!(expires_in(&app, &short).await, 60);
    let mut settings = app.default_tenant().await.settings;
    settings.access_token_ttl_secs = Some(120);
    app.state
        .tenants()
        .configure(&latchkey::model::TenantSlug::default_tenant(), settings)
        .await
        .unwrap();
    assert_eq!(expires_in(&app, &plain).await, 120);
    assert_eq!(expires_in(&app, &short).await, 60);
}

async fn expires_in(app: &TestApp, client: &crate::harness::clients::TestClient) -> Value {
    app.token(client, &[("grant_type", "client_credentials")])
        .await
        .json::<Value>()
        .await
        .unwrap()["expires_in"]
        .clone()
}

async fn concurrent_opaque_tokens_are_each_committed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    // Many requests at once share transactions (group commit); each answer still means "stored".
    let tokens = futures_util::future::join_all((0..64).map(|_| app.access_token(&client))).await;
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 64);
    let tenant = app.default_tenant().await;
    for token in &tokens {
        let stored = app
            .state
            .store
            .access_token(tenant.id, latchkey::crypto::sha256(token.as_bytes()))
            .await
            .unwrap();
        assert!(
            stored.is_some(),
            "a token was answered before it was stored"
        );
    }
}

async fn clients_may_ask_for_rs256_access_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .policy(|p| p.access_token_signing_alg = Some(SigningAlg::Rs256))
        .create()
        .await;
    let token = app.access_token(&client).await;
    let (header, _) = jwt_parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(app.introspect(&client, &token).await["active"], true);
}
