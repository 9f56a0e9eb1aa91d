"""Trigger designs for the rollup, applied as the owner on a clone of the template."""

COLS = ("org_id, hour, shard, total_requests, completed_requests, failed_requests, "
        "rejected_requests, total_tokens, total_cost, latency_sum, latency_count")
ADD = """ON CONFLICT (org_id, hour, shard) DO UPDATE SET
    total_requests = m.total_requests + excluded.total_requests,
    completed_requests = m.completed_requests + excluded.completed_requests,
    failed_requests = m.failed_requests + excluded.failed_requests,
    rejected_requests = m.rejected_requests + excluded.rejected_requests,
    total_tokens = m.total_tokens + excluded.total_tokens,
    total_cost = m.total_cost + excluded.total_cost,
    latency_sum = m.latency_sum + excluded.latency_sum,
    latency_count = m.latency_count + excluded.latency_count"""

DROP_IU = """DROP TRIGGER inference_hourly_metrics_on_insert ON inference_requests;
DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;
"""

ROW_INSERT = f"""
CREATE FUNCTION rollup_add_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO inference_hourly_metrics AS m ({COLS})
    VALUES (NEW.org_id, date_trunc('hour', NEW.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint, 1,
        (NEW.status = 'completed')::int, (NEW.status = 'failed')::int, (NEW.status = 'rejected')::int,
        NEW.total_tokens, NEW.cost, coalesce(NEW.latency_ms, 0), (NEW.latency_ms IS NOT NULL)::int)
    {ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_on_insert_row AFTER INSERT ON inference_requests
FOR EACH ROW EXECUTE FUNCTION rollup_add_row();
"""

ROW_UPDATE = f"""
CREATE FUNCTION rollup_change_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO inference_hourly_metrics AS m ({COLS})
    VALUES (NEW.org_id, date_trunc('hour', NEW.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint, 0,
        (NEW.status = 'completed')::int - (OLD.status = 'completed')::int,
        (NEW.status = 'failed')::int - (OLD.status = 'failed')::int,
        (NEW.status = 'rejected')::int - (OLD.status = 'rejected')::int,
        NEW.total_tokens - OLD.total_tokens, NEW.cost - OLD.cost,
        coalesce(NEW.latency_ms, 0) - coalesce(OLD.latency_ms, 0),
        (NEW.latency_ms IS NOT NULL)::int - (OLD.latency_ms IS NOT NULL)::int)
    {ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_on_update_row AFTER UPDATE ON inference_requests
FOR EACH ROW WHEN ((OLD.status, OLD.total_tokens, OLD.cost, OLD.latency_ms)
    IS DISTINCT FROM (NEW.status, NEW.total_tokens, NEW.cost, NEW.latency_ms))
EXECUTE FUNCTION rollup_change_row();
"""

STMT_FOLD_UPDATE = f"""
CREATE FUNCTION rollup_fold() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO inference_hourly_metrics AS m ({COLS})
    SELECT c.org_id, date_trunc('hour', c.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint,
        sum(c.sign),
        coalesce(sum(c.sign) FILTER (WHERE c.status = 'completed'), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.status = 'failed'), 0),
        coalesce(sum(c.sign) FILTER (WHERE c.status = 'rejected'), 0),
        sum(c.sign * c.total_tokens), sum(c.sign * c.cost),
        coalesce(sum(c.sign * c.latency_ms), 0), coalesce(sum(c.sign) FILTER (WHERE c.latency_ms IS NOT NULL), 0)
    FROM (
        SELECT 1 AS sign, n.org_id, n.created_at, n.status, n.total_tokens, n.cost, n.latency_ms FROM new_rows AS n
        UNION ALL
        SELECT -1, o.org_id, o.created_at, o.status, o.total_tokens, o.cost, o.latency_ms FROM old_rows AS o
    ) AS c
    GROUP BY c.org_id, date_trunc('hour', c.created_at, 'UTC')
    {ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_on_update_fold AFTER UPDATE ON inference_requests
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION rollup_fold();
"""

CURRENT_INSERT = """
CREATE TRIGGER inference_hourly_metrics_on_insert AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();
"""

VARIANTS = {
    "current": "",
    "none": DROP_IU,
    "no_update": "DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;",
    "row_row": DROP_IU + ROW_INSERT + ROW_UPDATE,
    "stmt_row": DROP_IU + CURRENT_INSERT + ROW_UPDATE,
    "stmt_fold": DROP_IU + CURRENT_INSERT + STMT_FOLD_UPDATE,
}


