//! The admin API: bearer token, RFC 7807 errors, tenants, keys and users.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, TestApp};

backends!(
    admin_requires_the_token,
    admin_manages_tenants,
    admin_manages_keys,
    admin_is_off_without_a_token,
    admin_manages_users
);

async fn admin_requires_the_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let none = app
        .client
        .get(app.url("/admin/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        r#"Bearer realm="latchkey-admin""#
    );
    assert_eq!(none.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "admin token required"})
    );
    let wrong = app
        .client
        .get(app.url("/admin/tenants"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
}

async fn admin_manages_tenants(backend: Backend) {
    let app = TestApp::start(backend).await;
    let created = app
        .admin(Method::POST, "/admin/tenants")
        .json(&json!({"slug": "acme", "display_name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/admin/tenants/acme");
    let body: serde_json::Value = created.json().await.unwrap();
    assert_eq!(body["slug"], "acme");
    assert_eq!(body["display_name"], "Acme Corp");
    assert_eq!(body["issuer"], app.issuer("acme"));
    assert_eq!(app.get("/t/acme/jwks").await.status(), 200);

    let dup = app
        .admin(Method::POST, "/admin/tenants")
        .json(&json!({"slug": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let bad = app
        .admin(Method::POST, "/admin/tenants")
        .json(&json!({"slug": "Not Valid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");

    let list: serde_json::Value = app
        .admin(Method::GET, "/admin/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme", "default"]);
    let shown = app
        .admin(Method::GET, "/admin/tenants/acme")
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);

    assert_eq!(
        admin_status(&app, Method::DELETE, "/admin/tenants/acme").await,
        204
    );
    assert_eq!(
        admin_status(&app, Method::DELETE, "/admin/tenants/acme").await,
        404
    );
    assert_eq!(
        admin_status(&app, Method::GET, "/admin/tenants/acme").await,
        404
    );
    assert_eq!(
        app.get("/t/acme/jwks").await.status(),
        404,
        "a deleted tenant stops being served at once"
    );
}

async fn admin_manages_keys(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.tenant("beta").await;
    let keys: serde_json::Value = app
        .admin(Method::GET, "/admin/tenants/default/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 6);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("public_jwk").is_none() && k["kid"].is_string())
    );

    let early = app
        .admin(Method::POST, "/admin/tenants/default/keys/rotate")
        .json(&json!({"algorithms": ["ES256"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409, "next keys were just published");
    let rotated = app
        .admin(Method::POST, "/admin/tenants/default/keys/rotate")
        .json(&json!({"algorithms": ["ES256"], "force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let rotations: serde_json::Value = rotated.json().await.unwrap();
    assert_eq!(rotations.as_array().unwrap().len(), 1);
    let retired = rotations[0]["retired"].as_str().unwrap().to_owned();
    app.state.clock.advance(3600);
    let all = app
        .admin(Method::POST, "/admin/tenants/default/keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 200, "no body rotates every algorithm");
    assert_eq!(
        all.json::<serde_json::Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let bad_alg = app
        .admin(Method::POST, "/admin/tenants/default/keys/rotate")
        .json(&json!({"algorithms": ["none"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_alg.status(), 400);
    let huge = app
        .admin(Method::POST, "/admin/tenants/default/keys/rotate")
        .body(vec![b' '; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    assert_eq!(huge.headers()["content-type"], "application/problem+json");

    // A retired key can be unpublished at once, but only through its own tenant.
    let other = app
        .admin(
            Method::DELETE,
            &format!("/admin/tenants/beta/keys/{retired}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let gone = app
        .admin(
            Method::DELETE,
            &format!("/admin/tenants/default/keys/{retired}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let jwks = app.get_json("/t/default/jwks").await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != retired.as_str())
    );
}

async fn admin_is_off_without_a_token(backend: Backend) {
    let data = std::sync::Arc::new(
        crate::harness::TestData::new(backend, crate::harness::CacheKind::Memory).await,
    );
    let app = TestApp::start_on(data, |s| s.admin.token = None).await;
    let res = app
        .admin(Method::GET, "/admin/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

/// The status of an authenticated admin request without a body.
async fn admin_status(app: &TestApp, method: Method, path: &str) -> u16 {
    app.admin(method, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_manages_users(backend: Backend) {
    let app = TestApp::start(backend).await;
    let base = "/admin/tenants/default/users";
    let created = app
        .admin(Method::POST, base)
        .json(&json!({
            "username": "Carol", "email": "carol@example.com", "email_verified": true,
            "profile": {"name": "Carol C", "address": {"country": "NZ"}},
            "roles": ["ops", "ops"], "password": "a long and unusual passphrase"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let carol: serde_json::Value = created.json().await.unwrap();
    assert_eq!(
        location,
        format!("{base}/{}", carol["id"].as_str().unwrap())
    );
    assert_eq!(carol["roles"], json!(["ops"]), "duplicates are dropped");
    assert_eq!(carol["has_password"], true);
    assert_eq!(carol["profile"]["address"]["country"], "NZ");
    assert!(!carol.to_string().contains("passphrase") && !carol.to_string().contains("argon2"));

    // Problems: duplicate (case-insensitive), invalid, weak password, unknown member,
    // a malformed body that must not echo the password.
    for (body, status) in [
        (json!({"username": "CAROL"}), 409),
        (json!({"username": "bad name"}), 422),
        (json!({"username": "dave", "email": "nope"}), 422),
        (json!({"username": "dave", "password": "qwertyuiop"}), 422),
        (
            json!({"username": "dave", "profile": {"picture": "http://x.io/p.png"}}),
            422,
        ),
        (json!({"username": "dave", "is_admin": true}), 400),
        (
            json!({"username": "dave", "email_verified": "hunter2-secret"}),
            400,
        ),
    ] {
        let r = app
            .admin(Method::POST, base)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let text = r.text().await.unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }
    let page: serde_json::Value = app
        .admin(Method::GET, &format!("{base}?limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["next_after"], serde_json::Value::Null);
    let bad_query = app
        .admin(Method::GET, &format!("{base}?limit=many"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_query.status(), 400);
    assert_eq!(
        bad_query.headers()["content-type"],
        "application/problem+json"
    );

    // By username or id; PATCH honours If-Match.
    let by_name = app
        .admin(Method::GET, &format!("{base}/carol"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);
    assert_eq!(by_name.headers()["etag"].to_str().unwrap(), etag);
    let patched = app
        .admin(Method::PATCH, &location)
        .header("if-match", &etag)
        .json(&json!({"email": "c@example.org", "groups": ["eng"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_ne!(patched.headers()["etag"].to_str().unwrap(), etag);
    let patched: serde_json::Value = patched.json().await.unwrap();
    assert_eq!(patched["email"], "c@example.org");
    assert_eq!(
        patched["email_verified"], false,
        "a new address is unverified"
    );
    assert_eq!(patched["groups"], json!(["eng"]));
    assert_eq!(patched["roles"], json!(["ops"]), "absent members stay");
    let stale = app
        .admin(Method::PATCH, &location)
        .header("if-match", &etag)
        .json(&json!({"roles": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let removed_email = app
        .admin(Method::PATCH, &location)
        .json(&json!({"email": null}))
        .send()
        .await
        .unwrap();
    let removed_email: serde_json::Value = removed_email.json().await.unwrap();
    assert_eq!(removed_email["email"], serde_json::Value::Null);

    // Passwords, disabling.
    let weak = app
        .admin(Method::PUT, &format!("{location}/password"))
        .json(&json!({"password": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 422);
    let unset = app
        .admin(Method::DELETE, &format!("{location}/password"))
        .send()
        .await
        .unwrap();
    assert_eq!(unset.status(), 204);
    let set = app
        .admin(Method::PUT, &format!("{location}/password"))
        .json(&json!({"password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    let disabled: serde_json::Value = app
        .admin(Method::POST, &format!("{location}/disable"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["active"], false);
    let wrong_method = app
        .admin(Method::GET, &format!("{location}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");

    let audit: serde_json::Value = app
        .admin(Method::GET, &format!("{location}/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.update",
            "user.update",
            "user.remove_password",
            "user.set_password",
            "user.disable"
        ]
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "admin-api")
    );

    // Another tenant does not see this user.
    app.tenant("other").await;
    let elsewhere = app
        .admin(
            Method::GET,
            &format!(
                "/admin/tenants/other/users/{}",
                carol["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
    let deleted = app.admin(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = app.admin(Method::GET, &location).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(gone.headers()["content-type"], "application/problem+json");
}
