//! The client credentials grant (RFC 6749 §4.4), with resource indicators (RFC 8707).

use crate::error::OAuthError;
use crate::model::Tenant;
use crate::model::client::Client;
use crate::model::token::Scope;
use crate::oauth::access_token::{AccessTokens, TokenSpec};
use crate::oauth::token::{TokenResponse, audience, granted_scope, scope_ceiling};

pub async fn grant(
    tokens: &AccessTokens<'_>,
    tenant: &Tenant,
    client: &Client,
    requested: Option<Scope>,
    resources: &[String],
) -> Result<TokenResponse, OAuthError> {
    let allowed = scope_ceiling(client);
    let scope = granted_scope(requested, &allowed)?;
    let audience = audience(tokens.settings, tenant, client, resources, &[])?;
    // The client acts on its own behalf: it is the subject (RFC 9068 §2.2).
    let spec = TokenSpec::for_client(
        &tokens.settings.oauth,
        tenant,
        client,
        client.client_id.as_str().to_owned(),
        scope.clone(),
        audience,
    );
    let issued = tokens.issue(tenant, &spec).await?;
    // RFC 6749 §4.4.3: no refresh token for this grant.
    Ok(TokenResponse::bearer(issued, &scope))
}
