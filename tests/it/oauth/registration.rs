//! Dynamic client registration (RFC 7591), its management protocol (RFC 7592), the tenant's
//! registration policy, software statements, CORS and the expiry of unused clients.

use josekit::jwk::{Jwk, P_256};
use josekit::jws::{ES256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use latchkey::model::token::Scope;
use latchkey::model::{RegistrationMode, TenantSettings, TenantSlug};
use serde_json::{Value, json};

use crate::harness::clients::{TestClient, oauth_error};
use crate::harness::{Backend, TestApp};

backends!(
    registration_needs_an_initial_access_token_by_default,
    open_registration_is_rate_limited,
    rate_limits_see_through_trusted_proxies_only,
    metadata_is_validated,
    registered_clients_are_managed_with_their_token,
    software_statements_are_verified,
    registration_answers_browsers,
    unused_dynamic_clients_expire,
);

async fn configure(app: &TestApp, change: impl FnOnce(&mut TenantSettings)) {
    let mut settings = app.default_tenant().await.settings;
    change(&mut settings);
    app.state
        .tenants()
        .configure(&TenantSlug::default_tenant(), settings)
        .await
        .unwrap();
}

async fn register(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = app.client.post(app.url("/t/default/register")).json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

fn web_client() -> Value {
    json!({
        "redirect_uris": ["https://app.example.com/cb"],
        "client_name": "Example",
        "grant_types": ["authorization_code", "client_credentials"],
    })
}

async fn registration_needs_an_initial_access_token_by_default(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = register(&app, None, &web_client()).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    oauth_error(res, 401, "invalid_token").await;
    oauth_error(
        register(&app, Some("made-up"), &web_client()).await,
        401,
        "invalid_token",
    )
    .await;
    let once = app.initial_access_token(None, Some(1)).await;
    // Dynamic clients get only the scopes the tenant offers them (none unless configured);
    // a refused registration does not spend the token.
    let mut scoped = web_client();
    scoped["scope"] = json!("api:read");
    oauth_error(
        register(&app, Some(&once), &scoped).await,
        400,
        "invalid_client_metadata",
    )
    .await;
    configure(&app, |s| {
        s.registration_scope = Some(Scope::parse("api:read api:write").unwrap())
    })
    .await;
    scoped["scope"] = json!("api:admin");
    oauth_error(
        register(&app, Some(&once), &scoped).await,
        400,
        "invalid_client_metadata",
    )
    .await;
    scoped["scope"] = json!("api:read");
    let res = register(&app, Some(&once), &scoped).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_name"], "Example");
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].is_i64());
    assert!(body["client_secret"].as_str().unwrap().len() >= 43);
    assert!(body["registration_access_token"].is_string());
    let id = body["client_id"].as_str().unwrap();
    assert_eq!(
        body["registration_client_uri"],
        format!("{}/register/{id}", app.issuer("default"))
    );
    // The client works at once.
    let client = TestClient {
        id: id.to_owned(),
        secret: body["client_secret"].as_str().map(str::to_owned),
        tenant: "default".into(),
    };
    let token = app.access_token(&client).await;
    assert_eq!(app.introspect(&client, &token).await["scope"], "api:read");
    // Single use: spent. Expiring tokens end.
    oauth_error(
        register(&app, Some(&once), &web_client()).await,
        401,
        "invalid_token",
    )
    .await;
    let reusable = app.initial_access_token(Some(60), None).await;
    assert_eq!(
        register(&app, Some(&reusable), &web_client())
            .await
            .status(),
        201
    );
    assert_eq!(
        register(&app, Some(&reusable), &web_client())
            .await
            .status(),
        201
    );
    app.state.clock.advance(60);
    oauth_error(
        register(&app, Some(&reusable), &web_client()).await,
        401,
        "invalid_token",
    )
    .await;
    // Closed: nobody, token or not.
    let fresh = app.initial_access_token(None, None).await;
    configure(&app, |s| s.registration = Some(RegistrationMode::Closed)).await;
    oauth_error(
        register(&app, Some(&fresh), &web_client()).await,
        403,
        "access_denied",
    )
    .await;
    oauth_error(
        register(&app, None, &web_client()).await,
        403,
        "access_denied",
    )
    .await;
}

