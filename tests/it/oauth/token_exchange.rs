//! Token exchange (RFC 8693): impersonation and delegation by policy, the `act` chain,
//! scope narrowing, token types in and out.

use latchkey::model::SigningAlg;
use serde_json::{Value, json};

use crate::harness::clients::{TestClient, jwt_parts, oauth_error};
use crate::harness::{Backend, TestApp};

backends!(
    impersonation_is_allowed_only_by_policy,
    delegation_records_the_actor,
    exchanged_tokens_never_gain_scope,
    subject_tokens_of_every_type,
    revoked_tokens_cannot_be_exchanged_under_another_type,
    clients_narrow_their_own_tokens_without_a_policy,
);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

fn exchanger(app: &TestApp) -> crate::harness::clients::ClientBuilder<'_> {
    app.client("default")
        .grants(&["client_credentials", GRANT])
        .policy(|p| p.resources = vec!["https://api.example.com/".into()])
}

async fn exchange(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", GRANT)];
    form.extend_from_slice(extra);
    app.token(client, &form).await
}

async fn impersonation_is_allowed_only_by_policy(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.client("default").create().await;
    let subject = app.access_token(&user).await;
    let refused = exchanger(&app).create().await;
    let res = exchange(
        &app,
        &refused,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    oauth_error(res, 400, "unauthorized_client").await;
    let allowed = exchanger(&app)
        .policy(|p| p.may_impersonate = true)
        .create()
        .await;
    let res = exchange(
        &app,
        &allowed,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("resource", "https://api.example.com/"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["issued_token_type"], AT, "RFC 8693 §2.2.1");
    assert_eq!(body["token_type"], "Bearer");
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["sub"], user.id.as_str(), "acts as the subject");
    assert_eq!(claims["client_id"], allowed.id.as_str());
    assert_eq!(claims["aud"], "https://api.example.com/");
    assert!(claims.get("act").is_none(), "impersonation leaves no act");
    // Clients are not registered for the grant by default.
    let plain = app.client("default").create().await;
    let res = exchange(
        &app,
        &plain,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    oauth_error(res, 400, "unauthorized_client").await;
}

async fn delegation_records_the_actor(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.client("default").create().await;
    let actor = app.client("default").create().await;
    let subject = app.access_token(&user).await;
    let actor_token = app.access_token(&actor).await;
    let no_delegation = exchanger(&app)
        .policy(|p| p.may_impersonate = true)
        .create()
        .await;
    let with_actor = [
        ("subject_token", subject.as_str()),
        ("subject_token_type", AT),
        ("actor_token", actor_token.as_str()),
        ("actor_token_type", AT),
    ];
    oauth_error(
        exchange(&app, &no_delegation, &with_actor).await,
        400,
        "unauthorized_client",
    )
    .await;
    let delegate = exchanger(&app)
        .policy(|p| p.may_delegate = true)
        .create()
        .await;
    let res = exchange(&app, &delegate, &with_actor).await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    let first_token = first["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_parts(&first_token).1;
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["act"], json!({"sub": actor.id}));
    // A second hop nests the earlier actor (RFC 8693 §4.1).
    let second_actor = app.client("default").create().await;
    let second_actor_token = app.access_token(&second_actor).await;
    let res = exchange(
        &app,
        &delegate,
        &[
            ("subject_token", first_token.as_str()),
            ("subject_token_type", AT),
            ("actor_token", second_actor_token.as_str()),
            ("actor_token_type", AT),
        ],
    )
    .await;
    let chained = jwt_parts(
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    )
    .1;
    assert_eq!(
        chained["act"],
        json!({"sub": second_actor.id, "act": {"sub": actor.id}})
    );
    // actor_token_type without actor_token, and the reverse, are malformed.
    let res = exchange(
        &app,
        &delegate,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("actor_token_type", AT),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
}

async fn exchanged_tokens_never_gain_scope(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.client("default").scope("api:read").create().await;
    let subject = app.access_token(&user).await;
    let client = exchanger(&app)
        .policy(|p| p.may_impersonate = true)
        .create()
        .await;
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("scope", "api:write"),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_scope").await;
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["scope"], "api:read");
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("audience", "https://unknown.example.com/"),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_target").await;
}

async fn subject_tokens_of_every_type(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = exchanger(&app)
        .policy(|p| p.may_impersonate = true)
        .create()
        .await;
    let tenant = app.default_tenant().await;
    let set = app.state.keys().key_set(tenant.id).await.unwrap();
    let now = app.state.clock.now();
    let mut id_claims = serde_json::Map::new();
    id_claims.insert("iss".into(), app.issuer("default").into());
    id_claims.insert("sub".into(), "alice".into());
    id_claims.insert("aud".into(), client.id.clone().into());
    id_claims.insert("exp".into(), (now + 300).into());
    id_claims.insert("iat".into(), now.into());
    let id_token = set
        .signer(SigningAlg::Rs256)
        .unwrap()
        .sign_jwt(&id_claims, "JWT")
        .unwrap();
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &id_token),
            ("subject_token_type", ID_TOKEN),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        jwt_parts(body["access_token"].as_str().unwrap()).1["sub"],
        "alice"
    );
    // An ID token issued to another client is not this client's to exchange.
    id_claims.insert("aud".into(), "someone-else".into());
    let foreign = set
        .signer(SigningAlg::Rs256)
        .unwrap()
        .sign_jwt(&id_claims, "JWT")
        .unwrap();
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &foreign),
            ("subject_token_type", ID_TOKEN),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
    // Relabelled as a plain JWT it is still not this client's.
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &foreign), ("subject_token_type", JWT)],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
    // A JWT we signed for this client, as type jwt; requested as a JWT it comes back as one.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &id_token),
            ("subject_token_type", JWT),
            ("requested_token_type", JWT),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["issued_token_type"], JWT);
    // Invalid, expired or unknown-type subject tokens.
    for (token, kind) in [("garbage", AT), (id_token.as_str(), "urn:example:unknown")] {
        let res = exchange(
            &app,
            &client,
            &[("subject_token", token), ("subject_token_type", kind)],
        )
        .await;
        oauth_error(res, 400, "invalid_request").await;
    }
    let res = exchange(&app, &client, &[("subject_token", &id_token)]).await;
    oauth_error(res, 400, "invalid_request").await;
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &id_token),
            ("subject_token_type", ID_TOKEN),
            ("requested_token_type", ID_TOKEN),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
    // Refresh tokens need the refresh_token grant.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &id_token),
            ("subject_token_type", ID_TOKEN),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
        ],
    )
    .await;
    oauth_error(res, 400, "unauthorized_client").await;
    app.state.clock.advance(301);
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &id_token),
            ("subject_token_type", ID_TOKEN),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
}

