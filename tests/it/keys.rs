//! The signing-key life cycle: rotation publishes before it signs, retired keys stay published
//! for the retention window, scheduled maintenance rotates and purges, replicas race safely.

use std::collections::HashSet;

use latchkey::model::{KeyState, SigningAlg};

use crate::harness::{Backend, TestApp, kids};

backends!(
    rotation_waits_until_verifiers_can_know_the_next_key,
    rotation_promotes_the_published_next_key,
    scheduled_rotation_and_purge_follow_the_clock,
    concurrent_rotations_rotate_once,
    active_keys_sign_tokens_the_jwks_verifies,
    sealed_keys_are_bound_to_their_master_key,
    missing_keys_are_repaired,
    tenants_made_through_the_admin_api_are_usable_at_once,
    key_sets_are_public_until_they_sign_and_revalidated_cheaply,
);

async fn rotation_waits_until_verifiers_can_know_the_next_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let refused = app.state.keys().rotate(t.id, &[], false).await;
    assert!(
        matches!(refused, Err(latchkey::error::ServiceError::Conflict(_))),
        "{refused:?}"
    );
    let settings = &app.state.settings;
    app.state
        .clock
        .advance((settings.keys.jwks_max_age_secs + settings.cache.hot_ttl_secs) as i64);
    let done = app
        .state
        .keys()
        .rotate(t.id, &[SigningAlg::Es256, SigningAlg::Es256], false)
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "an algorithm named twice rotates once");
}

async fn rotation_promotes_the_published_next_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let before = kids(&app.get_json("/t/default/jwks").await);
    let rotations = app.state.keys().rotate(t.id, &[], true).await.unwrap();
    assert_eq!(rotations.len(), 3);
    let after = kids(&app.get_json("/t/default/jwks").await);
    for r in &rotations {
        assert!(
            before.contains(&r.active),
            "{} signed before it was published",
            r.active
        );
        assert!(
            after.contains(&r.retired),
            "retired key must stay published"
        );
        assert!(after.contains(&r.next), "new next key must be published");
    }
    assert_eq!(after.len(), 9);
    let keys = app.state.keys().list(t.id).await.unwrap();
    let retention = app.state.settings.keys.retention_secs as i64;
    for k in keys.iter().filter(|k| k.state == KeyState::Retired) {
        assert_eq!(k.expires_at, Some(k.retired_at.unwrap() + retention));
    }
    // Only some algorithms.
    let only = app
        .state
        .keys()
        .rotate(t.id, &[SigningAlg::Rs256], true)
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].alg, SigningAlg::Rs256);
}

async fn scheduled_rotation_and_purge_follow_the_clock(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let settings = &app.state.settings.keys;
    let report = latchkey::ops::scheduler::maintain(&app.state)
        .await
        .unwrap();
    assert_eq!(report.rotated, 0, "fresh keys are not due");
    let first_active: HashSet<String> = app
        .state
        .keys()
        .list(t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == KeyState::Active)
        .map(|k| k.kid)
        .collect();

    app.state
        .clock
        .advance(settings.rotation_interval_secs as i64);
    let report = latchkey::ops::scheduler::maintain(&app.state)
        .await
        .unwrap();
    assert_eq!(report.rotated, 3);
    let jwks = kids(&app.get_json("/t/default/jwks").await);
    assert!(
        first_active.is_subset(&jwks),
        "retired keys are still published"
    );
    assert_eq!(
        latchkey::ops::scheduler::maintain(&app.state)
            .await
            .unwrap()
            .rotated,
        0,
        "not due twice"
    );

    app.state.clock.advance(settings.retention_secs as i64);
    let report = latchkey::ops::scheduler::maintain(&app.state)
        .await
        .unwrap();
    assert_eq!(report.purged_tenants, 1);
    let jwks = kids(&app.get_json("/t/default/jwks").await);
    assert!(
        first_active.is_disjoint(&jwks),
        "expired keys leave the JWKS"
    );
    assert_eq!(jwks.len(), 6);
}

async fn concurrent_rotations_rotate_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let keys = app.state.keys();
    let (a, b) = tokio::join!(
        keys.rotate(t.id, &[SigningAlg::Es256], true),
        keys.rotate(t.id, &[SigningAlg::Es256], true),
    );
    let ok = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
    assert!(ok >= 1);
    let keys = app.state.keys().list(t.id).await.unwrap();
    let es: Vec<_> = keys.iter().filter(|k| k.alg == SigningAlg::Es256).collect();
    assert_eq!(es.iter().filter(|k| k.state == KeyState::Active).count(), 1);
    assert_eq!(es.iter().filter(|k| k.state == KeyState::Next).count(), 1);
    assert_eq!(
        es.iter().filter(|k| k.state == KeyState::Retired).count(),
        ok,
        "one retirement per successful rotation"
    );
}

