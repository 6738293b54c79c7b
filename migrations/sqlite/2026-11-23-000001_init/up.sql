-- Tenants: each one an isolated issuer ({public_url}/t/{slug}).
CREATE TABLE tenants (
    id           TEXT PRIMARY KEY NOT NULL,
    slug         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- Per-tenant JWS signing keys. Private halves are sealed (AES-256-GCM) under the master key.
CREATE TABLE signing_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid           TEXT NOT NULL,
    alg           TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    state         TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_jwk    TEXT NOT NULL,
    private_jwk   BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    activated_at  INTEGER,
    retired_at    INTEGER,
    expires_at    INTEGER,
    UNIQUE (tenant_id, kid)
) STRICT;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id, alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (tenant_id, alg) WHERE state = 'next';
CREATE INDEX signing_keys_expiry ON signing_keys (expires_at) WHERE state = 'retired';
