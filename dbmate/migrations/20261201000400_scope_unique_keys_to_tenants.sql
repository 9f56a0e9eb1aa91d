-- migrate:up

-- Per-tenant keys: an e-mail address and a request_id are unique within their
-- organization only, so that one tenant's ConflictError never tells it what
-- another tenant holds. Two keys stay global on purpose, because they are
-- identities resolved before the tenant is known: applications.api_key_hash
-- (an API key opens exactly one application) and users.cognito_sub (a Cognito
-- subject is one person, in one organization). Organization slugs stay global
-- too: they name the tenants themselves.
--
-- E-mail addresses are compared by their key, users.email_key: NFKC, then full
-- case folding, then NFKC again (llmcp.validation.email_key, computed by llmcp
-- on every write), so that look-alikes (a Kelvin sign for a K, full-width
-- letters, ligatures) cannot collide with or take over another address. Rows
-- already stored are keyed here with lower(normalize(email, nfkc)), the closest
-- the server has on every version; llmcp rewrites the key on the next update.
--
-- squawk: the indexes are built in this migration's transaction (no
-- CONCURRENTLY); the tables are small while llmcp is new. On a large live users
-- or inference_requests table, build the new indexes CONCURRENTLY by hand first
-- (the same names), and this migration's IF NOT EXISTS skips them.
-- squawk-ignore require-concurrent-index-creation, require-concurrent-index-deletion
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '10min';

-- squawk-ignore adding-required-field
ALTER TABLE users ADD COLUMN email_key text;
UPDATE users SET email_key = lower(normalize(email, nfkc));
-- squawk: the column was filled just above, in the same transaction
-- squawk-ignore adding-not-nullable-field
ALTER TABLE users ALTER COLUMN email_key SET NOT NULL;
ALTER TABLE users
-- squawk-ignore constraint-missing-not-valid
ADD CONSTRAINT users_email_key_check CHECK (char_length(email_key) BETWEEN 1 AND 1000);
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX IF NOT EXISTS users_org_id_email_key ON users (org_id, email_key);
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX users_email_lower_key;
GRANT UPDATE (email_key) ON users TO llmcp_app;

-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX IF NOT EXISTS inference_requests_org_id_request_id_key
ON inference_requests (org_id, request_id);
ALTER TABLE inference_requests
-- squawk-ignore constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT inference_requests_org_id_request_id_key
UNIQUE USING INDEX inference_requests_org_id_request_id_key;
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_request_id_key;

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS audit_logs_org_id_request_id_idx ON audit_logs (org_id, request_id);
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX audit_logs_request_id_idx;

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '10min';

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX audit_logs_request_id_idx ON audit_logs (request_id);
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX audit_logs_org_id_request_id_idx;
ALTER TABLE inference_requests
-- squawk-ignore constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT inference_requests_request_id_key UNIQUE (request_id);
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_org_id_request_id_key;
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX users_org_id_email_key;
-- squawk-ignore ban-drop-column
ALTER TABLE users DROP COLUMN email_key;
