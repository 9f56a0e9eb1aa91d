-- migrate:up

-- squawk: creating its foreign keys briefly takes SHARE ROW EXCLUSIVE locks on
-- organizations; in this initial schema it is new and idle,
-- so no lock_timeout or statement_timeout is set. (A later migration that adds a
-- foreign key to a table in use must SET lock_timeout first.)
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL,
    -- subject identifier issued by AWS Cognito
    cognito_sub text NOT NULL,
    display_name text,
    role user_role NOT NULL DEFAULT 'member',
    -- squawk: int4 is ample for the optimistic-lock counter of one row
    -- squawk-ignore prefer-bigint-over-int
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- one @, no blanks, a dot in the domain; at most 320 characters (RFC 5321)
    CONSTRAINT users_email_check
    CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' AND char_length(email) <= 320),
    CONSTRAINT users_cognito_sub_check CHECK (char_length(cognito_sub) BETWEEN 1 AND 128),
    CONSTRAINT users_display_name_check CHECK (char_length(display_name) <= 200),
    CONSTRAINT users_cognito_sub_key UNIQUE (cognito_sub),
    CONSTRAINT users_org_id_id_key UNIQUE (org_id, id)
);

-- e-mail addresses are unique regardless of case
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE INDEX users_org_id_created_at_idx ON users (org_id, created_at DESC, id DESC);

CREATE TRIGGER users_touch
BEFORE UPDATE ON users
FOR EACH ROW EXECUTE FUNCTION touch_row_version();

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-table
DROP TABLE users;
