-- The table as 2026-12-04-000008_authorization made it.
CREATE TABLE authorization_codes (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    code_hash   BYTEA NOT NULL UNIQUE,
    client_id   TEXT NOT NULL,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- What the code grants: redirect URI, scope, PKCE challenge, nonce, claims, authentication.
    grant_data  JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    redeemed_at BIGINT,
    -- The grant the redemption started: a second redemption revokes it (RFC 6749 §4.1.2).
    family_id   UUID,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
