-- name: insert(id, org_id, app_id, user_id, action, resource_type, resource_id, request_id, details, ip_address, user_agent, created_at)<!
-- Append one audit log entry and return the stored row.
INSERT INTO audit_logs (
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
)
VALUES (
    :id,
    :org_id,
    :app_id,
    :user_id,
    :action,
    :resource_type,
    :resource_id,
    :request_id,
    :details,
    :ip_address,
    :user_agent,
    coalesce(:created_at, now())
)
RETURNING
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at;

-- name: get_by_id(org_id, id)^
-- Fetch one audit log entry of an organization by its id.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND id = :id;

-- name: get_by_org_id(org_id, limit, offset)
-- List the audit log of an organization newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_org_id_after(org_id, after_created_at, after_id, limit)
-- List the audit log of an organization newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_app_id(org_id, app_id, limit, offset)
-- List the audit log of an application newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND app_id = :app_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_app_id_after(org_id, app_id, after_created_at, after_id, limit)
-- List the audit log of an application newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND app_id = :app_id
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_user_id(org_id, user_id, limit, offset)
-- List the audit log of a user newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND user_id = :user_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_user_id_after(org_id, user_id, after_created_at, after_id, limit)
-- List the audit log of a user newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND user_id = :user_id
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_date_range(org_id, start_time, end_time, limit, offset)
-- List an organization's audit log in [start_time, end_time) newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND created_at >= :start_time
    AND created_at < :end_time
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_date_range_after(org_id, start_time, end_time, after_created_at, after_id, limit)
-- List an organization's audit log in [start_time, end_time) newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND created_at >= :start_time
    AND created_at < :end_time
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_action(org_id, action, limit, offset)
-- List an organization's audit log entries of one action newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND action = :action
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_action_after(org_id, action, after_created_at, after_id, limit)
-- List an organization's audit log entries of one action newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND action = :action
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_request_id(org_id, request_id)
-- List every audit log entry of one request in an organization, oldest first.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    action,
    resource_type,
    resource_id,
    request_id,
    details,
    ip_address,
    user_agent,
    created_at
FROM audit_logs
WHERE org_id = :org_id
    AND request_id = :request_id
ORDER BY created_at ASC, id ASC;

-- name: purge(org_id, before, reason)$
-- Delete an organization's audit log entries older than before and record the purge
-- as an entry of its own; returns how many were deleted. Needs llmcp_audit_admin.
SELECT
    llmcp_purge_audit_logs(:org_id, :before, :reason) AS purged;
