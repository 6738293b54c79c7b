//! Configuration: layering, validation, the documented example.

use std::path::Path;

use latchkey::config::Settings;
use latchkey::store::DatabaseLocation;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("latchkey.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_file_parses_and_matches_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/latchkey.example.toml");
    let loaded = Settings::load_from(Some(&example), env(&[])).unwrap();
    let defaults = serde_json::to_value(Settings::default()).unwrap();
    let mut loaded = serde_json::to_value(loaded).unwrap();
    loaded["data_dir"] = defaults["data_dir"].clone();
    assert_eq!(loaded, defaults, "the example documents the defaults");
}

#[test]
fn defaults_then_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "[server]\nbind = \"127.0.0.1:9000\"\npublic_url = \"https://id.example.com\"\n[keys]\nrsa_bits = 3072\n",
    );
    let s = Settings::load_from(
        Some(&file),
        env(&[
            ("LATCHKEY__SERVER__BIND", "0.0.0.0:7000"),
            ("LATCHKEY__DATA_DIR", "/var/lib/x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.bind, "0.0.0.0:7000", "environment beats file");
    assert_eq!(
        s.server.public_url, "https://id.example.com",
        "file beats default"
    );
    assert_eq!(s.keys.rsa_bits, 3072);
    assert_eq!(s.database.max_connections, 16, "default");
    assert_eq!(s.data_dir(), Path::new("/var/lib/x"));
    assert_eq!(
        s.database_location().unwrap(),
        DatabaseLocation::Sqlite("/var/lib/x/latchkey.db".into())
    );
    let s = Settings::load_from(
        None,
        env(&[
            ("LATCHKEY__DATABASE__URL", "postgres://u:p@db/lk"),
            ("LATCHKEY__DATABASE__MAX_CONNECTIONS", "32"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.database_location().unwrap(),
        DatabaseLocation::Postgres("postgres://u:p@db/lk".into())
    );
    assert_eq!(s.database.max_connections, 32);
    // Leading zeros in strings survive (no try_parsing).
    let s = Settings::load_from(None, env(&[("LATCHKEY__REDIS__KEY_PREFIX", "0012:")])).unwrap();
    assert_eq!(s.redis.key_prefix, "0012:");
}

#[test]
fn bad_values_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("[server]\nbind = \"nope\"\n", "server.bind"),
        (
            "[server]\npublic_url = \"not a url\"\n",
            "server.public_url",
        ),
        ("[server]\npublic_url = \"ftp://x\"\n", "server.public_url"),
        ("[database]\nurl = \"mysql://x/y\"\n", "database.url"),
        ("[database]\nurl = \"postgres://\"\n", "database.url"),
        ("[redis]\nurl = \"http://x\"\n", "redis.url"),
        ("[redis]\nurl = \"rediss://x\"\n", "redis.url"),
        ("[keys]\nrsa_bits = 1024\n", "keys.rsa_bits"),
        (
            "[server]\npublic_url = \"https://id.example.com/auth\"\n",
            "server.public_url",
        ),
        ("[keys]\nretention_secs = 0\n", "keys.retention_secs"),
        (
            "[keys]\nrotation_interval_secs = 300\n",
            "keys.rotation_interval_secs",
        ),
        (
            "[cache]\nhot_ttl_secs = 999999999999\n",
            "cache.hot_ttl_secs",
        ),
        (
            "[keys]\njwks_max_age_secs = 99999999999\n",
            "keys.jwks_max_age_secs",
        ),
        ("[admin]\ntoken = \"short\"\n", "admin.token"),
        (
            "[oauth]\ndynamic_client_ttl_secs = 3600\n",
            "oauth.dynamic_client_ttl_secs",
        ),
        ("[security]\nmaster_key = \"abc\"\n", "security.master_key"),
        ("[server]\nbindd = \"x\"\n", "bindd"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        (
            "[database]\nmax_connections = \"many\"\n",
            "max_connections",
        ),
    ];
    for (text, key) in cases {
        let file = write(dir.path(), text);
        let err = Settings::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{text:?} -> {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let err = Settings::load_from(None, env(&[("LATCHKEY__SERVER__NOPE", "1")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope"),
        "unknown environment keys are refused: {err}"
    );
    let err = Settings::load_from(Some(Path::new("/no/such/file.toml")), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--config"), "{err}");
}

#[test]
fn shown_configuration_masks_secrets() {
    let s = Settings::load_from(
        None,
        env(&[
            ("LATCHKEY__DATABASE__URL", "postgres://lk:hunter2@db/lk"),
            ("LATCHKEY__REDIS__URL", "redis://:sesame@cache:6379/0"),
            (
                "LATCHKEY__ADMIN__TOKEN",
                "admin-token-admin-token-admin-token-1",
            ),
            (
                "LATCHKEY__SECURITY__MASTER_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ]),
    )
    .unwrap();
    let shown = s.display_lines().join("\n");
    for secret in ["hunter2", "sesame", "admin-token-admin", "MDEyMzQ1"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(
        shown.contains("database.url = \"postgres://lk:********@db/lk\""),
        "{shown}"
    );
    assert!(!format!("{s:?}").contains("hunter2"), "Debug redacts too");
}
