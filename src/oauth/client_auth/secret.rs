//! Shared-secret client authentication (RFC 6749 §2.3.1): `client_secret_basic` and
//! `client_secret_post`, compared in constant time.

use crate::crypto::{secrets_equal, sha256};
use crate::error::OAuthError;
use crate::model::TenantId;
use crate::model::client::{AuthMethod, ClientId};

use super::Authenticated;
use super::ClientAuth;

impl ClientAuth<'_> {
    /// Checks a secret in constant time. An unknown client costs the same hash and comparison.
    pub(super) async fn check_secret(
        &self,
        tenant: TenantId,
        id: &str,
        secret: &str,
        method: AuthMethod,
    ) -> Result<Option<Authenticated>, OAuthError> {
        let client = match ClientId::parse(id) {
            Some(id) => self.clients.find(tenant, &id).await?,
            None => None,
        };
        let presented = sha256(secret.as_bytes());
        let stored = client
            .as_ref()
            .and_then(|c| c.secret_hash)
            .unwrap_or([0xa5; 32]);
        let matches = secrets_equal(&presented, &stored);
        let Some(client) = client else {
            return Ok(None);
        };
        let now = self.clock.now();
        let usable = matches
            && client.secret_hash.is_some()
            && client.metadata.token_endpoint_auth_method == method
            && client.secret_expires_at.is_none_or(|exp| now < exp);
        Ok(usable.then_some(Authenticated { client, method }))
    }
}