async fn active_keys_sign_tokens_the_jwks_verifies(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let set = app.state.keys().key_set(t.id).await.unwrap();
    let jwks = app.get_json("/t/default/jwks").await;
    for alg in SigningAlg::ALL {
        let signer = set.signer(*alg).expect("an active signer per algorithm");
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "alice".into());
        let token = signer.sign_jwt(&claims, "JWT").unwrap();
        let published = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == signer.kid.as_str())
            .unwrap();
        let verifier =
            latchkey::jose::keys::verifier(*alg, published.as_object().unwrap()).unwrap();
        let (payload, _) = josekit::jwt::decode_with_verifier(&token, verifier.as_ref()).unwrap();
        assert_eq!(payload.subject(), Some("alice"));
    }
}

async fn sealed_keys_are_bound_to_their_master_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let stored = app.state.store.signing_keys(t.id).await.unwrap();
    for k in &stored {
        let text = String::from_utf8_lossy(&k.sealed_private);
        assert!(!text.contains("\"d\""), "private key stored in clear");
        assert_eq!(k.master_key_id, app.state.master_key.id());
    }
    // Another master key cannot open them: a replica with the wrong key fails loudly.
    let mut settings = app.data.settings();
    settings.security.master_key = Some(latchkey::config::Secret::new(
        latchkey::crypto::MasterKey::generate_base64(),
    ));
    settings.security.master_key_file = None;
    let other = TestApp::start_with(app.data.clone(), settings, None).await;
    let res = other.get("/t/default/jwks").await;
    assert_eq!(res.status(), 500);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
}

async fn missing_keys_are_repaired(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.default_tenant().await;
    let next = app
        .state
        .keys()
        .list(t.id)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.state == KeyState::Next && k.alg == SigningAlg::EdDsa)
        .unwrap();
    app.state.keys().delete(t.id, &next.kid).await.unwrap();
    let set = app.state.keys().key_set(t.id).await.unwrap();
    assert_eq!(set.keys.len(), 6, "a new next key replaced the deleted one");
    assert!(set.keys.iter().all(|k| k.kid != next.kid));
    let active = set
        .keys
        .iter()
        .find(|k| k.state == KeyState::Active)
        .unwrap()
        .kid
        .clone();
    assert!(
        app.state.keys().delete(t.id, &active).await.is_err(),
        "the active key cannot be deleted"
    );
}

async fn tenants_made_through_the_admin_api_are_usable_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app
        .admin(reqwest::Method::POST, "/admin/tenants")
        .json(&serde_json::json!({"slug": "quick"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // ES256 (access tokens) and EdDSA at once; no RSA key yet.
    let client = app.client("quick").create().await;
    app.access_token(&client).await;
    let rsa = |jwks: &serde_json::Value| {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kty"] == "RSA")
            .count()
    };
    assert_eq!(rsa(&app.get_json("/t/quick/jwks").await), 0);
    assert_eq!(
        app.get_json("/t/quick/jwks").await["keys"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // The first RS256 signature makes its active and next keys on the spot.
    app.admin(reqwest::Method::POST, "/admin/tenants")
        .json(&serde_json::json!({"slug": "eager"}))
        .send()
        .await
        .unwrap();
    let rs = app
        .client("eager")
        .policy(|p| p.access_token_signing_alg = Some(SigningAlg::Rs256))
        .create()
        .await;
    let token = app.access_token(&rs).await;
    let (header, _) = crate::harness::clients::jwt_parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(rsa(&app.get_json("/t/eager/jwks").await), 2);
}

async fn key_sets_are_public_until_they_sign_and_revalidated_cheaply(backend: Backend) {
    let data = std::sync::Arc::new(
        crate::harness::TestData::new(backend, crate::harness::CacheKind::Memory).await,
    );
    let app = TestApp::start_on(data, |s| s.cache.hot_ttl_secs = 1).await;
    let t = app.default_tenant().await;
    assert_eq!(app.get("/t/default/jwks").await.status(), 200);
    let first = app.state.keys().key_set(t.id).await.unwrap();
    assert_eq!(
        first.loaded_signers(),
        0,
        "serving the JWKS unseals nothing"
    );
    let client = app.client("default").create().await;
    app.access_token(&client).await;
    assert_eq!(first.loaded_signers(), 1, "the ES256 key, on first use");
    // Past the hot TTL, an unchanged set is revalidated and kept (its loaded signer too).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let again = app.state.keys().key_set(t.id).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again), "kept, not reloaded");
    // A change is seen.
    app.state
        .keys()
        .rotate(t.id, &[SigningAlg::EdDsa], true)
        .await
        .unwrap();
    let rotated = app.state.keys().key_set(t.id).await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &rotated));
}
