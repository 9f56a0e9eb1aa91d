-- migrate:up

-- squawk: creating its foreign keys briefly takes SHARE ROW EXCLUSIVE locks on
-- organizations, applications and users; in this initial schema they are new and idle,
-- so no lock_timeout or statement_timeout is set. (A later migration that adds a
-- foreign key to a table in use must SET lock_timeout first.)
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE inference_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    app_id uuid NOT NULL,
    user_id uuid,
    -- the caller's idempotency key
    request_id text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    status inference_status NOT NULL DEFAULT 'pending',
    -- squawk: tokens of one request; the repository keeps prompt + completion within int4
    -- squawk-ignore prefer-bigint-over-int
    prompt_tokens integer NOT NULL DEFAULT 0,
    -- squawk-ignore prefer-bigint-over-int
    completion_tokens integer NOT NULL DEFAULT 0,
    -- squawk-ignore prefer-bigint-over-int
    total_tokens integer NOT NULL DEFAULT 0,
    -- money: exact decimal, never floating point
    cost numeric(14, 6) NOT NULL DEFAULT 0,
    -- squawk: int4 milliseconds cover 24 days, far beyond any one request
    -- squawk-ignore prefer-bigint-over-int
    latency_ms integer,
    error_message text,
    -- squawk: int4 is ample for the optimistic-lock counter of one row
    -- squawk-ignore prefer-bigint-over-int
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT inference_requests_request_id_check CHECK (char_length(request_id) BETWEEN 1 AND 200),
    CONSTRAINT inference_requests_provider_check CHECK (char_length(provider) BETWEEN 1 AND 100),
    CONSTRAINT inference_requests_model_check CHECK (char_length(model) BETWEEN 1 AND 200),
    CONSTRAINT inference_requests_tokens_check
    CHECK (prompt_tokens >= 0 AND completion_tokens >= 0),
    CONSTRAINT inference_requests_total_tokens_check
    CHECK (total_tokens = prompt_tokens + completion_tokens),
    CONSTRAINT inference_requests_cost_check CHECK (cost >= 0),
    CONSTRAINT inference_requests_latency_ms_check CHECK (latency_ms >= 0),
    CONSTRAINT inference_requests_error_message_check CHECK (char_length(error_message) <= 4000),
    CONSTRAINT inference_requests_completed_at_check CHECK (completed_at >= created_at),
    CONSTRAINT inference_requests_request_id_key UNIQUE (request_id),
    CONSTRAINT inference_requests_app_fkey FOREIGN KEY (org_id, app_id)
    REFERENCES applications (org_id, id) ON DELETE CASCADE,
    CONSTRAINT inference_requests_user_fkey FOREIGN KEY (org_id, user_id)
    REFERENCES users (org_id, id) ON DELETE SET NULL (user_id)
);

-- paged reads, newest first, with id as the tie-breaker
CREATE INDEX inference_requests_org_id_created_at_idx
ON inference_requests (org_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_app_id_created_at_idx
ON inference_requests (app_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_user_id_created_at_idx
ON inference_requests (user_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_org_id_status_created_at_idx
ON inference_requests (org_id, status, created_at DESC, id DESC);

CREATE TRIGGER inference_requests_touch
BEFORE UPDATE ON inference_requests
FOR EACH ROW EXECUTE FUNCTION touch_row_version();

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-table
DROP TABLE inference_requests;
