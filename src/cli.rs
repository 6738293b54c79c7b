//! The `latchkey` command line: `serve` plus the commands that bootstrap and administer it.

mod api_keys;
mod clients;
mod initial_access_tokens;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::admin::{KeyView, TenantView};
use crate::app::{self, AppState};
use crate::clock::Clock;
use crate::config::{LogFormat, Settings};
use crate::crypto::MasterKey;
use crate::model::{RegistrationMode, SigningAlg, TenantSettings, TenantSlug};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "OAuth 2.1 / OpenID Connect authorization server"
)]
pub struct Cli {
    /// Configuration file [default: config/latchkey.toml when it exists].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite and in-process cache unless configured otherwise).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage tenants (each an issuer at {public_url}/t/{tenant}).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        command: clients::ClientCommand,
    },
    /// Make initial access tokens for dynamic client registration.
    InitialAccessToken {
        #[command(subcommand)]
        command: initial_access_tokens::InitialAccessTokenCommand,
    },
    /// Manage API keys of service accounts and users.
    ApiKey {
        #[command(subcommand)]
        command: api_keys::ApiKeyCommand,
    },
    /// Manage a tenant's users (people who sign in).
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Master-key helpers.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets masked.
    Check,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant with fresh signing keys.
    Create {
        /// URL name: 1-63 lowercase letters, digits and inner hyphens.
        slug: String,
        /// Display name [default: the slug].
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { slug: String },
    /// Change a tenant's policy; only the options given change.
    Configure {
        slug: String,
        /// Who may register clients: open, token or closed.
        #[arg(long)]
        registration: Option<RegistrationMode>,
        /// File with the JWK Set whose software statements are trusted.
        #[arg(long = "software-statement-jwks", value_name = "FILE")]
        software_statement_jwks: Option<PathBuf>,
        /// Scopes dynamically registered clients may ask for, space-separated ("" for none).
        #[arg(long = "registration-scope")]
        registration_scope: Option<String>,
        /// Refuse registrations without a trusted software statement.
        #[arg(long = "require-software-statement")]
        require_software_statement: Option<bool>,
        /// Access token lifetime in seconds for clients that set none.
        #[arg(long = "access-token-ttl")]
        access_token_ttl: Option<u64>,
        /// Delete dynamically registered clients unused for this many seconds (0: never).
        #[arg(long = "dynamic-client-ttl")]
        dynamic_client_ttl: Option<u64>,
        /// Logo shown on the tenant's pages (an https URL; "" removes it).
        #[arg(long = "logo-url")]
        logo_url: Option<String>,
        /// Accent colour of the tenant's pages, #rrggbb ("" removes it).
        #[arg(long = "accent-color")]
        accent_color: Option<String>,
        /// Passkeys on or off (on by default).
        #[arg(long)]
        passkeys: Option<bool>,
        /// Let people sign up with a passkey and no password at {issuer}/signup.
        #[arg(long = "passkey-signup")]
        passkey_signup: Option<bool>,
        /// PKCE for confidential clients too (on by default; public clients always use it).
        #[arg(long = "require-pkce")]
        require_pkce: Option<bool>,
        /// Every authorization request must be pushed first (RFC 9126).
        #[arg(long = "require-pushed-authorization-requests")]
        require_par: Option<bool>,
        /// Accept unsigned (alg none) request objects (RFC 9101; off by default).
        #[arg(long = "allow-unsigned-request-objects")]
        allow_unsigned_request_objects: Option<bool>,
        /// Hosts, addresses or CIDR blocks of internal relying parties the server may call
        /// for back-channel logout (repeatable; "" clears the list).
        #[arg(long = "outbound-allow", value_name = "HOST|CIDR")]
        outbound_allow: Vec<String>,
        /// Start from the server defaults instead of the current settings.
        #[arg(long)]
        reset: bool,
    },
    /// Delete a tenant and everything it owns.
    Delete {
        slug: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List a tenant's signing keys.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Rotate now: next keys start signing, active keys retire, new next keys are published.
    Rotate {
        #[arg(long)]
        tenant: String,
        /// Only these algorithms (ES256, RS256, EdDSA) [default: all].
        #[arg(long = "alg")]
        algs: Vec<SigningAlg>,
        /// Promote next keys even if verifiers may not have fetched them yet (compromised key).
        #[arg(long)]
        force: bool,
    },
    /// Unpublish a next or retired key at once (tokens it signed stop verifying).
    Delete {
        #[arg(long)]
        tenant: String,
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
enum MasterKeyCommand {
    /// Print a new random master key (base64 of 32 bytes) for security.master_key.
    Generate,
}

/// Parses arguments, runs the command, prints errors as one line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::MasterKey {
        command: MasterKeyCommand::Generate,
    } = cli.command
    {
        println!("{}", MasterKey::generate_base64());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings, matches!(cli.command, Command::Serve));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latchkey: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(settings: &Settings, serving: bool) {
    use tracing_subscriber::EnvFilter;
    // Commands other than `serve` keep stdout for their output and log only warnings.
    let default = if serving {
        settings.log.filter.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A CLI failure, printed as one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CliError(String);

impl From<app::StartupError> for CliError {
    fn from(e: app::StartupError) -> Self {
        CliError(e.0)
    }
}

impl From<crate::error::ServiceError> for CliError {
    fn from(e: crate::error::ServiceError) -> Self {
        CliError(e.to_string())
    }
}

fn slug(raw: &str) -> Result<TenantSlug, CliError> {
    TenantSlug::parse(raw).map_err(|e| CliError(e.to_string()))
}

fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn print_tenant(view: &TenantView) {
    println!(
        "{}  {}  {}  (created {})",
        view.slug, view.issuer, view.display_name, view.created_at
    );
}

fn print_keys(keys: &[KeyView]) {
    for k in keys {
        let until = k
            .expires_at
            .as_deref()
            .map(|t| format!("  published until {t}"))
            .unwrap_or_default();
        println!(
            "{:<6} {:<8} {}  created {}{until}",
            k.alg.as_str(),
            k.state.as_str(),
            k.kid,
            k.created_at
        );
    }
}

async fn run(cli: Cli, settings: Settings) -> Result<(), CliError> {
    let json = cli.json;
    match cli.command {
        Command::Serve => Ok(app::serve(settings).await?),
        Command::MasterKey { .. } => Ok(()),
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            if json {
                print_json(&settings.masked_json())
            } else {
                println!("configuration is valid");
                settings
                    .display_lines()
                    .iter()
                    .for_each(|l| println!("{l}"));
                Ok(())
            }
        }
        Command::Migrate => {
            // Migrating needs neither the master key nor Redis.
            let location = settings.database_location().map_err(|e| CliError(e.0))?;
            let store = crate::store::Store::open(&location, 1)
                .map_err(|e| CliError(format!("database.url: {e}")))?;
            let applied = store
                .migrate()
                .await
                .map_err(|e| CliError(format!("database.url: {e}")))?;
            if json {
                print_json(&serde_json::json!({ "applied": applied }))
            } else {
                if applied.is_empty() {
                    println!("database is up to date");
                }
                applied.iter().for_each(|v| println!("applied {v}"));
                Ok(())
            }
        }
        Command::Tenant { command } => {
            administer(settings, async |state| {
                tenant_command(state, command, json).await
            })
            .await
        }
        Command::Keys { command } => {
            administer(settings, async |state| {
                keys_command(state, command, json).await
            })
            .await
        }
        Command::Client { command } => {
            administer(settings, async |state| {
                clients::client_command(state, command, json).await
            })
            .await
        }
        Command::InitialAccessToken { command } => {
            administer(settings, async |state| {
                initial_access_tokens::initial_access_token_command(state, command, json).await
            })
            .await
        }
        Command::User { command } => {
            administer(settings, async |state| {
                users::user_command(state, command, json).await
            })
            .await
        }
        Command::ApiKey { command } => {
            administer(settings, async |state| {
                api_keys::api_key_command(state, command, json).await
            })
            .await
        }
    }
}

/// Runs an administration command on a prepared state (migrated, bootstrapped), then stops its
/// background tasks.
async fn administer(
    settings: Settings,
    command: impl AsyncFnOnce(&AppState) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let state = AppState::prepare(settings, Clock::System).await?;
    let result = command(&state).await;
    state.shut_down();
    result
}

async fn tenant_command(
    state: &AppState,
    command: TenantCommand,
    json: bool,
) -> Result<(), CliError> {
    match command {
        TenantCommand::Create { slug: raw, name } => {
            let tenant = state
                .tenants()
                .create(&slug(&raw)?, name.as_deref())
                .await?;
            let view = TenantView::new(&state.settings, &tenant);
            if json {
                print_json(&view)
            } else {
                print_tenant(&view);
                Ok(())
            }
        }
        TenantCommand::List => {
            let all = state.tenants().list().await?;
            let views: Vec<TenantView> = all
                .iter()
                .map(|t| TenantView::new(&state.settings, t))
                .collect();
            if json {
                print_json(&views)
            } else {
                views.iter().for_each(print_tenant);
                Ok(())
            }
        }
        TenantCommand::Show { slug: raw } => {
            let tenant = state.tenants().get(&slug(&raw)?).await?;
            let view = TenantView::new(&state.settings, &tenant);
            if json {
                print_json(&view)
            } else {
                print_tenant(&view);
                Ok(())
            }
        }
        TenantCommand::Configure {
            slug: raw,
            registration,
            software_statement_jwks,
            registration_scope,
            require_software_statement,
            access_token_ttl,
            dynamic_client_ttl,
            logo_url,
            accent_color,
            passkeys,
            passkey_signup,
            require_pkce,
            require_par,
            allow_unsigned_request_objects,
            outbound_allow,
            reset,
        } => {
            let slug = slug(&raw)?;
            let current = state.tenants().get(&slug).await?;
            let mut settings = if reset {
                TenantSettings::default()
            } else {
                current.settings.clone()
            };
            if let Some(mode) = registration {
                settings.registration = Some(mode);
            }
            if let Some(path) = software_statement_jwks {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| CliError(format!("{}: {e}", path.display())))?;
                settings.software_statement_jwks = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| CliError(format!("{}: {e}", path.display())))?,
                );
            }
            if let Some(scope) = registration_scope {
                settings.registration_scope = Some(
                    crate::model::token::Scope::parse(&scope)
                        .map_err(|e| CliError(e.to_string()))?,
                );
            }
            if let Some(required) = require_software_statement {
                settings.require_software_statement = required;
            }
            if let Some(ttl) = access_token_ttl {
                settings.access_token_ttl_secs = Some(ttl);
            }
            if let Some(ttl) = dynamic_client_ttl {
                settings.dynamic_client_ttl_secs = Some(ttl);
            }
            if let Some(logo) = logo_url {
                settings.branding.logo_url = (!logo.is_empty()).then_some(logo);
            }
            if let Some(colour) = accent_color {
                settings.branding.accent_color = (!colour.is_empty()).then_some(colour);
            }
            if let Some(on) = passkeys {
                settings.passkeys.disabled = !on;
            }
            if let Some(on) = passkey_signup {
                settings.passkeys.signup = on;
            }
            if let Some(on) = require_pkce {
                settings.require_pkce = Some(on);
            }
            if let Some(on) = require_par {
                settings.require_pushed_authorization_requests = on;
            }
            if let Some(on) = allow_unsigned_request_objects {
                settings.allow_unsigned_request_objects = on;
            }
            if !outbound_allow.is_empty() {
                settings.outbound_allow = outbound_allow
                    .into_iter()
                    .filter(|e| !e.is_empty())
                    .collect();
            }
            let tenant = state.tenants().configure(&slug, settings).await?;
            let view = TenantView::new(&state.settings, &tenant);
            if json {
                print_json(&view)
            } else {
                print_tenant(&view);
                Ok(())
            }
        }
        TenantCommand::Delete { slug: raw, yes } => {
            let slug = slug(&raw)?;
            if !yes {
                return Err(CliError(format!(
                    "deleting tenant '{slug}' removes its keys and everything it owns; add --yes to confirm"
                )));
            }
            state.tenants().delete(&slug).await?;
            if json {
                print_json(&serde_json::json!({"deleted": slug}))
            } else {
                println!("deleted tenant {slug}");
                Ok(())
            }
        }
    }
}

