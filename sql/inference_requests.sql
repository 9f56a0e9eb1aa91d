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

-- name: get_by_id(org_id, id)^
-- Fetch one inference request of an organization by its id.
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
    AND id = :id
    -- created_at from the key: one month's partition is read, not every month's
    AND created_at = (
        SELECT k.created_at  -- one target -- noqa: LT09
        FROM inference_request_keys AS k
        WHERE k.org_id = :org_id AND k.id = :id  -- parameters, not columns -- noqa: RF02
    );

-- name: get_by_request_id(org_id, request_id)^
-- Fetch one inference request of an organization by its request id (unique per organization).
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
    -- id and created_at from the key (unique per organization for all time): one
    -- month's partition is read, through its primary key
    AND (id, created_at) = (
        SELECT
            k.id,
            k.created_at
        FROM inference_request_keys AS k
        WHERE k.org_id = :org_id AND k.request_id = :request_id  -- parameters -- noqa: RF02
    );

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
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_app_id(org_id, app_id, limit, offset)
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
WHERE org_id = :org_id
    AND app_id = :app_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_app_id_after(org_id, app_id, after_created_at, after_id, limit)
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
WHERE org_id = :org_id
    AND app_id = :app_id
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: get_by_user_id(org_id, user_id, limit, offset)
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
WHERE org_id = :org_id
    AND user_id = :user_id
ORDER BY created_at DESC, id DESC
LIMIT :limit
OFFSET :offset;

-- name: get_by_user_id_after(org_id, user_id, after_created_at, after_id, limit)
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
WHERE org_id = :org_id
    AND user_id = :user_id
    AND (created_at, id) < (:after_created_at, :after_id)
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
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
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
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
    -- the same bound alone: the planner prunes the partitions after the cursor
    AND created_at <= :after_created_at
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: update(org_id, id, version, status, prompt_tokens, completion_tokens, cost, latency_ms, error_message, completed_at)^
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
WHERE org_id = :org_id
    AND id = :id
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

-- name: version_of(org_id, id)$
-- Return the current version of an inference request, or no value when it does not exist.
SELECT
    version
FROM inference_requests
WHERE org_id = :org_id
    AND id = :id;

-- name: get_metrics(org_id, start_time, end_time)^
-- Summarize an organization's inference requests in [start_time, end_time) as one row, fast.
-- Whole hours come from inference_hourly_metrics; only the partial hours at the two
-- edges of the range are read from inference_requests. Same numbers as get_metrics_raw.
WITH bounds AS (
    SELECT
        -- the first whole hour starts at start_time if it is on the hour, else at the next hour
        CASE
            WHEN date_trunc('hour', cast(:start_time AS timestamptz), 'UTC') = :start_time
                THEN cast(:start_time AS timestamptz)
            ELSE date_trunc('hour', cast(:start_time AS timestamptz), 'UTC') + interval '1 hour'
        END AS first_hour,
        date_trunc('hour', cast(:end_time AS timestamptz), 'UTC') AS last_hour
),

parts AS (
    -- whole hours: [first_hour, last_hour)
    SELECT
        m.total_requests,
        m.completed_requests,
        m.failed_requests,
        m.rejected_requests,
        m.total_tokens,
        m.total_cost,
        m.latency_sum,
        m.latency_count
    FROM inference_hourly_metrics AS m
    WHERE m.org_id = :org_id
        AND m.hour >= (SELECT b.first_hour FROM bounds AS b)  -- one value, one line -- noqa: LT09
        AND m.hour < (SELECT b.last_hour FROM bounds AS b)  -- one value, one line -- noqa: LT09
    UNION ALL
    -- raw rows before the first whole hour: [start_time, first_hour)
    SELECT
        1 AS total_requests,
        (r.status = 'completed')::int AS completed_requests,
        (r.status = 'failed')::int AS failed_requests,
        (r.status = 'rejected')::int AS rejected_requests,
        r.total_tokens,
        r.cost AS total_cost,
        coalesce(r.latency_ms, 0) AS latency_sum,
        (r.latency_ms IS NOT NULL)::int AS latency_count
    FROM inference_requests AS r
    WHERE r.org_id = :org_id
        AND r.created_at >= :start_time
        AND r.created_at < (SELECT least(b.first_hour, :end_time) FROM bounds AS b)  -- one value, one line -- noqa: LT09
    UNION ALL
    -- raw rows after the last whole hour: [last_hour, end_time)
    SELECT
        1 AS total_requests,
        (r.status = 'completed')::int AS completed_requests,
        (r.status = 'failed')::int AS failed_requests,
        (r.status = 'rejected')::int AS rejected_requests,
        r.total_tokens,
        r.cost AS total_cost,
        coalesce(r.latency_ms, 0) AS latency_sum,
        (r.latency_ms IS NOT NULL)::int AS latency_count
    FROM inference_requests AS r
    WHERE r.org_id = :org_id
        AND r.created_at >= (SELECT greatest(b.last_hour, b.first_hour) FROM bounds AS b)  -- one value, one line -- noqa: LT09
        AND r.created_at < :end_time
)

SELECT
    coalesce(sum(p.total_requests), 0)::bigint AS total_requests,
    coalesce(sum(p.completed_requests), 0)::bigint AS completed_requests,
    coalesce(sum(p.failed_requests), 0)::bigint AS failed_requests,
    coalesce(sum(p.rejected_requests), 0)::bigint AS rejected_requests,
    coalesce(sum(p.total_tokens), 0)::bigint AS total_tokens,
    coalesce(sum(p.total_cost), 0) AS total_cost,
    -- the same division avg() does, so the average is the raw one exactly
    coalesce(sum(p.latency_sum)::numeric / nullif(sum(p.latency_count), 0), 0)::double precision
        AS avg_latency_ms
FROM parts AS p;

-- name: get_metrics_raw(org_id, start_time, end_time)^
-- Summarize an organization's inference requests in [start_time, end_time) from the raw rows only.
-- The reference for get_metrics (tests and benchmarks compare the two).
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
