//! Operations endpoints: `/healthz` (liveness), `/readyz` (database and cache reachable),
//! `/metrics` (Prometheus text format); and the maintenance scheduler ([`scheduler`]).

pub mod scheduler;

use std::time::Duration;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use serde_json::json;

use crate::app::AppState;
use crate::cache::SharedState;

/// How long a readiness probe waits for each dependency.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Per-route request counts and latency histograms.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "latchkey_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "latchkey_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        );
        // Registration only fails on duplicate or malformed names, fixed above.
        let (requests, latency) = match (requests, latency) {
            (Ok(r), Ok(l)) => (r, l),
            _ => unreachable_metrics(),
        };
        let _ = registry.register(Box::new(requests.clone()));
        let _ = registry.register(Box::new(latency.clone()));
        Metrics {
            registry,
            requests,
            latency,
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[expect(
    clippy::panic,
    reason = "metric names are constants; a bad one is a programming error caught by every test"
)]
fn unreachable_metrics() -> ! {
    panic!("invalid metric definitions")
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (db, cache) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()),
        tokio::time::timeout(PROBE_TIMEOUT, state.cache.ping()),
    );
    // The detail (hosts, users, paths) goes to the log only.
    let check = |what: &str,
                 backend: &str,
                 outcome: Result<Result<(), String>, tokio::time::error::Elapsed>| {
        let reason = match outcome {
            Ok(Ok(())) => return (true, json!({"backend": backend, "status": "up"})),
            Ok(Err(e)) => {
                tracing::warn!(dependency = what, error = %e, "readiness check failed");
                "unreachable"
            }
            Err(_) => {
                tracing::warn!(dependency = what, "readiness check timed out");
                "timed out"
            }
        };
        (
            false,
            json!({"backend": backend, "status": "down", "reason": reason}),
        )
    };
    let (db_up, db_json) = check(
        "database",
        state.store.location().backend(),
        db.map(|r| r.map_err(|e| e.to_string())),
    );
    let (cache_up, cache_json) = check(
        "cache",
        state.cache.backend(),
        cache.map(|r| r.map_err(|e| e.to_string())),
    );
    let ready = db_up && cache_up;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {"database": db_json, "cache": cache_json},
    });
    let mut response = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(body)
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(state.metrics.render())
}
