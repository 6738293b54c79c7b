//! Injected randomness, like the clock: the app state holds an [`Rng`] from which every
//! identifier, secret and token is drawn. Tests can use a seeded one to replay a run; the
//! server always uses the operating system's CSPRNG. (AEAD nonces and key generation stay
//! with `crypto` and `jose`, which never take a seeded source.)

#[cfg(test)]
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
#[cfg(test)]
use rand::SeedableRng;

/// Where random bytes come from.
#[derive(Clone, Debug)]
pub enum Rng {
    /// The operating system's CSPRNG (through rand's thread RNG).
    System,
    /// A deterministic ChaCha-based generator: unit tests only, absent from builds.
    #[cfg(test)]
    Seeded(Arc<Mutex<rand::rngs::StdRng>>),
}

impl Rng {
    #[cfg(test)]
    pub fn seeded(seed: u64) -> Rng {
        Rng::Seeded(Arc::new(Mutex::new(rand::rngs::StdRng::seed_from_u64(
            seed,
        ))))
    }

    /// `N` random bytes.
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the system RNG"
    )]
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        match self {
            Rng::System => rand::rng().fill_bytes(&mut out),
            #[cfg(test)]
            Rng::Seeded(rng) => rng
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .fill_bytes(&mut out),
        }
        out
    }

    /// A URL-safe token carrying `N` bytes of entropy.
    pub fn token<const N: usize>(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes::<N>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_replay_and_system_ones_do_not_repeat() {
        assert_eq!(Rng::seeded(7).token::<16>(), Rng::seeded(7).token::<16>());
        assert_ne!(Rng::seeded(7).token::<16>(), Rng::seeded(8).token::<16>());
        let system = Rng::System;
        assert_ne!(system.bytes::<16>(), system.bytes::<16>());
        assert_eq!(system.token::<32>().len(), 43);
    }
}
