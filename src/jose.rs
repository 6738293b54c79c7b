//! JOSE: the only module that touches josekit. Signing keys are generated, thumbprinted,
//! published and loaded here; JWTs signed by others are verified here.

pub mod jwt;
pub mod keys;

pub use jwt::jwk_set;
pub use keys::{
    GeneratedKey, JoseError, LoadedSigner, generate, load_signer, thumbprint, verifier,
};

/// Something that checks JWS signatures.
pub use josekit::jws::JwsVerifier;
