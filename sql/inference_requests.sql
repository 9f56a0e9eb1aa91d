-- name: create(id, org_id, app_id, user_id, request_id, provider, model, status, prompt_tokens, completion_tokens, cost, latency_ms, error_message, created_at, completed_at)<!
-- Insert an inference request, with total_tokens computed, and return the stored row.
INSERT INTO inference_requests (
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    created_at,
    updated_at,
    completed_at
)
VALUES (
    :id,
    :org_id,
    :app_id,
    :user_id,
    :request_id,
    :provider,
    :model,
    :status,
    :prompt_tokens,
    :completion_tokens,
    :prompt_tokens::integer + :completion_tokens::integer,
    :cost,
    :latency_ms,
    :error_message,
    coalesce(:created_at, now()),
    coalesce(:created_at, now()),
    :completed_at
)
RETURNING
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at;

-- name: get_by_id(id)^
-- Fetch one inference request by its id.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE id = :id;

-- name: get_by_request_id(request_id)^
-- Fetch one inference request by its unique request id.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE request_id = :request_id;

-- name: get_by_org_id(org_id, limit, offset)
-- List the inference requests of an organization newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE org_id = :org_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_org_id_after(org_id, after_created_at, after_id, limit)
-- List the inference requests of an organization newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE org_id = :org_id
    AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_app_id(app_id, limit, offset)
-- List the inference requests of an application newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE app_id = :app_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_app_id_after(app_id, after_created_at, after_id, limit)
-- List the inference requests of an application newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE app_id = :app_id
    AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_user_id(user_id, limit, offset)
-- List the inference requests of a user newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE user_id = :user_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_user_id_after(user_id, after_created_at, after_id, limit)
-- List the inference requests of a user newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE user_id = :user_id
    AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_status(org_id, status, limit, offset)
-- List the inference requests of an organization in one status newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE org_id = :org_id
    AND status = :status
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_status_after(org_id, status, after_created_at, after_id, limit)
-- List the inference requests of an organization in one status newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE org_id = :org_id
    AND status = :status
    AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_date_range(org_id, start_time, end_time, limit, offset)
-- List the inference requests of an organization in [start_time, end_time) newest first, one offset page at a time.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE org_id = :org_id
    AND created_at >= :start_time
    AND created_at < :end_time
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_date_range_after(org_id, start_time, end_time, after_created_at, after_id, limit)
-- List the inference requests of an organization in [start_time, end_time) newest first, the keyset page after a cursor.
SELECT
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at
FROM inference_requests
WHERE org_id = :org_id
    AND created_at >= :start_time
    AND created_at < :end_time
    AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: update(id, version, status, prompt_tokens, completion_tokens, cost, latency_ms, error_message, completed_at)^
-- Update an inference request when its version still matches, recomputing total_tokens, and return the new row.
UPDATE inference_requests
SET
    status = :status,
    prompt_tokens = :prompt_tokens,
    completion_tokens = :completion_tokens,
    total_tokens = :prompt_tokens::integer + :completion_tokens::integer,
    cost = :cost,
    latency_ms = :latency_ms,
    error_message = :error_message,
    completed_at = :completed_at
WHERE id = :id
    AND version = :version
RETURNING
    id,
    org_id,
    app_id,
    user_id,
    request_id,
    provider,
    model,
    status,
    prompt_tokens,
    completion_tokens,
    total_tokens,
    cost,
    latency_ms,
    error_message,
    version,
    created_at,
    updated_at,
    completed_at;

-- name: version_of(id)$
-- Return the current version of an inference request, or no value when it does not exist.
SELECT
    version
FROM inference_requests
WHERE id = :id;

-- name: get_metrics(org_id, start_time, end_time)^
-- Summarize an organization's inference requests in [start_time, end_time) as one row.
SELECT
    count(*) AS total_requests,
    count(*) FILTER (WHERE status = 'completed') AS completed_requests,
    count(*) FILTER (WHERE status = 'failed') AS failed_requests,
    count(*) FILTER (WHERE status = 'rejected') AS rejected_requests,
    coalesce(sum(total_tokens), 0)::bigint AS total_tokens,
    coalesce(sum(cost), 0) AS total_cost,
    coalesce(avg(latency_ms), 0)::double precision AS avg_latency_ms
FROM inference_requests
WHERE org_id = :org_id
    AND created_at >= :start_time
    AND created_at < :end_time;
