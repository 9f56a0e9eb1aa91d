-- name: create(id, org_id, email, email_key, cognito_sub, display_name, role, created_at)<!
-- Insert a user and return the stored row.
INSERT INTO users (
    id,
    org_id,
    email,
    email_key,
    cognito_sub,
    display_name,
    role,
    created_at,
    updated_at
)
VALUES (
    :id,
    :org_id,
    :email,
    :email_key,
    :cognito_sub,
    :display_name,
    :role,
    coalesce(:created_at, now()),
    coalesce(:created_at, now())
)
RETURNING
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at,
    email_key;

-- name: get_by_id(org_id, id)^
-- Fetch one user of an organization by its id.
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at,
    email_key
FROM users
WHERE org_id = :org_id
    AND id = :id;

-- name: get_by_cognito_sub(cognito_sub)^
-- Fetch one user by its Cognito subject (sub), in any organization: the
-- sign-in lookup that runs before the tenant is known (row-level security lets
-- it reach only the user of that sub).
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at,
    email_key
FROM users
WHERE cognito_sub = :cognito_sub;

-- name: get_by_email(org_id, email_key)^
-- Fetch one user of an organization by the key of an e-mail address
-- (llmcp.validation.email_key: NFKC and case folding; uses users_org_id_email_key).
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at,
    email_key
FROM users
WHERE org_id = :org_id
    AND email_key = :email_key;

-- name: get_by_org_id(org_id, limit, offset)
-- List the users of an organization newest first, one offset page at a time.
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at,
    email_key
FROM users
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: update(org_id, id, version, email, email_key, display_name, role)^
-- Update a user when its version still matches and return the new row.
UPDATE users
SET
    email = :email,
    email_key = :email_key,
    display_name = :display_name,
    role = :role
WHERE org_id = :org_id
    AND id = :id
    AND version = :version
RETURNING
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at,
    email_key;

-- name: delete(org_id, id)!
-- Delete a user with its policies; its audit logs keep its id, its inference requests a null user_id.
DELETE FROM users
WHERE org_id = :org_id
    AND id = :id;

-- name: version_of(org_id, id)$
-- Return the current version of a user, or no value when it does not exist.
SELECT
    version
FROM users
WHERE org_id = :org_id
    AND id = :id;
