//! The OAuth 2.0 endpoints and the rules behind them, one file per spec.

pub mod access_token;
pub mod api_keys;
pub mod authorization_request;
pub mod authorize;
pub mod client_auth;
pub mod grants;
pub mod introspection;
pub mod par;
pub mod params;
pub mod prompt;
pub mod registration;
pub mod request_object;
pub mod requests;
pub mod revocation;
pub mod token;
