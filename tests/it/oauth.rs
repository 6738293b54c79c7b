//! The OAuth endpoints, one file per spec as in `src/oauth/`.

pub mod authorize;
mod client_auth;
mod interop;
mod introspection;
mod par;
mod refresh_token;
mod registration;
mod relying_party;
mod revocation;
mod tenancy;
mod token;
mod token_exchange;
