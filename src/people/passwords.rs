//! Passwords: argon2id hashes (PHC strings), computed on a bounded pool off the async
//! workers, and the rules a new password must meet (NIST SP 800-63B §3.1.1.2: a minimum
//! length, no composition rules, and a check against commonly used passwords).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::rng::Rng;

/// `[passwords]`: argon2id parameters (OWASP's first recommendation: 19 MiB, 2 passes, 1 lane)
/// and the pool that computes them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSettings {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes per hash.
    pub parallelism: u32,
    /// Hashes computed at once (0: half the cores, at least one), so that a flood of logins
    /// leaves the other cores to the token endpoints.
    pub hash_threads: usize,
    /// Hash requests allowed to wait for a thread; beyond that a login is answered "busy"
    /// (429) at once rather than queued without bound.
    pub max_waiting: usize,
    /// The shortest password accepted when one is set (characters).
    pub min_length: usize,
    /// Failed password checks for one submitted username before it is locked out.
    pub lockout_after: u32,
    /// Failed password checks from one address (an IPv6 /64) before it is locked out.
    pub address_lockout_after: u32,
    /// How long a lockout lasts, and the window the failures are counted in (seconds).
    pub lockout_secs: u64,
    /// Password attempts one address may make per minute, whatever their outcome.
    pub attempts_per_minute: u32,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        PasswordSettings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            hash_threads: 0,
            max_waiting: 64,
            min_length: 8,
            lockout_after: 10,
            address_lockout_after: 100,
            lockout_secs: 900,
            attempts_per_minute: 30,
        }
    }
}

/// The longest password accepted (bytes): long enough for any passphrase or manager, short
/// enough that hashing it costs what hashing any other does.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing thread is taken and too many requests wait.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// A new hash under the current parameters, when the password was right but its stored
    /// hash used others (or another algorithm): store it (DESIGN §4: rehash on login).
    pub rehashed: Option<String>,
}

/// The bounded argon2id pool. One per replica; cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    threads: Arc<Semaphore>,
    /// Requests running or waiting now.
    waiting: Arc<AtomicUsize>,
    /// Most requests running or waiting: the threads plus `max_waiting`.
    capacity: usize,
    /// A hash of nothing anyone knows, checked when the user does not exist, so an unknown
    /// username costs the same time as a wrong password.
    decoy: Arc<String>,
    /// argon2 verifications computed (decoys included), for the test that proves the decoy
    /// costs a verification.
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl PasswordHasher {
    pub fn new(settings: &PasswordSettings, rng: &Rng) -> Result<PasswordHasher, String> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| format!("passwords: argon2 parameters: {e}"))?;
        let threads = match settings.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (usize::from(n) / 2).max(1)),
            n => n,
        };
        let decoy_secret = rng.token::<32>();
        let decoy = hash_now(&params, decoy_secret.as_bytes(), &rng.bytes::<16>())
            .map_err(|e| format!("passwords: {e}"))?;
        Ok(PasswordHasher {
            params,
            threads: Arc::new(Semaphore::new(threads)),
            waiting: Arc::new(AtomicUsize::new(0)),
            capacity: threads + settings.max_waiting,
            decoy: Arc::new(decoy),
            verifications: Arc::default(),
        })
    }

    /// argon2 verifications computed so far by this pool.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Runs `work` on the blocking pool once a hashing thread is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Params) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // Count ourselves among the waiting; refuse if the line is already full.
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        let permit = self.threads.clone().acquire_owned().await;
        let params = self.params.clone();
        let result = match permit {
            Ok(permit) => tokio::task::spawn_blocking(move || {
                let out = work(&params);
                drop(permit);
                out
            })
            .await
            .map_err(|e| PasswordError::Internal(e.to_string())),
            Err(e) => Err(PasswordError::Internal(e.to_string())),
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }

    /// The PHC string of `password` under the current parameters.
    pub async fn hash(&self, password: String, salt: [u8; 16]) -> Result<String, PasswordError> {
        self.run(move |params| hash_now(params, password.as_bytes(), &salt))
            .await?
            .map_err(PasswordError::Internal)
    }

    /// Checks `password` against `stored` (a PHC string), or against a decoy when there is
    /// none (unknown user, passkey-only account), which is then never `ok`.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
        salt: [u8; 16],
    ) -> Result<Verified, PasswordError> {
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy.as_str().to_owned());
        let count = self.verifications.clone();
        self.run(move |params| {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verified {
                    ok: false,
                    rehashed: None,
                };
            };
            // Always computed, decoy or not: the work is what makes the two alike.
            let matched = argon2_for(&parsed)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            count.fetch_add(1, Ordering::Relaxed);
            let ok = real && matched;
            let current = parsed.algorithm.as_str() == "argon2id"
                && parsed.version == Some(Version::V0x13.into())
                && Params::try_from(&parsed).is_ok_and(|p| {
                    p.m_cost() == params.m_cost()
                        && p.t_cost() == params.t_cost()
                        && p.p_cost() == params.p_cost()
                });
            let rehashed = (ok && !current)
                .then(|| hash_now(params, password.as_bytes(), &salt).ok())
                .flatten();
            Verified { ok, rehashed }
        })
        .await
    }
}

