-- migrate:up

-- The entry that llmcp_purge_audit_logs writes (next migration). A value added
-- to an enum cannot be used in the transaction that adds it, hence a migration
-- of its own.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- squawk: the newest action goes last, as every action before it did
-- squawk-ignore require-enum-value-ordering
ALTER TYPE audit_action ADD VALUE IF NOT EXISTS 'audit_logs_purged';

-- migrate:down

-- PostgreSQL cannot remove a value from an enum; the value stays, unused.
SET LOCAL lock_timeout = '5s';
