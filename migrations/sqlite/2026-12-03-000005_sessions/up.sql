-- Browser sessions (DESIGN §4): the cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    -- The session ends at the first of: idle past the idle timeout, `expires_at`, `revoked_at`.
    expires_at   INTEGER NOT NULL,
    auth_time    INTEGER NOT NULL,
    -- RFC 8176 methods, as a JSON array; the OIDC `acr`.
    amr          TEXT NOT NULL,
    acr          TEXT,
    ip           TEXT,
    user_agent   TEXT,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions (tenant_id, user_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Sign-in attempts of known users (time, address, user agent, method, result).
CREATE TABLE login_events (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    method     TEXT NOT NULL,
    result     TEXT NOT NULL
) STRICT;
CREATE INDEX login_events_user ON login_events (tenant_id, user_id, at);
