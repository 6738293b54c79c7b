//! OpenID Connect and RFC 8414 publication: discovery metadata and the JWKS.

pub mod discovery;
pub mod jwks;