async fn keys_command(state: &AppState, command: KeysCommand, json: bool) -> Result<(), CliError> {
    match command {
        KeysCommand::List { tenant } => {
            let tenant = state.tenants().get(&slug(&tenant)?).await?;
            let views: Vec<KeyView> = state
                .keys()
                .list(tenant.id)
                .await?
                .iter()
                .map(KeyView::from)
                .collect();
            if json {
                print_json(&views)
            } else {
                print_keys(&views);
                Ok(())
            }
        }
        KeysCommand::Rotate {
            tenant,
            algs,
            force,
        } => {
            let tenant = state.tenants().get(&slug(&tenant)?).await?;
            let done = state.keys().rotate(tenant.id, &algs, force).await?;
            if json {
                print_json(&done)
            } else {
                for r in &done {
                    println!(
                        "{}: {} now signs; {} retired; {} published as next",
                        r.alg, r.active, r.retired, r.next
                    );
                }
                Ok(())
            }
        }
        KeysCommand::Delete { tenant, kid } => {
            let tenant = state.tenants().get(&slug(&tenant)?).await?;
            state.keys().delete(tenant.id, &kid).await?;
            if json {
                print_json(&serde_json::json!({"deleted": kid}))
            } else {
                println!("deleted key {kid}");
                Ok(())
            }
        }
    }
}