def _row_insert(name: str, attrs: str, body: str | None = None) -> str:
    body = body if body is not None else ROW_INSERT.split("BEGIN", 1)[1].split("END $$", 1)[0]
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {attrs} AS $$
BEGIN {body} END $$;
CREATE TRIGGER {name}_t AFTER INSERT ON inference_requests
FOR EACH ROW EXECUTE FUNCTION {name}();
"""


GRANT = "GRANT INSERT, UPDATE ON inference_hourly_metrics TO llmcp_app; ALTER TABLE inference_hourly_metrics DISABLE ROW LEVEL SECURITY;"
VARIANTS.update({
    "row_ins_only": DROP_IU + ROW_INSERT,
    "row_empty_def": DROP_IU + _row_insert("e1", "SECURITY DEFINER SET search_path FROM CURRENT", " RETURN NULL; "),
    "row_empty": DROP_IU + _row_insert("e2", "", " RETURN NULL; "),
    "row_plain": DROP_IU + GRANT + _row_insert("p1", ""),
    "row_def_noset": DROP_IU + _row_insert("p2", "SECURITY DEFINER"),
    "row_set_only": DROP_IU + GRANT + _row_insert("p3", "SET search_path FROM CURRENT"),
})

UPD_FIRST_INSERT = f"""
CREATE FUNCTION rollup_add_row2() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE
    this_hour timestamptz := date_trunc('hour', NEW.created_at, 'UTC');
    this_shard smallint := (pg_backend_pid() % 4)::smallint;
BEGIN
    UPDATE inference_hourly_metrics AS m SET
        total_requests = m.total_requests + 1,
        completed_requests = m.completed_requests + (NEW.status = 'completed')::int,
        failed_requests = m.failed_requests + (NEW.status = 'failed')::int,
        rejected_requests = m.rejected_requests + (NEW.status = 'rejected')::int,
        total_tokens = m.total_tokens + NEW.total_tokens,
        total_cost = m.total_cost + NEW.cost,
        latency_sum = m.latency_sum + coalesce(NEW.latency_ms, 0),
        latency_count = m.latency_count + (NEW.latency_ms IS NOT NULL)::int
    WHERE m.org_id = NEW.org_id AND m.hour = this_hour AND m.shard = this_shard;
    IF NOT FOUND THEN
        INSERT INTO inference_hourly_metrics AS m ({COLS})
        VALUES (NEW.org_id, this_hour, this_shard, 1,
            (NEW.status = 'completed')::int, (NEW.status = 'failed')::int, (NEW.status = 'rejected')::int,
            NEW.total_tokens, NEW.cost, coalesce(NEW.latency_ms, 0), (NEW.latency_ms IS NOT NULL)::int)
        {ADD};
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_on_insert_row2 AFTER INSERT ON inference_requests
FOR EACH ROW EXECUTE FUNCTION rollup_add_row2();
"""

UPD_FIRST_UPDATE = f"""
CREATE FUNCTION rollup_change_row2() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE inference_hourly_metrics AS m SET
        completed_requests = m.completed_requests + (NEW.status = 'completed')::int - (OLD.status = 'completed')::int,
        failed_requests = m.failed_requests + (NEW.status = 'failed')::int - (OLD.status = 'failed')::int,
        rejected_requests = m.rejected_requests + (NEW.status = 'rejected')::int - (OLD.status = 'rejected')::int,
        total_tokens = m.total_tokens + NEW.total_tokens - OLD.total_tokens,
        total_cost = m.total_cost + NEW.cost - OLD.cost,
        latency_sum = m.latency_sum + coalesce(NEW.latency_ms, 0) - coalesce(OLD.latency_ms, 0),
        latency_count = m.latency_count + (NEW.latency_ms IS NOT NULL)::int - (OLD.latency_ms IS NOT NULL)::int
    WHERE m.org_id = NEW.org_id AND m.hour = date_trunc('hour', NEW.created_at, 'UTC')
        AND m.shard = (pg_backend_pid() % 4)::smallint;
    RETURN NULL;
