-- Per-tenant policy (registration, token lifetimes), as JSON; empty means the server defaults.
ALTER TABLE tenants ADD COLUMN settings JSONB NOT NULL DEFAULT '{}';

-- OAuth clients (RFC 7591 metadata as registered, plus server-side policy).
CREATE TABLE clients (
    id                      UUID PRIMARY KEY,
    tenant_id               UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id               TEXT NOT NULL,
    -- SHA-256 of the server-generated secret (DESIGN §3).
    secret_hash             BYTEA,
    -- The secret sealed under the master key, only for client_secret_jwt (HMAC needs it).
    secret_sealed           BYTEA,
    secret_expires_at       BIGINT,
    metadata                JSONB NOT NULL,
    policy                  JSONB NOT NULL,
    registration_token_hash BYTEA,
    dynamic                 BOOLEAN NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    last_used_at            BIGINT,
    UNIQUE (tenant_id, client_id)
);
CREATE INDEX clients_unused ON clients (tenant_id, last_used_at) WHERE dynamic;

-- Initial access tokens for RFC 7591 §3 registration (hashed).
CREATE TABLE initial_access_tokens (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    expires_at BIGINT,
    uses_left  BIGINT,
    created_at BIGINT NOT NULL
);

-- Opaque (reference) access tokens, by hash.
CREATE TABLE access_tokens (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    claims     JSONB NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

-- Revoked JWT access tokens, remembered by jti until they expire (RFC 7009 §2.2).
CREATE TABLE revoked_tokens (
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- Refresh tokens (opaque, hashed), rotated on use; a family shares one grant.
CREATE TABLE refresh_tokens (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    family_id  UUID NOT NULL,
    client_id  TEXT NOT NULL,
    claims     JSONB NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- API keys held by service accounts (clients) or users; only a digest is stored.
CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id       TEXT NOT NULL UNIQUE,
    key_hash     BYTEA NOT NULL,
    owner_kind   TEXT NOT NULL CHECK (owner_kind IN ('client', 'user')),
    owner        TEXT NOT NULL,
    label        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    not_before   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_keys_owner ON api_keys (tenant_id, owner_kind, owner);
