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

-- name: get_by_id(id)^
-- Fetch one audit log entry by its id.
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
WHERE id = :id;

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
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_app_id(app_id, limit, offset)
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
WHERE app_id = :app_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_app_id_after(app_id, after_created_at, after_id, limit)
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
WHERE app_id = :app_id
    AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_user_id(user_id, limit, offset)
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
WHERE user_id = :user_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_user_id_after(user_id, after_created_at, after_id, limit)
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
WHERE user_id = :user_id
    AND (created_at, id) < (:after_created_at, :after_id)
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
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_request_id(request_id)
-- List every audit log entry of one request, oldest first.
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
WHERE request_id = :request_id
ORDER BY created_at ASC, id ASC;
