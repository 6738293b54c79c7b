//! OpenID Connect and RFC 8414 publication: discovery metadata and the JWKS.

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod jwks;
pub mod userinfo;
