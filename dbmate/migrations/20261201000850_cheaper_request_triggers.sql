-- migrate:up

-- The hourly rollup and the request keys, cheaper per write (issue 16). A request
-- is inserted pending and updated once when it completes.
--
-- Inserts: one statement trigger instead of two (the keys and the rollup each had
-- their own, and each call costs), and a statement of one row (the request path)
-- upserts its counts as they are: the GROUP BY that a statement of many rows needs
-- cost about a third of the trigger. A COPY of many rows is still one upsert per
-- organization and hour, not one per row (a row trigger would update the same
-- rollup row again and again in one transaction, which slows down with each time).
--
-- Updates: the statement trigger captured both transition tables and ran two
-- upserts and a DELETE of emptied hours (for an UPDATE of many rows, a DELETE
-- whose time grew with the square of the rows). Now a row trigger applies the
-- row's change as one upsert of the difference (new minus old), and only when a
-- counted column changes (its WHEN clause is checked without calling any function:
-- an update of error_message alone, or the SET NULL of user_id when a user is
-- deleted, costs nothing). Deletes keep their statement trigger (a cascade).
--
-- The difference lands in the same organization and hour as the row's count only
-- if those stay put, so an UPDATE that changes a request's org_id, created_at or
-- request_id is refused: they are its identity (its primary key and partition,
-- and its row in inference_request_keys, which follows inserts and deletes only).
-- The service may not update these columns anyway (see its grants).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

CREATE FUNCTION inference_requests_refuse_identity_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'inference_requests: org_id, created_at and request_id do not change'
    USING ERRCODE = 'feature_not_supported',
    HINT = 'insert a new request (and delete the old one) instead';
END;
$$;

-- BEFORE, on the source partition: a change of month (a move to another
-- partition) is refused too, before any row trigger of the move could fire.
CREATE TRIGGER inference_requests_keep_identity
BEFORE UPDATE OF org_id, created_at, request_id ON inference_requests
FOR EACH ROW
WHEN (
    (old.org_id, old.created_at, old.request_id)
    IS DISTINCT FROM (new.org_id, new.created_at, new.request_id)
)
EXECUTE FUNCTION inference_requests_refuse_identity_change();

-- The keys and the counts of the inserted rows, as the owner (the service can
-- neither forge nor hide a count, and writes no key itself).
CREATE FUNCTION inference_requests_record_inserts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    this_shard smallint := (pg_backend_pid() % 4)::smallint;
BEGIN
    -- a request_id taken in the organization raises 23505 naming
    -- inference_requests_org_id_request_id_key, as before
    INSERT INTO inference_request_keys (org_id, request_id, id, created_at)
    SELECT n.org_id, n.request_id, n.id, n.created_at FROM new_rows AS n;
    IF NOT EXISTS (SELECT FROM new_rows OFFSET 1) THEN
        -- at most one row: nothing to add up
        INSERT INTO inference_hourly_metrics AS m (
            org_id, hour, shard, total_requests, completed_requests, failed_requests,
            rejected_requests, total_tokens, total_cost, latency_sum, latency_count
        )
        SELECT
            n.org_id,
            date_trunc('hour', n.created_at, 'UTC'),
            this_shard,
            1,
            (n.status = 'completed')::int,
            (n.status = 'failed')::int,
            (n.status = 'rejected')::int,
            n.total_tokens,
            n.cost,
            coalesce(n.latency_ms, 0),
            (n.latency_ms IS NOT NULL)::int
        FROM new_rows AS n
        ON CONFLICT (org_id, hour, shard) DO UPDATE SET
            total_requests = m.total_requests + excluded.total_requests,
            completed_requests = m.completed_requests + excluded.completed_requests,
            failed_requests = m.failed_requests + excluded.failed_requests,
            rejected_requests = m.rejected_requests + excluded.rejected_requests,
            total_tokens = m.total_tokens + excluded.total_tokens,
            total_cost = m.total_cost + excluded.total_cost,
            latency_sum = m.latency_sum + excluded.latency_sum,
            latency_count = m.latency_count + excluded.latency_count;
    ELSE
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
    RETURN NULL;
END;
$$;

DROP TRIGGER inference_hourly_metrics_on_insert ON inference_requests;
DROP TRIGGER inference_request_keys_on_insert ON inference_requests;
CREATE TRIGGER inference_requests_on_insert
AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_requests_record_inserts();

-- The change of one row, as the owner (the service can neither forge nor hide a
-- count), into this backend's shard of the row's hour.
CREATE FUNCTION inference_hourly_metrics_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO inference_hourly_metrics AS m (
        org_id, hour, shard, total_requests, completed_requests, failed_requests,
        rejected_requests, total_tokens, total_cost, latency_sum, latency_count
    )
    VALUES (
        new.org_id,
        date_trunc('hour', new.created_at, 'UTC'),
        (pg_backend_pid() % 4)::smallint,
        0,
        (new.status = 'completed')::int - (old.status = 'completed')::int,
        (new.status = 'failed')::int - (old.status = 'failed')::int,
        (new.status = 'rejected')::int - (old.status = 'rejected')::int,
        new.total_tokens - old.total_tokens,
        new.cost - old.cost,
        coalesce(new.latency_ms, 0) - coalesce(old.latency_ms, 0),
        (new.latency_ms IS NOT NULL)::int - (old.latency_ms IS NOT NULL)::int
    )
    ON CONFLICT (org_id, hour, shard) DO UPDATE SET
        completed_requests = m.completed_requests + excluded.completed_requests,
        failed_requests = m.failed_requests + excluded.failed_requests,
        rejected_requests = m.rejected_requests + excluded.rejected_requests,
        total_tokens = m.total_tokens + excluded.total_tokens,
        total_cost = m.total_cost + excluded.total_cost,
        latency_sum = m.latency_sum + excluded.latency_sum,
        latency_count = m.latency_count + excluded.latency_count;
    RETURN NULL;
END;
$$;

DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;
CREATE TRIGGER inference_hourly_metrics_on_update
AFTER UPDATE ON inference_requests
FOR EACH ROW
WHEN (
    (old.status, old.total_tokens, old.cost, old.latency_ms)
    IS DISTINCT FROM (new.status, new.total_tokens, new.cost, new.latency_ms)
)
EXECUTE FUNCTION inference_hourly_metrics_change();

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

DROP TRIGGER inference_requests_on_insert ON inference_requests;
CREATE TRIGGER inference_hourly_metrics_on_insert
AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();
CREATE TRIGGER inference_request_keys_on_insert
AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_request_keys_apply();
-- squawk-ignore ban-drop-function
DROP FUNCTION inference_requests_record_inserts();

DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;
CREATE TRIGGER inference_hourly_metrics_on_update
AFTER UPDATE ON inference_requests
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();
-- squawk-ignore ban-drop-function
DROP FUNCTION inference_hourly_metrics_change();
DROP TRIGGER inference_requests_keep_identity ON inference_requests;
-- squawk-ignore ban-drop-function
DROP FUNCTION inference_requests_refuse_identity_change();
