//! JOSE: the only module that touches josekit. Signing keys are generated, thumbprinted,
//! published and loaded here.

pub mod keys;

pub use keys::{GeneratedKey, JoseError, LoadedSigner, generate, load_signer, thumbprint};
