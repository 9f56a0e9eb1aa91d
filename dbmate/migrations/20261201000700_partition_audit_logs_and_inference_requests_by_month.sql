-- migrate:up

-- audit_logs and inference_requests become RANGE partitions by month of created_at
-- (UTC month boundaries), so that retention detaches and drops a month instead of
-- deleting its rows (no WAL for every row, the space back at once).
--
-- Partitions: <table>_pYYYY_MM for one month each, and <table>_history for
-- everything before the oldest month (rows older than 24 months when this migration
-- runs, or none). No DEFAULT partition: DETACH ... CONCURRENTLY refuses to run while
-- one exists. A row whose month has no partition is refused (SQLSTATE 23514, which
-- llmcp reports as a ValidationError naming `llmcp db partitions create`): schedule
-- `llmcp db partitions create --ahead 3` (monthly, say) to keep months ready.
--
-- Keys include the partition key: PRIMARY KEY (org_id, id, created_at). An id is
-- also unique per organization within its month (a unique index on each partition:
-- a duplicate caller-supplied id of the same month is a conflict, as before; llmcp's
-- own ids are time-ordered UUIDs and never repeat). The audit writer's retry path
-- (INSERT ... ON CONFLICT DO NOTHING, no conflict target) skips exactly the rows an
-- earlier attempt stored: they carry the same id and created_at.
--
-- request_id stays unique per organization for all time, not per month: it is the
-- caller's idempotency key, and a retry just after midnight on the 1st must still
-- find the request of the 31st. A small non-partitioned table, inference_request_keys
-- (org_id, request_id) -> (id, created_at), kept by triggers in the same transaction,
-- holds that key (its primary key keeps the old constraint name); it also makes
-- get_by_id and get_by_request_id one key lookup plus one pruned partition lookup.
-- Its rows go with their request (delete, cascade, truncate, retention).
--
-- The rows move inside dbmate's transaction: new partitioned table, partitions for
-- the existing rows' months and three months ahead, INSERT ... SELECT, drop the old
-- table, then indexes, constraints, grants, row-level security and triggers on the
-- new one. The triggers are created after the move, so none fires for it: the
-- rollup already counts these rows, the audit trail's checks passed when they were
-- written, and nothing is deleted (the old table is dropped, which no trigger sees).
--
-- squawk: this rewrites both tables under ACCESS EXCLUSIVE locks, in one transaction:
-- writes wait until it commits. Instant on a new database; on a large live one,
-- run it in a quiet window (it copies every row once).
-- squawk-ignore require-concurrent-index-creation, ban-drop-table, ban-drop-constraint
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1h';
SET LOCAL timezone = 'UTC';

