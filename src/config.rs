//! Settings: built-in defaults < a TOML file < `LATCHKEY__SECTION__KEY` environment variables.
//! Loaded once into an `Arc<Settings>` in the app state; validated before anything starts.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::store::DatabaseLocation;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/latchkey.toml";

/// A configuration error: one line naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {why}"))
}

/// A secret value: never printed, masked when the configuration is shown.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

/// Everything latchkey reads from configuration.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the embedded database and the development master key live.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub cache: CacheSettings,
    pub keys: KeySettings,
    pub security: SecuritySettings,
    pub admin: AdminSettings,
    pub oauth: OAuthSettings,
    pub passwords: crate::people::passwords::PasswordSettings,
    pub sessions: crate::people::sessions::SessionSettings,
    pub pages: crate::web::pages::PageSettings,
    pub mail: crate::mail::MailSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: String,
    /// Externally visible base URL; issuers are `{public_url}/t/{tenant}`.
    pub public_url: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// PEM certificate chain: serve HTTPS (rustls) instead of plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Proxies (IP addresses or CIDR blocks) whose `X-Forwarded-For` names the real client,
    /// for per-address rate limits behind a load balancer.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…`; unset means embedded SQLite at `{data_dir}/latchkey.db`.
    /// (`sqlite://PATH` names another SQLite file.)
    pub url: Option<Secret>,
    pub max_connections: usize,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://…`; unset means in-process shared state (one replica).
    pub url: Option<Secret>,
    pub pool_size: usize,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Longest time a replica serves a hot copy (tenant, keys) without re-reading the database,
    /// should an invalidation message be lost.
    pub hot_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// How long a key signs before scheduled rotation replaces it.
    pub rotation_interval_secs: u64,
    /// How long a retired key stays published; must outlive every token it signed.
    pub retention_secs: u64,
    /// How often each replica looks for due rotations and expired keys.
    pub check_interval_secs: u64,
    /// RSA modulus size for RS256 keys: 2048, 3072 or 4096.
    pub rsa_bits: u32,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Base64 of 32 random bytes; seals private keys at rest (AES-256-GCM).
    pub master_key: Option<Secret>,
    /// A file holding the same; on embedded installs it defaults to `{data_dir}/master.key`,
    /// generated on first start.
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token for `/admin`; unset disables the admin API.
    pub token: Option<Secret>,
}

