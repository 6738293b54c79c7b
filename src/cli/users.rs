//! `latchkey user …`: create, list, show, update, set passwords, disable, enable and delete
//! users. Passwords come from standard input only, never from the command line (which other
//! users of the machine can read in the process list).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, print_json};
use crate::admin::{AuditView, UserView};
use crate::app::AppState;
use crate::model::TenantId;
use crate::model::user::{Profile, User};
use crate::people::users::{NewUser, UserChange};

/// Who the audit trail names for changes made with this command.
const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (with `--password-stdin`, the password is read from standard input).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// The address is known to belong to the user.
        #[arg(long = "email-verified")]
        email_verified: bool,
        /// Full name (the `name` claim).
        #[arg(long)]
        name: Option<String>,
        /// A JSON file with the OpenID standard claims (name, given_name, address, …).
        #[arg(long, value_name = "FILE", conflicts_with = "name")]
        profile: Option<PathBuf>,
        /// A role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A group (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Read the password from standard input (without it the user has no password and
        /// signs in with passkeys only).
        #[arg(long = "password-stdin")]
        password_stdin: bool,
    },
    /// List a tenant's users in username order.
    List {
        #[arg(long)]
        tenant: String,
        /// Start after this username.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one user (by id or username).
    Show {
        #[arg(long)]
        tenant: String,
        user: String,
    },
    /// Change a user: only the options given change.
    Update {
        #[arg(long)]
        tenant: String,
        user: String,
        #[arg(long)]
        username: Option<String>,
        /// A new address (unverified unless `--email-verified true`).
        #[arg(long, conflicts_with = "remove_email")]
        email: Option<String>,
        #[arg(long = "remove-email")]
        remove_email: bool,
        #[arg(long = "email-verified")]
        email_verified: Option<bool>,
        /// Full name (the `name` claim); the rest of the profile stays.
        #[arg(long)]
        name: Option<String>,
        /// A JSON file replacing the whole profile.
        #[arg(long, value_name = "FILE", conflicts_with = "name")]
        profile: Option<PathBuf>,
        /// Replace the roles with these (repeatable).
        #[arg(long = "role", conflicts_with = "no_roles")]
        roles: Vec<String>,
        #[arg(long = "no-roles")]
        no_roles: bool,
        /// Replace the groups with these (repeatable).
        #[arg(long = "group", conflicts_with = "no_groups")]
        groups: Vec<String>,
        #[arg(long = "no-groups")]
        no_groups: bool,
    },
    /// Set a user's password from standard input, or remove it.
    SetPassword {
        #[arg(long)]
        tenant: String,
        user: String,
        #[arg(long = "password-stdin", required_unless_present = "remove")]
        password_stdin: bool,
        /// Remove the password (the user signs in with passkeys only).
        #[arg(long, conflicts_with = "password_stdin")]
        remove: bool,
    },
    /// Stop a user from signing in (existing sessions and tokens are not ended).
    Disable {
        #[arg(long)]
        tenant: String,
        user: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        #[arg(long)]
        tenant: String,
        user: String,
    },
    /// Delete a user.
    Delete {
        #[arg(long)]
        tenant: String,
        user: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Show the audit trail of administrator changes to a user.
    Audit {
        #[arg(long)]
        tenant: String,
        user: String,
    },
}

/// The password piped on standard input, without its line ending.
fn password_from_stdin() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CliError(
            "--password-stdin reads a pipe, not a terminal (it would echo): \
             printf '%s' \"$PASSWORD\" | latchkey user …"
                .into(),
        ));
    }
    let mut text = String::new();
    stdin
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| CliError(format!("standard input: {e}")))?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(CliError("standard input held no password".into()));
    }
    Ok(password.to_owned())
}

fn profile_file(path: &PathBuf) -> Result<Profile, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| CliError(format!("{}: {e}", path.display())))
}

async fn tenant(state: &AppState, raw: &str) -> Result<TenantId, CliError> {
    Ok(super::clients::tenant(state, raw).await?.id)
}

async fn target(
    state: &AppState,
    raw_tenant: &str,
    raw: &str,
) -> Result<(TenantId, User), CliError> {
    let tenant = tenant(state, raw_tenant).await?;
    Ok((tenant, state.users().resolve(tenant, raw).await?))
}

fn print_user(user: &User, json: bool) -> Result<(), CliError> {
    let view = UserView::from(user);
    if json {
        return print_json(&view);
    }
    println!(
        "{}  {}  {}{}",
        view.id,
        view.username,
        view.email.as_deref().unwrap_or("-"),
        if view.active { "" } else { "  (disabled)" }
    );
    Ok(())
}

