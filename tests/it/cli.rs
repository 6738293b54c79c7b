//! The `latchkey` binary: zero-config start, restart, administration commands, start-up errors.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Backend, CacheKind, TestData, binary, eventually, test_master_key};

backends!(
    tenant_and_key_commands_work_with_json,
    client_commands_print_what_scripts_need,
    user_commands_take_passwords_on_stdin_only,
);

/// A `latchkey` process with its environment cleared of LATCHKEY__ variables from outside.
pub fn latchkey(dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir).env("RUST_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn data_env(cmd: &mut Command, data: &TestData) {
    cmd.env("LATCHKEY__DATA_DIR", data.dir.path());
    if let Some(pg) = &data.pg {
        cmd.env("LATCHKEY__DATABASE__URL", &pg.url)
            .env("LATCHKEY__SECURITY__MASTER_KEY", test_master_key());
    }
}

fn run(data: &TestData, args: &[&str]) -> Output {
    let mut cmd = latchkey(data.dir.path());
    data_env(&mut cmd, data);
    cmd.args(args).output().expect("run latchkey")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

async fn tenant_and_key_commands_work_with_json(backend: Backend) {
    let data = TestData::new(backend, CacheKind::Memory).await;
    let migrated = json(&run(&data, &["migrate", "--json"]));
    // Every migration of the tree, counted from the directory so a new one needs no edit here.
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert!(shipped >= 4, "the migrations directory is found");
    assert_eq!(
        migrated["applied"].as_array().unwrap().len(),
        shipped,
        "a fresh database is migrated"
    );
    let early = run(&data, &["keys", "rotate", "--tenant", "default"]);
    assert!(!early.status.success(), "next keys were just published");
    assert!(String::from_utf8_lossy(&early.stderr).contains("force"));
    let created = json(&run(
        &data,
        &["tenant", "create", "acme", "--name", "Acme Corp", "--json"],
    ));
    assert_eq!(created["slug"], "acme");
    assert_eq!(created["display_name"], "Acme Corp");
    assert_eq!(created["issuer"], "http://localhost:8080/t/acme");
    let list = json(&run(&data, &["tenant", "list", "--json"]));
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["acme", "default"],
        "the first command of a fresh install also creates 'default'"
    );
    assert_eq!(
        json(&run(&data, &["tenant", "show", "acme", "--json"]))["id"],
        created["id"]
    );

    let dup = run(&data, &["tenant", "create", "acme"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = run(&data, &["tenant", "create", "Bad_Slug"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid tenant name"));

    let keys = json(&run(&data, &["keys", "list", "--tenant", "acme", "--json"]));
    assert_eq!(keys.as_array().unwrap().len(), 6);
    let rotated = json(&run(
        &data,
        &[
            "keys", "rotate", "--tenant", "acme", "--alg", "RS256", "--force", "--json",
        ],
    ));
    assert_eq!(rotated.as_array().unwrap().len(), 1);
    let retired = rotated[0]["retired"].as_str().unwrap();
    let keys = json(&run(&data, &["keys", "list", "--tenant", "acme", "--json"]));
    let entry = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == retired)
        .unwrap();
    assert_eq!(entry["state"], "retired");
    assert!(entry["expires_at"].is_string());
    let text = run(&data, &["keys", "list", "--tenant", "acme"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("retired"));

    let refused = run(&data, &["tenant", "delete", "acme"]);
    assert!(!refused.status.success(), "deletion needs --yes");
    assert_eq!(
        json(&run(
            &data,
            &["tenant", "delete", "acme", "--yes", "--json"]
        ))["deleted"],
        "acme"
    );
    assert!(!run(&data, &["tenant", "show", "acme"]).status.success());
    let migrated = json(&run(&data, &["migrate", "--json"]));
    assert_eq!(migrated["applied"], serde_json::json!([]));
}

/// A free loopback port (racy in theory; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `latchkey serve` child, killed on drop.
pub struct Served {
    pub child: Child,
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn serve(mut cmd: Command, port: u16) -> Served {
    cmd.arg("serve")
        .env("LATCHKEY__SERVER__BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let served = Served {
        child: cmd.spawn().expect("spawn serve"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let health = format!("{}/healthz", served.base);
    let up = eventually(Duration::from_secs(60), || {
        let health = health.clone();
        async move { reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert!(up, "latchkey serve did not come up on {port}");
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_no_configuration_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let started = Instant::now();
    let first = serve(latchkey(dir.path()), port).await;
    let elapsed = started.elapsed();
    let doc: serde_json::Value = reqwest::get(format!(
        "{}/t/default/.well-known/openid-configuration",
        first.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        doc["issuer"], "http://localhost:8080/t/default",
        "public_url defaults to http://localhost:8080"
    );
    let jwks_before: serde_json::Value = reqwest::get(format!("{}/t/default/jwks", first.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(first);
    let data = dir.path().join("latchkey-data");
    assert!(data.join("latchkey.db").is_file());
    assert!(data.join("master.key").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the master key file is private");
    }
    {
        use diesel::{Connection, RunQueryDsl, sqlite::SqliteConnection};
        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = diesel::sql_types::Text)]
            journal_mode: String,
        }
        let mut conn =
            SqliteConnection::establish(&data.join("latchkey.db").to_string_lossy()).unwrap();
        let mode: Vec<Mode> = diesel::sql_query("PRAGMA journal_mode")
            .load(&mut conn)
            .unwrap();
        assert_eq!(mode[0].journal_mode, "wal");
    }
    let second = serve(latchkey(dir.path()), port).await;
    let jwks_after: serde_json::Value = reqwest::get(format!("{}/t/default/jwks", second.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "a restart keeps tenants and keys");
    eprintln!("zero-config start to healthy: {elapsed:?}");
}

fn one_line_failure(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected failure, got success");
    assert!(stderr.contains(needle), "stderr lacks {needle}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("127.0.0.1:{}", free_port());
    let out = latchkey(dir.path())
        .args(["serve"])
        .env(
            "LATCHKEY__DATABASE__URL",
            format!("postgres://postgres@{dead}/x"),
        )
        .env("LATCHKEY__SECURITY__MASTER_KEY", test_master_key())
        .output()
        .unwrap();
    one_line_failure(&out, "database.url");
    let out = latchkey(dir.path())
        .args(["serve"])
        .env(
            "LATCHKEY__DATABASE__URL",
            format!("postgres://postgres@{dead}/x"),
        )
        .output()
        .unwrap();
    one_line_failure(&out, "security.master_key");
    let out = latchkey(dir.path())
        .args(["serve"])
        .env("LATCHKEY__REDIS__URL", format!("redis://{dead}"))
        .output()
        .unwrap();
    one_line_failure(&out, "redis.url");
    let out = latchkey(dir.path())
        .args(["serve"])
        .env("LATCHKEY__SERVER__PUBLIC_URL", "::nope")
        .output()
        .unwrap();
    one_line_failure(&out, "server.public_url");
    assert_eq!(out.status.code(), Some(2));
    let out = latchkey(dir.path())
        .args(["serve"])
        .env("LATCHKEY__SERVER__TYPO", "1")
        .output()
        .unwrap();
    one_line_failure(&out, "typo");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = latchkey(dir.path())
        .args(["serve"])
        .env(
            "LATCHKEY__SERVER__BIND",
            busy.local_addr().unwrap().to_string(),
        )
        .output()
        .unwrap();
    one_line_failure(&out, "server.bind");
}

#[test]
fn config_check_prints_the_effective_configuration_masked() {
    let dir = tempfile::tempdir().unwrap();
    let out = latchkey(dir.path())
        .args(["config", "check"])
        .env(
            "LATCHKEY__DATABASE__URL",
            "postgres://lk:hunter2@db.internal/lk",
        )
        .env(
            "LATCHKEY__ADMIN__TOKEN",
            "a-very-secret-admin-token-of-length-40!!",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("configuration is valid"));
    assert!(text.contains("server.bind = \"127.0.0.1:8080\""), "{text}");
    assert!(
        text.contains("database.url = \"postgres://lk:********@db.internal/lk\""),
        "{text}"
    );
    assert!(text.contains("admin.token = \"********\""), "{text}");
    assert!(!text.contains("hunter2") && !text.contains("a-very-secret"));
    let out = latchkey(dir.path())
        .args(["config", "check", "--json"])
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["server"]["public_url"], "http://localhost:8080");
    let out = latchkey(dir.path())
        .args(["master-key", "generate"])
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(latchkey::crypto::MasterKey::from_base64(&key).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = latchkey(dir.path());
    cmd.arg("serve")
        .env("LATCHKEY__LOG__FORMAT", "json")
        .env("LATCHKEY__LOG__FILTER", "info")
        .env_remove("RUST_LOG")
        .env("LATCHKEY__SERVER__BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut served = Served {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let health = format!("{}/healthz", served.base);
    assert!(
        eventually(Duration::from_secs(60), || {
            let health = health.clone();
            async move { reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) }
        })
        .await
    );
    let res = reqwest::Client::new()
        .get(format!("{}/t/default/jwks", served.base))
        .header("x-request-id", "req-4242")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = served.child.kill();
    let output = served
        .child
        .stderr
        .take()
        .map(|mut e| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            s
        })
        .unwrap();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    assert!(lines.iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("latchkey listening"))
    }));
    let request = lines
        .iter()
        .find(|l| l["span"]["id"] == "req-4242")
        .unwrap_or_else(|| panic!("no log line for the request: {output}"));
    assert_eq!(request["fields"]["status"], 200);
    assert_eq!(request["fields"]["route"], "/t/{tenant}/jwks");
}

async fn client_commands_print_what_scripts_need(backend: Backend) {
    let data = std::sync::Arc::new(TestData::new(backend, CacheKind::Memory).await);
    let created = json(&run(
        &data,
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "svc",
            "--grant-type",
            "client_credentials",
            "--auth-method",
            "client_secret_basic",
            "--scope",
            "api:read",
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(created["client_name"], "svc");
    // The secret is shown once: never by list or show.
    let listed = json(&run(
        &data,
        &["client", "list", "--tenant", "default", "--json"],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("client_secret").is_none());
    let shown = json(&run(
        &data,
        &["client", "show", "--tenant", "default", &id, "--json"],
    ));
    assert!(shown.get("client_secret").is_none());
    assert_eq!(shown["scope"], "api:read");
    // Update changes only what is given.
    let updated = json(&run(
        &data,
        &[
            "client",
            "update",
            "--tenant",
            "default",
            &id,
            "--scope",
            "api:read api:write",
            "--service-account",
            "--access-token-format",
            "opaque",
            "--json",
        ],
    ));
    assert_eq!(updated["scope"], "api:read api:write");
    assert_eq!(updated["client_name"], "svc");
    assert_eq!(updated["policy"]["service_account"], true);
    assert_eq!(updated["policy"]["access_token_format"], "opaque");
    assert!(
        updated.get("client_secret").is_none(),
        "the secret did not change"
    );
    let bad = run(
        &data,
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "x",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_redirect_uri"));

    let key = json(&run(
        &data,
        &[
            "api-key",
            "create",
            "--tenant",
            "default",
            "--client",
            &id,
            "--label",
            "ci",
            "--scope",
            "api:read",
            "--expires-in",
            "3600",
            "--json",
        ],
    ));
    let raw = key["key"].as_str().unwrap().to_owned();
    assert!(raw.starts_with("lk_"));
    let keys = json(&run(
        &data,
        &["api-key", "list", "--tenant", "default", "--json"],
    ));
    assert!(keys[0].get("key").is_none(), "the key is shown once");
    assert_eq!(
        keys[0]["owner"],
        serde_json::json!({"kind": "client", "id": id})
    );

    let once = json(&run(
        &data,
        &[
            "initial-access-token",
            "create",
            "--tenant",
            "default",
            "--max-uses",
            "1",
            "--json",
        ],
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let configured = json(&run(
        &data,
        &[
            "tenant",
            "configure",
            "default",
            "--access-token-ttl",
            "120",
            "--registration-scope",
            "api:read",
            "--json",
        ],
    ));
    assert_eq!(configured["settings"]["access_token_ttl_secs"], 120);
    assert_eq!(configured["settings"]["registration_scope"], "api:read");
    let signin = json(&run(
        &data,
        &[
            "tenant",
            "configure",
            "default",
            "--require-pkce",
            "false",
            "--require-pushed-authorization-requests",
            "true",
            "--allow-unsigned-request-objects",
            "true",
            "--outbound-allow",
            "127.0.0.1",
            "--outbound-allow",
            "10.0.0.0/8",
            "--json",
        ],
    ));
    assert_eq!(signin["settings"]["require_pkce"], false);
    assert_eq!(
        signin["settings"]["require_pushed_authorization_requests"],
        true
    );
    assert_eq!(signin["settings"]["allow_unsigned_request_objects"], true);
    assert_eq!(
        signin["settings"]["outbound_allow"],
        serde_json::json!(["127.0.0.1", "10.0.0.0/8"])
    );
    let refused = run(
        &data,
        &[
            "tenant",
            "configure",
            "default",
            "--outbound-allow",
            "http://x/",
        ],
    );
    assert!(!refused.status.success());
    let rp = json(&run(
        &data,
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "web",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--first-party",
            "--require-pkce",
            "true",
            "--json",
        ],
    ));
    assert_eq!(rp["policy"]["first_party"], true);
    assert_eq!(rp["policy"]["require_pkce"], true);

    // A server on the same data honours all of it.
    let app = crate::harness::TestApp::start_on(data.clone(), |_| {}).await;
    let res = app
        .client
        .post(app.url("/t/default/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    assert_eq!(
        body["access_token"].as_str().unwrap().split('.').count(),
        1,
        "opaque"
    );
    let introspected: serde_json::Value = app
        .client
        .post(app.url("/t/default/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", raw.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    let register = || {
        app.client
            .post(app.url("/t/default/register"))
            .bearer_auth(&once)
            .json(&serde_json::json!({"grant_types": ["client_credentials"]}))
            .send()
    };
    assert_eq!(register().await.unwrap().status(), 201);
    assert_eq!(register().await.unwrap().status(), 401, "--max-uses 1");
    // Tokens are listed (never shown again) and can be withdrawn.
    let spare = json(&run(
        &data,
        &[
            "initial-access-token",
            "create",
            "--tenant",
            "default",
            "--label",
            "spare",
            "--json",
        ],
    ));
    let listed = json(&run(
        &data,
        &[
            "initial-access-token",
            "list",
            "--tenant",
            "default",
            "--json",
        ],
    ));
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == spare["id"])
        .expect("listed");
    assert_eq!(entry["label"], "spare");
    assert!(entry.get("token").is_none());
    json(&run(
        &data,
        &[
            "initial-access-token",
            "revoke",
            "--tenant",
            "default",
            spare["id"].as_str().unwrap(),
            "--json",
        ],
    ));
    let res = app
        .client
        .post(app.url("/t/default/register"))
        .bearer_auth(spare["token"].as_str().unwrap())
        .json(&serde_json::json!({"grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "withdrawn");

    let rotated = json(&run(
        &data,
        &[
            "client",
            "rotate-secret",
            "--tenant",
            "default",
            &id,
            "--json",
        ],
    ));
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    let revoked = json(&run(
        &data,
        &[
            "api-key",
            "revoke",
            "--tenant",
            "default",
            key["key_id"].as_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(revoked["revoked"], key["key_id"]);
    assert!(
        !run(&data, &["client", "delete", "--tenant", "default", &id])
            .status
            .success()
    );
    json(&run(
        &data,
        &[
            "client", "delete", "--tenant", "default", &id, "--yes", "--json",
        ],
    ));
}

fn run_with_stdin(data: &TestData, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut cmd = latchkey(data.dir.path());
    data_env(&mut cmd, data);
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn user_commands_take_passwords_on_stdin_only(backend: Backend) {
    let data = TestData::new(backend, CacheKind::Memory).await;
    const PASSWORD: &str = "correct horse battery staple";
    // The documented scripting form, with the password piped and a trailing newline.
    let created = run_with_stdin(
        &data,
        &[
            "user",
            "create",
            "--tenant",
            "default",
            "--username",
            "Alice",
            "--email",
            "alice@example.com",
            "--role",
            "admin",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(!text.contains(PASSWORD), "the password is never printed");
    let user = json(&created);
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["has_password"], true);
    assert_eq!(user["roles"], serde_json::json!(["admin"]));
    assert!(user.get("password_hash").is_none() && !text.contains("argon2"));
    let id = user["id"].as_str().unwrap().to_owned();

    // Usernames are unique without regard to case.
    let dup = run_with_stdin(
        &data,
        &[
            "user",
            "create",
            "--tenant",
            "default",
            "--username",
            "alice",
        ],
        "",
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));
    // There is no way to give a password on the command line.
    let argv = run(
        &data,
        &[
            "user",
            "create",
            "--tenant",
            "default",
            "--username",
            "bob",
            "--password",
            "x",
        ],
    );
    assert!(!argv.status.success());
    // Weak passwords are refused, and nothing is left behind.
    let weak = run_with_stdin(
        &data,
        &[
            "user",
            "create",
            "--tenant",
            "default",
            "--username",
            "bob",
            "--password-stdin",
        ],
        "password1\n",
    );
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("common"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let missing = run(&data, &["user", "show", "--tenant", "default", "bob"]);
    assert!(!missing.status.success());
    // An empty pipe is not an empty password.
    let empty = run_with_stdin(
        &data,
        &[
            "user",
            "set-password",
            "--tenant",
            "default",
            "alice",
            "--password-stdin",
        ],
        "",
    );
    assert!(!empty.status.success());

    // Show by username in any case, or by id.
    let shown = json(&run(
        &data,
        &["user", "show", "--tenant", "default", "ALICE", "--json"],
    ));
    assert_eq!(shown["id"], id.as_str());
    let updated = json(&run(
        &data,
        &[
            "user",
            "update",
            "--tenant",
            "default",
            &id,
            "--name",
            "Alice Liddell",
            "--email",
            "al@example.com",
            "--no-roles",
            "--group",
            "staff",
            "--json",
        ],
    ));
    assert_eq!(updated["profile"]["name"], "Alice Liddell");
    assert_eq!(updated["email"], "al@example.com");
    assert_eq!(updated["roles"], serde_json::json!([]));
    assert_eq!(updated["groups"], serde_json::json!(["staff"]));
    let disabled = json(&run(
        &data,
        &["user", "disable", "--tenant", "default", "alice", "--json"],
    ));
    assert_eq!(disabled["active"], false);
    assert!(disabled["disabled_at"].is_string());
    let enabled = json(&run(
        &data,
        &["user", "enable", "--tenant", "default", "alice", "--json"],
    ));
    assert_eq!(enabled["active"], true);
    let removed = json(&run(
        &data,
        &[
            "user",
            "set-password",
            "--tenant",
            "default",
            "alice",
            "--remove",
            "--json",
        ],
    ));
    assert_eq!(removed["has_password"], false);
    let listed = json(&run(
        &data,
        &["user", "list", "--tenant", "default", "--json"],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["has_password"], false);

    // Every change is in the audit trail, named as the CLI's.
    let audit = json(&run(
        &data,
        &["user", "audit", "--tenant", "default", "alice", "--json"],
    ));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.update",
            "user.disable",
            "user.enable",
            "user.remove_password"
        ]
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "cli")
    );
    assert!(!audit.to_string().contains(PASSWORD));

    let refused = run(&data, &["user", "delete", "--tenant", "default", "alice"]);
    assert!(!refused.status.success());
    json(&run(
        &data,
        &[
            "user", "delete", "--tenant", "default", "alice", "--yes", "--json",
        ],
    ));
    assert!(
        !run(&data, &["user", "show", "--tenant", "default", &id])
            .status
            .success()
    );
}
