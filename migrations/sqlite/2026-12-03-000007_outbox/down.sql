DROP TABLE user_tokens;
DROP TABLE outbox;
