-- WebAuthn credentials (passkeys) of users. `passkey` is webauthn-rs's serialised credential
-- (public key, counter, backup flags); the flags and counter are copied out for display and
-- for the clone check.
CREATE TABLE passkeys (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BYTEA NOT NULL,
    name            TEXT NOT NULL,
    passkey         JSONB NOT NULL,
    sign_count      BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backed_up       BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    UNIQUE (tenant_id, credential_id)
);
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);
