//! The userinfo endpoint (OpenID Connect Core §5.3; RFC 6750) over HTTP.

use serde_json::{Value, json};

use crate::harness::browser::Browser;
use crate::harness::clients::{TestClient, oauth_error};
use crate::harness::flow::{PASSWORD, authorize_url, code_for, pkce, tokens, verify_signed};
use crate::harness::{Backend, TestApp};

backends!(
    userinfo_takes_the_token_one_way_and_answers_by_scope,
    userinfo_refuses_what_is_not_a_persons_openid_token,
    userinfo_is_signed_when_the_client_asks,
);

async fn sign_in(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> Value {
    let browser = Browser::new();
    let p = pkce();
    let mut all = vec![
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    all.extend_from_slice(extra);
    let url = authorize_url(&app.issuer("default"), client, &all);
    let params = code_for(app, &browser, &url, "alice").await;
    tokens(app, client, &params["code"], &p.verifier).await
}

async fn userinfo_takes_the_token_one_way_and_answers_by_scope(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.user("alice", PASSWORD).await;
    let client = app
        .rp("default")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let at = sign_in(&app, &client, &[("scope", "openid profile")]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = app.url("/t/default/userinfo");

    // GET with the header; POST with the header and no body; POST with a form body.
    let get = app.client.get(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["cache-control"], "no-store");
    let info: Value = get.json().await.unwrap();
    assert_eq!(info["sub"], alice.id.to_string());
    assert_eq!(info["preferred_username"], "alice");
    assert!(info.get("email").is_none(), "no email scope");
    let post = app.client.post(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(post.status(), 200);
    let form = app
        .client
        .post(&url)
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(
        form.json::<Value>().await.unwrap()["sub"],
        alice.id.to_string()
    );
    // Both ways at once: 400 invalid_request with a Bearer challenge.
    let both = app
        .client
        .post(&url)
        .bearer_auth(&at)
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    assert!(
        both.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_request""#)
    );
    // None: a bare challenge (RFC 6750 §3.1).
    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    // A query token is not accepted (RFC 6750 §2.3 is not offered).
    let query = app
        .client
        .get(format!("{url}?access_token={at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 401);

    // The claims parameter asks for a claim by name, whatever the scope (§5.5).
    let claims = json!({"userinfo": {"email": {"essential": true}}}).to_string();
    let at =
        sign_in(&app, &client, &[("scope", "openid"), ("claims", &claims)]).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let info: Value = app
        .client
        .get(&url)
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "alice@example.com");
    assert!(info.get("preferred_username").is_none());

    // ...but only within what the person could consent to: a client registered for `openid`
    // alone gets no email by asking for it by name.
    let narrow = app
        .rp("default")
        .scope("openid")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let body = sign_in(&app, &narrow, &[("scope", "openid"), ("claims", &claims)]).await;
    let at = body["access_token"].as_str().unwrap().to_owned();
    let info: Value = app
        .client
        .get(&url)
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info.get("email").is_none(), "{info}");
    let (_, id) = crate::harness::clients::jwt_parts(body["id_token"].as_str().unwrap());
    assert!(id.get("email").is_none());
}

async fn userinfo_refuses_what_is_not_a_persons_openid_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let url = app.url("/t/default/userinfo");
    // A client's own token (client credentials) is not a person's.
    let machine = app.client("default").create().await;
    let token = app.access_token(&machine).await;
    let res = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    oauth_error(res, 401, "invalid_token").await;
    assert!(challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#));
    // Garbage and revoked tokens.
    let res = app
        .client
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    oauth_error(res, 401, "invalid_token").await;
    let client = app
        .rp("default")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let body = sign_in(&app, &client, &[("scope", "openid")]).await;
    let at = body["access_token"].as_str().unwrap();
    let revoked = app.post_as(&client, "revoke", &[("token", at)]).await;
    assert_eq!(revoked.status(), 200);
    let res = app.client.get(&url).bearer_auth(at).send().await.unwrap();
    oauth_error(res, 401, "invalid_token").await;
    // A token without openid: 403 insufficient_scope naming it.
    let api = app
        .rp("default")
        .scope("openid api:read")
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let body = sign_in(&app, &api, &[("scope", "api:read")]).await;
    let res = app
        .client
        .get(&url)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    oauth_error(res, 403, "insufficient_scope").await;
    assert!(challenge.contains(r#"scope="openid""#), "{challenge}");
    // Another tenant's token means nothing here.
    app.tenant("acme").await;
    let res = app
        .client
        .get(app.url("/t/acme/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    oauth_error(res, 401, "invalid_token").await;
}

async fn userinfo_is_signed_when_the_client_asks(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.user("alice", PASSWORD).await;
    let client = app
        .rp("default")
        .meta("userinfo_signed_response_alg", json!("ES256"))
        .meta("id_token_signed_response_alg", json!("EdDSA"))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let body = sign_in(&app, &client, &[("scope", "openid email")]).await;
    // The ID token in the client's algorithm, at_hash with SHA-512 for Ed25519.
    let (header, claims) = verify_signed(&app, "default", body["id_token"].as_str().unwrap()).await;
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["at_hash"].as_str().unwrap().len(), 43);
    let res = app
        .client
        .get(app.url("/t/default/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwt");
    let jwt = res.text().await.unwrap();
    let (header, claims) = verify_signed(&app, "default", &jwt).await;
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["iss"], app.issuer("default"));
    assert_eq!(claims["aud"], client.id);
    assert_eq!(claims["email"], "alice@example.com");
}
