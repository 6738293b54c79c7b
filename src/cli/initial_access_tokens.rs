//! `latchkey initial-access-token …`: tokens that open registration (RFC 7591 §3).

use clap::Subcommand;
use serde_json::Value;

use super::clients::tenant;
use super::{CliError, print_json};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::crypto::sha256;

#[derive(Debug, Subcommand)]
pub enum InitialAccessTokenCommand {
    /// Make a token for the registration endpoint (RFC 7591 §3); printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// Lifetime in seconds [default: until used up].
        #[arg(long = "expires-in")]
        expires_in: Option<u64>,
        /// How many registrations it allows [default: unlimited until it expires].
        #[arg(long = "max-uses")]
        max_uses: Option<u32>,
        /// What it is for.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List a tenant's initial access tokens (never the tokens themselves).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Withdraw an initial access token by its id.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: uuid::Uuid,
    },
}

pub async fn initial_access_token_command(
    state: &AppState,
    command: InitialAccessTokenCommand,
    json: bool,
) -> Result<(), CliError> {
    let store_error = |e: crate::store::StoreError| CliError(e.to_string());
    match command {
        InitialAccessTokenCommand::Create {
            tenant: t,
            expires_in,
            max_uses,
            label,
        } => {
            let tenant = tenant(state, &t).await?;
            if max_uses == Some(0) {
                return Err(CliError("--max-uses must be at least 1".into()));
            }
            if label.is_empty()
                || label.chars().count() > 200
                || label.chars().any(char::is_control)
            {
                return Err(CliError(
                    "--label must be 1-200 characters without control characters".into(),
                ));
            }
            let now = state.clock.now();
            let expires_at = expires_in
                .map(|s| i64::try_from(s).map(|s| now.saturating_add(s)))
                .transpose()
                .map_err(|_| CliError("--expires-in is too large".into()))?;
            let token = state.rng.token::<32>();
            let id = state
                .store
                .insert_initial_access_token(
                    tenant.id,
                    sha256(token.as_bytes()),
                    &label,
                    expires_at,
                    max_uses.map(i64::from),
                    now,
                )
                .await
                .map_err(store_error)?;
            let view = serde_json::json!({
                "token": token,
                "id": id,
                "tenant": tenant.slug,
                "registration_endpoint": crate::urls::TenantUrls::new(&state.settings, &tenant.slug).endpoint(crate::urls::Endpoint::Register),
                "expires_at": expires_at.map(rfc3339),
                "max_uses": max_uses,
            });
            if json {
                print_json(&view)
            } else {
                println!("{token}");
                Ok(())
            }
        }
        InitialAccessTokenCommand::List { tenant: t } => {
            let tenant = tenant(state, &t).await?;
            let all = state
                .store
                .initial_access_tokens(tenant.id)
                .await
                .map_err(store_error)?;
            let views: Vec<Value> = all
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "id": t.id,
                        "label": t.label,
                        "expires_at": t.expires_at.map(rfc3339),
                        "uses_left": t.uses_left,
                        "created_at": rfc3339(t.created_at),
                    })
                })
                .collect();
            if json {
                return print_json(&views);
            }
            for t in &all {
                let uses = t
                    .uses_left
                    .map_or("unlimited".to_owned(), |n| n.to_string());
                let until = t.expires_at.map_or("no expiry".to_owned(), rfc3339);
                println!("{}  {}  uses left: {uses}  {until}", t.id, t.label);
            }
            Ok(())
        }
        InitialAccessTokenCommand::Revoke { tenant: t, id } => {
            let tenant = tenant(state, &t).await?;
            if !state
                .store
                .delete_initial_access_token(tenant.id, id)
                .await
                .map_err(store_error)?
            {
                return Err(CliError(format!("no initial access token {id}")));
            }
            if json {
                print_json(&serde_json::json!({"revoked": id}))
            } else {
                println!("revoked initial access token {id}");
                Ok(())
            }
        }
    }
}
