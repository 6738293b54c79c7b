//! Users as a service: creation, lookup, updates (compare-and-swap on the last change),
//! passwords, disabling and deletion, each administrator change written with its audit event.

use serde::Deserialize;
use serde_json::json;

use super::passwords::{PasswordError, PasswordHasher, PasswordSettings, weakness};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::model::TenantId;
use crate::model::user::{AuditEvent, Email, Profile, User, UserId, Username, check_label, clip};
use crate::rng::Rng;
use crate::store::{Store, StoreError, UserRef};

/// The user service: what it works with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub store: &'a Store,
    pub passwords: &'a PasswordHasher,
    pub password_settings: &'a PasswordSettings,
    pub clock: &'a Clock,
    pub rng: &'a Rng,
}

/// A new user as an administrator describes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Never logged, never stored: only its hash is.
    #[serde(default)]
    pub password: Option<String>,
}

/// What an update changes; absent members stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    pub username: Option<String>,
    /// `Some(None)` (JSON `null`) removes the address.
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub profile: Option<Profile>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Apply only if the user is still as last seen (its `updated_at`).
    #[serde(default)]
    pub expected_updated_at: Option<i64>,
}

/// Tells a member sent as `null` from one not sent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Most roles or groups a user carries.
const MAX_LABELS: usize = 100;

