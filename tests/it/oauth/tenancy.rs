//! Nothing crosses tenants: access tokens (JWT and opaque), refresh tokens and API keys of one
//! tenant are unknown to another, whatever endpoint they are presented at.

use latchkey::model::api_key::ApiKeyOwner;
use latchkey::model::client::ClientId;
use latchkey::model::token::{Scope, TokenFormat};
use latchkey::oauth::api_keys::NewApiKey;
use serde_json::json;

use crate::harness::clients::{TestClient, oauth_error};
use crate::harness::{Backend, TestApp};

backends!(tokens_and_keys_stay_in_their_tenant);

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

async fn tokens_and_keys_stay_in_their_tenant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = app.tenant("acme").await;
    let default = app.default_tenant().await;
    let grants = ["client_credentials", "refresh_token", EXCHANGE];
    let here = app
        .client("default")
        .grants(&grants)
        .policy(|p| p.service_account = true)
        .create()
        .await;
    let here_opaque = app
        .client("default")
        .policy(|p| p.access_token_format = Some(TokenFormat::Opaque))
        .create()
        .await;
    // The other tenant's client, trusted to introspect everything there.
    let there = app
        .client("acme")
        .grants(&grants)
        .policy(|p| p.may_introspect = true)
        .create()
        .await;
    let jwt = app.access_token(&here).await;
    let opaque = app.access_token(&here_opaque).await;
    let refresh = app.refresh_token(&here).await;
    let (_, api_key) = app
        .state
        .api_keys()
        .create(
            &default,
            NewApiKey {
                owner: ApiKeyOwner::Client(ClientId::parse(&here.id).unwrap()),
                label: "k".into(),
                scope: Scope::default(),
                not_before: None,
                expires_in: None,
            },
        )
        .await
        .unwrap();
    for token in [&jwt, &opaque, &refresh, &api_key] {
        assert_eq!(
            app.introspect(&there, token).await,
            json!({"active": false}),
            "introspected at acme"
        );
        // Revoking it at acme does nothing to it at default.
        assert_eq!(
            app.post_as(&there, "revoke", &[("token", token.as_str())])
                .await
                .status(),
            200
        );
    }
    // Refreshing or exchanging at acme: unknown there.
    let res = app
        .token(
            &there,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    oauth_error(res, 400, "invalid_grant").await;
    let res = app
        .token(
            &there,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &jwt),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ],
        )
        .await;
    oauth_error(res, 400, "invalid_request").await;
    // The same client id does not exist at acme either.
    let ghost = TestClient {
        tenant: "acme".into(),
        ..here.clone()
    };
    oauth_error(
        app.token(&ghost, &[("grant_type", "client_credentials")])
            .await,
        401,
        "invalid_client",
    )
    .await;
    // All still live at home.
    for (owner, token) in [(&here, &jwt), (&here_opaque, &opaque), (&here, &api_key)] {
        assert_eq!(app.introspect(owner, token).await["active"], true);
    }
    let res = app
        .token(
            &here,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_ne!(acme.id, default.id);
}
