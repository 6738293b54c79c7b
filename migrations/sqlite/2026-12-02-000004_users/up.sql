-- People who sign in (DESIGN §4). The username and email are unique per tenant, compared
-- case-insensitively through their folded `*_key` columns.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username            TEXT NOT NULL,
    username_key        TEXT NOT NULL,
    email               TEXT,
    email_key           TEXT,
    email_verified      INTEGER NOT NULL,
    -- OpenID Connect standard claims (Core §5.1) other than email, as JSON.
    profile             TEXT NOT NULL,
    roles               TEXT NOT NULL,
    groups              TEXT NOT NULL,
    -- PHC string (argon2id), or none for a passkey-only account.
    password_hash       TEXT,
    password_changed_at INTEGER,
    disabled_at         INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_login_at       INTEGER,
    UNIQUE (tenant_id, username_key)
) STRICT;
CREATE UNIQUE INDEX users_email ON users (tenant_id, email_key) WHERE email_key IS NOT NULL;

-- Who changed what, for administrators' changes to people.
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL
) STRICT;
CREATE INDEX audit_events_target ON audit_events (tenant_id, target, at);
