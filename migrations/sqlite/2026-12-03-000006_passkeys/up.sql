-- WebAuthn credentials (passkeys) of users. `passkey` is webauthn-rs's serialised credential
-- (public key, counter, backup flags); the flags and counter are copied out for display and
-- for the clone check.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BLOB NOT NULL,
    name            TEXT NOT NULL,
    passkey         TEXT NOT NULL,
    sign_count      INTEGER NOT NULL,
    backup_eligible INTEGER NOT NULL,
    backed_up       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    UNIQUE (tenant_id, credential_id)
) STRICT;
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);
