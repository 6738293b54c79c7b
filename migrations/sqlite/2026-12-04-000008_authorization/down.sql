DROP INDEX refresh_families_subject;
ALTER TABLE refresh_families DROP COLUMN session_id;
ALTER TABLE refresh_families DROP COLUMN subject;
DROP TABLE session_clients;
DROP TABLE consents;
DROP TABLE authorization_codes;
