//! Discovery (OpenID Connect Discovery §4, RFC 8414 §3) and the JWKS (RFC 7517 §5).

use serde_json::json;

mod logout;
mod relying_party;
mod userinfo;

use crate::harness::{Backend, TestApp};

backends!(
    both_discovery_documents_describe_the_tenant,
    jwks_publishes_public_keys_only,
    jwks_supports_conditional_requests,
    unknown_tenants_are_404_json,
);

async fn both_discovery_documents_describe_the_tenant(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.tenant("acme").await;
    let issuer = app.issuer("acme");
    let res = app.get("/t/acme/.well-known/openid-configuration").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let oidc: serde_json::Value = res.json().await.unwrap();
    let all_methods = [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ];
    let algs = [
        "RS256", "PS256", "ES256", "EdDSA", "Ed25519", "HS256", "HS384", "HS512",
    ];
    assert_eq!(
        oidc,
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
            "claims_supported": oidc["claims_supported"],
            "claims_parameter_supported": true,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "userinfo_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "acr_values_supported": ["phrh", "phr", "1"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "request_parameter_supported": true,
            "request_object_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"],
            "request_uri_parameter_supported": false,
            "pushed_authorization_request_endpoint": format!("{issuer}/par"),
            "require_pushed_authorization_requests": false,
            "authorization_response_iss_parameter_supported": true,
            "end_session_endpoint": format!("{issuer}/logout"),
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "token_endpoint": format!("{issuer}/token"),
            "token_endpoint_auth_methods_supported": all_methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "grant_types_supported": [
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ],
            "registration_endpoint": format!("{issuer}/register"),
            "introspection_endpoint": format!("{issuer}/introspect"),
            "introspection_endpoint_auth_methods_supported": &all_methods[..4],
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_signing_alg_values_supported": ["RS256"],
            "revocation_endpoint": format!("{issuer}/revoke"),
            "revocation_endpoint_auth_methods_supported": all_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            "resource_indicators_supported": true,
        })
    );
    // RFC 8414 §3: the well-known suffix sits between host and issuer path; same issuer.
    let rfc8414 = app
        .get_json("/.well-known/oauth-authorization-server/t/acme")
        .await;
    assert_eq!(rfc8414, oidc);
    for claim in [
        "sub",
        "email",
        "email_verified",
        "name",
        "address",
        "phone_number",
        "sid",
    ] {
        assert!(
            oidc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    // CORS for browser apps (the preflight included), exposing what DPoP clients read.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/t/acme/token"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "dpop, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("DPoP")
    );
    for path in [
        "jwks",
        "userinfo",
        "revoke",
        ".well-known/openid-configuration",
    ] {
        let res = app
            .client
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/t/acme/{path}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "{path}");
        let exposed = res.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(exposed.contains("DPoP-Nonce") && exposed.contains("WWW-Authenticate"));
    }
    // Not on the authorization endpoint: it is a navigation, never a fetch.
    let authorize = app.get("/t/acme/authorize").await;
    assert!(
        authorize
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // Each tenant is its own issuer.
    let default = app
        .get_json("/t/default/.well-known/openid-configuration")
        .await;
    assert_eq!(default["issuer"], app.issuer("default"));
    // The jwks_uri it names works.
    let jwks = app
        .client
        .get(oidc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
}

async fn jwks_publishes_public_keys_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app.get("/t/default/jwks").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let jwks: serde_json::Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        6,
        "active and next key for each of three algorithms"
    );
    for key in keys {
        let obj = key.as_object().unwrap();
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(
                !obj.contains_key(private),
                "private member {private} published: {key}"
            );
        }
        assert_eq!(key["use"], "sig");
        assert!(
            key["kid"].as_str().is_some_and(|k| k.len() == 43),
            "kid is an RFC 7638 thumbprint"
        );
        let (alg, kty) = (key["alg"].as_str().unwrap(), key["kty"].as_str().unwrap());
        assert!(
            matches!(
                (alg, kty),
                ("ES256", "EC") | ("RS256", "RSA") | ("EdDSA", "OKP")
            ),
            "{alg} {kty}"
        );
    }
    let head = app
        .client
        .head(app.url("/t/default/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
}

async fn jwks_supports_conditional_requests(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = app.get("/t/default/jwks").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(app.url("/t/default/jwks"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let weak = app
        .client
        .get(app.url("/t/default/jwks"))
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304, "If-None-Match compares weakly");
    let t = app.default_tenant().await;
    app.state.keys().rotate(t.id, &[], true).await.unwrap();
    let changed = app
        .client
        .get(app.url("/t/default/jwks"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "a rotation changes the validator");
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
}

async fn unknown_tenants_are_404_json(backend: Backend) {
    let app = TestApp::start(backend).await;
    for path in [
        "/t/nope/jwks",
        "/t/nope/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/t/nope",
        "/t/NOT_A_SLUG/jwks",
        "/t/-bad-/jwks",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
    }
    // A tenant created after a miss is found at once (negative cache entries are invalidated).
    assert_eq!(app.get("/t/later/jwks").await.status(), 404);
    app.tenant("later").await;
    assert_eq!(app.get("/t/later/jwks").await.status(), 200);
}
