//! Passkeys (WebAuthn, through webauthn-rs): registration by a signed-in person, and sign-in
//! with discoverable credentials (no username typed), from the autofill of the username field
//! (conditional UI) or a button. Ceremony state lives in the shared cache under a random id,
//! for five minutes, and is taken once: a ceremony started on one replica finishes on any
//! other, and never twice. The RP ID is `server.public_url`'s host and the origin that URL's
//! origin, both checked by webauthn-rs on every response.
//!
//! User verification is always required: webauthn-rs's passkey ceremonies demand it, so a
//! passkey sign-in is possession plus a PIN or biometric (RFC 8176 `hwk`/`swk` with `user`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use super::sessions::{Origin, Sessions};
use crate::cache::{Cache, CacheKey, SharedState};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::ServiceError;
use crate::model::passkey::{PasskeyRecord, check_name};
use crate::model::session::{Amr, LoginMethod, LoginResult};
use crate::model::user::{User, UserId};
use crate::model::{Tenant, TenantId};
use crate::rng::Rng;
use crate::store::{Store, StoreError};

/// How long a started ceremony may take.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// A person's passkeys at most.
const MAX_PASSKEYS: usize = 20;

#[derive(Clone, Copy)]
pub struct Passkeys<'a> {
    pub store: &'a Store,
    pub cache: &'a Cache,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
    pub sessions: Sessions<'a>,
    pub users: super::users::Users<'a>,
}

/// What is kept between the start and the finish of a ceremony.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    Register {
        user: uuid::Uuid,
        state: PasskeyRegistration,
    },
    Login {
        state: DiscoverableAuthentication,
    },
    /// A passkey-only sign-up: the account is created when the passkey is.
    SignUp {
        user: uuid::Uuid,
        username: String,
        email: Option<String>,
        state: PasskeyRegistration,
    },
}

/// Why a passkey sign-in failed (told to the person as "that passkey did not work").
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("the sign-in took too long or was already used; try again")]
    Expired,
    #[error("this passkey is not registered here")]
    Unknown,
    #[error("this passkey could not be verified")]
    Rejected,
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for PasskeyError {
    fn from(e: StoreError) -> Self {
        PasskeyError::Service(e.into())
    }
}

/// The counter and backup flags of a credential, read from webauthn-rs's serialised form
/// (the crate exposes them only after a use).
fn flags(passkey: &Passkey) -> Result<(serde_json::Value, u32, bool, bool), ServiceError> {
    let value = serde_json::to_value(passkey)
        .map_err(|e| ServiceError::Internal(format!("passkey: {e}")))?;
    let cred = &value["cred"];
    let counter = cred["counter"].as_u64().unwrap_or(0);
    let eligible = cred["backup_eligible"].as_bool().unwrap_or(false);
    let state = cred["backup_state"].as_bool().unwrap_or(false);
    Ok((
        value.clone(),
        u32::try_from(counter).unwrap_or(u32::MAX),
        eligible,
        state,
    ))
}

/// Creation options as JSON, asking for a discoverable credential so the person can later
/// sign in without typing a name (WebAuthn §5.4.6: "preferred" still works with keys that
/// cannot store one). The server's checks do not depend on it.
fn discoverable(
    options: webauthn_rs::prelude::CreationChallengeResponse,
) -> Result<serde_json::Value, ServiceError> {
    let mut options = serde_json::to_value(&options)
        .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "preferred".into());
    }
    Ok(options)
}

/// RFC 8176: a synced passkey is a software-secured key, a device-bound one hardware.
fn possession(record: &PasskeyRecord) -> Amr {
    if record.backup_eligible {
        Amr::Swk
    } else {
        Amr::Hwk
    }
}

