CREATE TABLE refresh_tokens_old (
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
INSERT INTO refresh_tokens_old SELECT * FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_old RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE access_tokens_old (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    claims     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
INSERT INTO access_tokens_old SELECT * FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_old RENAME TO access_tokens;
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

DROP TABLE refresh_families;
