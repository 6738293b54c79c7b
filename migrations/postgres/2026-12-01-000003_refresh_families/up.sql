-- Refresh token families, one per grant: the row a rotation locks and every use checks, so a
-- revocation that races a rotation ends the family whichever commits first.
CREATE TABLE refresh_families (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    -- The family's absolute end: no rotation outlives it.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    rotated_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE
);
CREATE INDEX refresh_families_client ON refresh_families (tenant_id, client_id);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);

-- Rows of clients deleted before the foreign keys existed.
DELETE FROM refresh_tokens r WHERE NOT EXISTS (
    SELECT 1 FROM clients c WHERE c.tenant_id = r.tenant_id AND c.client_id = r.client_id);
DELETE FROM access_tokens a WHERE NOT EXISTS (
    SELECT 1 FROM clients c WHERE c.tenant_id = a.tenant_id AND c.client_id = a.client_id);

-- A family is revoked when any of its tokens was (the rule before this table).
INSERT INTO refresh_families (id, tenant_id, client_id, expires_at, revoked_at, created_at)
SELECT family_id, tenant_id, MIN(client_id), MAX(expires_at), MAX(revoked_at), MIN(created_at)
FROM refresh_tokens GROUP BY tenant_id, family_id;

ALTER TABLE refresh_tokens
    ADD FOREIGN KEY (tenant_id, family_id) REFERENCES refresh_families (tenant_id, id) ON DELETE CASCADE,
    ADD FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE;
CREATE INDEX refresh_tokens_client ON refresh_tokens (tenant_id, client_id);
ALTER TABLE access_tokens
    ADD FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, client_id) ON DELETE CASCADE;
CREATE INDEX access_tokens_client ON access_tokens (tenant_id, client_id);