-- The name of a month's partition.
CREATE FUNCTION llmcp_partition_name(parent text, month_start timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT parent || '_p' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM')
$$;

-- Audit partitions are written through audit_logs only: a statement naming a
-- partition itself would skip the checks and records of the audit trail (statement
-- triggers of the parent fire only for statements on the parent). TRUNCATE is not
-- guarded here: a TRUNCATE of audit_logs fires its partitions' TRUNCATE triggers too
-- (the parent's trigger refuses it already), and a partition as a whole goes the way
-- retention takes it, by the owner (DETACH, DROP), which no trigger sees.
CREATE FUNCTION audit_logs_refuse_direct_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs: % on a partition is refused (write through audit_logs)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- What every partition carries besides what the parent gives it: the unique id of
-- its month and, on audit partitions, the guard above.
CREATE FUNCTION llmcp_prepare_partition(parent text, name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I (org_id, id)', name || '_org_id_id_key', name);
    IF parent = 'audit_logs' THEN
        EXECUTE format(
            'CREATE TRIGGER audit_logs_partition_guard BEFORE INSERT OR UPDATE OR DELETE '
            'ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_direct_change()',
            name
        );
    END IF;
END;
$$;

-- Create the month partition of parent starting at month_start unless it exists;
-- true when it was created.
CREATE FUNCTION llmcp_create_month_partition(parent text, month_start timestamptz)
RETURNS boolean
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
    low timestamptz := date_trunc('month', month_start, 'UTC');
    name text := llmcp_partition_name(parent, low);
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        name, parent, low, low + interval '1 month'
    );
    PERFORM llmcp_prepare_partition(parent, name);
    RETURN true;
END;
$$;

-- The end of the newest partition of parent (NULL when it has none).
CREATE FUNCTION llmcp_partitions_end(parent text) RETURNS timestamptz
LANGUAGE sql STABLE SET timezone = 'UTC' AS $$
    SELECT max(
        (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    )
    FROM pg_catalog.pg_inherits AS i
    INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
    WHERE i.inhparent = parent::regclass
$$;

-- Create the missing month partitions of both tables from their newest one (or
-- the current month) through the current month plus `ahead`; returns their names.
-- Idempotent: `llmcp db partitions create --ahead N` calls it.
CREATE FUNCTION llmcp_create_partitions(ahead integer) RETURNS SETOF text
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
    parent text;
    month timestamptz;
    last_month timestamptz := date_trunc('month', now(), 'UTC') + make_interval(months => ahead);
BEGIN
    IF ahead IS NULL OR ahead < 0 OR ahead > 120 THEN
        RAISE EXCEPTION 'llmcp_create_partitions: ahead must be 0..120'
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH parent IN ARRAY ARRAY['audit_logs', 'inference_requests'] LOOP
        month := coalesce(llmcp_partitions_end(parent), date_trunc('month', now(), 'UTC'));
        WHILE month <= last_month LOOP
            IF llmcp_create_month_partition(parent, month) THEN
                RETURN NEXT llmcp_partition_name(parent, month);
            END IF;
            month := month + interval '1 month';
        END LOOP;
    END LOOP;
END;
$$;

-- Retire a partition that was detached: in one transaction, what must go with it
-- goes, then it is dropped. An audit partition leaves one audit_logs_purged entry per
-- organization, as a purge does (count, bound, span, role, reason); an inference
-- partition takes its hours of the rollup (they count only its rows: hours never
-- cross a UTC month) and its request keys. range_end is the end of its range.
CREATE FUNCTION llmcp_retire_partition(
    parent text, name text, range_start timestamptz, range_end timestamptz, reason text
) RETURNS bigint
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
    gone bigint;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_inherits AS i WHERE i.inhrelid = name::regclass) THEN
        RAISE EXCEPTION 'llmcp_retire_partition: % is still attached', name
        USING ERRCODE = 'object_in_use';
    END IF;
    EXECUTE format('SELECT count(*) FROM %I', name) INTO gone;
    IF parent = 'audit_logs' THEN
        EXECUTE format(
            $q$INSERT INTO audit_logs (org_id, action, resource_type, details)
            SELECT
                o.org_id,
                'audit_logs_purged',
                'audit_logs',
                jsonb_build_object(
                    'purged', count(*),
                    'before', %L::timestamptz,
                    'oldest', min(o.created_at),
                    'newest', max(o.created_at),
                    'by', session_user,
                    'reason', %L::text
                )
            FROM %I AS o
            GROUP BY o.org_id$q$,
            range_end, reason, name
        );
    ELSIF parent = 'inference_requests' THEN
        DELETE FROM inference_hourly_metrics AS m
        WHERE m.hour >= coalesce(range_start, '-infinity') AND m.hour < range_end;
        EXECUTE format(
            'DELETE FROM inference_request_keys AS k USING %I AS r '
            'WHERE k.org_id = r.org_id AND k.request_id = r.request_id',
            name
        );
    ELSE
        RAISE EXCEPTION 'llmcp_retire_partition: % is not a partitioned llmcp table', parent
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('DROP TABLE %I', name);
    RETURN gone;
END;
$$;

REVOKE EXECUTE ON FUNCTION llmcp_create_partitions(integer) FROM public;
REVOKE EXECUTE ON FUNCTION llmcp_create_month_partition(text, timestamptz) FROM public;
REVOKE EXECUTE ON FUNCTION llmcp_prepare_partition(text, text) FROM public;
REVOKE EXECUTE ON FUNCTION llmcp_retire_partition(text, text, timestamptz, timestamptz, text)
FROM public;

-- The first month that gets a partition of its own: the month of the oldest row of
-- the last 24 months (else the current month); older rows, and back-dated ones
-- written later, go to <table>_history.
CREATE FUNCTION llmcp_first_partition_month(oldest timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET timezone = 'UTC' AS $$
    SELECT greatest(
        least(date_trunc('month', oldest, 'UTC'), date_trunc('month', now(), 'UTC')),
        date_trunc('month', now(), 'UTC') - interval '24 months'
    )
$$;

-- audit_logs -------------------------------------------------------------------

-- squawk: the old table is renamed to make room, copied and dropped in this transaction
-- squawk-ignore renaming-table
ALTER TABLE audit_logs RENAME TO audit_logs_unpartitioned;
CREATE TABLE audit_logs (
    LIKE audit_logs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
) PARTITION BY RANGE (created_at);

DO $$
DECLARE
    first_month timestamptz := llmcp_first_partition_month(
        (
            SELECT min(l.created_at) FROM audit_logs_unpartitioned AS l
            WHERE l.created_at >= date_trunc('month', now(), 'UTC') - interval '24 months'
        )
    );
BEGIN
    EXECUTE format(
        'CREATE TABLE audit_logs_history PARTITION OF audit_logs FOR VALUES FROM (MINVALUE) TO (%L)',
        first_month
    );
    PERFORM llmcp_prepare_partition('audit_logs', 'audit_logs_history');
    PERFORM llmcp_create_month_partition('audit_logs', m)
    FROM generate_series(
        first_month,
        date_trunc('month', greatest((SELECT max(l.created_at) FROM audit_logs_unpartitioned AS l), now()), 'UTC'),
        interval '1 month'
    ) AS m;
END;
$$;

INSERT INTO audit_logs SELECT * FROM audit_logs_unpartitioned;  -- a copy, the same columns in order -- noqa: LT09, AM04
-- squawk-ignore ban-drop-table
DROP TABLE audit_logs_unpartitioned;

ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (org_id, id, created_at);
CREATE INDEX audit_logs_org_id_created_at_idx ON audit_logs (org_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_app_id_created_at_idx ON audit_logs (app_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_user_id_created_at_idx ON audit_logs (user_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_id_action_created_at_idx
ON audit_logs (org_id, action, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_id_request_id_idx ON audit_logs (org_id, request_id);

CREATE TRIGGER audit_logs_check_references
AFTER INSERT ON audit_logs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_check_references();
CREATE TRIGGER audit_logs_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_change();
CREATE TRIGGER audit_logs_record_purge
AFTER DELETE ON audit_logs
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_record_purge();
CREATE TRIGGER audit_logs_check_purge_entries
AFTER INSERT ON audit_logs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_check_purge_entries();

ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app
USING (org_id = llmcp_current_org());
CREATE POLICY audit_logs_append ON audit_logs FOR INSERT TO llmcp_app
WITH CHECK (coalesce(org_id = llmcp_current_org(), true));
CREATE POLICY audit_logs_readonly ON audit_logs FOR SELECT TO llmcp_readonly USING (true);

GRANT SELECT, INSERT ON audit_logs TO llmcp_app;
GRANT SELECT ON audit_logs TO llmcp_readonly;

-- inference_requests -----------------------------------------------------------

-- squawk: the old table is renamed to make room, copied and dropped in this transaction
-- squawk-ignore renaming-table
ALTER TABLE inference_requests RENAME TO inference_requests_unpartitioned;
CREATE TABLE inference_requests (
    LIKE inference_requests_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
) PARTITION BY RANGE (created_at);

DO $$
DECLARE
    first_month timestamptz := llmcp_first_partition_month(
        (
            SELECT min(r.created_at) FROM inference_requests_unpartitioned AS r
            WHERE r.created_at >= date_trunc('month', now(), 'UTC') - interval '24 months'
        )
    );
BEGIN
    EXECUTE format(
        'CREATE TABLE inference_requests_history PARTITION OF inference_requests '
        'FOR VALUES FROM (MINVALUE) TO (%L)',
        first_month
    );
    PERFORM llmcp_prepare_partition('inference_requests', 'inference_requests_history');
    PERFORM llmcp_create_month_partition('inference_requests', m)
    FROM generate_series(
        first_month,
        date_trunc('month', greatest((SELECT max(r.created_at) FROM inference_requests_unpartitioned AS r), now()), 'UTC'),
        interval '1 month'
    ) AS m;
END;
$$;

INSERT INTO inference_requests SELECT * FROM inference_requests_unpartitioned;  -- a copy, the same columns in order -- noqa: LT09, AM04
-- squawk-ignore ban-drop-table
DROP TABLE inference_requests_unpartitioned;

-- The per-tenant key of a request, for all time (see the top of this file).
CREATE TABLE inference_request_keys (
    org_id uuid NOT NULL,
    request_id text NOT NULL,
    id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT inference_requests_org_id_request_id_key PRIMARY KEY (org_id, request_id),
    CONSTRAINT inference_request_keys_org_id_id_key UNIQUE (org_id, id)
);
INSERT INTO inference_request_keys (org_id, request_id, id, created_at)
SELECT
    r.org_id,
    r.request_id,
    r.id,
    r.created_at
FROM inference_requests AS r;

ALTER TABLE inference_requests
ADD CONSTRAINT inference_requests_pkey PRIMARY KEY (org_id, id, created_at);
CREATE INDEX inference_requests_org_id_created_at_idx
ON inference_requests (org_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_app_id_created_at_idx
ON inference_requests (app_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_user_id_created_at_idx
ON inference_requests (user_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_org_id_status_created_at_idx
ON inference_requests (org_id, status, created_at DESC, id DESC);
-- squawk: the tables were just built in this transaction; the keys are checked as they are added
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_org_id_fkey FOREIGN KEY (org_id)
REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE SET NULL (user_id);

CREATE TRIGGER inference_requests_touch
BEFORE UPDATE ON inference_requests
FOR EACH ROW EXECUTE FUNCTION touch_row_version();
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
CREATE TRIGGER inference_hourly_metrics_on_truncate
AFTER TRUNCATE ON inference_requests
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_truncate();

-- The keys, kept by the owner (SECURITY DEFINER) in the statement's transaction.
-- A request_id taken in the organization raises 23505 naming
-- inference_requests_org_id_request_id_key, as the unique constraint did.
CREATE FUNCTION inference_request_keys_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO inference_request_keys (org_id, request_id, id, created_at)
        SELECT n.org_id, n.request_id, n.id, n.created_at FROM new_rows AS n;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM inference_request_keys AS k
        USING old_rows AS o
        WHERE k.org_id = o.org_id AND k.request_id = o.request_id;
    ELSE
        TRUNCATE inference_request_keys;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inference_request_keys_on_insert
AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_request_keys_apply();
CREATE TRIGGER inference_request_keys_on_delete
AFTER DELETE ON inference_requests
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_request_keys_apply();
CREATE TRIGGER inference_request_keys_on_truncate
AFTER TRUNCATE ON inference_requests
FOR EACH STATEMENT EXECUTE FUNCTION inference_request_keys_apply();

ALTER TABLE inference_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY inference_requests_tenant ON inference_requests TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY inference_requests_readonly ON inference_requests FOR SELECT TO llmcp_readonly
USING (true);
ALTER TABLE inference_request_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY inference_request_keys_tenant ON inference_request_keys FOR SELECT TO llmcp_app
USING (org_id = llmcp_current_org());
CREATE POLICY inference_request_keys_readonly ON inference_request_keys FOR SELECT
TO llmcp_readonly USING (true);

GRANT SELECT, INSERT ON inference_requests TO llmcp_app;
GRANT UPDATE (
    status, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms, error_message,
    completed_at
) ON inference_requests TO llmcp_app;
GRANT SELECT ON inference_requests, inference_request_keys TO llmcp_readonly;
-- the keys are written by their triggers alone (they run as the owner)
GRANT SELECT ON inference_request_keys TO llmcp_app;

-- three months ahead of now, as `llmcp db partitions create` makes them
SELECT count(*) AS created FROM llmcp_create_partitions(3);  -- one target -- noqa: LT09

-- migrate:down

-- The tables go back to plain ones, rows included (every partition's), with the
-- keys, triggers, policies and grants of before. The triggers are created after
-- the move again, so none fires for it.
-- squawk-ignore require-concurrent-index-creation, ban-drop-table, ban-drop-constraint, ban-drop-function
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1h';

-- squawk: the old table is renamed to make room, copied and dropped in this transaction
-- squawk-ignore renaming-table
ALTER TABLE inference_requests RENAME TO inference_requests_partitioned;
CREATE TABLE inference_requests (
    LIKE inference_requests_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
);
INSERT INTO inference_requests SELECT * FROM inference_requests_partitioned;  -- a copy, the same columns in order -- noqa: LT09, AM04
-- squawk-ignore ban-drop-table
DROP TABLE inference_requests_partitioned;
-- squawk-ignore ban-drop-table
DROP TABLE inference_request_keys;
-- squawk-ignore ban-drop-function
DROP FUNCTION inference_request_keys_apply();
ALTER TABLE inference_requests ADD CONSTRAINT inference_requests_pkey PRIMARY KEY (org_id, id);
ALTER TABLE inference_requests
ADD CONSTRAINT inference_requests_org_id_request_id_key UNIQUE (org_id, request_id);
CREATE INDEX inference_requests_org_id_created_at_idx
ON inference_requests (org_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_app_id_created_at_idx
ON inference_requests (app_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_user_id_created_at_idx
ON inference_requests (user_id, created_at DESC, id DESC);
CREATE INDEX inference_requests_org_id_status_created_at_idx
ON inference_requests (org_id, status, created_at DESC, id DESC);
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_org_id_fkey FOREIGN KEY (org_id)
REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE SET NULL (user_id);
CREATE TRIGGER inference_requests_touch
BEFORE UPDATE ON inference_requests
FOR EACH ROW EXECUTE FUNCTION touch_row_version();
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
CREATE TRIGGER inference_hourly_metrics_on_truncate
AFTER TRUNCATE ON inference_requests
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_truncate();
ALTER TABLE inference_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY inference_requests_tenant ON inference_requests TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY inference_requests_readonly ON inference_requests FOR SELECT TO llmcp_readonly
USING (true);
GRANT SELECT, INSERT ON inference_requests TO llmcp_app;
GRANT UPDATE (
    status, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms, error_message,
    completed_at
) ON inference_requests TO llmcp_app;
GRANT SELECT ON inference_requests TO llmcp_readonly;

-- squawk: the old table is renamed to make room, copied and dropped in this transaction
-- squawk-ignore renaming-table
ALTER TABLE audit_logs RENAME TO audit_logs_partitioned;
CREATE TABLE audit_logs (
    LIKE audit_logs_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
);
INSERT INTO audit_logs SELECT * FROM audit_logs_partitioned;  -- a copy, the same columns in order -- noqa: LT09, AM04
-- squawk-ignore ban-drop-table
DROP TABLE audit_logs_partitioned;
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (org_id, id);
CREATE INDEX audit_logs_org_id_created_at_idx ON audit_logs (org_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_app_id_created_at_idx ON audit_logs (app_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_user_id_created_at_idx ON audit_logs (user_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_id_action_created_at_idx
ON audit_logs (org_id, action, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_id_request_id_idx ON audit_logs (org_id, request_id);
CREATE TRIGGER audit_logs_check_references
AFTER INSERT ON audit_logs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_check_references();
CREATE TRIGGER audit_logs_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_change();
CREATE TRIGGER audit_logs_record_purge
AFTER DELETE ON audit_logs
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_record_purge();
CREATE TRIGGER audit_logs_check_purge_entries
AFTER INSERT ON audit_logs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_check_purge_entries();
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app
USING (org_id = llmcp_current_org());
CREATE POLICY audit_logs_append ON audit_logs FOR INSERT TO llmcp_app
WITH CHECK (coalesce(org_id = llmcp_current_org(), true));
CREATE POLICY audit_logs_readonly ON audit_logs FOR SELECT TO llmcp_readonly USING (true);
GRANT SELECT, INSERT ON audit_logs TO llmcp_app;
GRANT SELECT ON audit_logs TO llmcp_readonly;

-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_first_partition_month(timestamptz);
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_retire_partition(text, text, timestamptz, timestamptz, text);
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_create_partitions(integer);
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_partitions_end(text);
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_create_month_partition(text, timestamptz);
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_prepare_partition(text, text);
-- squawk-ignore ban-drop-function
DROP FUNCTION audit_logs_refuse_direct_change();
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_partition_name(text, timestamptz);
