//! `latchkey client …`: create, list, show, update, rotate secrets and delete clients.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{CliError, print_json, slug};
use crate::app::AppState;
use crate::clients::{ClientUpdate, IssuedCredentials, NewClient};
use crate::clock::rfc3339;
use crate::model::Tenant;
use crate::model::client::{
    ApplicationType, AuthMethod, Client, ClientId, ClientMetadata, ClientPolicy, GrantType,
    MetadataRequest, ValidationRules,
};
use crate::model::token::TokenFormat;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; its secret is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// Human-readable name (client_name).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List a tenant's clients.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Show one client.
    Show {
        #[arg(long)]
        tenant: String,
        client_id: String,
    },
    /// Change a client: only the options given change.
    Update {
        #[arg(long)]
        tenant: String,
        client_id: String,
        /// New client_name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Delete a client.
    Delete {
        #[arg(long)]
        tenant: String,
        client_id: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Issue a new secret; the old one stops working at once. The new one is printed once.
    RotateSecret {
        #[arg(long)]
        tenant: String,
        client_id: String,
    },
}

/// Client metadata and policy options shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct ClientOptions {
    /// A redirect URI (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// A grant type (repeatable): client_credentials, refresh_token, authorization_code,
    /// urn:ietf:params:oauth:grant-type:token-exchange [default: authorization_code with
    /// redirect URIs, else client_credentials].
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<GrantType>,
    /// Token endpoint authentication method [default: client_secret_basic].
    #[arg(long = "auth-method", value_name = "METHOD")]
    auth_method: Option<AuthMethod>,
    /// Scopes the client may be granted, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// web or native (RFC 8252 redirect URIs).
    #[arg(long = "application-type")]
    application_type: Option<ApplicationType>,
    /// URL of the client's JWK Set (private_key_jwt).
    #[arg(long = "jwks-uri")]
    jwks_uri: Option<String>,
    /// File holding the client's JWK Set (private_key_jwt).
    #[arg(long = "jwks-file")]
    jwks_file: Option<PathBuf>,
    /// File holding RFC 7591 metadata as JSON; the options above override it.
    #[arg(long = "metadata-file")]
    metadata_file: Option<PathBuf>,
    /// Access tokens as jwt (RFC 9068) or opaque (stored, introspected).
    #[arg(long = "access-token-format")]
    access_token_format: Option<TokenFormat>,
    /// JWS algorithm of JWT access tokens: ES256 (default), RS256 or EdDSA.
    #[arg(long = "access-token-signing-alg")]
    access_token_signing_alg: Option<crate::model::SigningAlg>,
    /// Access token lifetime in seconds.
    #[arg(long = "access-token-ttl")]
    access_token_ttl: Option<u64>,
    /// Refresh token lifetime in seconds.
    #[arg(long = "refresh-token-ttl")]
    refresh_token_ttl: Option<u64>,
    /// A resource (RFC 8707) the client may request as audience (repeatable).
    #[arg(long = "resource", value_name = "URI")]
    resources: Vec<String>,
    /// Allow token exchange for impersonation (RFC 8693).
    #[arg(long = "may-impersonate", num_args = 0..=1, default_missing_value = "true")]
    may_impersonate: Option<bool>,
    /// Allow token exchange for delegation (RFC 8693 `act`).
    #[arg(long = "may-delegate", num_args = 0..=1, default_missing_value = "true")]
    may_delegate: Option<bool>,
    /// Let the client introspect every token of the tenant (a trusted resource server).
    #[arg(long = "may-introspect", num_args = 0..=1, default_missing_value = "true")]
    may_introspect: Option<bool>,
    /// Make the client a service account (it may hold API keys).
    #[arg(long = "service-account", num_args = 0..=1, default_missing_value = "true")]
    service_account: Option<bool>,
    /// A tenant-trusted (first-party) application: people are not asked for consent.
    #[arg(long = "first-party", num_args = 0..=1, default_missing_value = "true")]
    first_party: Option<bool>,
    /// PKCE for this confidential client whatever the tenant's require_pkce says.
    #[arg(long = "require-pkce")]
    require_pkce: Option<bool>,
}

