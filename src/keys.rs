//! The signing-key life cycle (DESIGN §3): every tenant has, per algorithm, one active key that
//! signs and one next key already published in the JWKS. Rotation promotes next to active,
//! retires the old active key (still published for `keys.retention_secs`, so tokens it signed
//! stay verifiable) and publishes a new next key. A scheduler on every replica rotates keys that
//! have signed for `keys.rotation_interval_secs` and purges retired keys past their window;
//! compare-and-swap in the store makes concurrent replicas rotate once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cache::{HotMap, Invalidated, Invalidation, Invalidator, SingleFlight};
use crate::clock::Clock;
use crate::config::KeySettings;
use crate::crypto::{MasterKey, b64url, sha256};
use crate::error::ServiceError;
use crate::jose::{self, GeneratedKey, LoadedSigner};
use crate::model::{KeyState, NewSigningKey, SealedSigningKey, SigningAlg, SigningKey, TenantId};
use crate::store::{Store, StoreError};

/// A tenant's keys as served and used. Built from public material only (the JWKS, verifiers);
/// an active key's private half is unsealed the first time it signs, so serving JWKS and
/// discovery for many tenants costs no private-key work, and an idle tenant holds no loaded
/// private keys.
pub struct KeySet {
    /// Every published key: active, next and retired.
    pub keys: Vec<SigningKey>,
    /// The JWKS JSON (RFC 7517 §5), public members only; shared, so serving it copies
    /// nothing.
    pub jwks: actix_web::web::Bytes,
    /// A strong validator of `jwks`.
    pub etag: String,
    /// Each `kid` with its state, in `kid` order (see [`crate::store::Store::signing_key_stamp`]).
    stamp: Vec<(String, String)>,
    tenant: TenantId,
    master_key: Arc<MasterKey>,
    /// Active keys: sealed private half and, once used, the loaded signer.
    active: Vec<(SealedSigningKey, OnceLock<Option<LoadedSigner>>)>,
    /// Published keys' verifiers, parsed on first use.
    verifiers: Vec<OnceLock<Option<Box<dyn jose::JwsVerifier>>>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Most key sets kept hot: an idle tenant's is public material only (a few KiB), so 20,000
/// of them stay within tens of MiB.
const HOT_KEY_SETS: usize = 20_000;

/// This replica's hot copies of key sets.
pub struct KeyCache {
    pub sets: HotMap<TenantId, Arc<KeySet>>,
    /// One key set load per tenant at a time.
    pub loads: SingleFlight<TenantId>,
    /// One generation of missing keys per tenant at a time (RSA keys are made on first use).
    pub fills: SingleFlight<TenantId>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            sets: HotMap::new(ttl, HOT_KEY_SETS),
            loads: SingleFlight::default(),
            fills: SingleFlight::default(),
        }
    }
}

impl Invalidated for KeyCache {
    fn evict(&self, message: &Invalidation) {
        if matches!(
            message,
            Invalidation::Keys { .. } | Invalidation::Tenant { .. }
        ) {
            self.sets.retain(|id, _| !message.concerns(*id));
        }
    }

    fn clear(&self) {
        self.sets.clear();
    }
}

impl KeySet {
    /// The active key for `alg`, unsealed on first use. `None`: the tenant has no active key
    /// for `alg` yet (see [`Keys::signing_set`]), or it could not be unsealed (logged).
    pub fn signer(&self, alg: SigningAlg) -> Option<&LoadedSigner> {
        let (sealed, slot) = self.active.iter().find(|(k, _)| k.key.alg == alg)?;
        slot.get_or_init(|| {
            let opened = self
                .master_key
                .open(
                    &sealed.sealed_private,
                    &seal_context(self.tenant, &sealed.key.kid),
                )
                .map_err(ServiceError::from)
                .and_then(|private| Ok(jose::load_signer(alg, &private)?));
            match opened {
                Ok(signer) => Some(signer),
                Err(e) => {
                    tracing::error!(tenant = %self.tenant, kid = %sealed.key.kid, error = %e, "cannot load a signing key");
                    None
                }
            }
        })
        .as_ref()
    }

    /// How many private keys are unsealed and loaded (none until the tenant signs).
    pub fn loaded_signers(&self) -> usize {
        self.active
            .iter()
            .filter(|(_, slot)| slot.get().is_some())
            .count()
    }

