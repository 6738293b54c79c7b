-- The table as 2026-12-04-000008_authorization made it.
CREATE TABLE authorization_codes (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL UNIQUE,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- What the code grants: redirect URI, scope, PKCE challenge, nonce, claims, authentication.
    grant_data  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    redeemed_at INTEGER,
    -- The grant the redemption started: a second redemption revokes it (RFC 6749 §4.1.2).
    family_id   TEXT,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