async fn revoked_tokens_cannot_be_exchanged_under_another_type(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.client("default").create().await;
    let client = exchanger(&app)
        .policy(|p| p.may_impersonate = true)
        .create()
        .await;
    let subject = app.access_token(&user).await;
    assert_eq!(
        app.post_as(&user, "revoke", &[("token", subject.as_str())])
            .await
            .status(),
        200
    );
    for kind in [AT, JWT] {
        let res = exchange(
            &app,
            &client,
            &[("subject_token", &subject), ("subject_token_type", kind)],
        )
        .await;
        oauth_error(res, 400, "invalid_request").await;
    }
}

async fn clients_narrow_their_own_tokens_without_a_policy(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .client("default")
        .grants(&["client_credentials", GRANT])
        .policy(|p| {
            p.resources = vec![
                "https://a.example.com/".into(),
                "https://b.example.com/".into(),
            ]
        })
        .create()
        .await;
    let subject = app.access_token(&client).await;
    let subject_claims = jwt_parts(&subject).1;
    app.state.clock.advance(100);
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("scope", "api:read"),
            ("resource", "https://a.example.com/"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200, "own token, no policy");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "api:read");
    let claims = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(claims["aud"], "https://a.example.com/");
    assert_eq!(claims["sub"], client.id.as_str());
    assert!(claims.get("act").is_none());
    // Never outlives the subject: 100 s of its 600 are gone.
    assert_eq!(claims["exp"], subject_claims["exp"]);
    assert_eq!(body["expires_in"], 500);
    // Without a request, the subject's audience (both resources) carries over.
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    let all = jwt_parts(
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    )
    .1;
    assert_eq!(
        all["aud"],
        json!(["https://a.example.com/", "https://b.example.com/"])
    );
    // Never wider than the subject's audience or scope.
    let narrow = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("resource", "https://a.example.com/"),
        ],
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let narrow_token = narrow["access_token"].as_str().unwrap();
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", narrow_token),
            ("subject_token_type", AT),
            ("resource", "https://b.example.com/"),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_target").await;
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("audience", "https://c.example.com/"),
        ],
    )
    .await;
    oauth_error(res, 400, "invalid_target").await;
    // Another client's token, or an actor, still needs a policy.
    let other = app.client("default").create().await;
    let foreign = app.access_token(&other).await;
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &foreign), ("subject_token_type", AT)],
    )
    .await;
    oauth_error(res, 400, "unauthorized_client").await;
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("actor_token", &foreign),
            ("actor_token_type", AT),
        ],
    )
    .await;
    oauth_error(res, 400, "unauthorized_client").await;
    // An expired subject gives nothing.
    app.state.clock.advance(600);
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    oauth_error(res, 400, "invalid_request").await;
}
