//! Test support: a real latchkey server per test on a chosen backend, with its own database
//! (a fresh SQLite file, or a uniquely named PostgreSQL database dropped afterwards) and its own
//! Redis key prefix. PostgreSQL and Redis come from LATCHKEY_TEST_POSTGRES_URL and
//! LATCHKEY_TEST_REDIS_URL (scripts/test.sh sets them, starting private servers if needed);
//! the defaults are the machine's standard ports. A missing service fails the test loudly.

pub mod clients;
/// The example relying party's protocol code, driven by the tests.
#[path = "../../examples/relying_party/rp.rs"]
pub mod rp;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use latchkey::app::{AppState, http_server};
use latchkey::cache::{Cache, SharedState};
use latchkey::clock::Clock;
use latchkey::config::{Secret, Settings};
use latchkey::model::{Tenant, TenantSlug};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

pub mod browser;
pub mod flow;
pub mod smtp;

/// Expands `async fn name(backend: Backend)` tests into `sqlite::name` and `postgres::name`.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Expands `async fn name(cache: CacheKind)` tests into `memory::name` and `redis::name`.
macro_rules! caches {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::CacheKind::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::CacheKind::Redis).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Memory,
    Redis,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";

pub fn postgres_admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A unique name part: time, process, counter.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{prefix}_{secs}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        rand_suffix()
    )
}

fn rand_suffix() -> String {
    latchkey::crypto::hex(&latchkey::rng::Rng::System.bytes::<3>())
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("LATCHKEY_TEST_POSTGRES_URL is not a URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

async fn pg_admin() -> AsyncPgConnection {
    let url = postgres_admin_url();
    AsyncPgConnection::establish(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for the postgres tests and did not answer at {url}: {e}. Run scripts/test.sh, which starts one.")
    })
}

/// A PostgreSQL database for one test, dropped (WITH FORCE) when this guard drops.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        sweep_stale_databases().await;
        let name = unique("lk_test");
        let mut conn = pg_admin().await;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        PgDatabase {
            url: with_database(&postgres_admin_url(), &name),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context: a private runtime on a private thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = AsyncPgConnection::establish(&postgres_admin_url()).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Drops test databases an interrupted run left behind (older than an hour), once per process.
async fn sweep_stale_databases() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                datname: String,
            }
            let mut conn = pg_admin().await;
            let rows: Vec<Row> = diesel::sql_query(
                "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'lk_test_%'",
            )
            .load(&mut conn)
            .await
            .unwrap_or_default();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            for row in rows {
                let stamp = row
                    .datname
                    .split('_')
                    .nth(2)
                    .and_then(|s| s.parse::<u64>().ok());
                if stamp.is_some_and(|t| t + 3600 < now) {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        row.datname
                    ))
                    .execute(&mut conn)
                    .await;
                }
            }
        })
        .await;
}

/// A Redis key prefix for one test, cleared when this guard drops.
pub struct RedisPrefix {
    pub prefix: String,
}

impl RedisPrefix {
    pub fn new() -> RedisPrefix {
        RedisPrefix {
            prefix: format!("{}:", unique("lk-test")),
        }
    }

    pub async fn cache(&self) -> Cache {
        let cache = Cache::redis(&redis_url(), 4, &self.prefix).expect("redis url");
        cache.ping().await.unwrap_or_else(|e| {
            panic!("Redis is required for the redis tests and did not answer at {}: {e}. Run scripts/test.sh, which starts one.", redis_url())
        });
        cache
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(latchkey::cache::Cache::Redis(c)) = Cache::redis(&redis_url(), 1, &prefix)
                {
                    let _ = c.clear_prefix().await;
                }
            });
        })
        .join();
    }
}

/// Where a test's data lives; dropped (database, files, Redis keys) with the test.
pub struct TestData {
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
    pub redis: Option<RedisPrefix>,
}

impl TestData {
    pub async fn new(backend: Backend, cache: CacheKind) -> TestData {
        TestData {
            dir: tempfile::tempdir().expect("tempdir"),
            pg: match backend {
                Backend::Postgres => Some(PgDatabase::create().await),
                Backend::Sqlite => None,
            },
            redis: match cache {
                CacheKind::Redis => Some(RedisPrefix::new()),
                CacheKind::Memory => None,
            },
        }
    }

    /// Settings for a server on this data; `public_url` is filled in at start.
    pub fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.data_dir = self.dir.path().to_path_buf();
        s.server.workers = 1;
        s.database.max_connections = 4;
        s.admin.token = Some(Secret::new(ADMIN_TOKEN));
        s.keys.rsa_bits = 2048;
        if let Some(pg) = &self.pg {
            s.database.url = Some(Secret::new(pg.url.clone()));
            s.security.master_key = Some(Secret::new(test_master_key()));
        }
        if let Some(redis) = &self.redis {
            s.redis.url = Some(Secret::new(redis_url()));
            s.redis.key_prefix = redis.prefix.clone();
        }
        s
    }
}

/// One master key for the whole test run.
pub fn test_master_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(latchkey::crypto::MasterKey::generate_base64)
        .clone()
}

