-- Refresh token families, one per grant: the row a rotation locks and every use checks, so a
-- revocation that races a rotation ends the family whichever commits first.
CREATE TABLE refresh_families (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    -- The family's absolute end: no rotation outlives it.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    rotated_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX refresh_families_client ON refresh_families (tenant_id, client_id);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);

-- A family is revoked when any of its tokens was (the rule before this table). Rows of clients
-- deleted before the foreign keys existed are left behind.
INSERT INTO refresh_families (id, tenant_id, client_id, expires_at, revoked_at, created_at)
SELECT r.family_id, r.tenant_id, MIN(r.client_id), MAX(r.expires_at), MAX(r.revoked_at), MIN(r.created_at)
FROM refresh_tokens r
WHERE EXISTS (SELECT 1 FROM clients c WHERE c.tenant_id = r.tenant_id AND c.client_id = r.client_id)
GROUP BY r.tenant_id, r.family_id;

-- SQLite adds foreign keys by rebuilding the table.
CREATE TABLE refresh_tokens_new (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    claims     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, family_id) REFERENCES refresh_families (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
) STRICT;
INSERT INTO refresh_tokens_new
SELECT r.* FROM refresh_tokens r
WHERE EXISTS (SELECT 1 FROM refresh_families f WHERE f.tenant_id = r.tenant_id AND f.id = r.family_id);
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_client ON refresh_tokens (tenant_id, client_id);

CREATE TABLE access_tokens_new (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    claims     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
) STRICT;
INSERT INTO access_tokens_new
SELECT a.* FROM access_tokens a
WHERE EXISTS (SELECT 1 FROM clients c WHERE c.tenant_id = a.tenant_id AND c.client_id = a.client_id);
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE INDEX access_tokens_client ON access_tokens (tenant_id, client_id);
