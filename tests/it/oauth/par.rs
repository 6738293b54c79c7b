//! Pushed authorization requests (RFC 9126) and request objects (RFC 9101) over HTTP.

use josekit::jwk::{Jwk, P_256};
use josekit::jws::{ES256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value, json};

use super::authorize::configure;
use crate::harness::browser::Browser;
use crate::harness::clients::{TestClient, oauth_error};
use crate::harness::flow::{
    PASSWORD, REDIRECT, authorize_url, callback, code_for, follow, pkce, tokens,
};
use crate::harness::{Backend, TestApp};

backends!(
    a_pushed_request_is_used_once_by_its_client_before_it_expires,
    pushed_requests_can_be_required,
    push_errors_are_json,
    request_objects_must_be_signed_by_the_client,
);

fn es_key(kid: &str) -> Jwk {
    let mut key = Jwk::generate_ec_key(P_256).unwrap();
    key.set_key_id(kid);
    key
}

fn public_jwks(key: &Jwk) -> Value {
    let mut p = key.to_public_key().unwrap();
    p.set_algorithm("ES256");
    json!({"keys": [Value::Object(p.as_ref().clone())]})
}

fn sign(key: &Jwk, claims: Value) -> String {
    let Value::Object(map) = claims else {
        unreachable!()
    };
    let mut header = JwsHeader::new();
    header.set_token_type("oauth-authz-req+jwt");
    header.set_key_id(key.key_id().unwrap());
    jwt::encode_with_signer(
        &JwtPayload::from_map(map).unwrap(),
        &header,
        &ES256.signer_from_jwk(key).unwrap(),
    )
    .unwrap()
}

async fn push(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    app.post_as(client, "par", form).await
}

fn request_form<'a>(client: &'a TestClient, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", "pushed-state"),
        ("nonce", "pushed-nonce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

async fn a_pushed_request_is_used_once_by_its_client_before_it_expires(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let client = app.rp("default").create().await;
    let other = app.rp("default").create().await;
    let p = pkce();
    let res = push(&app, &client, &request_form(&client, &p.challenge)).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);

    let url_for = |c: &TestClient| {
        let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &c.id)
            .append_pair("request_uri", &uri);
        url.to_string()
    };
    // Another client cannot use it.
    let browser = Browser::new();
    let stolen = browser.get(&url_for(&other)).await;
    assert_eq!(stolen.status, 400);
    assert!(stolen.body.contains("invalid_request_uri"));
    // Its client can; a reload of the login page before the answer resumes the request.
    let start = browser.get(&url_for(&client)).await;
    assert_eq!(start.status, 303);
    let login = app.url(start.location());
    assert_eq!(browser.get(&login).await.status, 200);
    let reloaded = browser.get(&url_for(&client)).await;
    assert_eq!(reloaded.status, 303, "still live until answered");
    let end = follow(&app, &browser, reloaded, "alice").await;
    let params = callback(&end);
    assert_eq!(
        params["state"], "pushed-state",
        "the pushed parameters count"
    );
    let body = tokens(&app, &client, &params["code"], &p.verifier).await;
    let (_, claims) = crate::harness::clients::jwt_parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "pushed-nonce");
    // Consumed by the answer.
    let used = browser.get(&url_for(&client)).await;
    assert_eq!(used.status, 400);
    assert!(used.body.contains("invalid_request_uri"));

    // Unvisited, it expires after expires_in (mock clock).
    let res = push(&app, &client, &request_form(&client, &p.challenge)).await;
    let body: Value = res.json().await.unwrap();
    let late = body["request_uri"].as_str().unwrap();
    app.state.clock.advance(61);
    let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", late);
    let expired = Browser::new().get(url.as_str()).await;
    assert_eq!(expired.status, 400);
}

async fn pushed_requests_can_be_required(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let strict = app
        .rp("default")
        .meta("require_pushed_authorization_requests", json!(true))
        .create()
        .await;
    let relaxed = app.rp("default").create().await;
    let p = pkce();
    let with = [
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let browser = Browser::new();
    let refused = callback(&browser.get(&authorize_url(&issuer, &strict, &with)).await);
    assert_eq!(refused["error"], "invalid_request");
    assert!(refused["error_description"].contains("pushed"));
    let start = browser.get(&authorize_url(&issuer, &relaxed, &with)).await;
    assert_eq!(start.status, 303, "other clients are not affected");
    assert!(start.location().starts_with("/t/default/login"));

    // Per tenant, and said so in discovery.
    configure(&app, "default", |s| {
        s.require_pushed_authorization_requests = true
    })
    .await;
    let meta = app
        .get_json("/t/default/.well-known/openid-configuration")
        .await;
    assert_eq!(meta["require_pushed_authorization_requests"], true);
    let refused = callback(&browser.get(&authorize_url(&issuer, &relaxed, &with)).await);
    assert_eq!(refused["error"], "invalid_request");
    // The pushed way works.
    let res = push(&app, &relaxed, &request_form(&relaxed, &p.challenge)).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &relaxed.id)
        .append_pair("request_uri", body["request_uri"].as_str().unwrap());
    let params = code_for(&app, &browser, url.as_str(), "alice").await;
    tokens(&app, &relaxed, &params["code"], &p.verifier).await;
}

