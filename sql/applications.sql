-- name: create(id, org_id, name, description, api_key_hash, created_at)<!
-- Insert an application and return the stored row.
INSERT INTO applications (
    id,
    org_id,
    name,
    description,
    api_key_hash,
    created_at,
    updated_at
)
VALUES (
    :id,
    :org_id,
    :name,
    :description,
    :api_key_hash,
    coalesce(:created_at, now()),
    coalesce(:created_at, now())
)
RETURNING
    id,
    org_id,
    name,
    description,
    api_key_hash,
    version,
    created_at,
    updated_at;

-- name: get_by_id(org_id, id)^
-- Fetch one application of an organization by its id.
SELECT
    id,
    org_id,
    name,
    description,
    api_key_hash,
    version,
    created_at,
    updated_at
FROM applications
WHERE org_id = :org_id
    AND id = :id;

-- name: get_by_api_key_hash(api_key_hash)^
-- Fetch one application by the SHA-256 hash of its API key, in any organization:
-- the request path's lookup that runs before the tenant is known (row-level
-- security lets it reach only the application of that key).
SELECT
    id,
    org_id,
    name,
    description,
    api_key_hash,
    version,
    created_at,
    updated_at
FROM applications
WHERE api_key_hash = :api_key_hash;

-- name: get_by_org_id(org_id, limit, offset)
-- List the applications of an organization newest first, one offset page at a time.
SELECT
    id,
    org_id,
    name,
    description,
    api_key_hash,
    version,
    created_at,
    updated_at
FROM applications
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: update(org_id, id, version, name, description, api_key_hash)^
-- Update an application when its version still matches and return the new row.
UPDATE applications
SET
    name = :name,
    description = :description,
    api_key_hash = :api_key_hash
WHERE org_id = :org_id
    AND id = :id
    AND version = :version
RETURNING
    id,
    org_id,
    name,
    description,
    api_key_hash,
    version,
    created_at,
    updated_at;

-- name: delete(org_id, id)!
-- Delete an application with its policies and inference requests; its audit logs keep its id.
DELETE FROM applications
WHERE org_id = :org_id
    AND id = :id;

-- name: version_of(org_id, id)$
-- Return the current version of an application, or no value when it does not exist.
SELECT
    version
FROM applications
WHERE org_id = :org_id
    AND id = :id;
