//! The composition root: the state assembled from settings (database, cache, master key,
//! outgoing HTTP with its SSRF guard, hot copies), start-up, and the HTTP server around it
//! (plain or TLS) that `latchkey serve` runs.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};

use std::time::Duration;

use tokio::sync::watch;

use super::hot::HotCopies;
use super::{AppState, StartupError};
use crate::cache::{Cache, Invalidator, SharedState};
use crate::clock::Clock;
use crate::config::Settings;
use crate::config::mask_url;
use crate::crypto::MasterKey;
use crate::ops::Metrics;
use crate::people::passwords::PasswordHasher;
use crate::rng::Rng;
use crate::routes;
use crate::store::{DatabaseLocation, Store};

impl AppState {
    /// Connects to the database and the cache and loads the master key. With `migrate`,
    /// applies pending migrations first. Fails with one clear line if anything is missing.
    pub async fn open(
        settings: Settings,
        clock: Clock,
        migrate: bool,
    ) -> Result<AppState, StartupError> {
        let location = settings
            .database_location()
            .map_err(|e| StartupError(e.0))?;
        if settings.security.master_key.is_none()
            && settings.security.master_key_file.is_none()
            && matches!(location, DatabaseLocation::Postgres(_))
        {
            return Err(StartupError(
                "security.master_key: required when database.url is PostgreSQL \
                 (make one with `latchkey master-key generate`)"
                    .into(),
            ));
        }
        let store = Store::open(&location, settings.database.max_connections)
            .map_err(|e| StartupError(format!("database.url: {e}")))?;
        let shown = match &location {
            DatabaseLocation::Postgres(url) => mask_url(url),
            DatabaseLocation::Sqlite(path) => path.display().to_string(),
        };
        if migrate {
            let applied = store
                .migrate()
                .await
                .map_err(|e| StartupError(format!("database.url: {shown}: {e}")))?;
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
        }
        store
            .ping()
            .await
            .map_err(|e| StartupError(format!("database.url: cannot use {shown}: {e}")))?;
        store.start_background();
        let cache = match settings.redis_url().map_err(|e| StartupError(e.0))? {
            None => Cache::memory(),
            Some(url) => {
                let cache = Cache::redis(
                    url.as_str(),
                    settings.redis.pool_size,
                    &settings.redis.key_prefix,
                )
                .map_err(|e| StartupError(format!("redis.url: {e}")))?;
                cache.ping().await.map_err(|e| {
                    StartupError(format!(
                        "redis.url: cannot reach {}: {e}",
                        mask_url(url.as_str())
                    ))
                })?;
                cache
            }
        };
        crate::web::pages::Pages::load(&settings.pages)
            .map_err(StartupError)?
            .install();
        // Last, so a failed start leaves no generated key behind.
        let master_key = Arc::new(load_master_key(&settings)?);
        let allow_private = settings.oauth.allow_private_jwks_uri;
        let hot = Arc::new(HotCopies::new(&settings));
        let rng = Rng::System;
        let passwords = PasswordHasher::new(&settings.passwords, &rng).map_err(StartupError)?;
        let mailer =
            crate::mail::Mailer::new(&settings.mail, &settings.data_dir()).map_err(StartupError)?;
        Ok(AppState {
            invalidator: Invalidator::new(hot.clone(), cache.clone()),
            hot,
            settings: Arc::new(settings),
            store,
            cache,
            clock,
            rng,
            passwords,
            mailer,
            master_key,
            metrics: Arc::new(Metrics::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                // A proxy from the environment would connect where the resolver cannot look.
                .no_proxy()
                .dns_resolver(Arc::new(crate::oauth::client_auth::PublicResolver {
                    allow_private,
                }))
                .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| StartupError(format!("outgoing HTTP client: {e}")))?,
            shutdown: Arc::new(watch::channel(false).0),
        })
    }

    /// Everything `serve` needs before it listens: open (migrating unless disabled), create
    /// tenant `default` on a fresh install, follow other replicas' invalidations.
    pub async fn prepare(settings: Settings, clock: Clock) -> Result<AppState, StartupError> {
        let migrate = settings.database.migrate_on_start;
        let state = AppState::open(settings, clock, migrate).await?;
        if let Some(tenant) = state
            .tenants()
            .ensure_default()
            .await
            .map_err(|e| StartupError(format!("creating tenant 'default': {e}")))?
        {
            tracing::info!(issuer = %state.settings.issuer(&tenant.slug), "fresh install: tenant 'default' created");
        }
        state
            .follow_invalidations()
            .await
            .map_err(|e| StartupError(format!("redis.url: cannot subscribe: {e}")))?;
        Ok(state)
    }
}

/// The actix application for `state`, served on `listener`.
pub fn http_server(
    state: AppState,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let workers = match state.settings.server.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let tls = match (
        &state.settings.server.tls_cert_file,
        &state.settings.server.tls_key_file,
    ) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(routes::configure)
            .wrap(actix_web::middleware::from_fn(crate::http::observe))
    })
    .workers(workers)
    .shutdown_timeout(10);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// A rustls server configuration from PEM files (ring provider, safe default versions).
fn tls_config(cert: &Path, key: &Path) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &Path, e: &dyn std::fmt::Display| {
        let setting = if what == cert {
            "server.tls_cert_file"
        } else {
            "server.tls_key_file"
        };
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{setting}: {}: {e}", what.display()),
        )
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(cert, &e))?;
    if chain.is_empty() {
        return Err(invalid(cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(cert, &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| invalid(key, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `latchkey serve`: prepare, listen, run the scheduler, stop on SIGINT/SIGTERM.
pub async fn serve(settings: Settings) -> Result<(), StartupError> {
    let started = std::time::Instant::now();
    let addr = settings.bind_addr().map_err(|e| StartupError(e.0))?;
    // Bind first: a taken port fails before anything is created.
    let listener = TcpListener::bind(addr)
        .map_err(|e| StartupError(format!("server.bind: cannot listen on {addr}: {e}")))?;
    let state = AppState::prepare(settings, Clock::System).await?;
    crate::ops::scheduler::spawn(&state);
    crate::mail::spawn(&state);
    let server = http_server(state.clone(), listener).map_err(|e| {
        let message = e.to_string();
        if message.starts_with("server.tls_") {
            StartupError(message)
        } else {
            StartupError(format!("server.bind: {message}"))
        }
    })?;
    let issuer = state
        .settings
        .issuer(&crate::model::TenantSlug::default_tenant());
    tracing::info!(
        %addr,
        database = state.store.location().backend(),
        cache = state.cache.backend(),
        startup_ms = started.elapsed().as_millis() as u64,
        "latchkey listening; default issuer {issuer}"
    );
    let result = server.await;
    state.shut_down();
    result.map_err(|e| StartupError(format!("server stopped: {e}")))
}

fn load_master_key(settings: &Settings) -> Result<MasterKey, StartupError> {
    if let Some(key) = &settings.security.master_key {
        return MasterKey::from_base64(key.expose())
            .map_err(|e| StartupError(format!("security.master_key: {e}")));
    }
    if let Some(path) = &settings.security.master_key_file {
        return MasterKey::load_or_create(path, false)
            .map(|(key, _)| key)
            .map_err(|e| StartupError(format!("security.master_key_file: {e}")));
    }
    let path = settings.data_dir().join("master.key");
    let (key, created) = MasterKey::load_or_create(&path, true)
        .map_err(|e| StartupError(format!("security.master_key_file: {e}")))?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "generated a development master key; production deployments set security.master_key"
        );
    }
    Ok(key)
}