fn done(json: bool, what: serde_json::Value, text: String) -> Result<(), CliError> {
    if json {
        print_json(&what)
    } else {
        println!("{text}");
        Ok(())
    }
}

async fn set_disabled(
    state: &AppState,
    raw_tenant: &str,
    raw: &str,
    disabled: bool,
    json: bool,
) -> Result<(), CliError> {
    let (tenant, user) = target(state, raw_tenant, raw).await?;
    let user = state
        .users()
        .set_disabled(tenant, user.id, disabled, ACTOR)
        .await?;
    print_user(&user, json)
}

pub async fn user_command(
    state: &AppState,
    command: UserCommand,
    json: bool,
) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            tenant: t,
            username,
            email,
            email_verified,
            name,
            profile,
            roles,
            groups,
            password_stdin,
        } => {
            // Read first: a failed read must not leave a user behind.
            let password = password_stdin.then(password_from_stdin).transpose()?;
            let mut profile = profile
                .as_ref()
                .map(profile_file)
                .transpose()?
                .unwrap_or_default();
            if name.is_some() {
                profile.name = name;
            }
            let tenant = tenant(state, &t).await?;
            let new = NewUser {
                username,
                email,
                email_verified,
                profile,
                roles,
                groups,
                password,
            };
            let user = state.users().create(tenant, new, ACTOR).await?;
            print_user(&user, json)
        }
        UserCommand::List {
            tenant: t,
            after,
            limit,
        } => {
            let tenant = tenant(state, &t).await?;
            let users = state.users().list(tenant, after.as_deref(), limit).await?;
            if json {
                return print_json(&users.iter().map(UserView::from).collect::<Vec<_>>());
            }
            users.iter().try_for_each(|u| print_user(u, false))
        }
        UserCommand::Show { tenant: t, user } => {
            let (_, user) = target(state, &t, &user).await?;
            print_user(&user, json)
        }
        UserCommand::Update {
            tenant: t,
            user,
            username,
            email,
            remove_email,
            email_verified,
            name,
            profile,
            roles,
            no_roles,
            groups,
            no_groups,
        } => {
            let (tenant, current) = target(state, &t, &user).await?;
            let profile = match (profile, name) {
                (Some(path), _) => Some(profile_file(&path)?),
                (None, Some(name)) => Some(Profile {
                    name: Some(name),
                    ..current.profile.clone()
                }),
                (None, None) => None,
            };
            let change = UserChange {
                username,
                email: if remove_email {
                    Some(None)
                } else {
                    email.map(Some)
                },
                email_verified,
                profile,
                roles: (no_roles || !roles.is_empty()).then_some(roles),
                groups: (no_groups || !groups.is_empty()).then_some(groups),
                expected_updated_at: Some(current.updated_at),
            };
            let user = state
                .users()
                .update(tenant, current.id, change, ACTOR)
                .await?;
            print_user(&user, json)
        }
        UserCommand::SetPassword {
            tenant: t,
            user,
            password_stdin,
            remove,
        } => {
            let password = if remove {
                None
            } else if password_stdin {
                Some(password_from_stdin()?)
            } else {
                return Err(CliError("give --password-stdin or --remove".into()));
            };
            let (tenant, user) = target(state, &t, &user).await?;
            let set = password.is_some();
            state
                .users()
                .set_password(tenant, user.id, password, ACTOR)
                .await?;
            done(
                json,
                serde_json::json!({ "id": user.id.to_string(), "has_password": set }),
                if set {
                    format!("password set for {}", user.username.as_str())
                } else {
                    format!("password removed for {}", user.username.as_str())
                },
            )
        }
        UserCommand::Disable { tenant: t, user } => {
            set_disabled(state, &t, &user, true, json).await
        }
        UserCommand::Enable { tenant: t, user } => {
            set_disabled(state, &t, &user, false, json).await
        }
        UserCommand::Delete {
            tenant: t,
            user,
            yes,
        } => {
            let (tenant, user) = target(state, &t, &user).await?;
            if !yes {
                return Err(CliError(format!(
                    "deleting user '{}' removes the account; add --yes to confirm",
                    user.username.as_str()
                )));
            }
            state.users().delete(tenant, user.id, ACTOR).await?;
            done(
                json,
                serde_json::json!({ "deleted": user.id.to_string() }),
                format!("deleted user {}", user.username.as_str()),
            )
        }
        UserCommand::Audit { tenant: t, user } => {
            let (tenant, user) = target(state, &t, &user).await?;
            let events = state.users().audit(tenant, user.id).await?;
            let views: Vec<AuditView> = events.iter().map(AuditView::from).collect();
            if json {
                return print_json(&views);
            }
            for e in &views {
                println!("{}  {:<10} {}  {}", e.at, e.actor, e.action, e.detail);
            }
            Ok(())
        }
    }
}
