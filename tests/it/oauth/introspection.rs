//! Token introspection (RFC 7662) and its JWT response (RFC 9701).

use latchkey::model::SigningAlg;
use latchkey::model::token::TokenFormat;
use serde_json::{Value, json};

use crate::harness::clients::{jwt_parts, oauth_error};
use crate::harness::{Backend, TestApp};

backends!(
    active_tokens_carry_every_standard_member,
    inactive_tokens_reveal_nothing,
    introspection_requires_client_authentication,
    jwt_introspection_responses_are_signed,
    clients_see_only_tokens_meant_for_them,
);

async fn active_tokens_carry_every_standard_member(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    let resource_server = app
        .client("default")
        .scope("")
        .policy(|p| p.may_introspect = true)
        .create()
        .await;
    let token = app.access_token(&client).await;
    let info = app.introspect(&resource_server, &token).await;
    let issuer = app.issuer("default");
    let now = app.state.clock.now();
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "api:read api:write");
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], client.id.as_str());
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["iss"], issuer.as_str());
    assert_eq!(info["aud"], issuer.as_str());
    assert_eq!(info["iat"], now);
    assert_eq!(info["exp"], now + 600);
    assert_eq!(info["jti"], jwt_parts(&token).1["jti"]);
    // The hint orders the search; a wrong or unknown hint still finds the token.
    for hint in ["access_token", "refresh_token", "made_up"] {
        let res = app
            .post_as(
                &resource_server,
                "introspect",
                &[("token", token.as_str()), ("token_type_hint", hint)],
            )
            .await;
        assert_eq!(res.json::<Value>().await.unwrap()["active"], true, "{hint}");
    }
}

async fn inactive_tokens_reveal_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .policy(|p| p.may_introspect = true)
        .create()
        .await;
    let opaque = app
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    let inactive = json!({"active": false});
    for garbage in ["x", "a.b.c", &"z".repeat(5000), "lk_0123456789abcdef.nope"] {
        assert_eq!(
            app.introspect(&client, garbage).await,
            inactive,
            "{garbage:.20}"
        );
    }
    // A JWT signed by a key we do not publish.
    let stranger = latchkey::jose::generate(SigningAlg::Es256, 2048).unwrap();
    let signer = latchkey::jose::load_signer(SigningAlg::Es256, &stranger.private_jwk).unwrap();
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), app.issuer("default").into());
    claims.insert("exp".into(), (app.state.clock.now() + 60).into());
    claims.insert("jti".into(), "x".into());
    let forged = signer.sign_jwt(&claims, "at+jwt").unwrap();
    assert_eq!(app.introspect(&client, &forged).await, inactive);
    // An ID-token-typed JWT from our own key is not an access token.
    let tenant = app.default_tenant().await;
    let set = app.state.keys().key_set(tenant.id).await.unwrap();
    let ours = set.signer(SigningAlg::Es256).unwrap();
    let not_at = ours.sign_jwt(&claims, "JWT").unwrap();
    assert_eq!(app.introspect(&client, &not_at).await, inactive);
    // Expired tokens, JWT and opaque.
    let jwt = app.access_token(&client).await;
    let reference = app.access_token(&opaque).await;
    assert_eq!(app.introspect(&client, &jwt).await["active"], true);
    assert_eq!(app.introspect(&client, &reference).await["active"], true);
    app.state.clock.advance(600);
    assert_eq!(app.introspect(&client, &jwt).await, inactive);
    assert_eq!(app.introspect(&client, &reference).await, inactive);
}

async fn introspection_requires_client_authentication(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    let token = app.access_token(&client).await;
    let res = app
        .client
        .post(app.url("/t/default/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client").await;
    let res = app.post_as(&client, "introspect", &[]).await;
    oauth_error(res, 400, "invalid_request").await;
}

async fn jwt_introspection_responses_are_signed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    let token = app.access_token(&client).await;
    let res = app
        .client
        .post(app.url("/t/default/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/token-introspection+jwt"
    );
    let jwt = res.text().await.unwrap();
    let (header, _) = jwt_parts(&jwt);
    assert_eq!(header["typ"], "token-introspection+jwt", "RFC 9701 §5");
    assert_eq!(header["alg"], "RS256", "RFC 9701 §6 default");
    let jwks = app.get_json("/t/default/jwks").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    let verifier = latchkey::jose::verifier(SigningAlg::Rs256, jwk.as_object().unwrap()).unwrap();
    let claims = latchkey::jose::jwt::verify(&jwt, verifier.as_ref()).unwrap();
    assert_eq!(claims["iss"], app.issuer("default").as_str());
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(
        claims["token_introspection"]["client_id"],
        client.id.as_str()
    );
}

async fn clients_see_only_tokens_meant_for_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    let api = "https://api.example.com/";
    let caller = app
        .client("default")
        .policy(|p| p.resources = vec![api.into()])
        .create()
        .await;
    let token = app.access_token(&caller).await;
    // RFC 7662 §4: an unrelated client learns nothing, not even that the token exists.
    let stranger = app.client("default").create().await;
    assert_eq!(
        app.introspect(&stranger, &token).await,
        json!({"active": false})
    );
    // The resource server the token is for sees it.
    let resource_server = app
        .client("default")
        .policy(|p| p.resources = vec![api.into()])
        .create()
        .await;
    assert_eq!(
        app.introspect(&resource_server, &token).await["active"],
        true
    );
    assert_eq!(app.introspect(&caller, &token).await["active"], true);
}