    /// Whether `alg` has an active key.
    pub fn has_active(&self, alg: SigningAlg) -> bool {
        self.active.iter().any(|(k, _)| k.key.alg == alg)
    }

    /// The published key `kid`, as a verifier (active, next and retired keys all verify).
    pub fn verifier(&self, kid: &str) -> Option<(SigningAlg, &dyn jose::JwsVerifier)> {
        let index = self.keys.iter().position(|k| k.kid == kid)?;
        let key = &self.keys[index];
        let verifier = self.verifiers[index]
            .get_or_init(|| jose::verifier(key.alg, &key.public_jwk).ok())
            .as_deref()?;
        Some((key.alg, verifier))
    }
}

/// The key service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub store: &'a Store,
    pub hot: &'a KeyCache,
    pub master_key: &'a Arc<MasterKey>,
    pub settings: &'a KeySettings,
    /// `cache.hot_ttl_secs`: how long a replica may serve a JWKS it no longer has.
    pub hot_ttl_secs: u64,
    pub clock: &'a Clock,
    pub invalidator: &'a Invalidator,
}

/// What one rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    pub alg: SigningAlg,
    pub retired: String,
    pub active: String,
    pub next: String,
}

fn seal_context(tenant: TenantId, kid: &str) -> Vec<u8> {
    format!("latchkey:signing-key:{tenant}:{kid}").into_bytes()
}