async fn push_errors_are_json(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.rp("default").create().await;
    let public = app.rp("default").auth_method("none").create().await;
    let p = pkce();
    // Client authentication by the registered method.
    let res = app
        .client
        .post(app.url("/t/default/par"))
        .form(&request_form(&client, &p.challenge))
        .send()
        .await
        .unwrap();
    // No Authorization header: 400 (RFC 6749 §5.2).
    oauth_error(res, 400, "invalid_client").await;
    // `none` works for public clients.
    let res = app
        .client
        .post(app.url("/t/default/par"))
        .form(&request_form(&public, &p.challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Validated as /authorize would, answered as JSON (§2.3), never redirected.
    let mut form = request_form(&client, &p.challenge);
    form.retain(|(k, _)| *k != "code_challenge" && *k != "code_challenge_method");
    let body = oauth_error(push(&app, &client, &form).await, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_challenge")
    );
    let mut form = request_form(&client, &p.challenge);
    form.retain(|(k, _)| *k != "redirect_uri");
    form.push(("redirect_uri", "https://evil.example/cb"));
    oauth_error(push(&app, &client, &form).await, 400, "invalid_request").await;
    let mut form = request_form(&client, &p.challenge);
    form.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    oauth_error(push(&app, &client, &form).await, 400, "invalid_request").await;
    let mut form = request_form(&client, &p.challenge);
    form.retain(|(k, _)| *k != "client_id");
    form.push(("client_id", public.id.as_str()));
    let res = push(&app, &client, &form).await;
    assert!(
        res.status() == 400 || res.status() == 401,
        "{}",
        res.status()
    );
    let mut form = request_form(&client, &p.challenge);
    form.retain(|(k, _)| *k != "response_type");
    form.push(("response_type", "token"));
    oauth_error(
        push(&app, &client, &form).await,
        400,
        "unsupported_response_type",
    )
    .await;
}

async fn request_objects_must_be_signed_by_the_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let key = es_key("rp-1");
    let client = app
        .rp("default")
        .meta("jwks", public_jwks(&key))
        .policy(|p| p.first_party = true)
        .create()
        .await;
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;
    let p = pkce();
    let now = app.state.clock.now();
    let object = |changes: &[(&str, Value)]| {
        let mut claims: Map<String, Value> = json!({
            "iss": client.id, "aud": issuer, "exp": now + 300, "iat": now,
            "client_id": client.id, "response_type": "code", "redirect_uri": REDIRECT,
            "scope": "openid email", "state": "from-object", "nonce": "object-nonce",
            "code_challenge": p.challenge, "code_challenge_method": "S256",
        })
        .as_object()
        .unwrap()
        .clone();
        for (k, v) in changes {
            if v.is_null() {
                claims.remove(*k);
            } else {
                claims.insert((*k).to_owned(), v.clone());
            }
        }
        Value::Object(claims)
    };
    let send = |request: String, extra: &[(&str, &str)]| {
        let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &client.id)
                .append_pair("request", &request);
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    };
    // By value, the object's parameters only (§6.3): the query's state is not used, and the
    // query needs no response_type or scope.
    let res = browser
        .get(&send(sign(&key, object(&[])), &[("state", "from-query")]))
        .await;
    let params = callback(&res);
    assert_eq!(params["state"], "from-object");
    let body = tokens(&app, &client, &params["code"], &p.verifier).await;
    let (_, claims) = crate::harness::clients::jwt_parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "object-nonce");

    // Wrong key, wrong audience, expired, another client_id, unsigned: refused to the
    // verified redirect URI with invalid_request_object.
    let stranger = es_key("rp-1");
    let cases = [
        sign(&stranger, object(&[])),
        sign(&key, object(&[("aud", json!("https://other.example"))])),
        sign(&key, object(&[("exp", json!(now - 60))])),
        sign(&key, object(&[("iss", json!("someone-else"))])),
        sign(&key, object(&[("client_id", json!("someone-else"))])),
    ];
    for (i, request) in cases.into_iter().enumerate() {
        let res = browser
            .get(&send(
                request,
                &[
                    ("redirect_uri", REDIRECT),
                    ("scope", "openid"),
                    ("state", "q"),
                ],
            ))
            .await;
        let params = callback(&res);
        assert_eq!(params["error"], "invalid_request_object", "case {i}");
        assert_eq!(params["iss"], issuer);
    }
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none"}"#),
            b64.encode(object(&[]).to_string())
        )
    };
    let res = browser
        .get(&send(
            unsigned.clone(),
            &[("redirect_uri", REDIRECT), ("scope", "openid")],
        ))
        .await;
    assert_eq!(callback(&res)["error"], "invalid_request_object");
    // Unless the tenant allows unsigned objects, and then discovery says so.
    configure(&app, "default", |s| s.allow_unsigned_request_objects = true).await;
    let meta = app
        .get_json("/t/default/.well-known/openid-configuration")
        .await;
    assert!(
        meta["request_object_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );
    let res = browser.get(&send(unsigned, &[])).await;
    assert!(callback(&res).contains_key("code"));
    // A request object can be pushed too.
    let res = push(&app, &client, &[("request", &sign(&key, object(&[])))]).await;
    assert_eq!(res.status(), 201);
}
