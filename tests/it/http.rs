//! Nothing a client sends produces a 5xx or a panic: malformed paths, methods, headers, bodies.

use reqwest::Method;

use crate::harness::{ADMIN_TOKEN, Backend, TestApp};

backends!(
    malformed_requests_get_4xx_json,
    methods_outside_a_route_get_405_with_allow
);

async fn malformed_requests_get_4xx_json(backend: Backend) {
    let app = TestApp::start(backend).await;
    let long = "a".repeat(5000);
    let paths = [
        "/".to_owned(),
        "/t".into(),
        "/t/".into(),
        "/t/default".into(),
        "/t/default/".into(),
        "/t/default/jwks/".into(),
        "/t/default/jwks/extra".into(),
        "/t/%ff%fe/jwks".into(),
        "/t/%00/jwks".into(),
        "/t/..%2f..%2fetc/jwks".into(),
        "/t/default/../default/jwks".into(),
        format!("/t/{long}/jwks"),
        "/t/default/.well-known/openid-configuration?x=%zz&&=".into(),
        "/.well-known/oauth-authorization-server".into(),
        "/.well-known/oauth-authorization-server/t/".into(),
        "/admin/tenants/%ff".into(),
        "/admin/nothing".into(),
        "/%E2%82".into(),
    ];
    for path in &paths {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(
            status.is_success() || status.is_client_error() || status.is_redirection(),
            "{path} -> {status}"
        );
    }
    // Bodies: wrong type, malformed JSON, wrong shape, oversized, binary garbage.
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", br#"{"slug": 5}"#.to_vec()),
        (
            "application/json",
            br#"{"slug": "ok", "unknown": true}"#.to_vec(),
        ),
        ("text/plain", b"slug=x".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00]),
    ];
    let oversized = app
        .admin(Method::POST, "/admin/tenants")
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    assert_eq!(
        oversized.headers()["content-type"],
        "application/problem+json"
    );
    for (ctype, body) in bodies {
        let res = app
            .admin(Method::POST, "/admin/tenants")
            .header("content-type", ctype)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_client_error(),
            "{ctype} {:?} -> {}",
            &body[..body.len().min(20)],
            res.status()
        );
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    // Headers: garbage authorization, odd accept, duplicate request ids.
    for (name, value) in [
        ("authorization", "Bearer"),
        ("authorization", "Basic !!!"),
        ("accept", "*/*;q=oops"),
        ("if-none-match", "\u{7f}"),
    ] {
        let res = app
            .client
            .get(app.url("/admin/tenants"))
            .header(name, value)
            .send()
            .await;
        if let Ok(res) = res {
            assert!(
                res.status().is_client_error(),
                "{name}: {value} -> {}",
                res.status()
            );
        }
        // Values the client library refuses to send are skipped.
        if let Ok(res) = app
            .client
            .get(app.url("/t/default/jwks"))
            .header(name, value)
            .send()
            .await
        {
            assert!(res.status().as_u16() < 500, "{name}: {value}");
        }
    }
    let huge = "x".repeat(64 * 1024);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-huge", huge)
        .send()
        .await;
    if let Ok(res) = res {
        assert!(res.status().as_u16() < 500);
    }
    // The server is still fine.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn methods_outside_a_route_get_405_with_allow(backend: Backend) {
    let app = TestApp::start(backend).await;
    let custom = Method::from_bytes(b"BREW").unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/t/default/jwks",
        "/t/default/.well-known/openid-configuration",
    ] {
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            custom.clone(),
        ] {
            let res = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 405, "{method} {path}");
            // What browser apps fetch also answers CORS preflights.
            let allow = if path.starts_with("/t/") {
                "GET, HEAD, OPTIONS"
            } else {
                "GET, HEAD"
            };
            assert_eq!(res.headers()["allow"], allow);
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed");
        }
    }
    let res = app
        .admin(Method::PUT, "/admin/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
