-- migrate:up

-- squawk: creating its foreign keys briefly takes SHARE ROW EXCLUSIVE locks on
-- organizations; in this initial schema it is new and idle,
-- so no lock_timeout or statement_timeout is set. (A later migration that adds a
-- foreign key to a table in use must SET lock_timeout first.)
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE applications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    -- SHA-256 of the API key, lowercase hex; the key itself is never stored
    api_key_hash text NOT NULL,
    -- squawk: int4 is ample for the optimistic-lock counter of one row
    -- squawk-ignore prefer-bigint-over-int
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT applications_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT applications_description_check CHECK (char_length(description) <= 2000),
    CONSTRAINT applications_api_key_hash_check CHECK (api_key_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT applications_api_key_hash_key UNIQUE (api_key_hash),
    -- target of the composite foreign keys that keep children inside one organization
    CONSTRAINT applications_org_id_id_key UNIQUE (org_id, id)
);

CREATE INDEX applications_org_id_created_at_idx ON applications (org_id, created_at DESC, id DESC);

CREATE TRIGGER applications_touch
BEFORE UPDATE ON applications
FOR EACH ROW EXECUTE FUNCTION touch_row_version();

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-table
DROP TABLE applications;
