-- OpenID Connect sign-in: authorization codes (RFC 6749 §4.1.2; stored as digests, single use
-- by one conditional update), remembered consent, and which clients each browser session
-- signed in to (Back-Channel Logout 1.0 §2.5: whom to tell when it ends).
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

CREATE TABLE consents (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE session_clients (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
) STRICT;

-- A grant of a person: whose it is (so disabling, deleting or withdrawing consent ends it) and,
-- without offline_access, the browser session it lives with.
ALTER TABLE refresh_families ADD COLUMN subject TEXT;
ALTER TABLE refresh_families ADD COLUMN session_id TEXT;
CREATE INDEX refresh_families_subject ON refresh_families (tenant_id, subject);
