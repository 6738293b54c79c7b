//! `latchkey api-key …`: service-account API keys of clients.

use clap::Subcommand;
use serde::Serialize;

use super::clients::{client_id, tenant};
use super::{CliError, print_json};
use crate::app::AppState;
use crate::model::api_key::{ApiKey, ApiKeyOwner};
use crate::model::token::Scope;
use crate::oauth::api_keys::NewApiKey;

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make an API key for a service account or a user; the key is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// The service-account client that holds it.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        client: Option<String>,
        /// The user (subject) that holds it.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        label: String,
        /// Scopes, space-separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Valid from (Unix seconds) [default: now].
        #[arg(long = "not-before")]
        not_before: Option<i64>,
        /// Lifetime in seconds [default: until revoked].
        #[arg(long = "expires-in")]
        expires_in: Option<u64>,
    },
    /// List API keys (never the keys themselves).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long, conflicts_with = "user")]
        client: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API key by its id.
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
    },
}

fn owner(client: Option<String>, user: Option<String>) -> Result<Option<ApiKeyOwner>, CliError> {
    Ok(match (client, user) {
        (Some(c), _) => Some(ApiKeyOwner::Client(client_id(&c)?)),
        (None, Some(u)) => Some(ApiKeyOwner::User(u)),
        (None, None) => None,
    })
}

#[derive(Serialize)]
struct ApiKeyView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(flatten)]
    stored: &'a ApiKey,
}

pub async fn api_key_command(
    state: &AppState,
    command: ApiKeyCommand,
    json: bool,
) -> Result<(), CliError> {
    match command {
        ApiKeyCommand::Create {
            tenant: t,
            client,
            user,
            label,
            scope,
            not_before,
            expires_in,
        } => {
            let tenant = tenant(state, &t).await?;
            let owner =
                owner(client, user)?.ok_or_else(|| CliError("give --client or --user".into()))?;
            let scope = Scope::parse(&scope).map_err(|e| CliError(e.to_string()))?;
            let (key, raw) = state
                .api_keys()
                .create(
                    &tenant,
                    NewApiKey {
                        owner,
                        label,
                        scope,
                        not_before,
                        expires_in,
                    },
                )
                .await?;
            if json {
                print_json(&ApiKeyView {
                    key: Some(&raw),
                    stored: &key,
                })
            } else {
                println!("{raw}");
                Ok(())
            }
        }
        ApiKeyCommand::List {
            tenant: t,
            client,
            user,
        } => {
            let tenant = tenant(state, &t).await?;
            let owner = owner(client, user)?;
            let keys = state.api_keys().list(tenant.id, owner.as_ref()).await?;
            if json {
                let views: Vec<ApiKeyView> = keys
                    .iter()
                    .map(|k| ApiKeyView {
                        key: None,
                        stored: k,
                    })
                    .collect();
                return print_json(&views);
            }
            for k in &keys {
                let status = if k.revoked { "revoked" } else { "live" };
                println!(
                    "{}  {}  {}  {}  {status}",
                    k.key_id,
                    k.owner.subject(),
                    k.label,
                    k.scope
                );
            }
            Ok(())
        }
        ApiKeyCommand::Revoke { tenant: t, key_id } => {
            let tenant = tenant(state, &t).await?;
            state.api_keys().revoke(tenant.id, &key_id).await?;
            if json {
                print_json(&serde_json::json!({"revoked": key_id}))
            } else {
                println!("revoked API key {key_id}");
                Ok(())
            }
        }
    }
}
