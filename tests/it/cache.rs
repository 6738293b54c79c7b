//! One suite for both shared-state implementations.

use std::time::Duration;

use latchkey::cache::{Cache, CacheEvent, SharedState};

use crate::harness::{CacheKind, RedisPrefix};

caches!(
    values_live_until_their_ttl,
    set_if_absent_lets_the_first_writer_win,
    take_is_single_use_under_concurrency,
    counters_count_within_their_window,
    published_messages_reach_every_subscriber,
    ping_answers,
);

/// The cache under test and the guard that cleans its Redis keys.
async fn cache(kind: CacheKind) -> (Cache, Option<RedisPrefix>) {
    match kind {
        CacheKind::Memory => (Cache::memory(), None),
        CacheKind::Redis => {
            let prefix = RedisPrefix::new();
            (prefix.cache().await, Some(prefix))
        }
    }
}

async fn values_live_until_their_ttl(kind: CacheKind) {
    let (c, _guard) = cache(kind).await;
    assert_eq!(c.get("k").await.unwrap(), None);
    c.set("k", b"v1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    c.set("k", b"v2", Duration::from_millis(300)).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(c.get("k").await.unwrap(), None, "expired");
    c.set("d", b"x", Duration::from_secs(60)).await.unwrap();
    assert!(c.delete("d").await.unwrap());
    assert!(!c.delete("d").await.unwrap());
    // Binary values survive.
    c.set("bin", &[0, 255, 10, 13], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(c.get("bin").await.unwrap().unwrap(), vec![0, 255, 10, 13]);
}

async fn set_if_absent_lets_the_first_writer_win(kind: CacheKind) {
    let (c, _guard) = cache(kind).await;
    assert!(
        c.set_if_absent("jti:1", b"a", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !c.set_if_absent("jti:1", b"b", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(c.get("jti:1").await.unwrap().as_deref(), Some(&b"a"[..]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        c.set_if_absent("jti:1", b"c", Duration::from_secs(60))
            .await
            .unwrap(),
        "free again after expiry"
    );
    // Many writers at once: exactly one wins.
    let attempts = (0..16).map(|i| {
        let c = c.clone();
        async move {
            c.set_if_absent(
                "jti:race",
                format!("{i}").as_bytes(),
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        }
    });
    let wins = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|w| *w)
        .count();
    assert_eq!(wins, 1);
}

async fn take_is_single_use_under_concurrency(kind: CacheKind) {
    let (c, _guard) = cache(kind).await;
    c.set("code", b"once", Duration::from_secs(60))
        .await
        .unwrap();
    let takers = (0..16).map(|_| {
        let c = c.clone();
        async move { c.take("code").await.unwrap() }
    });
    let got: Vec<_> = futures_util::future::join_all(takers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(got, vec![b"once".to_vec()]);
    assert_eq!(c.get("code").await.unwrap(), None);
}

async fn counters_count_within_their_window(kind: CacheKind) {
    let (c, _guard) = cache(kind).await;
    let window = Duration::from_millis(500);
    for expected in 1..=5 {
        assert_eq!(c.increment("rl:ip", window).await.unwrap(), expected);
    }
    let concurrent = (0..10).map(|_| {
        let c = c.clone();
        async move { c.increment("rl:ip", window).await.unwrap() }
    });
    let mut seen: Vec<i64> = futures_util::future::join_all(concurrent).await;
    seen.sort_unstable();
    assert_eq!(seen, (6..=15).collect::<Vec<_>>(), "increments are atomic");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        c.increment("rl:ip", window).await.unwrap(),
        1,
        "a new window starts"
    );
}

async fn published_messages_reach_every_subscriber(kind: CacheKind) {
    let (c, _guard) = cache(kind).await;
    let mut a = c.subscribe("chan").await.unwrap();
    let mut b = c.subscribe("chan").await.unwrap();
    let mut other = c.subscribe("other").await.unwrap();
    c.publish("chan", "hello").await.unwrap();
    for rx in [&mut a, &mut b] {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, CacheEvent::Message("hello".into()));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other.recv())
            .await
            .is_err(),
        "channels are separate"
    );
}

async fn ping_answers(kind: CacheKind) {
    let (c, _guard) = cache(kind).await;
    c.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_are_namespaced_by_prefix() {
    let one = RedisPrefix::new();
    let two = RedisPrefix::new();
    let (a, b) = (one.cache().await, two.cache().await);
    a.set("shared-name", b"a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get("shared-name").await.unwrap(), None);
}