fn labels(kind: &str, values: Vec<String>) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_LABELS {
        return Err(ServiceError::Invalid(format!(
            "a user has at most {MAX_LABELS} {kind}s"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        check_label(kind, &v).map_err(ServiceError::Invalid)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

fn taken(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(which) if which == "email" => {
            ServiceError::Conflict("another user has this email address".into())
        }
        StoreError::Conflict(_) => ServiceError::Conflict("this username is taken".into()),
        e => e.into(),
    }
}

impl From<PasswordError> for ServiceError {
    fn from(e: PasswordError) -> ServiceError {
        match e {
            PasswordError::Busy => ServiceError::Busy(e.to_string()),
            PasswordError::Internal(why) => ServiceError::Internal(why),
        }
    }
}

impl Users<'_> {
    /// Stores `user` if it is still as read at `expected`, with its audit event.
    async fn replace(
        &self,
        tenant: TenantId,
        user: User,
        expected: i64,
        audit: &AuditEvent,
    ) -> Result<User, ServiceError> {
        if !self
            .store
            .replace_user(tenant, &user, expected, audit)
            .await
            .map_err(taken)?
        {
            return Err(ServiceError::Conflict(format!(
                "user '{}' changed meanwhile; retry",
                user.id
            )));
        }
        Ok(user)
    }

    fn event(
        &self,
        actor: &str,
        action: &str,
        user: UserId,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: user.to_string(),
            detail,
        }
    }

    /// The hash of a new password, once it passes the rules.
    async fn new_hash(&self, password: String, user: &User) -> Result<String, ServiceError> {
        let names: Vec<&str> = std::iter::once(user.username.as_str())
            .chain(user.email.as_ref().map(Email::as_str))
            .collect();
        if let Some(why) = weakness(&password, self.password_settings.min_length, &names) {
            return Err(ServiceError::Invalid(why));
        }
        Ok(self.passwords.hash(password, self.rng.bytes()).await?)
    }

    /// Creates a user; `actor` names who did it in the audit trail.
    pub async fn create(
        &self,
        tenant: TenantId,
        new: NewUser,
        actor: &str,
    ) -> Result<User, ServiceError> {
        let id = UserId(uuid::Builder::from_random_bytes(self.rng.bytes()).into_uuid());
        self.create_as(tenant, id, new, actor).await
    }

    /// A new user's record as `new` describes it, checked, without storing it.
    pub fn draft(&self, id: UserId, new: &NewUser) -> Result<User, ServiceError> {
        let now = self.clock.now();
        new.profile.check().map_err(ServiceError::Invalid)?;
        Ok(User {
            id,
            username: Username::parse(new.username.trim()).map_err(ServiceError::Invalid)?,
            email: new
                .email
                .as_deref()
                .map(|e| Email::parse(e.trim()))
                .transpose()
                .map_err(ServiceError::Invalid)?,
            email_verified: new.email_verified && new.email.is_some(),
            profile: new.profile.clone(),
            roles: labels("role", new.roles.clone())?,
            groups: labels("group", new.groups.clone())?,
            has_password: new.password.is_some(),
            password_changed_at: new.password.is_some().then_some(now),
            disabled_at: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        })
    }

    /// Creates a user with a chosen id (a passkey sign-up names the id in the credential
    /// before the account exists).
    pub async fn create_as(
        &self,
        tenant: TenantId,
        id: UserId,
        new: NewUser,
        actor: &str,
    ) -> Result<User, ServiceError> {
        let user = self.draft(id, &new)?;
        let hash = match new.password {
            Some(password) => Some(self.new_hash(password, &user).await?),
            None => None,
        };
        let audit = self.event(
            actor,
            "user.create",
            user.id,
            json!({ "username": user.username.as_str(), "password": user.has_password }),
        );
        self.store
            .insert_user(tenant, &user, hash, &audit)
            .await
            .map_err(taken)?;
        tracing::info!(%tenant, user = %user.id, "user created");
        Ok(user)
    }

    pub async fn get(&self, tenant: TenantId, id: UserId) -> Result<User, ServiceError> {
        self.store
            .user(tenant, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user '{id}'")))
    }

    /// A user named by id or by username (what an administrator types).
    pub async fn resolve(&self, tenant: TenantId, reference: &str) -> Result<User, ServiceError> {
        if let Some(id) = UserId::parse(reference) {
            return self.get(tenant, id).await;
        }
        let missing = || ServiceError::NotFound(format!("no user '{}'", clip(reference)));
        let username = Username::parse(reference).map_err(|_| missing())?;
        self.store
            .user_with_hash(tenant, UserRef::Username(&username))
            .await?
            .map(|(u, _)| u)
            .ok_or_else(missing)
    }

    /// A page of users in username order.
    pub async fn list(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, ServiceError> {
        let after = after
            .map(Username::parse)
            .transpose()
            .map_err(ServiceError::Invalid)?;
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        Ok(self.store.users(tenant, after.as_ref(), limit).await?)
    }

    /// Applies `change` with a compare-and-swap on the user's last change.
    pub async fn update(
        &self,
        tenant: TenantId,
        id: UserId,
        change: UserChange,
        actor: &str,
    ) -> Result<User, ServiceError> {
        let current = self.get(tenant, id).await?;
        if change
            .expected_updated_at
            .is_some_and(|seen| seen != current.updated_at)
        {
            return Err(ServiceError::Conflict(format!(
                "user '{id}' changed meanwhile; retry"
            )));
        }
        let mut user = current.clone();
        let mut changed: Vec<&str> = Vec::new();
        if let Some(username) = change.username {
            user.username = Username::parse(username.trim()).map_err(ServiceError::Invalid)?;
            changed.push("username");
        }
        if let Some(email) = change.email {
            let email = email
                .as_deref()
                .map(|e| Email::parse(e.trim()))
                .transpose()
                .map_err(ServiceError::Invalid)?;
            // A new address is unverified until proven (unless the change says otherwise).
            if email.as_ref().map(Email::key) != user.email.as_ref().map(Email::key) {
                user.email_verified = false;
            }
            user.email = email;
            changed.push("email");
        }
        if let Some(verified) = change.email_verified {
            user.email_verified = verified;
            changed.push("email_verified");
        }
        user.email_verified &= user.email.is_some();
        if let Some(profile) = change.profile {
            profile.check().map_err(ServiceError::Invalid)?;
            user.profile = profile;
            changed.push("profile");
        }
        if let Some(roles) = change.roles {
            user.roles = labels("role", roles)?;
            changed.push("roles");
        }
        if let Some(groups) = change.groups {
            user.groups = labels("group", groups)?;
            changed.push("groups");
        }
        user.updated_at = self.clock.now().max(current.updated_at + 1);
        let audit = self.event(actor, "user.update", id, json!({ "changed": changed }));
        self.replace(tenant, user, current.updated_at, &audit).await
    }

    /// Sets a new password (checked against the rules), or with `None` removes it (the user
    /// then signs in with passkeys only).
    pub async fn set_password(
        &self,
        tenant: TenantId,
        id: UserId,
        password: Option<String>,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let user = self.get(tenant, id).await?;
        let hash = match password {
            Some(p) => Some(self.new_hash(p, &user).await?),
            None => None,
        };
        let removing = hash.is_none();
        let action = if hash.is_some() {
            "user.set_password"
        } else {
            "user.remove_password"
        };
        let audit = self.event(actor, action, id, json!({}));
        if !self
            .store
            .set_password_hash(
                tenant,
                id,
                hash,
                self.clock.now(),
                Some(&audit),
                crate::model::outbox::Mail::notice(
                    user.email.as_ref(),
                    "your sign-in service",
                    user.username.as_str(),
                    if removing {
                        "the password was removed"
                    } else {
                        "the password was changed"
                    },
                ),
            )
            .await?
        {
            return Err(ServiceError::NotFound(format!("no user '{id}'")));
        }
        Ok(())
    }

    /// Disables or enables a user. Disabling stops new sign-ins; it does not end sessions or
    /// tokens by itself.
    pub async fn set_disabled(
        &self,
        tenant: TenantId,
        id: UserId,
        disabled: bool,
        actor: &str,
    ) -> Result<User, ServiceError> {
        let current = self.get(tenant, id).await?;
        if current.disabled_at.is_some() == disabled {
            return Ok(current);
        }
        let now = self.clock.now();
        let user = User {
            disabled_at: disabled.then_some(now),
            updated_at: now.max(current.updated_at + 1),
            ..current.clone()
        };
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let audit = self.event(actor, action, id, json!({}));
        self.replace(tenant, user, current.updated_at, &audit).await
    }

    pub async fn delete(
        &self,
        tenant: TenantId,
        id: UserId,
        actor: &str,
    ) -> Result<(), ServiceError> {
        let audit = self.event(actor, "user.delete", id, json!({}));
        if !self.store.delete_user(tenant, id, &audit).await? {
            return Err(ServiceError::NotFound(format!("no user '{id}'")));
        }
        tracing::info!(%tenant, user = %id, "user deleted");
        Ok(())
    }

    /// The audit trail of one user, oldest first.
    pub async fn audit(
        &self,
        tenant: TenantId,
        id: UserId,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        Ok(self.store.audit_events(tenant, &id.to_string()).await?)
    }
}