/// A client as the CLI shows it.
#[derive(Debug, Serialize)]
struct ClientView {
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_access_token: Option<String>,
    #[serde(flatten)]
    metadata: Map<String, Value>,
    policy: ClientPolicy,
    dynamic: bool,
    created_at: String,
    last_used_at: Option<String>,
}

impl ClientView {
    fn new(client: &Client, issued: IssuedCredentials) -> ClientView {
        let metadata = match serde_json::to_value(&client.metadata) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        ClientView {
            client_id: client.client_id.to_string(),
            client_secret: issued.client_secret,
            registration_access_token: issued.registration_access_token,
            metadata,
            policy: client.policy.clone(),
            dynamic: client.dynamic,
            created_at: rfc3339(client.created_at),
            last_used_at: client.last_used_at.map(rfc3339),
        }
    }

    fn print(&self, json: bool) -> Result<(), CliError> {
        if json {
            return print_json(self);
        }
        let name = self
            .metadata
            .get("client_name")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let method = self
            .metadata
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let grants = self
            .metadata
            .get("grant_types")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        println!("{}  {name}  {method}  {grants}", self.client_id);
        if let Some(secret) = &self.client_secret {
            println!("client_secret: {secret}  (shown once)");
        }
        Ok(())
    }
}

pub(super) fn client_id(raw: &str) -> Result<ClientId, CliError> {
    ClientId::parse(raw).ok_or_else(|| CliError(format!("malformed client id '{raw}'")))
}

fn read_json(path: &PathBuf) -> Result<Value, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| CliError(format!("{}: {e}", path.display())))
}

impl ClientOptions {
    /// Lays the options over `base` metadata (as sent in a registration request).
    fn metadata(
        &self,
        state: &AppState,
        mut base: Map<String, Value>,
        name: Option<&str>,
    ) -> Result<ClientMetadata, CliError> {
        if let Some(path) = &self.metadata_file {
            match read_json(path)? {
                Value::Object(file) => base.extend(file),
                _ => return Err(CliError("--metadata-file must hold a JSON object".into())),
            }
        }
        let mut set = |key: &str, value: Value| {
            base.insert(key.to_owned(), value);
        };
        if let Some(name) = name {
            set("client_name", name.into());
        }
        if !self.redirect_uris.is_empty() {
            set("redirect_uris", serde_json::json!(self.redirect_uris));
        }
        if !self.grant_types.is_empty() {
            set("grant_types", serde_json::json!(self.grant_types));
            // Response types follow the grants unless given in a metadata file.
            let code = self.grant_types.contains(&GrantType::AuthorizationCode);
            set(
                "response_types",
                serde_json::json!(if code { vec!["code"] } else { vec![] }),
            );
        }
        if let Some(method) = self.auth_method {
            set("token_endpoint_auth_method", method.as_str().into());
        }
        if let Some(scope) = &self.scope {
            set("scope", scope.clone().into());
        }
        if let Some(app) = self.application_type {
            set("application_type", app.as_str().into());
        }
        if let Some(uri) = &self.jwks_uri {
            base.remove("jwks");
            base.insert("jwks_uri".into(), uri.clone().into());
        }
        if let Some(path) = &self.jwks_file {
            base.remove("jwks_uri");
            base.insert("jwks".into(), read_json(path)?);
        }
        if !base.contains_key("grant_types") {
            let grant = if base.contains_key("redirect_uris") {
                "authorization_code"
            } else {
                "client_credentials"
            };
            base.insert("grant_types".into(), serde_json::json!([grant]));
        }
        let request: MetadataRequest = serde_json::from_value(Value::Object(base))
            .map_err(|e| CliError(format!("invalid client metadata: {e}")))?;
        request
            .validate(ValidationRules {
                allow_http_jwks_uri: state.settings.oauth.allow_http_jwks_uri,
            })
            .map_err(|e| CliError(e.to_string()))
    }

