-- migrate:up

-- Append-only: rows are inserted (often in batches, by COPY) and never updated.
-- Deleting an application or user keeps its audit trail and clears the reference.
-- squawk: creating its foreign keys briefly takes SHARE ROW EXCLUSIVE locks on
-- organizations, applications and users; in this initial schema they are new and idle,
-- so no lock_timeout or statement_timeout is set. (A later migration that adds a
-- foreign key to a table in use must SET lock_timeout first.)
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE audit_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    app_id uuid,
    user_id uuid,
    action audit_action NOT NULL,
    resource_type text NOT NULL,
    resource_id uuid,
    -- the caller's request or trace id, for following one request through the logs
    request_id text,
    details jsonb NOT NULL DEFAULT '{}',
    ip_address inet,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_logs_resource_type_check CHECK (char_length(resource_type) BETWEEN 1 AND 100),
    CONSTRAINT audit_logs_request_id_check CHECK (char_length(request_id) BETWEEN 1 AND 200),
    CONSTRAINT audit_logs_user_agent_check CHECK (char_length(user_agent) <= 1000),
    CONSTRAINT audit_logs_details_check CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT audit_logs_app_fkey FOREIGN KEY (org_id, app_id)
    REFERENCES applications (org_id, id) ON DELETE SET NULL (app_id),
    CONSTRAINT audit_logs_user_fkey FOREIGN KEY (org_id, user_id)
    REFERENCES users (org_id, id) ON DELETE SET NULL (user_id)
);

-- paged reads, newest first, with id as the tie-breaker
CREATE INDEX audit_logs_org_id_created_at_idx ON audit_logs (org_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_app_id_created_at_idx ON audit_logs (app_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_user_id_created_at_idx ON audit_logs (user_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_id_action_created_at_idx
ON audit_logs (org_id, action, created_at DESC, id DESC);
CREATE INDEX audit_logs_request_id_idx ON audit_logs (request_id);

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-table
DROP TABLE audit_logs;
