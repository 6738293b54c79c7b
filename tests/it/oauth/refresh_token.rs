//! Refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3.1): rotation as one unit of work against the
//! family's state, the ceilings a refresh is held to, and token exchange joining a family.

use latchkey::clients::ClientUpdate;
use latchkey::model::client::ClientId;
use latchkey::model::token::{NewRefreshToken, Rotation, Scope};
use serde_json::{Value, json};

use crate::harness::clients::{ClientBuilder, TestClient, jwt_parts, oauth_error};
use crate::harness::{Backend, TestApp};

backends!(
    concurrent_refreshes_leave_no_live_token,
    a_revoked_family_takes_no_new_token,
    refresh_is_held_to_the_clients_current_scope_and_resources,
    exchanged_refresh_tokens_join_the_subject_family,
    nothing_refreshed_outlives_the_exchanged_subject,
    a_token_joined_from_an_access_token_ends_with_it_through_rotations,
);

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const RT: &str = "urn:ietf:params:oauth:token-type:refresh_token";

const A: &str = "https://a.example.com/";
const B: &str = "https://b.example.com/";

fn refreshing(app: &TestApp) -> ClientBuilder<'_> {
    app.client("default")
        .grants(&["client_credentials", "refresh_token", EXCHANGE])
        .policy(|p| {
            p.resources = vec![A.into(), B.into()];
            p.access_token_ttl_secs = Some(3600);
        })
}

async fn refresh(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    app.token(client, &form).await
}

/// A token exchange request of `client` (RFC 8693 §2.1) with these parameters.
async fn exchange(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    app.token(client, &all).await
}

async fn concurrent_refreshes_leave_no_live_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing(&app).create().await;
    for round in 0..4 {
        let token = app.refresh_token(&client).await;
        let attempts = (0..8).map(|_| refresh(&app, &client, &token, &[]));
        let results = futures_util::future::join_all(attempts).await;
        let mut issued = Vec::new();
        for res in results {
            match res.status().as_u16() {
                200 => issued.push(res.json::<Value>().await.unwrap()),
                400 => {
                    oauth_error(res, 400, "invalid_grant").await;
                }
                other => panic!("round {round}: status {other}"),
            }
        }
        assert!(
            issued.len() <= 1,
            "round {round}: one rotation wins at most"
        );
        // Reuse was detected, so the family is over: whatever the winner got is dead too,
        // however its writes interleaved with the losers' revocation.
        for body in &issued {
            let next = body["refresh_token"].as_str().unwrap();
            oauth_error(
                refresh(&app, &client, next, &[]).await,
                400,
                "invalid_grant",
            )
            .await;
            let access = body["access_token"].as_str().unwrap();
            assert_eq!(app.introspect(&client, access).await["active"], false);
        }
    }
}

