-- migrate:up

-- Roles a user holds inside an organization.
-- squawk: this migration creates types and a function only and locks no table in use,
-- so it sets no lock_timeout or statement_timeout.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TYPE user_role AS ENUM ('owner', 'admin', 'member', 'viewer');

-- Kinds of policy; each has its own typed config (see llmcp.policy_config).
CREATE TYPE policy_type AS ENUM (
    'rate_limit',
    'token_budget',
    'cost_budget',
    'model_allowlist',
    'content_filter'
);

-- What an audit log entry records.
CREATE TYPE audit_action AS ENUM (
    'organization_created',
    'organization_updated',
    'organization_deleted',
    'application_created',
    'application_updated',
    'application_deleted',
    'user_created',
    'user_updated',
    'user_deleted',
    'policy_created',
    'policy_updated',
    'policy_deleted',
    'policy_violation',
    'inference_requested',
    'inference_completed',
    'inference_failed',
    'inference_rejected'
);

-- Life cycle of an inference request: pending, then one of the three outcomes.
CREATE TYPE inference_status AS ENUM ('pending', 'completed', 'failed', 'rejected');

-- Every mutable row carries updated_at and an optimistic-lock version, both
-- maintained here so that no writer can forget them.
CREATE FUNCTION touch_row_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-function
DROP FUNCTION touch_row_version();
-- squawk-ignore ban-drop-type
DROP TYPE inference_status;
-- squawk-ignore ban-drop-type
DROP TYPE audit_action;
-- squawk-ignore ban-drop-type
DROP TYPE policy_type;
-- squawk-ignore ban-drop-type
DROP TYPE user_role;