impl Passkeys<'_> {
    /// The relying party of `tenant`: one RP ID per server, named after the tenant.
    pub fn webauthn(&self, tenant: &Tenant) -> Result<Webauthn, ServiceError> {
        let origin = Url::parse(&self.settings.server.public_url)
            .map_err(|e| ServiceError::Internal(format!("server.public_url: {e}")))?;
        let rp_id = origin
            .host_str()
            .ok_or_else(|| ServiceError::Internal("server.public_url has no host".into()))?
            .to_owned();
        WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name(&tenant.display_name).build())
            .map_err(|e| {
                ServiceError::Invalid(format!(
                    "passkeys need server.public_url to name a host (not an IP address): {e}"
                ))
            })
    }

    /// Whether passkeys work at `tenant` (on, and a public URL WebAuthn accepts).
    pub fn available(&self, tenant: &Tenant) -> bool {
        !tenant.settings.passkeys.disabled && self.webauthn(tenant).is_ok()
    }

    async fn keep(&self, tenant: TenantId, ceremony: &Ceremony) -> Result<String, ServiceError> {
        let id = self.rng.token::<24>();
        let value = serde_json::to_vec(ceremony)
            .map_err(|e| ServiceError::Internal(format!("ceremony: {e}")))?;
        let key = CacheKey::Ceremony { tenant, id: &id };
        self.cache.set(&key.render(), &value, CEREMONY_TTL).await?;
        Ok(id)
    }

    async fn take(&self, tenant: TenantId, id: &str) -> Result<Option<Ceremony>, ServiceError> {
        let key = CacheKey::Ceremony { tenant, id };
        Ok(self
            .cache
            .take(&key.render())
            .await?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Starts adding a passkey for the signed-in `user`: the options for
    /// `navigator.credentials.create()` and the ceremony id.
    pub async fn start_registration(
        &self,
        tenant: &Tenant,
        user: &User,
    ) -> Result<(serde_json::Value, String), ServiceError> {
        let webauthn = self.webauthn(tenant)?;
        let existing = self.store.passkeys_of(tenant.id, user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(ServiceError::Invalid(format!(
                "an account has at most {MAX_PASSKEYS} passkeys"
            )));
        }
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
        let display = user
            .profile
            .name
            .clone()
            .unwrap_or_else(|| user.username.as_str().to_owned());
        let (options, state) = webauthn
            .start_passkey_registration(user.id.0, user.username.as_str(), &display, Some(exclude))
            .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        let id = self
            .keep(
                tenant.id,
                &Ceremony::Register {
                    user: user.id.0,
                    state,
                },
            )
            .await?;
        Ok((discoverable(options)?, id))
    }

    /// Finishes adding a passkey: the browser's response to the ceremony `id`, for the same
    /// signed-in `user`.
    pub async fn finish_registration(
        &self,
        tenant: &Tenant,
        user: &User,
        id: &str,
        response: &RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<PasskeyRecord, ServiceError> {
        let name = check_name(name).map_err(ServiceError::Invalid)?;
        let Some(Ceremony::Register { user: owner, state }) = self.take(tenant.id, id).await?
        else {
            return Err(ServiceError::Invalid(
                "the passkey registration took too long or was already finished; try again".into(),
            ));
        };
        if owner != user.id.0 {
            return Err(ServiceError::Invalid(
                "this registration was started by another account".into(),
            ));
        }
        let record = self.verified(tenant, user.id, response, &state, name)?;
        let notice = crate::model::outbox::Mail::notice(
            user.email.as_ref(),
            &tenant.display_name,
            user.username.as_str(),
            &format!("a passkey (\"{}\") was added", record.name),
        );
        self.store_record(tenant.id, &record, notice).await?;
        tracing::info!(tenant = %tenant.id, user = %user.id, "passkey added");
        Ok(record)
    }

    /// The credential a registration response proves, as a record of `user`.
    fn verified(
        &self,
        tenant: &Tenant,
        user: UserId,
        response: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
        name: String,
    ) -> Result<PasskeyRecord, ServiceError> {
        let passkey = self
            .webauthn(tenant)?
            .finish_passkey_registration(response, state)
            .map_err(|e| {
                ServiceError::Invalid(format!("the passkey could not be verified: {e}"))
            })?;
        let (credential, sign_count, backup_eligible, backed_up) = flags(&passkey)?;
        Ok(PasskeyRecord {
            id: uuid::Builder::from_random_bytes(self.rng.bytes()).into_uuid(),
            user,
            credential_id: passkey.cred_id().to_vec(),
            name,
            credential,
            sign_count,
            backup_eligible,
            backed_up,
            created_at: self.clock.now(),
            last_used_at: None,
        })
    }

    /// Stores a record; one authenticator, one account (the exclusion list only covers the
    /// user's own keys).
    async fn store_record(
        &self,
        tenant: TenantId,
        record: &PasskeyRecord,
        notice: Option<serde_json::Value>,
    ) -> Result<(), ServiceError> {
        self.store
            .insert_passkey(tenant, record, notice, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ServiceError::Conflict("this passkey is already registered".into())
                }
                e => e.into(),
            })
    }

    /// Starts a passkey-only sign-up (when the tenant allows it): the account does not exist
    /// until the passkey does.
    pub async fn start_signup(
        &self,
        tenant: &Tenant,
        username: &str,
        email: Option<&str>,
    ) -> Result<(serde_json::Value, String), ServiceError> {
        if !tenant.settings.passkeys.signup || tenant.settings.passkeys.disabled {
            return Err(ServiceError::NotFound("sign-up is not open here".into()));
        }
        let id = UserId(uuid::Builder::from_random_bytes(self.rng.bytes()).into_uuid());
        let new = super::users::NewUser {
            username: username.to_owned(),
            email: email.filter(|e| !e.trim().is_empty()).map(str::to_owned),
            ..Default::default()
        };
        let draft = self.users.draft(id, &new)?;
        if self
            .store
            .user_with_hash(tenant.id, crate::store::UserRef::Username(&draft.username))
            .await?
            .is_some()
        {
            return Err(ServiceError::Conflict("this username is taken".into()));
        }
        let webauthn = self.webauthn(tenant)?;
        let (options, state) = webauthn
            .start_passkey_registration(
                id.0,
                draft.username.as_str(),
                draft.username.as_str(),
                None,
            )
            .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        let ceremony = self
            .keep(
                tenant.id,
                &Ceremony::SignUp {
                    user: id.0,
                    username: draft.username.as_str().to_owned(),
                    email: draft.email.as_ref().map(|e| e.as_str().to_owned()),
                    state,
                },
            )
            .await?;
        Ok((discoverable(options)?, ceremony))
    }

    /// Finishes a passkey-only sign-up: creates the account (no password) and its passkey.
    pub async fn finish_signup(
        &self,
        tenant: &Tenant,
        id: &str,
        response: &RegisterPublicKeyCredential,
    ) -> Result<(User, Vec<Amr>), ServiceError> {
        let Some(Ceremony::SignUp {
            user,
            username,
            email,
            state,
        }) = self.take(tenant.id, id).await?
        else {
            return Err(ServiceError::Invalid(
                "the sign-up took too long or was already finished; try again".into(),
            ));
        };
        let record = self.verified(tenant, UserId(user), response, &state, "Passkey".into())?;
        let new = super::users::NewUser {
            username,
            email,
            ..Default::default()
        };
        let created = self
            .users
            .create_as(tenant.id, UserId(user), new, "self:signup")
            .await?;
        if let Err(e) = self.store_record(tenant.id, &record, None).await {
            // No account without a way in.
            let _ = self
                .users
                .delete(tenant.id, created.id, "self:signup")
                .await;
            return Err(e);
        }
        tracing::info!(tenant = %tenant.id, user = %created.id, "signed up with a passkey");
        Ok((created, vec![possession(&record), Amr::User]))
    }

    /// Starts a username-less sign-in: the options for `navigator.credentials.get()` (with
    /// `mediation: "conditional"` for the autofill; the button drops it) and the ceremony id.
    pub async fn start_login(
        &self,
        tenant: &Tenant,
    ) -> Result<(serde_json::Value, String), ServiceError> {
        let webauthn = self.webauthn(tenant)?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        let id = self.keep(tenant.id, &Ceremony::Login { state }).await?;
        let options = serde_json::to_value(&options)
            .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        Ok((options, id))
    }

    /// Finishes a sign-in: the user whose passkey answered ceremony `id`, and what the
    /// passkey proved.
    pub async fn finish_login(
        &self,
        tenant: &Tenant,
        id: &str,
        response: &PublicKeyCredential,
        origin: &Origin,
    ) -> Result<(User, Vec<Amr>), PasskeyError> {
        let Some(Ceremony::Login { state }) = self.take(tenant.id, id).await? else {
            return Err(PasskeyError::Expired);
        };
        let webauthn = self.webauthn(tenant)?;
        let (user_handle, credential_id) = webauthn
            .identify_discoverable_authentication(response)
            .map_err(|_| PasskeyError::Rejected)?;
        let Some((mut record, user)) = self
            .store
            .passkey_by_credential(tenant.id, credential_id)
            .await?
        else {
            return Err(PasskeyError::Unknown);
        };
        if user.id.0 != user_handle {
            return Err(PasskeyError::Unknown);
        }
        let fail = async |result| -> Result<(), PasskeyError> {
            self.sessions
                .record_failure(tenant.id, user.id, LoginMethod::Passkey, result, origin)
                .await?;
            Ok(())
        };
        let mut passkey: Passkey = match serde_json::from_value(record.credential.clone()) {
            Ok(p) => p,
            Err(e) => {
                return Err(PasskeyError::Service(ServiceError::Internal(format!(
                    "stored passkey {}: {e}",
                    record.id
                ))));
            }
        };
        let result = match webauthn.finish_discoverable_authentication_v2(response, state, &passkey)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(tenant = %tenant.id, user = %user.id, error = %e, "passkey assertion refused");
                fail(LoginResult::Failed).await?;
                return Err(PasskeyError::Rejected);
            }
        };
        // WebAuthn §7.2 step 21: a counter that did not grow may mean a cloned authenticator.
        let seen = record.sign_count;
        if (result.counter() != 0 || seen != 0) && result.counter() <= seen {
            tracing::warn!(tenant = %tenant.id, user = %user.id, "passkey counter went backwards: possible clone");
            fail(LoginResult::Failed).await?;
            return Err(PasskeyError::Rejected);
        }
        if !user.is_active() {
            fail(LoginResult::Disabled).await?;
            return Err(PasskeyError::Disabled);
        }
        passkey.update_credential(&result);
        let (credential, sign_count, backup_eligible, backed_up) = flags(&passkey)?;
        record.credential = credential;
        record.sign_count = sign_count;
        record.backup_eligible = backup_eligible;
        record.backed_up = backed_up;
        if !self
            .store
            .passkey_used(tenant.id, &record, seen, self.clock.now())
            .await?
        {
            // Another use of the same credential won the race: a clone, or a replay.
            fail(LoginResult::Failed).await?;
            return Err(PasskeyError::Rejected);
        }
        Ok((user, vec![possession(&record), Amr::User]))
    }

    pub async fn of(
        &self,
        tenant: TenantId,
        user: &User,
    ) -> Result<Vec<PasskeyRecord>, ServiceError> {
        Ok(self.store.passkeys_of(tenant, user.id).await?)
    }

    pub async fn rename(
        &self,
        tenant: TenantId,
        user: &User,
        id: uuid::Uuid,
        name: &str,
    ) -> Result<(), ServiceError> {
        let name = check_name(name).map_err(ServiceError::Invalid)?;
        if self
            .store
            .rename_passkey(tenant, user.id, id, &name)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound("no such passkey".into()))
        }
    }

    /// Deletes a passkey, unless it is the account's only way to sign in.
    pub async fn delete(
        &self,
        tenant: TenantId,
        user: &User,
        id: uuid::Uuid,
    ) -> Result<(), ServiceError> {
        let all = self.store.passkeys_of(tenant, user.id).await?;
        if !user.has_password && all.len() == 1 && all[0].id == id {
            return Err(ServiceError::Invalid(
                "this is your only way to sign in: set a password or add another passkey first"
                    .into(),
            ));
        }
        if self.store.delete_passkey(tenant, user.id, id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("no such passkey".into()))
        }
    }
}
