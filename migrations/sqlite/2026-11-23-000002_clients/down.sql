DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE revoked_tokens;
DROP TABLE access_tokens;
DROP TABLE initial_access_tokens;
DROP TABLE clients;
ALTER TABLE tenants DROP COLUMN settings;
