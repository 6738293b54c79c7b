//! What an authorization leaves behind (RFC 6749 §4.1; OpenID Connect Core §3.1): the request
//! waiting for sign-in and consent, the code it ends in, and the consent a person gave. No I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::ClientId;
use super::session::{Amr, SessionId};
use super::token::Scope;
use super::user::UserId;
use crate::oauth::authorization_request::AuthorizationRequest;

/// An authorization request between the pages (DESIGN §4): in the shared cache under a random
/// handle, on any replica, until the authorization response is issued (then taken, once).
/// Pushed requests (RFC 9126) wait here too, under their `request_uri`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub request: AuthorizationRequest,
    /// Pushed through PAR: only usable by its client, through `request_uri`.
    pub pushed: bool,
    /// A browser brought it to the authorization endpoint (a pushed request starts without).
    pub in_browser: bool,
    /// When the request arrived (the person's clock starts here).
    pub created_at: i64,
    /// When it is forgotten: a pushed request's `request_uri` lifetime until first used, then
    /// the time the person has to sign in and consent.
    pub expires_at: i64,
    /// The browser's session when the request arrived: `prompt=login` is satisfied by a
    /// sign-in since (another session, or this one authenticated again).
    pub session_at_start: Option<SessionId>,
    /// That session's `auth_time` then: a re-authentication keeps the session and changes it.
    #[serde(default)]
    pub auth_time_at_start: Option<i64>,
    /// `prompt=select_account`: the person chose the account.
    pub account_chosen: bool,
}

/// What a code grants (stored with its digest; OIDC Core §3.1.3.2 checks it at the token
/// endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: ClientId,
    pub user: UserId,
    pub session: SessionId,
    /// The redirect URI the response went to (the exact one, with its loopback port).
    pub redirect_uri: String,
    /// Whether the request named it: then the token request must repeat it (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// RFC 7636 §4.2, S256 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    pub auth_time: i64,
    pub amr: Vec<Amr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// A code waiting to be redeemed, kept in the shared cache under its digest until it expires
/// (60 s at most): single use is one atomic take, on any replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingCode {
    pub grant: CodeGrant,
    pub expires_at: i64,
}

/// What a redeemed code leaves in the cache for a while: the grant it started, so that a
/// second use can revoke it (RFC 6749 §4.1.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpentCode {
    pub client_id: ClientId,
    pub family: uuid::Uuid,
}

/// The scopes a person let a client have, remembered so the next sign-in does not ask again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub client_id: ClientId,
    pub scope: Scope,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who a grant (a refresh token family) belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantOwner {
    /// The `sub` of its tokens.
    pub subject: String,
    /// Without `offline_access`, the session the grant ends with.
    pub session: Option<SessionId>,
    /// The session whose end the client is told of (Back-Channel Logout 1.0 §2.5), if it
    /// registered a `backchannel_logout_uri`.
    pub notify: Option<SessionId>,
}
