//! Token revocation (RFC 7009), refresh token rotation and family revocation, and API keys.

use latchkey::model::api_key::ApiKeyOwner;
use latchkey::model::client::ClientId;
use latchkey::model::token::{Scope, TokenFormat};
use latchkey::oauth::api_keys::NewApiKey;
use serde_json::{Value, json};

use crate::harness::clients::{TestClient, oauth_error};
use crate::harness::{Backend, CacheKind, TestApp, TestData};

backends!(
    revoked_access_tokens_stop_being_active,
    only_the_owning_client_may_revoke,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    revoking_a_refresh_token_revokes_its_family,
    api_keys_are_shown_once_and_checked_by_digest,
    deleting_a_client_ends_its_tokens_and_keys,
    refresh_token_families_end_when_their_first_token_would,
    api_keys_follow_their_clients_current_policy,
);

caches!(a_revocation_reaches_every_replica_at_once);

async fn revoke(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    hint: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    app.post_as(client, "revoke", &form).await
}

async fn revoked_access_tokens_stop_being_active(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.client("default").create().await;
    let opaque = app
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    for (owner, hint) in [(&client, Some("access_token")), (&opaque, None)] {
        let token = app.access_token(owner).await;
        assert_eq!(app.introspect(owner, &token).await["active"], true);
        let res = revoke(&app, owner, &token, hint).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            app.introspect(owner, &token).await,
            json!({"active": false})
        );
        // Revoking again, or revoking nonsense, is still 200 (RFC 7009 §2.2).
        assert_eq!(revoke(&app, owner, &token, hint).await.status(), 200);
    }
    assert_eq!(
        revoke(&app, &client, "never-issued", None).await.status(),
        200
    );
    assert_eq!(
        revoke(&app, &client, "a.b.c", Some("refresh_token"))
            .await
            .status(),
        200
    );
    let res = app.post_as(&client, "revoke", &[]).await;
    oauth_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/t/default/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    oauth_error(res, 400, "invalid_client").await;
}

async fn only_the_owning_client_may_revoke(backend: Backend) {
    let app = TestApp::start(backend).await;
    let owner = app.client("default").create().await;
    let other = app.client("default").create().await;
    let token = app.access_token(&owner).await;
    let res = revoke(&app, &other, &token, None).await;
    oauth_error(res, 400, "unauthorized_client").await;
    assert_eq!(app.introspect(&owner, &token).await["active"], true);
}

fn refreshing_client(app: &TestApp) -> crate::harness::clients::ClientBuilder<'_> {
    app.client("default")
        .grants(&[
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ])
        .policy(|p| p.may_impersonate = true)
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    app.token(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing_client(&app).create().await;
    let first = app.refresh_token(&client).await;
    let res = refresh(&app, &client, &first).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "rotated on use");
    assert_eq!(body["scope"], "api:read api:write");
    // Narrower scope on refresh is fine, wider is not (RFC 6749 §6).
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", second.as_str()),
                ("scope", "api:admin"),
            ],
        )
        .await;
    oauth_error(res, 400, "invalid_scope").await;
    // Another client cannot use it.
    let thief = refreshing_client(&app).create().await;
    oauth_error(refresh(&app, &thief, &second).await, 400, "invalid_grant").await;
    // The first token again: reuse. The family, `second` included, is revoked.
    oauth_error(refresh(&app, &client, &first).await, 400, "invalid_grant").await;
    oauth_error(refresh(&app, &client, &second).await, 400, "invalid_grant").await;
}

async fn revoking_a_refresh_token_revokes_its_family(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing_client(&app).create().await;
    let first = app.refresh_token(&client).await;
    let body: Value = refresh(&app, &client, &first).await.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed_access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.introspect(&client, &refreshed_access).await["active"],
        true
    );
    let info = app
        .post_as(
            &client,
            "introspect",
            &[
                ("token", second.as_str()),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], client.id.as_str());
    // Not the other client's to see.
    let other = app.client("default").create().await;
    assert_eq!(app.introspect(&other, &second).await["active"], false);
    assert_eq!(
        revoke(&app, &client, &second, Some("refresh_token"))
            .await
            .status(),
        200
    );
    assert_eq!(app.introspect(&client, &second).await["active"], false);
    // RFC 7009 §2.1: the access tokens of the grant end with it.
    assert_eq!(
        app.introspect(&client, &refreshed_access).await["active"],
        false
    );
    oauth_error(refresh(&app, &client, &second).await, 400, "invalid_grant").await;
}