/// The verifier for a stored hash: its own parameters, read from the PHC string.
fn argon2_for(parsed: &PasswordHash<'_>) -> Argon2<'static> {
    let algorithm = Algorithm::try_from(parsed.algorithm).unwrap_or(Algorithm::Argon2id);
    let params = Params::try_from(parsed).unwrap_or_default();
    Argon2::new(algorithm, Version::V0x13, params)
}

fn hash_now(params: &Params, password: &[u8], salt: &[u8; 16]) -> Result<String, String> {
    let salt = SaltString::encode_b64(salt).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Passwords people pick first, and that every guessing list starts with. A password is
/// refused if, lower-cased and with trailing digits and punctuation removed, it is one of
/// these, or if it is made of one repeated character or a run of a keyboard row or the
/// alphabet or digits.
const COMMON: &str = include_str!("common-passwords.txt");

/// What is wrong with `password` as a new password for the account `names` (its username,
/// its email), if anything.
pub fn weakness(password: &str, min_length: usize, names: &[&str]) -> Option<String> {
    let chars = password.chars().count();
    if chars < min_length {
        return Some(format!("a password has at least {min_length} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Some(format!("a password has at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.chars().any(char::is_control) {
        return Some("a password cannot contain control characters".into());
    }
    let lower = password.to_lowercase();
    for name in names {
        let name = name.to_lowercase();
        let local = name.split('@').next().unwrap_or_default();
        if !local.is_empty() && (lower == name || lower.contains(local) && local.len() >= 4) {
            return Some("a password cannot contain the username or email".into());
        }
    }
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if stem.is_empty() || is_pattern(&lower) || is_pattern(stem) {
        return Some("this password is too easy to guess".into());
    }
    if COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|common| common == lower || common == stem)
    {
        return Some("this password is too common; choose another".into());
    }
    None
}

/// One character repeated, or a run of consecutive keys or letters or digits (either way).
fn is_pattern(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 2 {
        return true;
    }
    if chars.iter().all(|c| *c == chars[0]) {
        return true;
    }
    const RUNS: [&str; 5] = [
        "abcdefghijklmnopqrstuvwxyzabc",
        "01234567890123",
        "qwertyuiopasdfghjklzxcvbnm",
        "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
        "azertyuiopqsdfghjklmwxcvbn",
    ];
    RUNS.iter().any(|run| {
        let reversed: String = run.chars().rev().collect();
        run.contains(s) || reversed.contains(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordSettings {
        PasswordSettings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            hash_threads: 1,
            max_waiting: 1,
            ..PasswordSettings::default()
        }
    }

    #[tokio::test]
    async fn an_unknown_account_costs_a_verification_like_a_wrong_password() {
        let pool = PasswordHasher::new(&fast(), &Rng::seeded(4)).unwrap();
        let hash = pool.hash("correct horse".into(), [1; 16]).await.unwrap();
        let before = pool.verifications();
        let unknown = pool.verify("anything".into(), None, [2; 16]).await.unwrap();
        assert!(!unknown.ok, "a decoy never matches");
        assert_eq!(
            pool.verifications(),
            before + 1,
            "the decoy was really checked"
        );
        let decoy = pool.decoy.as_str().to_owned();
        let guessed = pool.verify("anything".into(), None, [2; 16]).await.unwrap();
        assert!(!guessed.ok);
        // Not even the decoy's own password opens it.
        assert!(!pool.verify(decoy, None, [2; 16]).await.unwrap().ok);
        let wrong = pool
            .verify("nope".into(), Some(hash), [2; 16])
            .await
            .unwrap();
        assert!(!wrong.ok);
        assert_eq!(pool.verifications(), before + 4);
    }

    #[tokio::test]
    async fn hashes_verify_and_rehash_when_the_parameters_change() {
        let rng = Rng::seeded(3);
        let old = PasswordHasher::new(&fast(), &rng).unwrap();
        let hash = old.hash("correct horse".into(), [1; 16]).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        let same = old
            .verify("correct horse".into(), Some(hash.clone()), [2; 16])
            .await
            .unwrap();
        assert_eq!(
            same,
            Verified {
                ok: true,
                rehashed: None
            }
        );
        let wrong = old
            .verify("battery staple".into(), Some(hash.clone()), [2; 16])
            .await
            .unwrap();
        assert!(!wrong.ok && wrong.rehashed.is_none());
        let new = PasswordHasher::new(
            &PasswordSettings {
                memory_kib: 128,
                ..fast()
            },
            &rng,
        )
        .unwrap();
        let checked = new
            .verify("correct horse".into(), Some(hash), [2; 16])
            .await
            .unwrap();
        assert!(checked.ok);
        let rehashed = checked.rehashed.unwrap();
        assert!(
            rehashed.starts_with("$argon2id$v=19$m=128,t=1,p=1$"),
            "{rehashed}"
        );
    }

    #[tokio::test]
    async fn no_stored_hash_is_never_a_match_but_costs_a_check() {
        let hasher = PasswordHasher::new(&fast(), &Rng::seeded(4)).unwrap();
        let decoy = hasher.decoy.as_str().to_owned();
        assert!(decoy.starts_with("$argon2id$"));
        let v = hasher
            .verify("anything".into(), None, [0; 16])
            .await
            .unwrap();
        assert!(!v.ok && v.rehashed.is_none());
        let garbage = hasher
            .verify("x".into(), Some("not a phc string".into()), [0; 16])
            .await
            .unwrap();
        assert!(!garbage.ok);
    }

    #[tokio::test]
    async fn a_full_line_is_refused_at_once() {
        let hasher = PasswordHasher::new(&fast(), &Rng::seeded(5)).unwrap();
        // One thread and one place in line, both taken: the next request is refused.
        hasher.waiting.store(2, Ordering::SeqCst);
        assert_eq!(
            hasher.hash("x".into(), [0; 16]).await,
            Err(PasswordError::Busy)
        );
        hasher.waiting.store(0, Ordering::SeqCst);
        assert!(hasher.hash("x".into(), [0; 16]).await.is_ok());
    }

    #[test]
    fn weak_passwords_are_named() {
        for weak in [
            "short",
            "password",
            "Password1!",
            "12345678",
            "qwertyuiop",
            "aaaaaaaa",
            "zyxwvuts",
            "iloveyou99",
            "alice-secret",
            "11111111111",
        ] {
            assert!(
                weakness(weak, 8, &["alice", "alice@x.io"]).is_some(),
                "{weak}"
            );
        }
        for fine in ["correct horse battery", "tR7#kd9!mq", "Zebra-Lantern-42"] {
            assert_eq!(weakness(fine, 8, &["alice", "alice@x.io"]), None, "{fine}");
        }
        assert!(weakness(&"x1".repeat(600), 8, &[]).is_some());
    }
}
