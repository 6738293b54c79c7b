-- Tenants: each one an isolated issuer ({public_url}/t/{slug}).
CREATE TABLE tenants (
    id           UUID PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Per-tenant JWS signing keys. Private halves are sealed (AES-256-GCM) under the master key.
CREATE TABLE signing_keys (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid           TEXT NOT NULL,
    alg           TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    state         TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_jwk    JSONB NOT NULL,
    private_jwk   BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    activated_at  BIGINT,
    retired_at    BIGINT,
    expires_at    BIGINT,
    UNIQUE (tenant_id, kid)
);
-- At most one signing and one upcoming key per tenant and algorithm.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id, alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (tenant_id, alg) WHERE state = 'next';
CREATE INDEX signing_keys_expiry ON signing_keys (expires_at) WHERE state = 'retired';