    fn policy(&self, mut policy: ClientPolicy) -> ClientPolicy {
        if let Some(format) = self.access_token_format {
            policy.access_token_format = Some(format);
        }
        if let Some(alg) = self.access_token_signing_alg {
            policy.access_token_signing_alg = Some(alg);
        }
        if let Some(ttl) = self.access_token_ttl {
            policy.access_token_ttl_secs = Some(ttl);
        }
        if let Some(ttl) = self.refresh_token_ttl {
            policy.refresh_token_ttl_secs = Some(ttl);
        }
        if !self.resources.is_empty() {
            policy.resources = self.resources.clone();
        }
        if let Some(v) = self.may_impersonate {
            policy.may_impersonate = v;
        }
        if let Some(v) = self.may_delegate {
            policy.may_delegate = v;
        }
        if let Some(v) = self.service_account {
            policy.service_account = v;
        }
        if let Some(v) = self.may_introspect {
            policy.may_introspect = v;
        }
        if let Some(v) = self.first_party {
            policy.first_party = v;
        }
        if let Some(v) = self.require_pkce {
            policy.require_pkce = Some(v);
        }
        policy
    }
}

pub(super) async fn tenant(state: &AppState, raw: &str) -> Result<Tenant, CliError> {
    Ok((*state.tenants().get(&slug(raw)?).await?).clone())
}

pub async fn client_command(
    state: &AppState,
    command: ClientCommand,
    json: bool,
) -> Result<(), CliError> {
    match command {
        ClientCommand::Create {
            tenant: t,
            name,
            options,
        } => {
            let tenant = tenant(state, &t).await?;
            let metadata = options.metadata(state, Map::new(), Some(&name))?;
            let policy = options.policy(ClientPolicy::default());
            let (client, issued) = state
                .clients()
                .create(
                    &tenant,
                    NewClient {
                        metadata,
                        policy,
                        dynamic: false,
                    },
                )
                .await?;
            ClientView::new(&client, issued).print(json)
        }
        ClientCommand::List { tenant: t } => {
            let tenant = tenant(state, &t).await?;
            let views: Vec<ClientView> = state
                .clients()
                .list(tenant.id)
                .await?
                .iter()
                .map(|c| ClientView::new(c, IssuedCredentials::default()))
                .collect();
            if json {
                return print_json(&views);
            }
            views.iter().try_for_each(|v| v.print(false))
        }
        ClientCommand::Show {
            tenant: t,
            client_id: id,
        } => {
            let tenant = tenant(state, &t).await?;
            let client = state.clients().get(tenant.id, &client_id(&id)?).await?;
            // Shown whole, as JSON, either way.
            print_json(&ClientView::new(&client, IssuedCredentials::default()))
        }
        ClientCommand::Update {
            tenant: t,
            client_id: id,
            name,
            options,
        } => {
            let tenant = tenant(state, &t).await?;
            let id = client_id(&id)?;
            let current = state
                .store
                .client(tenant.id, &id)
                .await
                .map_err(|e| CliError(e.to_string()))?
                .ok_or_else(|| CliError(format!("no client '{id}'")))?;
            let base = match serde_json::to_value(&current.metadata) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let metadata = options.metadata(state, base, name.as_deref())?;
            let policy = options.policy(current.policy.clone());
            let (client, issued) = state
                .clients()
                .update(
                    tenant.id,
                    &id,
                    ClientUpdate {
                        metadata: Some(metadata),
                        policy: Some(policy),
                        ..ClientUpdate::default()
                    },
                )
                .await?;
            ClientView::new(&client, issued).print(json)
        }
        ClientCommand::Delete {
            tenant: t,
            client_id: id,
            yes,
        } => {
            let tenant = tenant(state, &t).await?;
            let id = client_id(&id)?;
            if !yes {
                return Err(CliError(format!(
                    "deleting client '{id}' stops it at once; add --yes to confirm"
                )));
            }
            state.clients().delete(tenant.id, &id).await?;
            if json {
                print_json(&serde_json::json!({"deleted": id}))
            } else {
                println!("deleted client {id}");
                Ok(())
            }
        }
        ClientCommand::RotateSecret {
            tenant: t,
            client_id: id,
        } => {
            let tenant = tenant(state, &t).await?;
            let (client, issued) = state
                .clients()
                .update(
                    tenant.id,
                    &client_id(&id)?,
                    ClientUpdate {
                        rotate_secret: true,
                        ..ClientUpdate::default()
                    },
                )
                .await?;
            ClientView::new(&client, issued).print(json)
        }
    }
}
