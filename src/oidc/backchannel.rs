//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every client that received a
//! code in it and registered a `backchannel_logout_uri` is told, server to server. The rows
//! are queued in the transaction that ends the session ([`crate::store`]); the outbox worker
//! ([`crate::mail::deliver_due`]) calls [`deliver`] for each, at least once, never in the
//! person's request. Each attempt carries a fresh logout token (§2.4), and the target passes
//! the same guard as `jwks_uri` fetches, widened only by the tenant's `outbound_allow`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::model::Tenant;
use crate::model::client::ClientId;
use crate::model::outbox::OutboxItem;
use crate::oauth::client_auth::ssrf::is_public;

/// §2.6: the event member of every logout token.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// §2.4: a logout token lives two minutes at most.
const TOKEN_TTL: i64 = 120;

/// How long a notification is retried before it is given up (the 24 h).
pub const GIVE_UP_AFTER: i64 = 24 * 3600;

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Worth trying again later (5xx, timeout, unreachable).
    Retry(String),
    /// Never worth trying again (the client is gone, or answered 4xx, §2.8).
    Stop(String),
}

/// What a queued notification names.
#[derive(Debug, Deserialize)]
struct Queued {
    client_id: String,
    sid: String,
    sub: String,
}

/// The claims of a logout token (§2.4): no `nonce`, an `events` member, `sub` and `sid`.
pub fn logout_claims(
    issuer: &str,
    client_id: &str,
    sub: &str,
    sid: &str,
    now: i64,
    jti: String,
) -> Map<String, Value> {
    let Value::Object(claims) = json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + TOKEN_TTL,
        "jti": jti,
        "events": { EVENT: {} },
        "sub": sub,
        "sid": sid,
    }) else {
        return Map::new();
    };
    claims
}

/// One attempt at the notification `item`.
pub async fn deliver(state: &AppState, item: &OutboxItem) -> Delivery {
    let Ok(queued) = serde_json::from_value::<Queued>(item.payload.clone()) else {
        return Delivery::Stop("malformed back-channel logout row".into());
    };
    let tenant = match state.store.tenant_by_id(item.tenant).await {
        Ok(Some(t)) => t,
        Ok(None) => return Delivery::Stop("the tenant is gone".into()),
        Err(e) => return Delivery::Retry(e.to_string()),
    };
    let Some(client_id) = ClientId::parse(&queued.client_id) else {
        return Delivery::Stop("malformed client_id".into());
    };
    let client = match state.clients().find(tenant.id, &client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Delivery::Stop("the client is gone".into()),
        Err(e) => return Delivery::Retry(e.to_string()),
    };
    let Some(uri) = client.metadata.backchannel_logout_uri.clone() else {
        return Delivery::Stop("the client no longer registers a backchannel_logout_uri".into());
    };
    let claims = logout_claims(
        &state.settings.issuer(&tenant.slug),
        client_id.as_str(),
        &queued.sub,
        &queued.sid,
        state.clock.now(),
        state.rng.token::<16>(),
    );
    let token = match state
        .id_tokens()
        .sign(
            &tenant,
            client.metadata.id_token_signed_response_alg,
            &claims,
            "logout+jwt",
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return Delivery::Retry(e.to_string()),
    };
    post(&tenant, uri.as_str(), &token).await
}

/// The addresses `url` may be called at: public ones, or those the tenant allows.
async fn allowed_addrs(tenant: &Tenant, url: &url::Url) -> Result<Vec<SocketAddr>, Delivery> {
    let port = url.port_or_known_default().unwrap_or(443);
    let host = url.host_str().unwrap_or_default();
    let resolved: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => match tokio::net::lookup_host((name, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(Delivery::Retry(format!("{name}: {e}"))),
        },
        None => return Err(Delivery::Stop("the logout URI has no host".into())),
    };
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|a| is_public(a.ip()) || tenant.settings.outbound_allowed(host, a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(Delivery::Stop(format!(
            "{host} is not a public address and not in the tenant's outbound_allow"
        )));
    }
    Ok(allowed)
}

/// §2.5: the token POSTed as a form; any 2xx is success (§2.8: 200 or 204), 4xx a refusal.
async fn post(tenant: &Tenant, uri: &str, token: &str) -> Delivery {
    let Ok(url) = url::Url::parse(uri) else {
        return Delivery::Stop("the logout URI is malformed".into());
    };
    let addrs = match allowed_addrs(tenant, &url).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    // Pinned to the addresses just checked: no second resolution, no rebinding.
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve_to_addrs(url.host_str().unwrap_or_default(), &addrs)
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Delivery::Retry(e.to_string()),
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish();
    match client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cache-control", "no-cache, no-store")
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Delivery::Delivered,
        Ok(r) if r.status().is_client_error() => {
            Delivery::Stop(format!("the client answered {}", r.status()))
        }
        Ok(r) => Delivery::Retry(format!("the client answered {}", r.status())),
        Err(e) => Delivery::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_token_has_the_event_and_no_nonce() {
        let c = logout_claims("https://id/t/a", "app", "u1", "s1", 1000, "j".into());
        assert_eq!(c["aud"], "app");
        assert_eq!(c["exp"], 1120);
        assert!(c["events"][EVENT].is_object());
        assert!(!c.contains_key("nonce"));
        assert_eq!(c["sid"], "s1");
        assert_eq!(c["sub"], "u1");
    }
}
