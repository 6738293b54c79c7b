//! Client authentication (RFC 6749 §2.3, RFC 7523, OIDC Core §9): every method, its failures,
//! and assertion replay refused across replicas.

use std::sync::Arc;

use josekit::jwk::{Jwk, P_256};
use josekit::jws::{ES256, HS256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

use crate::harness::clients::{TestClient, oauth_error};
use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(
    secret_methods_are_enforced,
    client_secret_jwt_authenticates_once_per_assertion,
    private_key_jwt_with_registered_keys,
    private_key_jwt_with_a_jwks_uri,
    public_clients_send_only_their_id,
    clients_of_one_tenant_do_not_exist_in_another,
    a_burst_of_assertions_fetches_jwks_uri_once,
    unknown_client_ids_are_remembered,
    one_client_cannot_flood_the_replay_cache,
);

caches!(assertion_replay_is_refused_on_another_replica);

fn claims(client_id: &str, aud: Value, exp: i64, jti: Option<&str>) -> JwtPayload {
    let mut map = serde_json::Map::new();
    map.insert("iss".into(), client_id.into());
    map.insert("sub".into(), client_id.into());
    map.insert("aud".into(), aud);
    map.insert("exp".into(), exp.into());
    if let Some(jti) = jti {
        map.insert("jti".into(), jti.into());
    }
    JwtPayload::from_map(map).unwrap()
}

fn hs256(secret: &str, payload: &JwtPayload) -> String {
    jwt::encode_with_signer(
        payload,
        &JwsHeader::new(),
        &HS256.signer_from_bytes(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn es256(key: &Jwk, payload: &JwtPayload) -> String {
    let mut header = JwsHeader::new();
    if let Some(kid) = key.key_id() {
        header.set_key_id(kid);
    }
    jwt::encode_with_signer(payload, &header, &ES256.signer_from_jwk(key).unwrap()).unwrap()
}

async fn with_assertion(app: &TestApp, tenant: &str, assertion: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/t/{tenant}/token")))
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

async fn secret_methods_are_enforced(backend: Backend) {
    let app = TestApp::start(backend).await;
    let basic = app.client("default").create().await;
    let post = app
        .client("default")
        .auth_method("client_secret_post")
        .create()
        .await;
    assert_eq!(basic.secret.as_ref().unwrap().len(), 64, "384-bit secret");

    // A wrong secret in the header: 401 with a Basic challenge (RFC 6749 §5.2).
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..basic.clone()
    };
    let res = app
        .token(&wrong, &[("grant_type", "client_credentials")])
        .await;
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    oauth_error(res, 401, "invalid_client").await;

    let form = |c: &TestClient| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), c.id.clone()),
            ("client_secret".to_owned(), c.secret.clone().unwrap()),
        ]
    };
    let url = app.url("/t/default/token");
    // client_secret_post works for its client, not for a client_secret_basic one.
    let ok = app
        .client
        .post(&url)
        .form(&form(&post))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let res = app
        .client
        .post(&url)
        .form(&form(&basic))
        .send()
        .await
        .unwrap();
    // RFC 6749 §5.2: credentials in the body fail with a 400 and no challenge.
    assert!(res.headers().get("www-authenticate").is_none());
    oauth_error(res, 400, "invalid_client").await;
    // The registered method is the only one accepted.
    let res = app
        .token(&post, &[("grant_type", "client_credentials")])
        .await;
    oauth_error(res, 401, "invalid_client").await;
    // RFC 6749 §2.3: one method per request.
    let res = app
        .client
        .post(&url)
        .basic_auth(&basic.id, basic.secret.as_deref())
        .form(&form(&basic))
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_request").await;
    // Unknown clients, no credentials, malformed headers.
    let unknown = TestClient {
        id: "no-such-client".into(),
        ..basic.clone()
    };
    let res = app
        .token(&unknown, &[("grant_type", "client_credentials")])
        .await;
    oauth_error(res, 401, "invalid_client").await;
    let res = app
        .client
        .post(&url)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client").await;
    for header in ["Basic !!!", "Basic", "Basic Og==", "Bearer abc"] {
        let res = app
            .client
            .post(&url)
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        oauth_error(res, 401, "invalid_client").await;
    }
    // A rotated secret replaces the old one at once.
    let tenant = app.default_tenant().await;
    let (_, issued) = app
        .state
        .clients()
        .update(
            tenant.id,
            &latchkey::model::client::ClientId::parse(&basic.id).unwrap(),
            latchkey::clients::ClientUpdate {
                rotate_secret: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let res = app
        .token(&basic, &[("grant_type", "client_credentials")])
        .await;
    oauth_error(res, 401, "invalid_client").await;
    let rotated = TestClient {
        secret: issued.client_secret,
        ..basic
    };
    assert_eq!(
        app.token(&rotated, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
}

async fn client_secret_jwt_authenticates_once_per_assertion(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .auth_method("client_secret_jwt")
        .create()
        .await;
    let secret = client.secret.clone().unwrap();
    let now = app.state.clock.now();
    let token_url = app.url("/t/default/token");
    let good = hs256(
        &secret,
        &claims(&client.id, json!(token_url), now + 60, Some("a-1")),
    );
    assert_eq!(with_assertion(&app, "default", &good).await.status(), 200);
    // RFC 7523 §3: a jti is used once.
    let res = with_assertion(&app, "default", &good).await;
    oauth_error(res, 400, "invalid_client").await;
    // The issuer is an accepted audience too.
    let by_issuer = hs256(
        &secret,
        &claims(
            &client.id,
            json!(app.issuer("default")),
            now + 60,
            Some("a-2"),
        ),
    );
    assert_eq!(
        with_assertion(&app, "default", &by_issuer).await.status(),
        200
    );
    for (why, assertion) in [
        (
            "wrong audience",
            hs256(
                &secret,
                &claims(&client.id, json!("https://elsewhere"), now + 60, Some("b")),
            ),
        ),
        (
            "expired",
            hs256(
                &secret,
                &claims(&client.id, json!(token_url), now - 120, Some("c")),
            ),
        ),
        (
            "lives too long",
            hs256(
                &secret,
                &claims(&client.id, json!(token_url), now + 86_400, Some("d")),
            ),
        ),
        (
            "no jti",
            hs256(
                &secret,
                &claims(&client.id, json!(token_url), now + 60, None),
            ),
        ),
        (
            "wrong secret",
            hs256(
                "not-the-secret-but-long-enough-32b",
                &claims(&client.id, json!(token_url), now + 60, Some("e")),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let res = with_assertion(&app, "default", &assertion).await;
        assert_eq!(res.status(), 400, "{why}");
    }
    // The assertion type must be the RFC 7523 one.
    let res = app
        .client
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client").await;
    // The HMAC key is sealed, not stored in the clear: the secret hash is all a basic
    // request could use, and the method is pinned anyway.
    let res = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    oauth_error(res, 401, "invalid_client").await;
}

fn es_key(kid: &str) -> Jwk {
    let mut key = Jwk::generate_ec_key(P_256).unwrap();
    key.set_key_id(kid);
    key
}

fn public_jwks(keys: &[&Jwk]) -> Value {
    json!({"keys": keys.iter().map(|k| {
        let mut p = k.to_public_key().unwrap();
        p.set_algorithm("ES256");
        Value::Object(p.as_ref().clone())
    }).collect::<Vec<_>>()})
}

async fn private_key_jwt_with_registered_keys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = es_key("k1");
    let client = app
        .client("default")
        .auth_method("private_key_jwt")
        .meta("jwks", public_jwks(&[&key]))
        .create()
        .await;
    assert!(client.secret.is_none(), "no secret for private_key_jwt");
    let now = app.state.clock.now();
    let aud = json!(app.url("/t/default/token"));
    let good = es256(&key, &claims(&client.id, aud.clone(), now + 60, Some("p1")));
    assert_eq!(with_assertion(&app, "default", &good).await.status(), 200);
    oauth_error(
        with_assertion(&app, "default", &good).await,
        400,
        "invalid_client",
    )
    .await;
    let stranger = es_key("k1");
    let forged = es256(
        &stranger,
        &claims(&client.id, aud.clone(), now + 60, Some("p2")),
    );
    oauth_error(
        with_assertion(&app, "default", &forged).await,
        400,
        "invalid_client",
    )
    .await;
    // alg "none" and HMAC with the public key as secret are refused.
    let header = base64_json(&json!({"alg": "none"}));
    let body = base64_json(
        &serde_json::to_value(claims(&client.id, aud.clone(), now + 60, Some("p3")).claims_set())
            .unwrap(),
    );
    let none = format!("{header}.{body}.");
    oauth_error(
        with_assertion(&app, "default", &none).await,
        400,
        "invalid_client",
    )
    .await;
    let hmac = hs256(
        &public_jwks(&[&key]).to_string(),
        &claims(&client.id, aud, now + 60, Some("p4")),
    );
    oauth_error(
        with_assertion(&app, "default", &hmac).await,
        400,
        "invalid_client",
    )
    .await;
}

fn base64_json(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Serves `jwks` at `http://127.0.0.1:PORT/jwks` until stopped, counting requests in `hits`
/// and answering each after `delay`.
async fn jwks_server(
    jwks: Arc<std::sync::Mutex<Value>>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    delay: std::time::Duration,
) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let jwks = jwks.clone();
        let hits = hits.clone();
        actix_web::App::new().route(
            "/jwks",
            actix_web::web::get().to(move || {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = jwks.lock().unwrap().clone();
                async move {
                    tokio::time::sleep(delay).await;
                    actix_web::HttpResponse::Ok().json(body)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/jwks"), handle)
}

async fn private_key_jwt_with_a_jwks_uri(backend: Backend) {
    let data = Arc::new(TestData::new(backend, CacheKind::Memory).await);
    // By default a jwks_uri on a private or loopback address is never fetched (SSRF).
    let guarded = TestApp::start_on(data.clone(), |s| s.oauth.allow_http_jwks_uri = true).await;
    let app = TestApp::start_on(data.clone(), |s| {
        s.oauth.allow_http_jwks_uri = true;
        s.oauth.allow_private_jwks_uri = true;
    })
    .await;
    let first = es_key("one");
    let published = Arc::new(std::sync::Mutex::new(public_jwks(&[&first])));
    let (uri, server) =
        jwks_server(published.clone(), Arc::default(), std::time::Duration::ZERO).await;
    let client = app
        .client("default")
        .auth_method("private_key_jwt")
        .meta("jwks_uri", json!(uri))
        .meta("token_endpoint_auth_signing_alg", json!("ES256"))
        .create()
        .await;
    let now = app.state.clock.now();
    let aud = json!([app.issuer("default"), guarded.issuer("default")]);
    let refused = es256(
        &first,
        &claims(&client.id, aud.clone(), now + 60, Some("u0")),
    );
    oauth_error(
        with_assertion(&guarded, "default", &refused).await,
        400,
        "invalid_client",
    )
    .await;
    let a = es256(
        &first,
        &claims(&client.id, aud.clone(), now + 60, Some("u1")),
    );
    assert_eq!(with_assertion(&app, "default", &a).await.status(), 200);
    // The client rotates its key: the cached document is refetched once.
    let second = es_key("two");
    *published.lock().unwrap() = public_jwks(&[&second]);
    let b = es256(
        &second,
        &claims(&client.id, aud.clone(), now + 60, Some("u2")),
    );
    assert_eq!(with_assertion(&app, "default", &b).await.status(), 200);
    let stale = es256(
        &first,
        &claims(&client.id, aud.clone(), now + 60, Some("u3")),
    );
    oauth_error(
        with_assertion(&app, "default", &stale).await,
        400,
        "invalid_client",
    )
    .await;
    // Moved to another jwks_uri: the new keys are fetched at once, not after the pause that
    // follows a failed refetch.
    let third = es_key("three");
    let (moved, moved_server) = jwks_server(
        Arc::new(std::sync::Mutex::new(public_jwks(&[&third]))),
        Arc::default(),
        std::time::Duration::ZERO,
    )
    .await;
    let tenant = app.default_tenant().await;
    let id = latchkey::model::client::ClientId::parse(&client.id).unwrap();
    let current = app.state.clients().get(tenant.id, &id).await.unwrap();
    let mut metadata = current.metadata.clone();
    metadata.jwks_uri = Some(moved);
    app.state
        .clients()
        .update(
            tenant.id,
            &id,
            latchkey::clients::ClientUpdate {
                metadata: Some(metadata),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let c = es256(&third, &claims(&client.id, aud, now + 60, Some("u4")));
    assert_eq!(with_assertion(&app, "default", &c).await.status(), 200);
    server.stop(false).await;
    moved_server.stop(false).await;
}

async fn public_clients_send_only_their_id(backend: Backend) {
    let app = TestApp::start(backend).await;
    let public = app
        .client("default")
        .grants(&["refresh_token"])
        .auth_method("none")
        .create()
        .await;
    assert!(public.secret.is_none());
    // Authenticated as itself (no secret), it reaches the grant checks.
    let res = app
        .client
        .post(app.url("/t/default/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "unknown"),
            ("client_id", public.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_grant").await;
    // A confidential client cannot skip its secret.
    let confidential = app.client("default").create().await;
    let res = app
        .client
        .post(app.url("/t/default/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", confidential.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client").await;
    // Public clients may not introspect (RFC 7662 §2.1).
    let res = app
        .client
        .post(app.url("/t/default/introspect"))
        .form(&[("token", "x"), ("client_id", public.id.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client").await;
}

async fn clients_of_one_tenant_do_not_exist_in_another(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.tenant("acme").await;
    let at_default = app.client("default").create().await;
    let at_acme = TestClient {
        tenant: "acme".into(),
        ..at_default.clone()
    };
    oauth_error(
        app.token(&at_acme, &[("grant_type", "client_credentials")])
            .await,
        401,
        "invalid_client",
    )
    .await;
    // A token from default is inactive at acme, even for acme's own clients.
    let token = app.access_token(&at_default).await;
    let acme_client = app.client("acme").create().await;
    assert_eq!(
        app.introspect(&acme_client, &token).await,
        json!({"active": false})
    );
    assert_eq!(app.introspect(&at_default, &token).await["active"], true);
}

async fn assertion_replay_is_refused_on_another_replica(cache: CacheKind) {
    let backend = match cache {
        CacheKind::Memory => Backend::Sqlite,
        CacheKind::Redis => Backend::Postgres,
    };
    let data = Arc::new(TestData::new(backend, cache).await);
    let a = TestApp::start_on(data.clone(), |_| {}).await;
    let shared = match cache {
        CacheKind::Memory => Some(a.state.cache.clone()),
        CacheKind::Redis => None,
    };
    let b = TestApp::start_with(data.clone(), data.settings(), shared).await;
    let client = a
        .client("default")
        .auth_method("client_secret_jwt")
        .create()
        .await;
    let now = a.state.clock.now();
    let aud = json!([a.issuer("default"), b.issuer("default")]);
    let assertion = hs256(
        client.secret.as_ref().unwrap(),
        &claims(&client.id, aud, now + 60, Some("replica-jti")),
    );
    assert_eq!(
        with_assertion(&a, "default", &assertion).await.status(),
        200
    );
    oauth_error(
        with_assertion(&b, "default", &assertion).await,
        400,
        "invalid_client",
    )
    .await;
}

async fn a_burst_of_assertions_fetches_jwks_uri_once(backend: Backend) {
    let app = TestApp::start_on(
        Arc::new(TestData::new(backend, CacheKind::Memory).await),
        |s| {
            s.oauth.allow_http_jwks_uri = true;
            s.oauth.allow_private_jwks_uri = true;
        },
    )
    .await;
    let key = es_key("burst");
    let published = Arc::new(std::sync::Mutex::new(public_jwks(&[&key])));
    let hits: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    let (uri, server) = jwks_server(
        published,
        hits.clone(),
        std::time::Duration::from_millis(300),
    )
    .await;
    let client = app
        .client("default")
        .auth_method("private_key_jwt")
        .meta("jwks_uri", json!(uri))
        .create()
        .await;
    let now = app.state.clock.now();
    let aud = json!(app.url("/t/default/token"));
    let assertions: Vec<String> = (0..8)
        .map(|n| {
            es256(
                &key,
                &claims(&client.id, aud.clone(), now + 60, Some(&format!("b{n}"))),
            )
        })
        .collect();
    let results = futures_util::future::join_all(
        assertions
            .iter()
            .map(|a| with_assertion(&app, "default", a)),
    )
    .await;
    for res in results {
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one fetch for the whole burst"
    );
    server.stop(false).await;
}

async fn unknown_client_ids_are_remembered(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.default_tenant().await;
    let ghost = TestClient {
        id: "ghost-client".into(),
        secret: Some("x".into()),
        tenant: "default".into(),
    };
    oauth_error(
        app.token(&ghost, &[("grant_type", "client_credentials")])
            .await,
        401,
        "invalid_client",
    )
    .await;
    // The next request with this id is answered from the replica's memory, not the store.
    let key = (
        tenant.id,
        latchkey::model::client::ClientId::parse("ghost-client").unwrap(),
    );
    assert!(app.state.hot.clients.unknown.get(&key).is_some());
    // Real clients are unaffected.
    let real = app.client("default").create().await;
    app.access_token(&real).await;
}

async fn one_client_cannot_flood_the_replay_cache(backend: Backend) {
    let app = TestApp::start_on(
        Arc::new(TestData::new(backend, CacheKind::Memory).await),
        |s| s.oauth.client_assertions_per_minute = 3,
    )
    .await;
    let noisy = app
        .client("default")
        .auth_method("client_secret_jwt")
        .create()
        .await;
    let quiet = app
        .client("default")
        .auth_method("client_secret_jwt")
        .create()
        .await;
    let now = app.state.clock.now();
    let aud = json!(app.url("/t/default/token"));
    let assertion = |client: &TestClient, jti: &str| {
        hs256(
            client.secret.as_deref().unwrap(),
            &claims(&client.id, aud.clone(), now + 60, Some(jti)),
        )
    };
    for n in 0..3 {
        let a = assertion(&noisy, &format!("n{n}"));
        assert_eq!(with_assertion(&app, "default", &a).await.status(), 200);
    }
    let res = with_assertion(&app, "default", &assertion(&noisy, "n3")).await;
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );
    oauth_error(res, 429, "rate_limited").await;
    // Other clients are not held back by it.
    let a = assertion(&quiet, "q0");
    assert_eq!(with_assertion(&app, "default", &a).await.status(), 200);
}