async fn api_keys_are_shown_once_and_checked_by_digest(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.default_tenant().await;
    let plain = app
        .client("default")
        .policy(|p| p.may_introspect = true)
        .create()
        .await;
    let service = app
        .client("default")
        .policy(|p| p.service_account = true)
        .create()
        .await;
    let new = |owner: ApiKeyOwner, scope: &str| NewApiKey {
        owner,
        label: "ci".into(),
        scope: Scope::parse(scope).unwrap(),
        not_before: None,
        expires_in: Some(3600),
    };
    let as_client = |c: &TestClient| ApiKeyOwner::Client(ClientId::parse(&c.id).unwrap());
    // Only service accounts hold keys, and only within their scope.
    assert!(
        app.state
            .api_keys()
            .create(&tenant, new(as_client(&plain), "api:read"))
            .await
            .is_err()
    );
    assert!(
        app.state
            .api_keys()
            .create(&tenant, new(as_client(&service), "api:admin"))
            .await
            .is_err()
    );
    let (key, raw) = app
        .state
        .api_keys()
        .create(&tenant, new(as_client(&service), "api:read"))
        .await
        .unwrap();
    assert!(raw.starts_with("lk_") && raw.contains(&key.key_id));
    let info = app.introspect(&plain, &raw).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], service.id.as_str());
    assert_eq!(info["client_id"], service.id.as_str());
    assert_eq!(info["scope"], "api:read");
    assert_eq!(info["token_type"], "api_key");
    // A key with the right id but a wrong secret is nothing.
    let forged = format!("lk_{}.{}", key.key_id, "A".repeat(43));
    assert_eq!(app.introspect(&plain, &forged).await["active"], false);
    // Last use is recorded.
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(5), || async {
            app.state.api_keys().list(tenant.id, None).await.unwrap()[0]
                .last_used_at
                .is_some()
        })
        .await
    );
    // Users hold keys too; expiry ends them.
    let (_, user_raw) = app
        .state
        .api_keys()
        .create(&tenant, new(ApiKeyOwner::User("alice".into()), ""))
        .await
        .unwrap();
    assert_eq!(app.introspect(&plain, &user_raw).await["sub"], "alice");
    // Only the owning service account revokes at the endpoint.
    oauth_error(
        revoke(&app, &plain, &raw, None).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert_eq!(revoke(&app, &service, &raw, None).await.status(), 200);
    assert_eq!(app.introspect(&plain, &raw).await["active"], false);
    app.state.clock.advance(3600);
    assert_eq!(app.introspect(&plain, &user_raw).await["active"], false);
}

async fn deleting_a_client_ends_its_tokens_and_keys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.default_tenant().await;
    let observer = app
        .client("default")
        .policy(|p| p.may_introspect = true)
        .create()
        .await;
    let jwt_client = app
        .client("default")
        .policy(|p| p.service_account = true)
        .create()
        .await;
    let opaque_client = app
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    let jwt = app.access_token(&jwt_client).await;
    let opaque = app.access_token(&opaque_client).await;
    let (_, key) = app
        .state
        .api_keys()
        .create(
            &tenant,
            NewApiKey {
                owner: ApiKeyOwner::Client(ClientId::parse(&jwt_client.id).unwrap()),
                label: "k".into(),
                scope: Scope::default(),
                not_before: None,
                expires_in: None,
            },
        )
        .await
        .unwrap();
    for token in [&jwt, &opaque, &key] {
        assert_eq!(app.introspect(&observer, token).await["active"], true);
    }
    for c in [&jwt_client, &opaque_client] {
        app.state
            .clients()
            .delete(tenant.id, &ClientId::parse(&c.id).unwrap())
            .await
            .unwrap();
    }
    // RFC 7592 §2.3: a deleted client's grants go with it.
    for token in [&jwt, &opaque, &key] {
        assert_eq!(
            app.introspect(&observer, token).await,
            json!({"active": false})
        );
    }
}