/// A running latchkey on `127.0.0.1:0`, reached as `http://localhost:PORT`.
pub struct TestApp {
    pub state: AppState,
    pub base: String,
    pub client: reqwest::Client,
    server: actix_web::dev::ServerHandle,
    pub data: Arc<TestData>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_on(
            Arc::new(TestData::new(backend, CacheKind::Memory).await),
            |_| {},
        )
        .await
    }

    /// Starts a server on existing data (a second replica), adjusting settings first.
    pub async fn start_on(data: Arc<TestData>, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = data.settings();
        adjust(&mut settings);
        Self::start_with(data, settings, None).await
    }

    /// Starts with exact settings; `cache` overrides the configured cache (to share an
    /// in-process cache between two replicas).
    pub async fn start_with(
        data: Arc<TestData>,
        mut settings: Settings,
        cache: Option<Cache>,
    ) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let scheme = if settings.server.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        // A replica may be told to sit behind another's URL (one public URL, many replicas).
        if settings.server.public_url == Settings::default().server.public_url {
            settings.server.public_url = format!("{scheme}://localhost:{port}");
        }
        let clock = Clock::mock(time::OffsetDateTime::now_utc().unix_timestamp());
        let mut state = AppState::prepare(settings, clock).await.expect("app state");
        if let Some(cache) = cache {
            state = state.with_cache(cache);
            state.follow_invalidations().await.expect("listen");
        }
        let server = http_server(state.clone(), listener).expect("server");
        let handle = server.handle();
        tokio::spawn(server);
        TestApp {
            state,
            base: format!("{scheme}://localhost:{port}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            server: handle,
            data,
        }
    }

    /// A server over HTTPS with a fresh self-signed certificate for `localhost`; the
    /// certificate's PEM, for clients to trust.
    pub async fn start_https(data: Arc<TestData>) -> (TestApp, String) {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let cert_pem = certified.cert.pem();
        let (cert, key) = (
            data.dir.path().join("cert.pem"),
            data.dir.path().join("key.pem"),
        );
        std::fs::write(&cert, &cert_pem).expect("write cert");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
        let app = TestApp::start_on(data, |s| {
            s.server.tls_cert_file = Some(cert);
            s.server.tls_key_file = Some(key);
        })
        .await;
        assert!(app.base.starts_with("https://"));
        (app, cert_pem)
    }

    /// An `openidconnect` HTTP client trusting `cert_pem`, never following redirects.
    pub fn oidc_http(cert_pem: &str) -> openidconnect::reqwest::Client {
        openidconnect::reqwest::ClientBuilder::new()
            .add_root_certificate(
                openidconnect::reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem"),
            )
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("json")
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// Creates a tenant through the service layer.
    pub async fn tenant(&self, slug: &str) -> Tenant {
        self.state
            .tenants()
            .create(&TenantSlug::parse(slug).expect("slug"), None)
            .await
            .expect("create tenant")
    }

    pub async fn default_tenant(&self) -> Tenant {
        (*self
            .state
            .tenants()
            .get(&TenantSlug::default_tenant())
            .await
            .expect("default tenant"))
        .clone()
    }

    pub fn issuer(&self, slug: &str) -> String {
        format!("{}/t/{slug}", self.base)
    }

    /// Creates a user of tenant `default` with a password, through the service layer.
    pub async fn user(&self, username: &str, password: &str) -> latchkey::model::user::User {
        let tenant = self.default_tenant().await;
        self.state
            .users()
            .create(
                tenant.id,
                latchkey::people::users::NewUser {
                    username: username.into(),
                    email: Some(format!("{username}@example.com")),
                    password: Some(password.into()),
                    ..Default::default()
                },
                "test",
            )
            .await
            .expect("create user")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.state.shut_down();
        let handle = self.server.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// A TCP forwarder that can refuse and cut connections, to take a dependency "down" and
/// bring it back without touching the real server.
pub struct ToggleProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl ToggleProxy {
    pub async fn start(target: SocketAddr) -> ToggleProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !AtomicBool::load(&up2, Ordering::SeqCst) {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().expect("links").push(link);
            }
        });
        ToggleProxy {
            addr,
            up,
            links,
            accept,
        }
    }

    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for ToggleProxy {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}

/// Resolves a URL's host:port to a socket address.
pub fn socket_of(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("url");
    let host = parsed.host_str().expect("host");
    let port = parsed
        .port_or_known_default()
        .unwrap_or(match parsed.scheme() {
            "redis" => 6379,
            _ => 5432,
        });
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("resolve")
        .next()
        .expect("address")
}

/// Replaces host and port of a URL.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let mut parsed = url::Url::parse(url).expect("url");
    parsed.set_host(Some(&addr.ip().to_string())).expect("host");
    parsed.set_port(Some(addr.port())).expect("port");
    parsed.to_string()
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_latchkey"))
}

/// The `kid`s of a JWKS document.
pub fn kids(jwks: &serde_json::Value) -> std::collections::HashSet<String> {
    jwks["keys"]
        .as_array()
        .expect("a JWKS")
        .iter()
        .map(|k| k["kid"].as_str().expect("a kid").to_owned())
        .collect()
}
