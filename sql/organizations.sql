-- name: create(id, name, slug, created_at)<!
-- Insert an organization and return the stored row.
INSERT INTO organizations (
    id,
    name,
    slug,
    created_at,
    updated_at
)
VALUES (
    :id,
    :name,
    :slug,
    coalesce(:created_at, now()),
    coalesce(:created_at, now())
)
RETURNING
    id,
    name,
    slug,
    version,
    created_at,
    updated_at;

-- name: get_by_id(id)^
-- Fetch one organization by its id.
SELECT
    id,
    name,
    slug,
    version,
    created_at,
    updated_at
FROM organizations
WHERE id = :id;

-- name: get_by_slug(slug)^
-- Fetch one organization by its unique slug.
SELECT
    id,
    name,
    slug,
    version,
    created_at,
    updated_at
FROM organizations
WHERE slug = :slug;

-- name: list(limit, offset)
-- List organizations newest first, one offset page at a time.
SELECT
    id,
    name,
    slug,
    version,
    created_at,
    updated_at
FROM organizations
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: update(id, version, name, slug)^
-- Update an organization when its version still matches and return the new row.
UPDATE organizations
SET
    name = :name,
    slug = :slug
WHERE id = :id
    AND version = :version
RETURNING
    id,
    name,
    slug,
    version,
    created_at,
    updated_at;

-- name: delete(id)!
-- Delete an organization; everything it owns is deleted with it (cascade), except
-- its audit logs, which outlive it.
DELETE FROM organizations
WHERE id = :id;

-- name: version_of(id)$
-- Return the current version of an organization, or no value when it does not exist.
SELECT
    version
FROM organizations
WHERE id = :id;
