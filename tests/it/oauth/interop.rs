//! What relying-party libraries send as they are (openid-client 6, oauth4webapi 3): loopback
//! redirect URIs without `application_type`, `Ed25519` as a JWS `alg`, HS384/HS512 client
//! assertions, and RFC 7592 reads; and keys that would cost too much to verify.

use josekit::jwk::{Jwk, alg::ed::EdCurve};
use josekit::jws::{EdDSA, HS384, HS512, JwsHeader, JwsSigner};
use josekit::jwt::{self, JwtPayload};
use latchkey::model::{RegistrationMode, TenantSlug};
use serde_json::{Value, json};

use crate::harness::clients::oauth_error;
use crate::harness::{Backend, TestApp};

backends!(
    request_objects_take_ed25519_under_both_names,
    loopback_http_redirect_uris_register_without_application_type,
    rfc7592_read_returns_the_registration_access_token,
    ed25519_is_accepted_under_both_names,
    client_secret_jwt_works_with_every_advertised_hmac,
    oversized_rsa_keys_are_refused_at_registration,
);

async fn open_registration(app: &TestApp) {
    let mut settings = app.default_tenant().await.settings;
    settings.registration = Some(RegistrationMode::Open);
    app.state
        .tenants()
        .configure(&TenantSlug::default_tenant(), settings)
        .await
        .unwrap();
}

async fn register(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/t/default/register"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn loopback_http_redirect_uris_register_without_application_type(backend: Backend) {
    let app = TestApp::start(backend).await;
    open_registration(&app).await;
    for uri in [
        "http://127.0.0.1:8765/cb",
        "http://localhost:3000/callback",
        "http://[::1]:8080/cb",
        "http://127.1.2.3/cb",
    ] {
        let res = register(&app, &json!({"redirect_uris": [uri]})).await;
        assert_eq!(res.status(), 201, "{uri}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["redirect_uris"], json!([uri]));
        assert_eq!(body["application_type"], "web");
    }
    for uri in [
        "http://app.example/cb",
        "http://localhost.example/cb",
        "http://10.0.0.1/cb",
        "http://127.0.0.1:8765/cb#frag",
    ] {
        let res = register(&app, &json!({"redirect_uris": [uri]})).await;
        oauth_error(res, 400, "invalid_redirect_uri").await;
    }
}

async fn rfc7592_read_returns_the_registration_access_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    open_registration(&app).await;
    let res = register(
        &app,
        &json!({"redirect_uris": ["http://127.0.0.1:9000/cb"], "client_name": "CLI"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let token = created["registration_access_token"].as_str().unwrap();
    let uri = created["registration_client_uri"].as_str().unwrap();
    for _ in 0..2 {
        let res = app.client.get(uri).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let read: Value = res.json().await.unwrap();
        // RFC 7592 §3: REQUIRED; a read does not rotate it.
        assert_eq!(read["registration_access_token"], token);
        assert_eq!(read["registration_client_uri"], uri);
        assert_eq!(read["client_id"], created["client_id"]);
    }
    // Only an update rotates it.
    let mut update = created.clone();
    for gone in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        update.as_object_mut().unwrap().remove(gone);
    }
    let res = app
        .client
        .put(uri)
        .bearer_auth(token)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    let rotated = updated["registration_access_token"].as_str().unwrap();
    assert_ne!(rotated, token);
    let res = app.client.get(uri).bearer_auth(token).send().await.unwrap();
    oauth_error(res, 401, "invalid_token").await;
    let res = app
        .client
        .get(uri)
        .bearer_auth(rotated)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn claims(client_id: &str, aud: &str, exp: i64, jti: &str) -> JwtPayload {
    let mut payload = JwtPayload::new();
    payload.set_issuer(client_id);
    payload.set_subject(client_id);
    payload.set_audience(vec![aud]);
    payload.set_jwt_id(jti);
    payload.set_claim("exp", Some(json!(exp))).unwrap();
    payload
}

/// A compact JWS with exactly this header, signed by `signer` (josekit writes its own `alg`).
fn sign_raw(header: &Value, payload: &JwtPayload, signer: &dyn JwsSigner) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let signature = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signature))
}