async fn open_registration_is_rate_limited(backend: Backend) {
    let app = TestApp::start_on(
        std::sync::Arc::new(
            crate::harness::TestData::new(backend, crate::harness::CacheKind::Memory).await,
        ),
        |s| s.oauth.registration_per_ip_per_hour = 2,
    )
    .await;
    configure(&app, |s| s.registration = Some(RegistrationMode::Open)).await;
    assert_eq!(register(&app, None, &web_client()).await.status(), 201);
    assert_eq!(register(&app, None, &web_client()).await.status(), 201);
    let res = register(&app, None, &web_client()).await;
    assert_eq!(res.headers()["retry-after"], "3600");
    oauth_error(res, 429, "rate_limited").await;
    // The window passes (the counter lives in the shared cache with a real TTL, so a token
    // holder is the way around it meanwhile).
    let token = app.initial_access_token(None, None).await;
    assert_eq!(
        register(&app, Some(&token), &web_client()).await.status(),
        201
    );
}

async fn metadata_is_validated(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.initial_access_token(None, None).await;
    for (body, code) in [
        (
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": ["/cb"]}), "invalid_redirect_uri"),
        (
            json!({"grant_types": ["authorization_code"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": "https://app.example.com/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "made_up"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "jwks_uri": "http://keys.example.com/"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        oauth_error(register(&app, Some(&token), &body).await, 400, code).await;
    }
    let res = app
        .client
        .post(app.url("/t/default/register"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client_metadata").await;
    let huge = format!("{{\"client_name\": \"{}\"}}", "x".repeat(300_000));
    let res = app
        .client
        .post(app.url("/t/default/register"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    oauth_error(res, 413, "invalid_request").await;
    let mut statement = web_client();
    statement["software_statement"] = json!("not-a-jwt");
    oauth_error(
        register(&app, Some(&token), &statement).await,
        400,
        "invalid_software_statement",
    )
    .await;
    // Native apps: loopback and private-use schemes (RFC 8252); unknown members are ignored.
    let res = register(
        &app,
        Some(&token),
        &json!({
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1:7000/cb", "com.example.app:/oauth2redirect"],
            "frobnicate": 42,
        }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert!(body.get("frobnicate").is_none());
}

async fn registered_clients_are_managed_with_their_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let iat = app.initial_access_token(None, None).await;
    let created: Value = register(&app, Some(&iat), &web_client())
        .await
        .json()
        .await
        .unwrap();
    let uri = created["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = created["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let other: Value = register(&app, Some(&iat), &web_client())
        .await
        .json()
        .await
        .unwrap();
    let other_token = other["registration_access_token"].as_str().unwrap();

    let read = app
        .client
        .get(&uri)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["redirect_uris"], created["redirect_uris"]);
    // Wrong, missing or another client's token: 401 alike, for unknown clients too.
    for (url, bearer) in [
        (uri.clone(), Some(other_token)),
        (uri.clone(), Some("nope")),
        (uri.clone(), None),
        (
            format!("{}/register/unknown", app.issuer("default")),
            Some(token.as_str()),
        ),
    ] {
        let mut req = app.client.get(&url);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        oauth_error(req.send().await.unwrap(), 401, "invalid_token").await;
    }
    // PUT replaces the metadata and rotates the registration access token.
    let mut update = web_client();
    update["client_id"] = json!(id);
    update["client_name"] = json!("Renamed");
    update["redirect_uris"] = json!(["https://app.example.com/new"]);
    let res = app
        .client
        .put(&uri)
        .bearer_auth(&token)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["client_name"], "Renamed");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://app.example.com/new"])
    );
    let rotated = updated["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, token);
    oauth_error(
        app.client
            .get(&uri)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        401,
        "invalid_token",
    )
    .await;
    // The secret survives a PUT; a wrong one or a different client_id is refused.
    let client = TestClient {
        id: id.clone(),
        secret: created["client_secret"].as_str().map(str::to_owned),
        tenant: "default".into(),
    };
    app.access_token(&client).await;
    let mut bad = update.clone();
    bad["client_id"] = json!("someone-else");
    oauth_error(
        app.client
            .put(&uri)
            .bearer_auth(&rotated)
            .json(&bad)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let mut bad = update.clone();
    bad["client_secret"] = json!("wrong");
    oauth_error(
        app.client
            .put(&uri)
            .bearer_auth(&rotated)
            .json(&bad)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let mut bad = update.clone();
    bad["registration_access_token"] = json!("x");
    oauth_error(
        app.client
            .put(&uri)
            .bearer_auth(&rotated)
            .json(&bad)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_client_metadata",
    )
    .await;
    // DELETE: gone, and the token with it.
    let res = app
        .client
        .delete(&uri)
        .bearer_auth(&rotated)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    oauth_error(
        app.client
            .get(&uri)
            .bearer_auth(&rotated)
            .send()
            .await
            .unwrap(),
        401,
        "invalid_token",
    )
    .await;
    oauth_error(
        app.token(&client, &[("grant_type", "client_credentials")])
            .await,
        401,
        "invalid_client",
    )
    .await;
    // A registration token of one tenant means nothing in another.
    app.tenant("acme").await;
    let acme_uri = format!(
        "{}/register/{}",
        app.issuer("acme"),
        other["client_id"].as_str().unwrap()
    );
    oauth_error(
        app.client
            .get(&acme_uri)
            .bearer_auth(other_token)
            .send()
            .await
            .unwrap(),
        401,
        "invalid_token",
    )
    .await;
}

fn statement(key: &Jwk, claims: Value) -> String {
    let mut header = JwsHeader::new();
    header.set_key_id("publisher");
    let Value::Object(map) = claims else {
        unreachable!()
    };
    jwt::encode_with_signer(
        &JwtPayload::from_map(map).unwrap(),
        &header,
        &ES256.signer_from_jwk(key).unwrap(),
    )
    .unwrap()
}

async fn software_statements_are_verified(backend: Backend) {
    let app = TestApp::start(backend).await;
    let iat = app.initial_access_token(None, None).await;
    let mut publisher = Jwk::generate_ec_key(P_256).unwrap();
    publisher.set_key_id("publisher");
    let signed = statement(
        &publisher,
        json!({"iss": "https://publisher.example.com", "software_id": "app-4711", "client_name": "From the statement"}),
    );
    let mut body = web_client();
    body["software_statement"] = json!(signed);
    // Nobody is trusted yet.
    oauth_error(
        register(&app, Some(&iat), &body).await,
        400,
        "unapproved_software_statement",
    )
    .await;
    let mut public = publisher.to_public_key().unwrap();
    public.set_key_id("publisher");
    let jwks = json!({"keys": [Value::Object(public.as_ref().clone())]});
    configure(&app, |s| s.software_statement_jwks = Some(jwks.clone())).await;
    let res = register(&app, Some(&iat), &body).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    // RFC 7591 §2.3: the statement's values win over the request's.
    assert_eq!(created["client_name"], "From the statement");
    assert_eq!(created["software_id"], "app-4711");
    assert_eq!(created["software_statement"], json!(signed));
    let mut forged = Jwk::generate_ec_key(P_256).unwrap();
    forged.set_key_id("publisher");
    body["software_statement"] = json!(statement(&forged, json!({"iss": "x"})));
    oauth_error(
        register(&app, Some(&iat), &body).await,
        400,
        "unapproved_software_statement",
    )
    .await;
    body["software_statement"] = json!(statement(&publisher, json!({"software_id": "no-iss"})));
    oauth_error(
        register(&app, Some(&iat), &body).await,
        400,
        "invalid_software_statement",
    )
    .await;
    configure(&app, |s| s.require_software_statement = true).await;
    oauth_error(
        register(&app, Some(&iat), &web_client()).await,
        400,
        "invalid_software_statement",
    )
    .await;
}

async fn registration_answers_browsers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/t/default/register"))
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(
        res.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    // Errors are readable cross-origin too.
    let res = register(&app, None, &web_client()).await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let res = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url("/t/default/register/anything"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );
}

async fn unused_dynamic_clients_expire(backend: Backend) {
    let app = TestApp::start(backend).await;
    let iat = app.initial_access_token(None, None).await;
    let idle: Value = register(&app, Some(&iat), &web_client())
        .await
        .json()
        .await
        .unwrap();
    let busy: Value = register(&app, Some(&iat), &web_client())
        .await
        .json()
        .await
        .unwrap();
    let static_client = app.client("default").create().await;
    let as_client = |v: &Value| TestClient {
        id: v["client_id"].as_str().unwrap().to_owned(),
        secret: v["client_secret"].as_str().map(str::to_owned),
        tenant: "default".into(),
    };
    let ttl = app.state.settings.oauth.dynamic_client_ttl_secs as i64;
    app.state.clock.advance(ttl - 10);
    app.access_token(&as_client(&busy)).await;
    let tenant = app.default_tenant().await;
    let busy_id =
        latchkey::model::client::ClientId::parse(busy["client_id"].as_str().unwrap()).unwrap();
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(5), || async {
            app.state
                .store
                .client(tenant.id, &busy_id)
                .await
                .unwrap()
                .unwrap()
                .last_used_at
                .is_some()
        })
        .await,
        "use is recorded"
    );
    app.state.clock.advance(20);
    let report = latchkey::ops::scheduler::maintain(&app.state)
        .await
        .unwrap();
    assert_eq!(report.purged_clients, 1);
    oauth_error(
        app.token(&as_client(&idle), &[("grant_type", "client_credentials")])
            .await,
        401,
        "invalid_client",
    )
    .await;
    app.access_token(&as_client(&busy)).await;
    app.access_token(&static_client).await;
    // Less than a day is refused: last use is recorded hourly, and a client in use must stay.
    let mut settings = app.default_tenant().await.settings;
    settings.dynamic_client_ttl_secs = Some(3600);
    assert!(
        app.state
            .tenants()
            .configure(&TenantSlug::default_tenant(), settings)
            .await
            .is_err()
    );
}

async fn rate_limits_see_through_trusted_proxies_only(backend: Backend) {
    let data = std::sync::Arc::new(
        crate::harness::TestData::new(backend, crate::harness::CacheKind::Memory).await,
    );
    let app = TestApp::start_on(data.clone(), |s| {
        s.oauth.registration_per_ip_per_hour = 1;
        s.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    configure(&app, |s| s.registration = Some(RegistrationMode::Open)).await;
    let from = |forwarded: &'static str| {
        app.client
            .post(app.url("/t/default/register"))
            .header("x-forwarded-for", forwarded)
            .json(&web_client())
            .send()
    };
    // Behind a trusted proxy each client has its own budget; a forged entry to the left of the
    // real one changes nothing.
    assert_eq!(from("203.0.113.5").await.unwrap().status(), 201);
    assert_eq!(from("203.0.113.5").await.unwrap().status(), 429);
    assert_eq!(
        from("198.51.100.1, 203.0.113.5").await.unwrap().status(),
        429
    );
    assert_eq!(from("203.0.113.6").await.unwrap().status(), 201);
    // Without trust the header is ignored: everyone is the TCP peer.
    let untrusted = TestApp::start_on(data.clone(), |s| {
        s.oauth.registration_per_ip_per_hour = 1;
    })
    .await;
    let post = |forwarded: &'static str| {
        untrusted
            .client
            .post(untrusted.url("/t/default/register"))
            .header("x-forwarded-for", forwarded)
            .json(&web_client())
            .send()
    };
    assert_eq!(post("192.0.2.1").await.unwrap().status(), 201);
    assert_eq!(post("192.0.2.2").await.unwrap().status(), 429);
}
