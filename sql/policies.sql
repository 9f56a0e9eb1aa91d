-- name: create(id, org_id, app_id, user_id, name, policy_type, config, priority, enabled, created_at)<!
-- Insert a policy and return the stored row.
INSERT INTO policies (
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    created_at,
    updated_at
)
VALUES (
    :id,
    :org_id,
    :app_id,
    :user_id,
    :name,
    :policy_type,
    :config,
    :priority,
    :enabled,
    coalesce(:created_at, now()),
    coalesce(:created_at, now())
)
RETURNING
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at;

-- name: get_by_id(org_id, id)^
-- Fetch one policy of an organization by its id.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at
FROM policies
WHERE org_id = :org_id
    AND id = :id;

-- name: get_by_org_id(org_id, limit, offset)
-- List the policies of an organization newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at
FROM policies
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_app_id(org_id, app_id, limit, offset)
-- List the policies scoped to an application newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at
FROM policies
WHERE org_id = :org_id
    AND app_id = :app_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_user_id(org_id, user_id, limit, offset)
-- List the policies scoped to a user newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at
FROM policies
WHERE org_id = :org_id
    AND user_id = :user_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_applicable(org_id, app_id, user_id)
-- List the enabled org, app and user policies that apply, most specific first.
-- @nullable :user_id
SELECT
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at
FROM policies
WHERE org_id = :org_id
    AND enabled
    AND (
        (app_id IS NULL AND user_id IS NULL)
        OR (app_id = :app_id AND user_id IS NULL)
        OR (user_id = :user_id AND (app_id IS NULL OR app_id = :app_id))
    )
ORDER BY
    CASE
        WHEN user_id IS NOT NULL AND app_id IS NOT NULL THEN 1
        WHEN user_id IS NOT NULL THEN 2
        WHEN app_id IS NOT NULL THEN 3
        ELSE 4
    END,
    priority DESC,
    created_at ASC,
    id ASC;

-- name: update(org_id, id, version, name, policy_type, config, priority, enabled)^
-- Update a policy when its version still matches and return the new row.
UPDATE policies
SET
    name = :name,
    policy_type = :policy_type,
    config = :config,
    priority = :priority,
    enabled = :enabled
WHERE org_id = :org_id
    AND id = :id
    AND version = :version
RETURNING
    id,
    org_id,
    app_id,
    user_id,
    name,
    policy_type,
    config,
    priority,
    enabled,
    version,
    created_at,
    updated_at;

-- name: delete(org_id, id)!
-- Delete a policy.
DELETE FROM policies
WHERE org_id = :org_id
    AND id = :id;

-- name: version_of(org_id, id)$
-- Return the current version of a policy, or no value when it does not exist.
SELECT
    version
FROM policies
WHERE org_id = :org_id
    AND id = :id;