async fn with_assertion(app: &TestApp, assertion: &str) -> reqwest::Response {
    app.client
        .post(app.url("/t/default/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

async fn ed25519_is_accepted_under_both_names(backend: Backend) {
    let app = TestApp::start(backend).await;
    let discovery = app
        .get_json("/t/default/.well-known/openid-configuration")
        .await;
    let advertised = discovery["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(advertised.contains(&json!("Ed25519")), "{advertised:?}");
    assert!(advertised.contains(&json!("EdDSA")), "{advertised:?}");

    let mut key = Jwk::generate_ed_key(EdCurve::Ed25519).unwrap();
    key.set_key_id("ed-1");
    let public = key.to_public_key().unwrap();
    for registered in [None, Some("Ed25519"), Some("EdDSA")] {
        let mut builder = app.client("default").auth_method("private_key_jwt").meta(
            "jwks",
            json!({"keys": [Value::Object(public.as_ref().clone())]}),
        );
        if let Some(alg) = registered {
            builder = builder.meta("token_endpoint_auth_signing_alg", json!(alg));
        }
        let client = builder.create().await;
        let now = app.state.clock.now();
        let aud = app.url("/t/default/token");
        let signer = EdDSA.signer_from_jwk(&key).unwrap();
        for (n, alg) in ["Ed25519", "EdDSA"].iter().enumerate() {
            let header = json!({"alg": alg, "kid": "ed-1", "typ": "JWT"});
            let token = sign_raw(
                &header,
                &claims(&client.id, &aud, now + 60, &format!("ed-{n}")),
                &signer,
            );
            let res = with_assertion(&app, &token).await;
            assert_eq!(res.status(), 200, "alg {alg} registered {registered:?}");
        }
        // A tampered signature under the new name still fails, as a 400 (no header used).
        let header = json!({"alg": "Ed25519", "kid": "ed-1"});
        let signed = sign_raw(
            &header,
            &claims(&client.id, &aud, now + 60, "ed-forged"),
            &signer,
        );
        let (input, signature) = signed.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{input}.{flipped}{}", &signature[1..]);
        oauth_error(with_assertion(&app, &forged).await, 400, "invalid_client").await;
    }
}

/// RFC 9101 with an Ed25519 key: request objects signed under either name, for a client that
/// registered either (or none) as its `request_object_signing_alg`.
async fn request_objects_take_ed25519_under_both_names(backend: Backend) {
    use crate::harness::browser::Browser;
    use crate::harness::flow::{PASSWORD, REDIRECT, callback, pkce};
    let app = TestApp::start(backend).await;
    app.user("alice", PASSWORD).await;
    let issuer = app.issuer("default");
    let mut key = Jwk::generate_ed_key(EdCurve::Ed25519).unwrap();
    key.set_key_id("ed-ro");
    let public = key.to_public_key().unwrap();
    let signer = EdDSA.signer_from_jwk(&key).unwrap();
    let browser = Browser::new();
    browser.login(&issuer, "alice", PASSWORD).await;
    let p = pkce();
    for registered in [None, Some("Ed25519"), Some("EdDSA")] {
        let mut builder = app
            .rp("default")
            .meta(
                "jwks",
                json!({"keys": [Value::Object(public.as_ref().clone())]}),
            )
            .policy(|p| p.first_party = true);
        if let Some(alg) = registered {
            builder = builder.meta("request_object_signing_alg", json!(alg));
        }
        let client = builder.create().await;
        let now = app.state.clock.now();
        for alg in ["Ed25519", "EdDSA"] {
            let Value::Object(claims) = json!({
                "iss": client.id, "aud": issuer, "exp": now + 300, "iat": now,
                "client_id": client.id, "response_type": "code", "redirect_uri": REDIRECT,
                "scope": "openid", "state": alg, "nonce": "n",
                "code_challenge": p.challenge, "code_challenge_method": "S256",
            }) else {
                unreachable!()
            };
            let object = sign_raw(
                &json!({"alg": alg, "kid": "ed-ro", "typ": "oauth-authz-req+jwt"}),
                &JwtPayload::from_map(claims).unwrap(),
                &signer,
            );
            let mut url = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
            url.query_pairs_mut()
                .append_pair("client_id", &client.id)
                .append_pair("request", &object);
            let params = callback(&browser.get(url.as_str()).await);
            assert_eq!(params["state"], alg, "registered {registered:?}");
            assert!(
                params.contains_key("code"),
                "alg {alg} registered {registered:?}: {params:?}"
            );
        }
    }
}

async fn client_secret_jwt_works_with_every_advertised_hmac(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (alg, n) in [("HS256", 0), ("HS384", 1), ("HS512", 2)] {
        let client = app
            .client("default")
            .auth_method("client_secret_jwt")
            .meta("token_endpoint_auth_signing_alg", json!(alg))
            .create()
            .await;
        let secret = client.secret.clone().unwrap();
        let now = app.state.clock.now();
        let payload = claims(
            &client.id,
            &app.url("/t/default/token"),
            now + 60,
            &format!("h-{n}"),
        );
        let token = match alg {
            "HS256" => jwt::encode_with_signer(
                &payload,
                &JwsHeader::new(),
                &josekit::jws::HS256
                    .signer_from_bytes(secret.as_bytes())
                    .unwrap(),
            ),
            "HS384" => jwt::encode_with_signer(
                &payload,
                &JwsHeader::new(),
                &HS384.signer_from_bytes(secret.as_bytes()).unwrap(),
            ),
            _ => jwt::encode_with_signer(
                &payload,
                &JwsHeader::new(),
                &HS512.signer_from_bytes(secret.as_bytes()).unwrap(),
            ),
        }
        .unwrap();
        let res = with_assertion(&app, &token).await;
        assert_eq!(res.status(), 200, "{alg}");
    }
}

async fn oversized_rsa_keys_are_refused_at_registration(backend: Backend) {
    let app = TestApp::start(backend).await;
    open_registration(&app).await;
    let body = |jwk: &Jwk| {
        json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [Value::Object(jwk.to_public_key().unwrap().as_ref().clone())]},
        })
    };
    let small = Jwk::generate_rsa_key(1024).unwrap();
    let res = register(&app, &body(&small)).await;
    let error = oauth_error(res, 400, "invalid_client_metadata").await;
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("2048-4096"),
        "{error}"
    );
    let ok = Jwk::generate_rsa_key(2048).unwrap();
    assert_eq!(register(&app, &body(&ok)).await.status(), 201);
    // A key by value that does not parse is refused now, not at the first assertion.
    let res = register(
        &app,
        &json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "!!"}]},
        }),
    )
    .await;
    oauth_error(res, 400, "invalid_client_metadata").await;
}
