-- Per-tenant policy (registration, token lifetimes), as JSON; empty means the server defaults.
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- OAuth clients (RFC 7591 metadata as registered, plus server-side policy).
CREATE TABLE clients (
    id                      TEXT PRIMARY KEY NOT NULL,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id               TEXT NOT NULL,
    -- SHA-256 of the server-generated secret (DESIGN §3).
    secret_hash             BLOB,
    -- The secret sealed under the master key, only for client_secret_jwt (HMAC needs it).
    secret_sealed           BLOB,
    secret_expires_at       INTEGER,
    metadata                TEXT NOT NULL,
    policy                  TEXT NOT NULL,
    registration_token_hash BLOB,
    dynamic                 INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    last_used_at            INTEGER,
    UNIQUE (tenant_id, client_id)
) STRICT;
CREATE INDEX clients_unused ON clients (tenant_id, last_used_at) WHERE dynamic = 1;

-- Initial access tokens for RFC 7591 §3 registration (hashed).
CREATE TABLE initial_access_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    expires_at INTEGER,
    uses_left  INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

-- Opaque (reference) access tokens, by hash.
CREATE TABLE access_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    claims     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

-- Revoked JWT access tokens, remembered by jti until they expire (RFC 7009 §2.2).
CREATE TABLE revoked_tokens (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, jti)
) STRICT;
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- Refresh tokens (opaque, hashed), rotated on use; a family shares one grant.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    claims     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- API keys held by service accounts (clients) or users; only a digest is stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id       TEXT NOT NULL UNIQUE,
    key_hash     BLOB NOT NULL,
    owner_kind   TEXT NOT NULL CHECK (owner_kind IN ('client', 'user')),
    owner        TEXT NOT NULL,
    label        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    not_before   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_owner ON api_keys (tenant_id, owner_kind, owner);
