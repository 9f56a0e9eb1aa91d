-- migrate:up

-- A policy applies at one of three levels: organization (no app, no user),
-- application (app, no user) or user (user, with or without an app).
-- squawk: creating its foreign keys briefly takes SHARE ROW EXCLUSIVE locks on
-- organizations, applications and users; in this initial schema they are new and idle,
-- so no lock_timeout or statement_timeout is set. (A later migration that adds a
-- foreign key to a table in use must SET lock_timeout first.)
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE policies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    app_id uuid,
    user_id uuid,
    name text NOT NULL,
    policy_type policy_type NOT NULL,
    config jsonb NOT NULL,
    -- squawk: a small ordinal that people choose; int4 is ample
    -- squawk-ignore prefer-bigint-over-int
    priority integer NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    -- squawk: int4 is ample for the optimistic-lock counter of one row
    -- squawk-ignore prefer-bigint-over-int
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policies_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT policies_config_check CHECK (jsonb_typeof(config) = 'object'),
    -- the application and the user must belong to the policy's organization
    CONSTRAINT policies_app_fkey FOREIGN KEY (org_id, app_id)
    REFERENCES applications (org_id, id) ON DELETE CASCADE,
    CONSTRAINT policies_user_fkey FOREIGN KEY (org_id, user_id)
    REFERENCES users (org_id, id) ON DELETE CASCADE
);

CREATE INDEX policies_org_id_created_at_idx ON policies (org_id, created_at DESC, id DESC);
CREATE INDEX policies_app_id_created_at_idx ON policies (app_id, created_at DESC, id DESC);
CREATE INDEX policies_user_id_created_at_idx ON policies (user_id, created_at DESC, id DESC);
-- policy resolution reads only enabled policies of one organization
CREATE INDEX policies_enabled_org_id_idx ON policies (org_id, app_id, user_id) WHERE enabled;

CREATE TRIGGER policies_touch
BEFORE UPDATE ON policies
FOR EACH ROW EXECUTE FUNCTION touch_row_version();

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-table
DROP TABLE policies;