async fn a_revoked_family_takes_no_new_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing(&app).create().await;
    let token = app.refresh_token(&client).await;
    let tenant = app.default_tenant().await;
    let stored = app
        .state
        .store
        .refresh_token(tenant.id, latchkey::crypto::sha256(token.as_bytes()))
        .await
        .unwrap()
        .unwrap();
    // The interleaving the race produced: the family is revoked after the old token was
    // checked and before the new one is written. The new one must not come out alive.
    app.state
        .store
        .revoke_refresh_family(tenant.id, stored.family_id, app.state.clock.now())
        .await
        .unwrap();
    let new = |n: u8| NewRefreshToken {
        token_hash: [n; 32],
        client_id: ClientId::parse(&client.id).unwrap(),
        claims: stored.claims.clone(),
        expires_at: app.state.clock.now() + 600,
        created_at: app.state.clock.now(),
    };
    let rotated = app
        .state
        .store
        .rotate_refresh_token(tenant.id, stored.family_id, stored.id, new(1))
        .await
        .unwrap();
    assert_eq!(rotated, Rotation::FamilyEnded);
    let joined = app
        .state
        .store
        .join_refresh_family(tenant.id, stored.family_id, new(2))
        .await
        .unwrap();
    assert_eq!(joined, Rotation::FamilyEnded);
    for n in [1, 2] {
        assert!(
            app.state
                .store
                .refresh_token(tenant.id, [n; 32])
                .await
                .unwrap()
                .is_none(),
            "nothing was written"
        );
    }
    oauth_error(
        refresh(&app, &client, &token, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn refresh_is_held_to_the_clients_current_scope_and_resources(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing(&app).create().await;
    let token = app.refresh_token(&client).await;
    // The administrator narrows the client after the grant.
    let tenant = app.default_tenant().await;
    let id = ClientId::parse(&client.id).unwrap();
    let current = app.state.clients().get(tenant.id, &id).await.unwrap();
    let mut metadata = current.metadata.clone();
    metadata.scope = Some(Scope::parse("api:read").unwrap());
    let mut policy = current.policy.clone();
    policy.resources = vec![A.into()];
    app.state
        .clients()
        .update(
            tenant.id,
            &id,
            ClientUpdate {
                metadata: Some(metadata),
                policy: Some(policy),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    // A resource the client may no longer address is refused...
    let res = refresh(&app, &client, &token, &[("resource", B)]).await;
    oauth_error(res, 400, "invalid_target").await;
    // ...a scope it may no longer hold too (RFC 6749 §6: never beyond what may be granted)...
    let res = refresh(&app, &client, &token, &[("scope", "api:write")]).await;
    oauth_error(res, 400, "invalid_scope").await;
    // ...and by default the grant is cut down to what the client may hold now.
    let res = refresh(&app, &client, &token, &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "api:read");
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["aud"], A);
    assert_eq!(claims["scope"], "api:read");
}

async fn exchanged_refresh_tokens_join_the_subject_family(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing(&app)
        .policy(|p| p.refresh_token_ttl_secs = Some(1000))
        .create()
        .await;
    let first = app.refresh_token(&client).await;
    let tenant = app.default_tenant().await;
    let stored = |token: String| {
        let app = &app;
        let tenant = tenant.clone();
        async move {
            app.state
                .store
                .refresh_token(tenant.id, latchkey::crypto::sha256(token.as_bytes()))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let family = stored(first.clone()).await;
    app.state.clock.advance(300);
    // Narrowed into a refresh token: it is a rotation into the same family, same end.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &first),
            ("subject_token_type", RT),
            ("requested_token_type", RT),
            ("scope", "api:read"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let second = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["scope"], "api:read");
    let joined = stored(second.clone()).await;
    assert_eq!(joined.family_id, family.family_id);
    assert_eq!(joined.family_expires_at, family.family_expires_at);
    assert!(joined.expires_at <= family.family_expires_at);
    // Exchanged for an access token: it carries the family, and the subject is rotated.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &second),
            ("subject_token_type", RT),
            ("resource", A),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_parts(&access).1;
    assert_eq!(claims["refresh_family"], family.family_id.to_string());
    assert_eq!(claims["aud"], A);
    let third = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(stored(third.clone()).await.family_id, family.family_id);
    assert_eq!(app.introspect(&client, &access).await["active"], true);
    // The spent subject presented again is reuse: the family ends, with everything in it.
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &second), ("subject_token_type", RT)],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
    oauth_error(
        refresh(&app, &client, &third, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        refresh(&app, &client, &second, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.introspect(&client, &access).await,
        json!({"active": false})
    );
}

async fn nothing_refreshed_outlives_the_exchanged_subject(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The refresh lifetime (5000 s) is longer than the subject it comes from (3600 s).
    let client = refreshing(&app)
        .policy(|p| p.refresh_token_ttl_secs = Some(5000))
        .create()
        .await;
    let first = app.refresh_token(&client).await;
    app.state.clock.advance(3000);
    let res = refresh(&app, &client, &first, &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    // 600 s of the subject are left: the refreshed access token ends with it.
    assert_eq!(body["expires_in"], 600);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let exp = jwt_parts(&access).1["exp"].as_i64().unwrap();
    assert_eq!(exp, app.state.clock.now() + 600);
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    app.state.clock.advance(100);
    // Exchanged again for a refresh token, and rotated: the ceiling carries through.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &second),
            ("subject_token_type", RT),
            ("requested_token_type", RT),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 500);
    let third = body["access_token"].as_str().unwrap().to_owned();
    let res = refresh(&app, &client, &third, &[]).await;
    assert_eq!(res.status(), 200);
    let fourth = res.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.state.clock.advance(500);
    oauth_error(
        refresh(&app, &client, &fourth, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn a_token_joined_from_an_access_token_ends_with_it_through_rotations(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = refreshing(&app)
        .policy(|p| {
            p.refresh_token_ttl_secs = Some(50_000);
            p.access_token_ttl_secs = Some(600);
        })
        .create()
        .await;
    let tenant = app.default_tenant().await;
    // A long grant (as an authorization code will start): its family ends in a day.
    let raw = "a-long-grant-refresh-token-0123456789abcdef";
    let now = app.state.clock.now();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!(client.id));
    claims.insert("scope".into(), json!("api:read"));
    claims.insert("aud".into(), json!([A]));
    app.state
        .store
        .start_refresh_family(
            tenant.id,
            uuid::Uuid::now_v7(),
            now + 86_400,
            NewRefreshToken {
                token_hash: latchkey::crypto::sha256(raw.as_bytes()),
                client_id: ClientId::parse(&client.id).unwrap(),
                claims,
                expires_at: now + 50_000,
                created_at: now,
            },
        )
        .await
        .unwrap();
    let res = refresh(&app, &client, raw, &[]).await;
    assert_eq!(res.status(), 200);
    let access = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let access_exp = jwt_parts(&access).1["exp"].as_i64().unwrap();
    // The access token (600 s, of the day-long family) traded for a refresh token: it joins
    // the family but ends with the access token, however often it is rotated.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &access),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("requested_token_type", RT),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 600);
    let mut current = body["access_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        app.state.clock.advance(100);
        let res = refresh(&app, &client, &current, &[]).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        let refreshed = jwt_parts(body["access_token"].as_str().unwrap()).1;
        assert!(refreshed["exp"].as_i64().unwrap() <= access_exp);
        current = body["refresh_token"].as_str().unwrap().to_owned();
        let stored = app
            .state
            .store
            .refresh_token(tenant.id, latchkey::crypto::sha256(current.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.family_expires_at, now + 86_400);
        assert_eq!(stored.expires_at, access_exp, "not the family's end");
    }
    app.state.clock.advance(301);
    oauth_error(
        refresh(&app, &client, &current, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
}
