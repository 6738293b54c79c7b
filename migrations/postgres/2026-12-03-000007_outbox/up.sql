-- Side effects that must not be lost (DESIGN §5a): written in the same transaction as the
-- change that causes them, delivered by a worker on any replica that claims the row first.
CREATE TABLE outbox (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    payload       JSONB NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Not before: the next attempt.
    available_at  BIGINT NOT NULL,
    attempts      INTEGER NOT NULL,
    claimed_by    TEXT,
    claimed_until BIGINT,
    sent_at       BIGINT,
    failed_at     BIGINT,
    last_error    TEXT
);
CREATE INDEX outbox_due ON outbox (available_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- Single-use links mailed to people (password reset, email verification); only the SHA-256 of
-- the token is stored.
CREATE TABLE user_tokens (
    token_hash BYTEA PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    -- For verification: the address the link proves.
    email      TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens (tenant_id, user_id, purpose);