END $$;
CREATE TRIGGER rollup_on_update_row2 AFTER UPDATE ON inference_requests
FOR EACH ROW WHEN ((OLD.status, OLD.total_tokens, OLD.cost, OLD.latency_ms)
    IS DISTINCT FROM (NEW.status, NEW.total_tokens, NEW.cost, NEW.latency_ms))
EXECUTE FUNCTION rollup_change_row2();
"""
VARIANTS.update({
    "updfirst": DROP_IU + UPD_FIRST_INSERT + UPD_FIRST_UPDATE,
})

DROP_KEYS = "DROP TRIGGER inference_request_keys_on_insert ON inference_requests;\n"
MERGED_STMT = f"""
CREATE FUNCTION merged_insert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO inference_request_keys (org_id, request_id, id, created_at)
    SELECT n.org_id, n.request_id, n.id, n.created_at FROM new_rows AS n;
    INSERT INTO inference_hourly_metrics AS m ({COLS})
    SELECT n.org_id, date_trunc('hour', n.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint,
        count(*), count(*) FILTER (WHERE n.status = 'completed'), count(*) FILTER (WHERE n.status = 'failed'),
        count(*) FILTER (WHERE n.status = 'rejected'), sum(n.total_tokens), sum(n.cost),
        coalesce(sum(n.latency_ms), 0), count(n.latency_ms)
    FROM new_rows AS n
    GROUP BY n.org_id, date_trunc('hour', n.created_at, 'UTC')
    {ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER merged_insert AFTER INSERT ON inference_requests
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION merged_insert();
"""
MERGED_ROW = f"""
CREATE FUNCTION merged_insert_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO inference_request_keys (org_id, request_id, id, created_at)
    VALUES (NEW.org_id, NEW.request_id, NEW.id, NEW.created_at);
    INSERT INTO inference_hourly_metrics AS m ({COLS})
    VALUES (NEW.org_id, date_trunc('hour', NEW.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint, 1,
        (NEW.status = 'completed')::int, (NEW.status = 'failed')::int, (NEW.status = 'rejected')::int,
        NEW.total_tokens, NEW.cost, coalesce(NEW.latency_ms, 0), (NEW.latency_ms IS NOT NULL)::int)
    {ADD};
    RETURN NULL;
END $$;
CREATE TRIGGER merged_insert_row AFTER INSERT ON inference_requests
FOR EACH ROW EXECUTE FUNCTION merged_insert_row();
"""
VARIANTS.update({
    "merged_stmt": DROP_IU + DROP_KEYS + MERGED_STMT + ROW_UPDATE,
    "merged_row": DROP_IU + DROP_KEYS + MERGED_ROW + ROW_UPDATE,
    "stmt_upd_only": "DROP TRIGGER inference_hourly_metrics_on_insert ON inference_requests;",
    "row_upd_only": DROP_IU + ROW_UPDATE,
})

def _stmt(name: str, refs: bool, body: str) -> str:
    ref = "REFERENCING NEW TABLE AS new_rows" if refs else ""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN {body} RETURN NULL; END $$;
CREATE TRIGGER {name} AFTER INSERT ON inference_requests {ref}
FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""


CONST_UPSERT = f"""INSERT INTO inference_hourly_metrics AS m ({COLS})
VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 0, 1, 0, 0, 0, 0, 0, 0, 0) {ADD};"""
REF_UPSERT = f"""INSERT INTO inference_hourly_metrics AS m ({COLS})
SELECT n.org_id, date_trunc('hour', n.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint,
    count(*), count(*) FILTER (WHERE n.status = 'completed'), count(*) FILTER (WHERE n.status = 'failed'),
    count(*) FILTER (WHERE n.status = 'rejected'), sum(n.total_tokens), sum(n.cost),
    coalesce(sum(n.latency_ms), 0), count(n.latency_ms)
FROM new_rows AS n GROUP BY n.org_id, date_trunc('hour', n.created_at, 'UTC') {ADD};"""
REF_UPSERT_NOAGG = f"""INSERT INTO inference_hourly_metrics AS m ({COLS})
SELECT n.org_id, date_trunc('hour', n.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint,
    1, (n.status = 'completed')::int, (n.status = 'failed')::int, (n.status = 'rejected')::int,
    n.total_tokens, n.cost, coalesce(n.latency_ms, 0), (n.latency_ms IS NOT NULL)::int
FROM new_rows AS n {ADD};"""
VARIANTS.update({
    "s_norefs_const": DROP_IU + _stmt("s1", False, CONST_UPSERT),
    "s_refs_const": DROP_IU + _stmt("s2", True, CONST_UPSERT),
    "s_refs": DROP_IU + _stmt("s3", True, REF_UPSERT),
    "s_refs_noagg": DROP_IU + _stmt("s4", True, REF_UPSERT_NOAGG),
    "s_refs_empty": DROP_IU + _stmt("s5", True, ""),
})

BRANCH = f"""IF (SELECT count(*) FROM new_rows) = 1 THEN {REF_UPSERT_NOAGG} ELSE {REF_UPSERT} END IF;"""
BRANCH2 = f"""IF NOT EXISTS (SELECT FROM new_rows OFFSET 1) THEN {REF_UPSERT_NOAGG} ELSE {REF_UPSERT} END IF;"""


def _stmt_attrs(name: str, attrs: str, body: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT {attrs} AS $$
BEGIN {body} RETURN NULL; END $$;
CREATE TRIGGER {name} AFTER INSERT ON inference_requests REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""


VARIANTS.update({
    "s_agg_nohash": DROP_IU + _stmt_attrs("s6", "SET enable_hashagg = off", REF_UPSERT),
    "s_branch": DROP_IU + _stmt("s7", True, BRANCH),
    "s_branch2": DROP_IU + _stmt("s8", True, BRANCH2),
})

U_SINGLE = f"""INSERT INTO inference_hourly_metrics AS m ({COLS})
SELECT n.org_id, date_trunc('hour', n.created_at, 'UTC'), (pg_backend_pid() % 4)::smallint, 0,
    (n.status = 'completed')::int - (o.status = 'completed')::int,
    (n.status = 'failed')::int - (o.status = 'failed')::int,
    (n.status = 'rejected')::int - (o.status = 'rejected')::int,
    n.total_tokens - o.total_tokens, n.cost - o.cost,
    coalesce(n.latency_ms, 0) - coalesce(o.latency_ms, 0),
    (n.latency_ms IS NOT NULL)::int - (o.latency_ms IS NOT NULL)::int
FROM new_rows AS n CROSS JOIN old_rows AS o {ADD};"""
U_FOLD = STMT_FOLD_UPDATE.split("BEGIN", 1)[1].split("RETURN NULL", 1)[0]
U_BRANCH = f"""IF NOT EXISTS (SELECT FROM new_rows OFFSET 1) THEN {U_SINGLE} ELSE {U_FOLD} END IF;"""
U_STMT = f"""
CREATE FUNCTION u_branch() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN {U_BRANCH} RETURN NULL; END $$;
CREATE TRIGGER u_branch AFTER UPDATE ON inference_requests
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION u_branch();
"""
VARIANTS.update({
    "u_stmt_branch": "DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;" + U_STMT,
    "u_row": "DROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;" + ROW_UPDATE,
})

VARIANTS['before'] = "\n\nSET LOCAL lock_timeout = '5s';\nSET LOCAL statement_timeout = '1min';\n\nDROP TRIGGER inference_requests_on_insert ON inference_requests;\nCREATE TRIGGER inference_hourly_metrics_on_insert\nAFTER INSERT ON inference_requests\nREFERENCING NEW TABLE AS new_rows\nFOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();\nCREATE TRIGGER inference_request_keys_on_insert\nAFTER INSERT ON inference_requests\nREFERENCING NEW TABLE AS new_rows\nFOR EACH STATEMENT EXECUTE FUNCTION inference_request_keys_apply();\n-- squawk-ignore ban-drop-function\nDROP FUNCTION inference_requests_record_inserts();\n\nDROP TRIGGER inference_hourly_metrics_on_update ON inference_requests;\nCREATE TRIGGER inference_hourly_metrics_on_update\nAFTER UPDATE ON inference_requests\nREFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows\nFOR EACH STATEMENT EXECUTE FUNCTION inference_hourly_metrics_apply();\n-- squawk-ignore ban-drop-function\nDROP FUNCTION inference_hourly_metrics_change();\nDROP TRIGGER inference_requests_keep_identity ON inference_requests;\n-- squawk-ignore ban-drop-function\nDROP FUNCTION inference_requests_refuse_identity_change();\n"
VARIANTS['after'] = ''