/// Server-wide OAuth defaults; tenants and clients may override some of them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthSettings {
    /// Access token lifetime unless a tenant or client sets its own.
    pub access_token_ttl_secs: u64,
    /// Upper bound on any access token lifetime; retired keys outlive it.
    pub max_access_token_ttl_secs: u64,
    /// Refresh token lifetime unless a client sets its own.
    pub refresh_token_ttl_secs: u64,
    /// Who may register clients (`open`, `token` or `closed`) unless a tenant says otherwise.
    pub registration: crate::model::RegistrationMode,
    /// Anonymous registrations per client IP address per hour.
    pub registration_per_ip_per_hour: u32,
    /// Anonymous registrations per tenant per hour.
    pub registration_per_tenant_per_hour: u32,
    /// Dynamically registered clients unused for this long are deleted (0 keeps them).
    pub dynamic_client_ttl_secs: u64,
    /// Longest lifetime (`exp` - now) accepted on a client assertion (RFC 7523).
    pub client_assertion_max_lifetime_secs: u64,
    /// Client assertions one client may have accepted per minute: each leaves its `jti` in
    /// the replay cache until it expires, so one client cannot crowd out the others.
    pub client_assertions_per_minute: u32,
    /// How long a client's fetched `jwks_uri` document is reused.
    pub jwks_uri_cache_secs: u64,
    /// Accept `jwks_uri` over plain http (development only).
    pub allow_http_jwks_uri: bool,
    /// Fetch `jwks_uri` from loopback, private and link-local addresses (development only;
    /// otherwise refused, so registration cannot aim the server at internal services).
    pub allow_private_jwks_uri: bool,
    /// Authorization code lifetime (RFC 6749 §4.1.2: short, ten minutes at most; here 1–60 s).
    pub authorization_code_ttl_secs: u64,
    /// How long an authorization request waits for the person to sign in and consent.
    pub authorization_request_ttl_secs: u64,
    /// Lifetime of a pushed authorization request's `request_uri` (RFC 9126 §2.2; 1–599 s).
    pub par_ttl_secs: u64,
    /// ID token lifetime (OIDC Core §2 `exp`).
    pub id_token_ttl_secs: u64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            access_token_ttl_secs: 600,
            max_access_token_ttl_secs: 86_400,
            refresh_token_ttl_secs: 30 * 86_400,
            registration: crate::model::RegistrationMode::Token,
            registration_per_ip_per_hour: 10,
            registration_per_tenant_per_hour: 200,
            dynamic_client_ttl_secs: 90 * 86_400,
            client_assertion_max_lifetime_secs: 600,
            client_assertions_per_minute: 3000,
            jwks_uri_cache_secs: 300,
            allow_http_jwks_uri: false,
            allow_private_jwks_uri: false,
            authorization_code_ttl_secs: 60,
            authorization_request_ttl_secs: 1800,
            par_ttl_secs: 60,
            id_token_ttl_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `latchkey=debug,info`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            workers: 0,
            tls_cert_file: None,
            tls_key_file: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            max_connections: 16,
            migrate_on_start: true,
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            pool_size: 16,
            key_prefix: "latchkey:".into(),
        }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { hot_ttl_secs: 30 }
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            rotation_interval_secs: 90 * 86_400,
            retention_secs: 2 * 86_400,
            check_interval_secs: 60,
            rsa_bits: 2048,
            jwks_max_age_secs: 300,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then the file (`path`, or [`DEFAULT_CONFIG_FILE`] if present), then the
    /// environment, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(path, std::env::vars())
    }

    /// [`Settings::load`] with the environment given, for tests.
    pub fn load_from(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let file = match path {
            Some(p) => {
                if !p.is_file() {
                    return Err(bad("--config", format!("no file at {}", p.display())));
                }
                config::File::from(p)
                    .format(config::FileFormat::Toml)
                    .required(true)
            }
            None => config::File::with_name(DEFAULT_CONFIG_FILE)
                .format(config::FileFormat::Toml)
                .required(false),
        };
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, v)| k.starts_with("LATCHKEY__") && !v.is_empty())
            .collect();
        let settings: Settings = config::Config::builder()
            .add_source(file)
            .add_source(
                config::Environment::with_prefix("LATCHKEY")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value that can be checked without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        self.public_url()?;
        for proxy in &self.server.trusted_proxies {
            if crate::http::IpBlock::parse(proxy).is_none() {
                return Err(bad(
                    "server.trusted_proxies",
                    format!("'{proxy}' is not an IP address or CIDR block"),
                ));
            }
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return Err(bad(
                "server.tls_cert_file",
                "set together with server.tls_key_file, or neither",
            ));
        }
        self.database_location()?;
        self.redis_url()?;
        if self.database.max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1"));
        }
        if self.redis.pool_size == 0 {
            return Err(bad("redis.pool_size", "must be at least 1"));
        }
        if !matches!(self.keys.rsa_bits, 2048 | 3072 | 4096) {
            return Err(bad("keys.rsa_bits", "must be 2048, 3072 or 4096"));
        }
        const TEN_YEARS: u64 = 10 * 366 * 86_400;
        for (key, value) in [
            ("cache.hot_ttl_secs", self.cache.hot_ttl_secs),
            (
                "keys.rotation_interval_secs",
                self.keys.rotation_interval_secs,
            ),
            ("keys.retention_secs", self.keys.retention_secs),
            ("keys.check_interval_secs", self.keys.check_interval_secs),
            ("keys.jwks_max_age_secs", self.keys.jwks_max_age_secs),
            (
                "oauth.refresh_token_ttl_secs",
                self.oauth.refresh_token_ttl_secs,
            ),
            (
                "oauth.dynamic_client_ttl_secs",
                self.oauth.dynamic_client_ttl_secs,
            ),
            ("oauth.jwks_uri_cache_secs", self.oauth.jwks_uri_cache_secs),
            ("passwords.lockout_secs", self.passwords.lockout_secs),
            (
                "sessions.idle_timeout_secs",
                self.sessions.idle_timeout_secs,
            ),
            (
                "sessions.max_lifetime_secs",
                self.sessions.max_lifetime_secs,
            ),
            ("sessions.history_secs", self.sessions.history_secs),
            ("mail.link_ttl_secs", self.mail.link_ttl_secs),
            ("mail.poll_interval_secs", self.mail.poll_interval_secs),
        ] {
            if value > TEN_YEARS {
                return Err(bad(key, "must be at most ten years"));
            }
        }
        if !(1..=60).contains(&self.oauth.authorization_code_ttl_secs) {
            return Err(bad(
                "oauth.authorization_code_ttl_secs",
                "must be between 1 and 60",
            ));
        }
        if !(1..600).contains(&self.oauth.par_ttl_secs) {
            return Err(bad("oauth.par_ttl_secs", "must be between 1 and 599"));
        }
        if !(60..=86_400).contains(&self.oauth.authorization_request_ttl_secs) {
            return Err(bad(
                "oauth.authorization_request_ttl_secs",
                "must be between 60 and 86400",
            ));
        }
        if !(60..=86_400).contains(&self.oauth.id_token_ttl_secs) {
            return Err(bad(
                "oauth.id_token_ttl_secs",
                "must be between 60 and 86400",
            ));
        }
        // A verifier's cache and a replica's hot copy must both have seen a key before it
        // signs, and still see a retired key while tokens it signed may be presented.
        let settle = self.keys.jwks_max_age_secs + self.cache.hot_ttl_secs;
        if self.keys.rotation_interval_secs <= settle {
            return Err(bad(
                "keys.rotation_interval_secs",
                "must be longer than keys.jwks_max_age_secs + cache.hot_ttl_secs",
            ));
        }
        if self.keys.retention_secs < settle {
            return Err(bad(
                "keys.retention_secs",
                "must be at least keys.jwks_max_age_secs + cache.hot_ttl_secs",
            ));
        }
        for (key, value) in [
            ("passwords.lockout_secs", self.passwords.lockout_secs),
            (
                "passwords.lockout_after",
                u64::from(self.passwords.lockout_after),
            ),
            (
                "passwords.address_lockout_after",
                u64::from(self.passwords.address_lockout_after),
            ),
            (
                "passwords.attempts_per_minute",
                u64::from(self.passwords.attempts_per_minute),
            ),
            (
                "sessions.idle_timeout_secs",
                self.sessions.idle_timeout_secs,
            ),
            (
                "sessions.max_lifetime_secs",
                self.sessions.max_lifetime_secs,
            ),
            ("mail.link_ttl_secs", self.mail.link_ttl_secs),
            ("mail.poll_interval_secs", self.mail.poll_interval_secs),
            (
                "mail.max_attempts",
                u64::try_from(self.mail.max_attempts).unwrap_or(0),
            ),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1"));
            }
        }
        let oauth = &self.oauth;
        if oauth.access_token_ttl_secs == 0
            || oauth.access_token_ttl_secs > oauth.max_access_token_ttl_secs
        {
            return Err(bad(
                "oauth.access_token_ttl_secs",
                "must be between 1 and oauth.max_access_token_ttl_secs",
            ));
        }
        // A retired key stays published until every token it signed has expired.
        if oauth.max_access_token_ttl_secs > self.keys.retention_secs {
            return Err(bad(
                "oauth.max_access_token_ttl_secs",
                "must be at most keys.retention_secs",
            ));
        }
        if oauth.dynamic_client_ttl_secs != 0
            && oauth.dynamic_client_ttl_secs < crate::model::MIN_DYNAMIC_CLIENT_TTL_SECS
        {
            return Err(bad(
                "oauth.dynamic_client_ttl_secs",
                "must be 0 (keep them) or at least one day (86400)",
            ));
        }
        if oauth.refresh_token_ttl_secs == 0 {
            return Err(bad("oauth.refresh_token_ttl_secs", "must be at least 1"));
        }
        if !(1..=3600).contains(&oauth.client_assertion_max_lifetime_secs) {
            return Err(bad(
                "oauth.client_assertion_max_lifetime_secs",
                "must be between 1 and 3600",
            ));
        }
        if oauth.client_assertions_per_minute == 0 {
            return Err(bad(
                "oauth.client_assertions_per_minute",
                "must be at least 1",
            ));
        }
        if self.keys.check_interval_secs == 0 {
            return Err(bad("keys.check_interval_secs", "must be at least 1"));
        }
        if self.keys.jwks_max_age_secs >= self.keys.rotation_interval_secs {
            // A verifier's cached JWKS must learn the next key before it starts signing.
            return Err(bad(
                "keys.jwks_max_age_secs",
                "must be shorter than keys.rotation_interval_secs",
            ));
        }
        if let Some(token) = &self.admin.token
            && token.expose().len() < 32
        {
            return Err(bad("admin.token", "must be at least 32 characters"));
        }
        if let Some(key) = &self.security.master_key {
            crate::crypto::MasterKey::from_base64(key.expose())
                .map_err(|e| bad("security.master_key", e))?;
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            bad(
                "server.bind",
                format!("'{}' is not an address:port", self.server.bind),
            )
        })
    }

    /// The public base URL, validated.
    pub fn public_url(&self) -> Result<Url, ConfigError> {
        let key = "server.public_url";
        let url = Url::parse(&self.server.public_url).map_err(|e| bad(key, e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(key, "must be an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(key, "must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(key, "must not carry credentials"));
        }
        // Routes and the RFC 8414 well-known location are mounted at the root.
        if url.path() != "/" {
            return Err(bad(
                key,
                "must not have a path (serve latchkey at the root of its host)",
            ));
        }
        Ok(url)
    }

    /// `{public_url}/t/{tenant}`: the issuer identifier of a tenant (RFC 8414 §2).
    pub fn issuer(&self, tenant: &crate::model::TenantSlug) -> String {
        format!(
            "{}/t/{tenant}",
            self.server.public_url.trim_end_matches('/')
        )
    }

    pub fn database_location(&self) -> Result<DatabaseLocation, ConfigError> {
        let key = "database.url";
        let Some(url) = &self.database.url else {
            return Ok(DatabaseLocation::Sqlite(
                self.data_dir().join("latchkey.db"),
            ));
        };
        let raw = url.expose();
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(bad(key, "sqlite:// needs a file path"));
            }
            return Ok(DatabaseLocation::Sqlite(PathBuf::from(path)));
        }
        let parsed = Url::parse(raw).map_err(|e| bad(key, format!("not a URL ({e})")))?;
        match parsed.scheme() {
            "postgres" | "postgresql" if parsed.host_str().is_some() => {
                Ok(DatabaseLocation::Postgres(raw.to_owned()))
            }
            "postgres" | "postgresql" => Err(bad(key, "the PostgreSQL URL needs a host")),
            other => Err(bad(
                key,
                format!("unsupported scheme '{other}': use postgres:// or sqlite://"),
            )),
        }
    }

    pub fn redis_url(&self) -> Result<Option<Url>, ConfigError> {
        let Some(url) = &self.redis.url else {
            return Ok(None);
        };
        let parsed =
            Url::parse(url.expose()).map_err(|e| bad("redis.url", format!("not a URL ({e})")))?;
        if parsed.scheme() == "rediss" {
            return Err(bad(
                "redis.url",
                "rediss:// (TLS) is not supported yet; reach Redis over a private network or a TLS tunnel",
            ));
        }
        if parsed.scheme() != "redis" || parsed.host_str().is_none() {
            return Err(bad("redis.url", "must be redis://HOST[:PORT][/DB]"));
        }
        Ok(Some(parsed))
    }

    pub fn data_dir(&self) -> PathBuf {
        if self.data_dir.as_os_str().is_empty() {
            PathBuf::from("latchkey-data")
        } else {
            self.data_dir.clone()
        }
    }

    /// The effective configuration as `key = value` lines (secrets masked; URLs lose passwords).
    pub fn display_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        flatten("", &self.masked_json(), &mut lines);
        lines
    }

    /// The effective configuration as JSON (secrets masked).
    pub fn masked_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["data_dir"] = self.data_dir().display().to_string().into();
        for (section, url) in [("database", &self.database.url), ("redis", &self.redis.url)] {
            if let Some(url) = url {
                value[section]["url"] = mask_url(url.expose()).into();
            }
        }
        value
    }
}

/// Shows a URL with its password masked.
pub fn mask_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("********"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "********".into(),
    }
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Null => out.push(format!("{prefix} = (unset)")),
        other => out.push(format!("{prefix} = {other}")),
    }
}
