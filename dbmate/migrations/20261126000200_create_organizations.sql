-- migrate:up

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    slug text NOT NULL,
    -- squawk: int4 is ample for the optimistic-lock counter of one row
    -- squawk-ignore prefer-bigint-over-int
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    -- lowercase words of letters and digits joined by single hyphens, at most 63 characters
    CONSTRAINT organizations_slug_check
    CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 63),
    CONSTRAINT organizations_slug_key UNIQUE (slug)
);

-- squawk: the trigger locks only the table created just above, in the same transaction
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TRIGGER organizations_touch
BEFORE UPDATE ON organizations
FOR EACH ROW EXECUTE FUNCTION touch_row_version();

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-table
DROP TABLE organizations;
