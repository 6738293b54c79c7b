//! N replicas on one PostgreSQL + Redis: what one replica changes, the others serve.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use latchkey::cache::Cache;

use crate::cli::{free_port, latchkey, serve};
use crate::harness::{
    ADMIN_TOKEN, Backend, CacheKind, TestApp, TestData, eventually, redis_url, test_master_key,
};

async fn kids(client: &reqwest::Client, url: &str) -> HashSet<String> {
    let jwks: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
    crate::harness::kids(&jwks)
}

/// Two `latchkey serve` processes started together on a fresh PostgreSQL database and one Redis:
/// both migrate and bootstrap safely, and a key rotated through one is served by the other at
/// once, although its hot copies would otherwise live an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_through_one_process_is_served_by_the_other() {
    let data = TestData::new(Backend::Postgres, CacheKind::Redis).await;
    let prefix = data.redis.as_ref().unwrap().prefix.clone();
    let command = || {
        let mut cmd = latchkey(data.dir.path());
        cmd.env("LATCHKEY__DATABASE__URL", &data.pg.as_ref().unwrap().url)
            .env("LATCHKEY__REDIS__URL", redis_url())
            .env("LATCHKEY__REDIS__KEY_PREFIX", &prefix)
            .env("LATCHKEY__SECURITY__MASTER_KEY", test_master_key())
            .env("LATCHKEY__ADMIN__TOKEN", ADMIN_TOKEN)
            .env("LATCHKEY__SERVER__PUBLIC_URL", "https://id.example.test")
            .env("LATCHKEY__CACHE__HOT_TTL_SECS", "3600");
        cmd
    };
    let (pa, pb) = (free_port(), free_port());
    let (a, b) = tokio::join!(serve(command(), pa), serve(command(), pb));
    let client = reqwest::Client::new();
    let tenants: serde_json::Value = client
        .get(format!("{}/admin/tenants", a.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants.as_array().unwrap().len(), 1, "bootstrapped once");

    let b_jwks = format!("{}/t/default/jwks", b.base);
    let before = kids(&client, &b_jwks).await;
    assert_eq!(
        before,
        kids(&client, &format!("{}/t/default/jwks", a.base)).await
    );
    let rotations: serde_json::Value = client
        .post(format!("{}/admin/tenants/default/keys/rotate", a.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"force": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_next: Vec<String> = rotations
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["next"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_next.len(), 3);
    let served = eventually(Duration::from_secs(10), || {
        let (client, url, new_next) = (client.clone(), b_jwks.clone(), new_next.clone());
        async move {
            let now = kids(&client, &url).await;
            new_next.iter().all(|k| now.contains(k))
        }
    })
    .await;
    assert!(
        served,
        "replica B never served the keys rotated through replica A"
    );

    // A tenant created through B is served by A at once (A had cached its absence).
    let a_acme = format!("{}/t/acme/jwks", a.base);
    assert_eq!(client.get(&a_acme).send().await.unwrap().status(), 404);
    let created = client
        .post(format!("{}/admin/tenants", b.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"slug": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(
        eventually(Duration::from_secs(10), || {
            let (client, url) = (client.clone(), a_acme.clone());
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
    );
}

// The same guarantee in-process, for both caches: two app states on one database.
caches!(
    replicas_sharing_a_cache_see_each_others_changes,
    an_authorization_flow_started_on_one_replica_finishes_on_another,
);

async fn replicas_sharing_a_cache_see_each_others_changes(kind: CacheKind) {
    let data = Arc::new(TestData::new(Backend::Sqlite, kind).await);
    let mut settings = data.settings();
    settings.cache.hot_ttl_secs = 3600;
    let a = TestApp::start_with(data.clone(), settings.clone(), None).await;
    let shared: Option<Cache> = match kind {
        CacheKind::Memory => Some(a.state.cache.clone()),
        CacheKind::Redis => None,
    };
    let b = TestApp::start_with(data.clone(), settings, shared).await;
    let before = kids(&b.client, &b.url("/t/default/jwks")).await;
    let t = a.default_tenant().await;
    let rotations = a.state.keys().rotate(t.id, &[], true).await.unwrap();
    let url = b.url("/t/default/jwks");
    let ok = eventually(Duration::from_secs(10), || {
        let (client, url, rotations) = (b.client.clone(), url.clone(), rotations.clone());
        async move {
            let now = kids(&client, &url).await;
            rotations.iter().all(|r| now.contains(&r.next))
        }
    })
    .await;
    assert!(ok, "B kept serving its stale copy: {before:?}");
}

// A sign-in that moves between replicas at every step: started on A, signed in and consented
// on B, the code redeemed on B, userinfo asked of A. PostgreSQL + Redis as in production, and
// SQLite with one in-process cache.

async fn an_authorization_flow_started_on_one_replica_finishes_on_another(kind: CacheKind) {
    use crate::harness::browser::Browser;
    use crate::harness::flow::{self, PASSWORD, callback, pkce, pkce_url, submit_login};

    let backend = match kind {
        CacheKind::Memory => Backend::Sqlite,
        CacheKind::Redis => Backend::Postgres,
    };
    let data = Arc::new(TestData::new(backend, kind).await);
    let a = TestApp::start_with(data.clone(), data.settings(), None).await;
    let shared: Option<Cache> = match kind {
        CacheKind::Memory => Some(a.state.cache.clone()),
        CacheKind::Redis => None,
    };
    // One public URL (A's) in front of both.
    let mut settings = data.settings();
    settings.server.public_url = a.base.clone();
    let b = TestApp::start_with(data.clone(), settings, shared).await;
    a.user("alice", PASSWORD).await;
    let client = a.rp("default").create().await;
    let issuer = a.issuer("default");
    let browser = Browser::new();
    let p = pkce();
    let url = pkce_url(&issuer, &client, &p, &[]);
    let start = browser.get(&url).await;
    assert_eq!(start.status, 303);
    let login = browser.get(&b.url(start.location())).await;
    assert_eq!(login.status, 200, "B knows the request A stored");
    let signed = submit_login(&browser, &b.url("/t/default/login"), &login, "alice").await;
    assert_eq!(signed.status, 303);
    let consent = browser.get(&a.url(signed.location())).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let answered = browser
        .post(
            &b.url("/t/default/authorize/consent"),
            &[
                ("csrf", &consent.csrf()),
                ("id", &consent.input("id").unwrap()),
                ("decision", "allow"),
            ],
        )
        .await;
    let params = callback(&answered);
    assert_eq!(params["iss"], issuer);
    let body = flow::tokens(&b, &client, &params["code"], &p.verifier).await;
    let userinfo = async || {
        a.client
            .get(a.url("/t/default/userinfo"))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
    };
    let info: serde_json::Value = userinfo().await.json().await.unwrap();
    assert_eq!(info["email"], "alice@example.com", "{info}");
    // The code is spent everywhere: its reuse on A is refused and ends what B issued.
    let again = flow::redeem(&a, &client, &params["code"], Some(&p.verifier)).await;
    assert_eq!(again.status(), 400);
    assert_eq!(userinfo().await.status(), 401);
}