impl Keys<'_> {
    /// Generates key pairs off the async workers (RSA generation takes a while).
    async fn generate(
        &self,
        algs: Vec<SigningAlg>,
    ) -> Result<Vec<(SigningAlg, GeneratedKey)>, ServiceError> {
        let bits = self.settings.rsa_bits;
        tokio::task::spawn_blocking(move || {
            algs.into_iter()
                .map(|alg| Ok((alg, jose::generate(alg, bits)?)))
                .collect::<Result<Vec<_>, jose::JoseError>>()
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("key generation failed: {e}")))?
        .map_err(ServiceError::from)
    }

    fn seal(
        &self,
        tenant: TenantId,
        alg: SigningAlg,
        generated: GeneratedKey,
        key_state: KeyState,
        now: i64,
    ) -> Result<NewSigningKey, ServiceError> {
        let sealed_private = self.master_key.seal(
            &generated.private_jwk,
            &seal_context(tenant, &generated.kid),
        )?;
        Ok(NewSigningKey {
            key: SigningKey {
                kid: generated.kid,
                alg,
                state: key_state,
                public_jwk: generated.public_jwk,
                created_at: now,
                activated_at: (key_state == KeyState::Active).then_some(now),
                retired_at: None,
                expires_at: None,
            },
            sealed_private,
            master_key_id: self.master_key.id().to_owned(),
        })
    }

    /// With `rsa` false, RSA keys are left out (generated later, off the request path).
    pub async fn initial_material(&self, rsa: bool) -> Result<InitialMaterial, ServiceError> {
        let wanted: Vec<(SigningAlg, KeyState)> = SigningAlg::ALL
            .iter()
            .filter(|alg| rsa || **alg != SigningAlg::Rs256)
            .flat_map(|alg| [(*alg, KeyState::Active), (*alg, KeyState::Next)])
            .collect();
        let generated = self
            .generate(wanted.iter().map(|(alg, _)| *alg).collect())
            .await?;
        Ok(InitialMaterial(
            generated
                .into_iter()
                .zip(wanted)
                .map(|((alg, key), (_, key_state))| (alg, key, key_state))
                .collect(),
        ))
    }

    /// Seals [`InitialMaterial`] for the tenant the store is creating.
    pub fn seal_all(
        &self,
        tenant: TenantId,
        material: InitialMaterial,
        now: i64,
    ) -> Result<Vec<NewSigningKey>, ServiceError> {
        material
            .0
            .into_iter()
            .map(|(alg, key, key_state)| self.seal(tenant, alg, key, key_state, now))
            .collect()
    }

    /// The tenant's key set, from the hot copy. A copy past `cache.hot_ttl_secs` is revalidated
    /// with one cheap query ([`crate::store::Store::signing_key_stamp`]) and kept when nothing
    /// changed; invalidation messages evict changed sets at once. Loads of one tenant are
    /// single-flight on a replica.
    pub async fn key_set(&self, tenant: TenantId) -> Result<Arc<KeySet>, ServiceError> {
        let stale = match self.hot.sets.lookup(&tenant) {
            Some((hit, true)) => return Ok(hit),
            Some((hit, false)) => Some(hit),
            None => None,
        };
        let _flight = self.hot.loads.enter(&tenant).await;
        // The previous holder of the flight has usually done the work.
        if let Some((hit, true)) = self.hot.sets.lookup(&tenant) {
            return Ok(hit);
        }
        let generation = self.hot.sets.generation();
        if let Some(stale) = stale
            && self.store.signing_key_stamp(tenant).await? == stale.stamp
        {
            self.hot.sets.renew_if(generation, &tenant);
            return Ok(stale);
        }
        let mut stored = self.store.signing_keys(tenant).await?;
        if self.repair(tenant, &stored).await? {
            stored = self.store.signing_keys(tenant).await?;
        }
        let set = Arc::new(self.build(tenant, stored)?);
        self.hot.sets.insert_if(generation, tenant, set.clone());
        Ok(set)
    }

    /// The key set, with an active key for `alg` (generated now if the tenant has none yet: RSA
    /// keys of a tenant created through the admin API come after its creation).
    pub async fn signing_set(
        &self,
        tenant: TenantId,
        alg: SigningAlg,
    ) -> Result<Arc<KeySet>, ServiceError> {
        let set = self.key_set(tenant).await?;
        if set.has_active(alg) {
            return Ok(set);
        }
        // One generation at a time: concurrent first RS256 signatures of a new tenant wait for
        // it rather than each make (and throw away) an RSA key.
        let _fill = self.hot.fills.enter(&tenant).await;
        let set = self.key_set(tenant).await?;
        if set.has_active(alg) {
            return Ok(set);
        }
        self.fill_missing(tenant, true).await?;
        // Another replica may have made them (our insert then conflicts and announces nothing):
        // our copy is stale either way.
        self.hot.sets.remove(&tenant);
        self.key_set(tenant).await
    }

    fn build(
        &self,
        tenant: TenantId,
        stored: Vec<SealedSigningKey>,
    ) -> Result<KeySet, ServiceError> {
        // A replica with the wrong master key fails loudly at once, not at the first signature.
        if let Some(sealed) = stored
            .iter()
            .find(|k| k.master_key_id != self.master_key.id())
        {
            return Err(ServiceError::Internal(format!(
                "signing key {} was sealed under master key {}, but the configured master key is {}",
                sealed.key.kid,
                sealed.master_key_id,
                self.master_key.id()
            )));
        }
        let mut stamp: Vec<(String, String)> = stored
            .iter()
            .map(|k| (k.key.kid.clone(), k.key.state.as_str().to_owned()))
            .collect();
        stamp.sort();
        let keys: Vec<SigningKey> = stored.iter().map(|k| k.key.clone()).collect();
        let active = stored
            .into_iter()
            .filter(|k| k.key.state == KeyState::Active)
            .map(|k| (k, OnceLock::new()))
            .collect();
        let jwks = json!({
            "keys": keys.iter().map(|k| Value::Object(k.public_jwk.clone())).collect::<Vec<_>>()
        })
        .to_string();
        let etag = format!("\"{}\"", b64url(&sha256(jwks.as_bytes())[..18]));
        Ok(KeySet {
            verifiers: keys.iter().map(|_| OnceLock::new()).collect(),
            keys,
            jwks: actix_web::web::Bytes::from(jwks),
            etag,
            stamp,
            tenant,
            master_key: self.master_key.clone(),
            active,
        })
    }

    /// Generates what a tenant lacks (an active and a next key per algorithm): the fast
    /// algorithms always, RSA only when `rsa` (generating RSA keys takes a while). Returns
    /// whether anything was added; another replica repairing at once is harmless.
    async fn fill_missing(&self, tenant: TenantId, rsa: bool) -> Result<bool, ServiceError> {
        let stored = self.store.signing_keys(tenant).await?;
        let missing = missing_keys(&stored, rsa);
        if missing.is_empty() {
            return Ok(false);
        }
        let added = self.add_keys(tenant, missing).await?;
        if added {
            self.invalidator.announce(Invalidation::keys(tenant)).await;
        }
        Ok(added)
    }

    async fn add_keys(
        &self,
        tenant: TenantId,
        missing: Vec<(SigningAlg, KeyState)>,
    ) -> Result<bool, ServiceError> {
        let now = self.clock.now();
        let generated = self
            .generate(missing.iter().map(|(alg, _)| *alg).collect())
            .await?;
        let sealed = generated
            .into_iter()
            .zip(&missing)
            .map(|((alg, key), (_, st))| self.seal(tenant, alg, key, *st, now))
            .collect::<Result<Vec<_>, _>>()?;
        match self.store.insert_signing_keys(tenant, &sealed).await {
            Ok(()) => {
                tracing::info!(%tenant, added = sealed.len(), "signing keys added");
                Ok(true)
            }
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes sure every fast algorithm has an active and a next key (a tenant from an older
    /// version, a next key deleted by an operator) when a key set loads. RSA keys are repaired
    /// where RS256 is needed ([`Keys::signing_set`]) and before rotations: generating one takes a
    /// while, and a tenant made without them gets them on its first RS256 signature. Returns
    /// whether keys were added.
    async fn repair(
        &self,
        tenant: TenantId,
        stored: &[SealedSigningKey],
    ) -> Result<bool, ServiceError> {
        // A tenant that has RSA keys keeps a next one beside its active one.
        let has_rsa = stored
            .iter()
            .any(|k| k.key.alg == SigningAlg::Rs256 && k.key.state == KeyState::Active);
        let wanted = missing_keys(stored, has_rsa);
        if wanted.is_empty() {
            return Ok(false);
        }
        self.add_keys(tenant, wanted).await
    }

    /// Every key of a tenant, active first.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<SigningKey>, ServiceError> {
        Ok(self
            .store
            .signing_keys(tenant)
            .await?
            .into_iter()
            .map(|k| k.key)
            .collect())
    }

    /// Rotates the given algorithms (all when empty) of one tenant now.
    ///
    /// A next key is promoted only once it has been published for `keys.jwks_max_age_secs` plus
    /// `cache.hot_ttl_secs`, so every verifier's cached JWKS knows it before it signs; `force`
    /// skips that wait (for a compromised active key).
    pub async fn rotate(
        &self,
        tenant: TenantId,
        algs: &[SigningAlg],
        force: bool,
    ) -> Result<Vec<Rotation>, ServiceError> {
        self.fill_missing(tenant, true).await?;
        let algs: Vec<SigningAlg> = SigningAlg::ALL
            .iter()
            .copied()
            .filter(|alg| algs.is_empty() || algs.contains(alg))
            .collect();
        let stored = self.store.signing_keys(tenant).await?;
        if !force {
            for alg in &algs {
                self.settled(&stored, *alg)?;
            }
        }
        let mut done = Vec::new();
        for alg in &algs {
            let find = |st: KeyState| {
                stored
                    .iter()
                    .find(|k| k.key.alg == *alg && k.key.state == st)
                    .map(|k| k.key.kid.clone())
            };
            let (Some(active), Some(next)) = (find(KeyState::Active), find(KeyState::Next)) else {
                return Err(ServiceError::Conflict(format!(
                    "{alg} keys changed during rotation; retry"
                )));
            };
            let rotated = self.rotate_one(tenant, *alg, &active).await;
            // Announce what did rotate, even if a later algorithm fails.
            if rotated.is_ok() || !done.is_empty() {
                self.invalidator.announce(Invalidation::keys(tenant)).await;
            }
            let new_next = rotated?;
            done.push(Rotation {
                alg: *alg,
                retired: active,
                active: next,
                next: new_next,
            });
        }
        Ok(done)
    }

    /// Refuses to promote `alg`'s next key until it has been published for
    /// `keys.jwks_max_age_secs + cache.hot_ttl_secs`, so no verifier meets an unknown signing key.
    fn settled(&self, stored: &[SealedSigningKey], alg: SigningAlg) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let settle = i64::try_from(
            self.settings
                .jwks_max_age_secs
                .saturating_add(self.hot_ttl_secs),
        )
        .unwrap_or(i64::MAX);
        match stored
            .iter()
            .find(|k| k.key.alg == alg && k.key.state == KeyState::Next)
        {
            Some(next) if next.key.created_at.saturating_add(settle) > now => {
                Err(ServiceError::Conflict(format!(
                    "the next {alg} key was published {}s ago and verifiers may cache the JWKS \
                     for {settle}s; wait, or force the rotation",
                    now - next.key.created_at
                )))
            }
            _ => Ok(()),
        }
    }

    /// One compare-and-swap rotation; returns the new next key's kid.
    async fn rotate_one(
        &self,
        tenant: TenantId,
        alg: SigningAlg,
        expected_active: &str,
    ) -> Result<String, ServiceError> {
        let now = self.clock.now();
        let (_, generated) = self
            .generate(vec![alg])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Internal("key generation returned nothing".into()))?;
        let new_next = self.seal(tenant, alg, generated, KeyState::Next, now)?;
        let retire_until =
            now.saturating_add(i64::try_from(self.settings.retention_secs).unwrap_or(i64::MAX));
        match self
            .store
            .rotate_signing_key(tenant, alg, expected_active, &new_next, now, retire_until)
            .await
        {
            Ok(()) => {
                tracing::info!(%tenant, %alg, retired = expected_active, "signing key rotated");
                Ok(new_next.key.kid)
            }
            Err(StoreError::Conflict(why)) => Err(ServiceError::Conflict(why)),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a next or retired key from publication at once (a key that must no longer be
    /// trusted). The active key cannot be deleted: rotate first.
    pub async fn delete(&self, tenant: TenantId, kid: &str) -> Result<(), ServiceError> {
        let Some(key) = self.store.signing_key(tenant, kid).await? else {
            return Err(ServiceError::NotFound(format!("no key with kid '{kid}'")));
        };
        if key.key.state == KeyState::Active {
            return Err(ServiceError::Conflict(
                "the active key signs; rotate before deleting it".into(),
            ));
        }
        // The store refuses active keys itself: a rotation may have promoted this one meanwhile.
        if !self.store.delete_signing_key(tenant, kid).await? {
            return Err(ServiceError::Conflict(
                "the key became active meanwhile; rotate before deleting it".into(),
            ));
        }
        self.invalidator.announce(Invalidation::keys(tenant)).await;
        Ok(())
    }

    /// Rotates every key due for rotation and purges retired keys past their window (the
    /// key half of a maintenance pass, see [`crate::ops::scheduler`]). Returns how many keys
    /// rotated and how many tenants had keys purged.
    pub async fn rotate_due(&self) -> Result<(usize, usize), ServiceError> {
        let now = self.clock.now();
        let interval = i64::try_from(self.settings.rotation_interval_secs).unwrap_or(i64::MAX);
        let mut rotated = 0;
        for due in self
            .store
            .keys_due_for_rotation(now.saturating_sub(interval))
            .await?
        {
            // A next key published only recently (say, after an operator deleted one) waits.
            let stored = self.store.signing_keys(due.tenant).await?;
            if self.settled(&stored, due.alg).is_err() {
                continue;
            }
            match self.rotate_one(due.tenant, due.alg, &due.kid).await {
                Ok(_) => {
                    rotated += 1;
                    self.invalidator
                        .announce(Invalidation::keys(due.tenant))
                        .await;
                }
                // Another replica got there first.
                Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let purged = self.store.purge_expired_keys(now).await?;
        for tenant in &purged {
            self.invalidator.announce(Invalidation::keys(*tenant)).await;
        }
        Ok((rotated, purged.len()))
    }
}

/// Key material for a new tenant: an active and a next key per algorithm.
pub struct InitialMaterial(Vec<(SigningAlg, GeneratedKey, KeyState)>);

fn missing_keys(stored: &[SealedSigningKey], rsa: bool) -> Vec<(SigningAlg, KeyState)> {
    let has = |alg: SigningAlg, st: KeyState| {
        stored.iter().any(|k| k.key.alg == alg && k.key.state == st)
    };
    SigningAlg::ALL
        .iter()
        .filter(|alg| rsa || **alg != SigningAlg::Rs256)
        .flat_map(|alg| [(*alg, KeyState::Active), (*alg, KeyState::Next)])
        .filter(|(alg, st)| !has(*alg, *st))
        .collect()
}
