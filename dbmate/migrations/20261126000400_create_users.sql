-- migrate:up

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL,
    -- subject identifier issued by AWS Cognito
    cognito_sub text NOT NULL,
    display_name text,
    role user_role NOT NULL DEFAULT 'member',
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

DROP TABLE users;
