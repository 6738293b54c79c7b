//! /healthz, /readyz, /metrics and request ids.

use std::sync::Arc;
use std::time::Duration;

use latchkey::config::Secret;

use crate::harness::{
    Backend, CacheKind, TestApp, TestData, ToggleProxy, eventually, redis_url, socket_of, via,
};

backends!(
    health_and_readiness_answer,
    metrics_count_requests_per_route,
    request_ids_are_echoed_or_made
);

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let ready = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(ready["checks"]["database"]["backend"], expected);
    assert_eq!(ready["checks"]["cache"]["backend"], "memory");
}

async fn metrics_count_requests_per_route(backend: Backend) {
    let app = TestApp::start(backend).await;
    for _ in 0..3 {
        app.get("/t/default/jwks").await;
    }
    app.get("/t/missing/jwks").await;
    app.get("/no/such/path").await;
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        app.client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"latchkey_http_requests_total{method="GET",route="/t/{tenant}/jwks",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"latchkey_http_requests_total{method="GET",route="/t/{tenant}/jwks",status="404"} 1"#
    ));
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "unknown paths share one label"
    );
    assert!(
        text.contains(
            r#"latchkey_http_requests_total{method="OTHER",route="/healthz",status="405"} 5"#
        ),
        "unknown methods share one label: {text}"
    );
    assert!(text.contains(r#"latchkey_http_request_duration_seconds_bucket{method="GET",route="/t/{tenant}/jwks",le="+Inf"} 4"#));
}

async fn request_ids_are_echoed_or_made(backend: Backend) {
    let app = TestApp::start(backend).await;
    let made = app.get("/healthz").await;
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc.123");
    let unsafe_id = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(unsafe_id.headers()["x-request-id"], "a b<script>");
}

/// /readyz turns 503 while PostgreSQL or Redis is unreachable and 200 when it is back, with
/// no restart: both are reached through proxies the test takes down and brings back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_postgres_and_redis_outages() {
    let data = Arc::new(TestData::new(Backend::Postgres, CacheKind::Redis).await);
    let pg_url = data.pg.as_ref().unwrap().url.clone();
    let pg_proxy = ToggleProxy::start(socket_of(&pg_url)).await;
    let redis_proxy = ToggleProxy::start(socket_of(&redis_url())).await;
    let mut settings = data.settings();
    settings.database.url = Some(Secret::new(via(&pg_url, pg_proxy.addr)));
    settings.redis.url = Some(Secret::new(via(&redis_url(), redis_proxy.addr)));
    let app = TestApp::start_with(data.clone(), settings, None).await;
    assert_eq!(app.get("/readyz").await.status(), 200, "ready at start");

    pg_proxy.down();
    assert!(readiness_becomes(&app, 503).await, "database down");
    let body = app
        .get("/readyz")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert_eq!(
        body["checks"]["database"]["reason"], "unreachable",
        "no internal detail is sent"
    );
    assert_eq!(body["checks"]["cache"]["status"], "up");
    // The OAuth surface degrades to 503 temporarily_unavailable, not a 500.
    latchkey_hot_clear(&app);
    let jwks = app.get("/t/default/jwks").await;
    assert_eq!(jwks.status(), 503);
    assert_eq!(
        jwks.json::<serde_json::Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    pg_proxy.up();
    assert!(readiness_becomes(&app, 200).await, "database back");

    redis_proxy.down();
    assert!(readiness_becomes(&app, 503).await, "redis down");
    let body = app
        .get("/readyz")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(body["checks"]["cache"]["status"], "down");
    redis_proxy.up();
    assert!(readiness_becomes(&app, 200).await, "redis back");
    assert_eq!(app.get("/t/default/jwks").await.status(), 200);
}

/// Polls /readyz until it answers `code` (15 s at most).
async fn readiness_becomes(app: &TestApp, code: u16) -> bool {
    eventually(Duration::from_secs(15), || {
        let req = app.client.get(app.url("/readyz"));
        async move { req.send().await.is_ok_and(|r| r.status().as_u16() == code) }
    })
    .await
}

fn latchkey_hot_clear(app: &TestApp) {
    latchkey::cache::Invalidated::clear(&*app.state.hot);
}
