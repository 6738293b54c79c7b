//! HTTP plumbing shared by every route: request ids, access logs and metrics, and extractors.

pub mod admin_auth;
pub mod tenant;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;

use crate::app::AppState;

pub use admin_auth::Admin;
pub use tenant::CurrentTenant;

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1), if there is one.
pub fn bearer(req: &actix_web::HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's request id is kept if it is short and plain; otherwise a new one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        // A v4 UUID from the thread RNG (no system call per request, unlike `new_v4`).
        .map_or_else(
            || {
                uuid::Builder::from_random_bytes(crate::rng::Rng::System.bytes::<16>())
                    .into_uuid()
                    .to_string()
            },
            str::to_owned,
        )
}

/// Gives every request an id (echoed in `X-Request-Id`, carried by every log line of the
/// request), logs it once when done, and records per-route count and latency.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    // Metric labels take known methods only: arbitrary tokens would grow series without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.path());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let status = res.status();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(metrics) = metrics {
        metrics.observe(&method, &route, status.as_u16(), elapsed.as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                route,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        } else {
            tracing::info!(
                status = status.as_u16(),
                route,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        }
    });
    Ok(res)
}

/// An IP address or CIDR block (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    network: std::net::IpAddr,
    prefix: u8,
}

impl IpBlock {
    pub fn parse(raw: &str) -> Option<IpBlock> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (raw, None),
        };
        let network: std::net::IpAddr = addr.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpBlock { network, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical(ip);
        let bits = |ip: std::net::IpAddr| -> Option<u128> {
            match (self.network, ip) {
                (std::net::IpAddr::V4(_), std::net::IpAddr::V4(v4)) => {
                    Some(u128::from(u32::from(v4)) << 96)
                }
                (std::net::IpAddr::V6(_), std::net::IpAddr::V6(v6)) => Some(u128::from(v6)),
                _ => None,
            }
        };
        let (Some(net), Some(addr)) = (bits(self.network), bits(ip)) else {
            return false;
        };
        // IPv4 sits in the top 32 bits, so both families compare their top `prefix` bits.
        let shift = 128 - u32::from(self.prefix);
        shift >= 128 || (net >> shift) == (addr >> shift)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener reports for
/// IPv4 peers) as the IPv4 address it is; any other address unchanged.
pub fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// What a per-address rate limit counts: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's network: a host can take any address in it).
pub fn rate_limit_subject(ip: std::net::IpAddr) -> String {
    match canonical(ip) {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The address of the client behind a request: the TCP peer, or, when the peer is a trusted
/// proxy, the rightmost `X-Forwarded-For` entry that is not one (the proxies' own additions
/// are to the right; anything further left the client could have forged).
pub fn client_ip(req: &actix_web::HttpRequest, trusted: &[String]) -> Option<std::net::IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    let blocks: Vec<IpBlock> = trusted.iter().filter_map(|t| IpBlock::parse(t)).collect();
    let is_trusted = |ip: std::net::IpAddr| blocks.iter().any(|b| b.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .map(canonical)
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(*ip))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_blocks() {
        let block = IpBlock::parse("10.0.0.0/8").unwrap();
        assert!(block.contains("10.1.2.3".parse().unwrap()));
        assert!(!block.contains("11.0.0.1".parse().unwrap()));
        assert!(!block.contains("::1".parse().unwrap()));
        let one = IpBlock::parse("192.168.1.7").unwrap();
        assert!(one.contains("192.168.1.7".parse().unwrap()));
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        let v6 = IpBlock::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(
            IpBlock::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["", "10.0.0.0/33", "x", "::/129", "10.0.0.0/x"] {
            assert!(IpBlock::parse(bad).is_none(), "{bad}");
        }
        // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6.
        let proxies = IpBlock::parse("10.0.0.0/8").unwrap();
        assert!(proxies.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!proxies.contains("::ffff:11.1.2.3".parse().unwrap()));
    }

    #[test]
    fn rate_limits_count_ipv6_per_64() {
        let a = rate_limit_subject("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = rate_limit_subject("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let c = rate_limit_subject("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, c);
        assert_eq!(
            rate_limit_subject("192.0.2.7".parse().unwrap()),
            "192.0.2.7"
        );
        assert_eq!(
            rate_limit_subject("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7"
        );
    }
}
