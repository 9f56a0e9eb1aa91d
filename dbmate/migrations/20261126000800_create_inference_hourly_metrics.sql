-- migrate:up

-- Hourly totals of inference_requests per organization, kept in step with the
-- raw rows by the triggers below, in the same transaction. get_metrics reads
-- the whole hours of a range from here and only the partial hours at its edges
-- from inference_requests, so it stays fast as the raw table grows.
-- Each (organization, hour) is spread over four shards, picked by backend, so
-- that concurrent writers of one organization do not queue on a single row;
-- readers add the shards up. No foreign key: the rows of a deleted organization
-- are brought to zero by the delete trigger and removed.
CREATE TABLE inference_hourly_metrics (
    org_id uuid NOT NULL,
    -- start of the hour, in UTC
    hour timestamptz NOT NULL,
    -- squawk: a shard number is 0 to 3
    -- squawk-ignore prefer-bigint-over-smallint
    shard smallint NOT NULL,
    total_requests bigint NOT NULL DEFAULT 0,
    completed_requests bigint NOT NULL DEFAULT 0,
    failed_requests bigint NOT NULL DEFAULT 0,
    rejected_requests bigint NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    total_cost numeric NOT NULL DEFAULT 0,
    -- sum and count of the non-null latencies, for an exact average
    latency_sum bigint NOT NULL DEFAULT 0,
    latency_count bigint NOT NULL DEFAULT 0,
    CONSTRAINT inference_hourly_metrics_pkey PRIMARY KEY (org_id, hour, shard)
);

-- Add the contribution of the statement's new rows and subtract that of its
-- old rows (transition tables: one upsert per organization and hour touched).
-- squawk: no lock_timeout or statement_timeout. The triggers below lock inference_requests
-- (SHARE ROW EXCLUSIVE: writes wait) until this migration commits, and the backfill at the
-- end reads the whole table inside that lock. Instant on a new database; on a large live
-- table, run it in a quiet window, or add SET lock_timeout first.
-- squawk-ignore require-lock-timeout, require-statement-timeout
CREATE FUNCTION inference_hourly_metrics_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    this_shard smallint := (pg_backend_pid() % 4)::smallint;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO inference_hourly_metrics AS m (
            org_id, hour, shard, total_requests, completed_requests, failed_requests,
            rejected_requests, total_tokens, total_cost, latency_sum, latency_count
        )
        SELECT
            n.org_id,
            date_trunc('hour', n.created_at, 'UTC'),
            this_shard,
            count(*),
            count(*) FILTER (WHERE n.status = 'completed'),
            count(*) FILTER (WHERE n.status = 'failed'),
            count(*) FILTER (WHERE n.status = 'rejected'),
            sum(n.total_tokens),
            sum(n.cost),
            coalesce(sum(n.latency_ms), 0),
            count(n.latency_ms)
        FROM new_rows AS n
        GROUP BY n.org_id, date_trunc('hour', n.created_at, 'UTC')
        ON CONFLICT (org_id, hour, shard) DO UPDATE SET
            total_requests = m.total_requests + excluded.total_requests,
            completed_requests = m.completed_requests + excluded.completed_requests,
            failed_requests = m.failed_requests + excluded.failed_requests,
            rejected_requests = m.rejected_requests + excluded.rejected_requests,
            total_tokens = m.total_tokens + excluded.total_tokens,
            total_cost = m.total_cost + excluded.total_cost,
            latency_sum = m.latency_sum + excluded.latency_sum,
            latency_count = m.latency_count + excluded.latency_count;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO inference_hourly_metrics AS m (
            org_id, hour, shard, total_requests, completed_requests, failed_requests,
            rejected_requests, total_tokens, total_cost, latency_sum, latency_count
        )
        SELECT
            o.org_id,
            date_trunc('hour', o.created_at, 'UTC'),
            this_shard,
            -count(*),
            -count(*) FILTER (WHERE o.status = 'completed'),
            -count(*) FILTER (WHERE o.status = 'failed'),
            -count(*) FILTER (WHERE o.status = 'rejected'),
            -sum(o.total_tokens),
            -sum(o.cost),
            -coalesce(sum(o.latency_ms), 0),
            -count(o.latency_ms)
        FROM old_rows AS o
        GROUP BY o.org_id, date_trunc('hour', o.created_at, 'UTC')
        ON CONFLICT (org_id, hour, shard) DO UPDATE SET
            total_requests = m.total_requests + excluded.total_requests,
            completed_requests = m.completed_requests + excluded.completed_requests,
            failed_requests = m.failed_requests + excluded.failed_requests,
            rejected_requests = m.rejected_requests + excluded.rejected_requests,
            total_tokens = m.total_tokens + excluded.total_tokens,
            total_cost = m.total_cost + excluded.total_cost,
            latency_sum = m.latency_sum + excluded.latency_sum,
            latency_count = m.latency_count + excluded.latency_count;
        -- drop the hours that no longer count anything (e.g. of a deleted organization)
        DELETE FROM inference_hourly_metrics AS m
        WHERE (m.org_id, m.hour) IN (
            SELECT h.org_id, h.hour
            FROM inference_hourly_metrics AS h
            WHERE (h.org_id, h.hour) IN (
                SELECT o.org_id, date_trunc('hour', o.created_at, 'UTC') FROM old_rows AS o
            )
            GROUP BY h.org_id, h.hour
            HAVING sum(h.total_requests) = 0
        );
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inference_hourly_metrics_on_insert
AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();

CREATE TRIGGER inference_hourly_metrics_on_update
AFTER UPDATE ON inference_requests
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();

CREATE TRIGGER inference_hourly_metrics_on_delete
AFTER DELETE ON inference_requests
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();

CREATE FUNCTION inference_hourly_metrics_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE inference_hourly_metrics;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inference_hourly_metrics_on_truncate
AFTER TRUNCATE ON inference_requests
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_truncate();

-- Count the requests already there (none on a new database).
-- the INSERT's column list names these values; aliases would repeat it -- noqa: disable=AL03
INSERT INTO inference_hourly_metrics (
    org_id, hour, shard, total_requests, completed_requests, failed_requests,
    rejected_requests, total_tokens, total_cost, latency_sum, latency_count
)
SELECT
    r.org_id,
    date_trunc('hour', r.created_at, 'UTC'),
    0,
    count(*),
    count(*) FILTER (WHERE r.status = 'completed'),
    count(*) FILTER (WHERE r.status = 'failed'),
    count(*) FILTER (WHERE r.status = 'rejected'),
    sum(r.total_tokens),
    sum(r.cost),
    coalesce(sum(r.latency_ms), 0),
    count(r.latency_ms)
FROM inference_requests AS r
GROUP BY r.org_id, date_trunc('hour', r.created_at, 'UTC');
-- noqa: enable=AL03

-- migrate:down

-- squawk: the down migration drops only what the up migration created.
DROP TRIGGER inference_hourly_metrics_on_truncate ON inference_requests;
-- squawk-ignore ban-drop-function
DROP FUNCTION inference_hourly_metrics_truncate();
DROP TRIGGER inference_hourly_metrics_on_delete ON inference_requests;
DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;
DROP TRIGGER inference_hourly_metrics_on_insert ON inference_requests;
-- squawk-ignore ban-drop-function
DROP FUNCTION inference_hourly_metrics_apply();
-- squawk-ignore ban-drop-table
DROP TABLE inference_hourly_metrics;