async fn refresh_token_families_end_when_their_first_token_would(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The subject outlives the family, so the family's own end is what is tested.
    let client = refreshing_client(&app)
        .policy(|p| {
            p.refresh_token_ttl_secs = Some(1000);
            p.access_token_ttl_secs = Some(5000);
        })
        .create()
        .await;
    let first = app.refresh_token(&client).await;
    app.state.clock.advance(600);
    let body: Value = refresh(&app, &client, &first).await.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    // Rotation 600 s in: the new token still ends with the family, 400 s later.
    app.state.clock.advance(401);
    oauth_error(refresh(&app, &client, &second).await, 400, "invalid_grant").await;
}

async fn a_revocation_reaches_every_replica_at_once(cache: CacheKind) {
    let backend = match cache {
        CacheKind::Memory => Backend::Sqlite,
        CacheKind::Redis => Backend::Postgres,
    };
    let data = std::sync::Arc::new(TestData::new(backend, cache).await);
    // Hot copies that would otherwise live an hour: only the invalidation can end them.
    let a = TestApp::start_on(data.clone(), |s| s.cache.hot_ttl_secs = 3600).await;
    let shared = match cache {
        CacheKind::Memory => Some(a.state.cache.clone()),
        CacheKind::Redis => None,
    };
    let mut settings = data.settings();
    settings.cache.hot_ttl_secs = 3600;
    let b = TestApp::start_with(data.clone(), settings, shared).await;
    let client = a
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    let token = a.access_token(&client).await;
    // B reads the token (and keeps a hot copy), A revokes it, B says inactive.
    assert_eq!(b.introspect(&client, &token).await["active"], true);
    assert_eq!(b.introspect(&client, &token).await["active"], true);
    assert_eq!(revoke(&a, &client, &token, None).await.status(), 200);
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(2), || async {
            b.introspect(&client, &token).await["active"] == false
        })
        .await,
        "the revocation did not reach the other replica"
    );
}

async fn api_keys_follow_their_clients_current_policy(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.default_tenant().await;
    let observer = app
        .client("default")
        .policy(|p| p.may_introspect = true)
        .create()
        .await;
    let service = app
        .client("default")
        .policy(|p| p.service_account = true)
        .create()
        .await;
    let id = ClientId::parse(&service.id).unwrap();
    let (_, raw) = app
        .state
        .api_keys()
        .create(
            &tenant,
            NewApiKey {
                owner: ApiKeyOwner::Client(id.clone()),
                label: "ci".into(),
                scope: Scope::parse("api:read api:write").unwrap(),
                not_before: None,
                expires_in: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        app.introspect(&observer, &raw).await["scope"],
        "api:read api:write"
    );
    // The client's scope shrinks: so does what the key carries.
    change_client(&app, &id, |c| {
        c.metadata.scope = Some(Scope::parse("api:read").unwrap())
    })
    .await;
    assert_eq!(app.introspect(&observer, &raw).await["scope"], "api:read");
    // It stops being a service account: its keys stop working.
    change_client(&app, &id, |c| c.policy.service_account = false).await;
    assert_eq!(
        app.introspect(&observer, &raw).await,
        json!({"active": false})
    );
}

/// Changes a client's metadata or policy as an administrator would.
async fn change_client(
    app: &TestApp,
    id: &ClientId,
    change: impl FnOnce(&mut latchkey::model::client::Client),
) {
    let tenant = app.default_tenant().await;
    let mut client = (*app.state.clients().get(tenant.id, id).await.unwrap()).clone();
    change(&mut client);
    app.state
        .clients()
        .update(
            tenant.id,
            id,
            latchkey::clients::ClientUpdate {
                metadata: Some(client.metadata),
                policy: Some(client.policy),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}
