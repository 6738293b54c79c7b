//! The store: tenant isolation for every kind of object, and the single-row guarantees.

use latchkey::model::{KeyState, SigningAlg, TenantSlug};
use latchkey::store::StoreError;

use crate::harness::{Backend, TestApp};

backends!(
    keys_of_one_tenant_are_invisible_to_another,
    tenant_slugs_are_unique,
    deleting_a_tenant_removes_only_its_rows,
    one_active_and_one_next_key_per_algorithm,
);

async fn keys_of_one_tenant_are_invisible_to_another(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("beta").await;
    let store = &app.state.store;
    let a_keys = store.signing_keys(a.id).await.unwrap();
    assert_eq!(a_keys.len(), 6);
    let a_active = a_keys
        .iter()
        .find(|k| k.key.state == KeyState::Active)
        .unwrap();
    let a_next = a_keys
        .iter()
        .find(|k| k.key.state == KeyState::Next)
        .unwrap();

    // Read: by kid through B finds nothing; B's list holds none of A's keys.
    assert!(
        store
            .signing_key(b.id, &a_active.key.kid)
            .await
            .unwrap()
            .is_none()
    );
    let b_kids: Vec<String> = store
        .signing_keys(b.id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key.kid)
        .collect();
    assert!(a_keys.iter().all(|k| !b_kids.contains(&k.key.kid)));
    // Change: rotating A's active key through B is refused and A is untouched.
    let replacement = b_keys_new_next(&app, b.id, a_active.key.alg).await;
    let err = store
        .rotate_signing_key(
            b.id,
            a_active.key.alg,
            &a_active.key.kid,
            &replacement,
            1,
            2,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Delete: through B removes nothing.
    assert!(
        !store
            .delete_signing_key(b.id, &a_next.key.kid)
            .await
            .unwrap()
    );
    assert_eq!(store.signing_keys(a.id).await.unwrap(), a_keys);
    // The service and HTTP layers go through the same store.
    assert!(
        app.state
            .keys()
            .delete(b.id, &a_next.key.kid)
            .await
            .is_err()
    );
    let jwks = app.get_json("/t/beta/jwks").await;
    let served: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(a_keys.iter().all(|k| !served.contains(&k.key.kid.as_str())));
}

/// A sealed key for `tenant`, as rotation would make it.
async fn b_keys_new_next(
    app: &TestApp,
    tenant: latchkey::model::TenantId,
    alg: SigningAlg,
) -> latchkey::model::NewSigningKey {
    let generated = latchkey::jose::generate(alg, 2048).unwrap();
    let sealed = app
        .state
        .master_key
        .seal(&generated.private_jwk, b"test")
        .unwrap();
    let _ = tenant;
    latchkey::model::NewSigningKey {
        key: latchkey::model::SigningKey {
            kid: generated.kid,
            alg,
            state: KeyState::Next,
            public_jwk: generated.public_jwk,
            created_at: 1,
            activated_at: None,
            retired_at: None,
            expires_at: None,
        },
        sealed_private: sealed,
        master_key_id: app.state.master_key.id().to_owned(),
    }
}

async fn tenant_slugs_are_unique(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.tenant("acme").await;
    let again = app
        .state
        .tenants()
        .create(&TenantSlug::parse("acme").unwrap(), None)
        .await;
    assert!(
        matches!(again, Err(latchkey::error::ServiceError::Conflict(_))),
        "{again:?}"
    );
    let slugs: Vec<String> = app
        .state
        .store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug.to_string())
        .collect();
    assert_eq!(slugs, ["acme", "default"]);
}

async fn deleting_a_tenant_removes_only_its_rows(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("beta").await;
    let b_before = app.state.store.signing_keys(b.id).await.unwrap();
    assert!(app.state.store.delete_tenant(a.id).await.unwrap());
    assert!(!app.state.store.delete_tenant(a.id).await.unwrap());
    assert!(
        app.state.store.signing_keys(a.id).await.unwrap().is_empty(),
        "keys cascade with the tenant"
    );
    assert_eq!(app.state.store.signing_keys(b.id).await.unwrap(), b_before);
    assert!(
        app.state
            .store
            .tenant_by_slug(&TenantSlug::parse("alpha").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

async fn one_active_and_one_next_key_per_algorithm(backend: Backend) {
    let app = TestApp::start(backend).await;
    let t = app.tenant("acme").await;
    // A second next key for ES256 violates the partial unique index: the database backs the rule.
    let extra = b_keys_new_next(&app, t.id, SigningAlg::Es256).await;
    let err = app
        .state
        .store
        .insert_signing_keys(t.id, &[extra])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let keys = app.state.store.signing_keys(t.id).await.unwrap();
    for alg in SigningAlg::ALL {
        for state in [KeyState::Active, KeyState::Next] {
            assert_eq!(
                keys.iter()
                    .filter(|k| k.key.alg == *alg && k.key.state == state)
                    .count(),
                1,
                "{alg} {state}"
            );
        }
    }
}
