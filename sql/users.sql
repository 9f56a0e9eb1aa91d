-- name: create(id, org_id, email, cognito_sub, display_name, role, created_at)<!
-- Insert a user and return the stored row.
INSERT INTO users (
    id,
    org_id,
    email,
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
    updated_at;

-- name: get_by_id(id)^
-- Fetch one user by its id.
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at
FROM users
WHERE id = :id;

-- name: get_by_cognito_sub(cognito_sub)^
-- Fetch one user by its Cognito subject (sub).
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at
FROM users
WHERE cognito_sub = :cognito_sub;

-- name: get_by_email(email)^
-- Fetch one user by email address, ignoring case (uses users_email_lower_key).
SELECT
    id,
    org_id,
    email,
    cognito_sub,
    display_name,
    role,
    version,
    created_at,
    updated_at
FROM users
WHERE lower(email) = lower(:email);

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
    updated_at
FROM users
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: update(id, version, email, display_name, role)^
-- Update a user when its version still matches and return the new row.
UPDATE users
SET
    email = :email,
    display_name = :display_name,
    role = :role
WHERE id = :id
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
    updated_at;

-- name: delete(id)!
-- Delete a user with its policies; its audit logs and inference requests keep a null user_id.
DELETE FROM users
WHERE id = :id;

-- name: version_of(id)$
-- Return the current version of a user, or no value when it does not exist.
SELECT
    version
FROM users
WHERE id = :id;
