-- People who sign in (DESIGN §4). The username and email are unique per tenant, compared
-- case-insensitively through their folded `*_key` columns.
CREATE TABLE users (
    id                  UUID PRIMARY KEY,
    tenant_id           UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username            TEXT NOT NULL,
    username_key        TEXT NOT NULL,
    email               TEXT,
    email_key           TEXT,
    email_verified      BOOLEAN NOT NULL,
    -- OpenID Connect standard claims (Core §5.1) other than email, as JSON.
    profile             JSONB NOT NULL,
    roles               JSONB NOT NULL,
    groups              JSONB NOT NULL,
    -- PHC string (argon2id), or none for a passkey-only account.
    password_hash       TEXT,
    password_changed_at BIGINT,
    disabled_at         BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    last_login_at       BIGINT,
    UNIQUE (tenant_id, username_key)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, email_key) WHERE email_key IS NOT NULL;

-- Who changed what, for administrators' changes to people.
CREATE TABLE audit_events (
    id        UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    JSONB NOT NULL
);
CREATE INDEX audit_events_target ON audit_events (tenant_id, target, at);
