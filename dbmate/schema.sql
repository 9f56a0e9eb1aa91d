\restrict dbmate

-- Dumped from database version 18.6
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: audit_action; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.audit_action AS ENUM (
    'organization_created',
    'organization_updated',
    'organization_deleted',
    'application_created',
    'application_updated',
    'application_deleted',
    'user_created',
    'user_updated',
    'user_deleted',
    'policy_created',
    'policy_updated',
    'policy_deleted',
    'policy_violation',
    'inference_requested',
    'inference_completed',
    'inference_failed',
    'inference_rejected',
    'audit_logs_purged'
);


--
-- Name: inference_status; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.inference_status AS ENUM (
    'pending',
    'completed',
    'failed',
    'rejected'
);


--
-- Name: policy_type; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.policy_type AS ENUM (
    'rate_limit',
    'token_budget',
    'cost_budget',
    'model_allowlist',
    'content_filter'
);


--
-- Name: user_role; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.user_role AS ENUM (
    'owner',
    'admin',
    'member',
    'viewer'
);


--
-- Name: audit_logs_check_purge_entries(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_logs_check_purge_entries() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT FROM new_rows AS n WHERE n.action = 'audit_logs_purged')
        AND NOT pg_has_role(
            current_user, (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = TG_RELID), 'USAGE'
        )
    THEN
        RAISE EXCEPTION 'audit_logs: audit_logs_purged entries are written by a purge only'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: audit_logs_check_references(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_logs_check_references() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
BEGIN
    IF EXISTS (
        SELECT FROM new_rows AS n
        WHERE n.action <> 'audit_logs_purged'
            AND NOT EXISTS (SELECT FROM organizations AS o WHERE o.id = n.org_id)
    ) THEN
        RAISE EXCEPTION 'audit_logs: the organization does not exist'
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'audit_logs_org_id_fkey';
    END IF;
    IF EXISTS (
        SELECT FROM new_rows AS n
        WHERE n.app_id IS NOT NULL
            AND NOT EXISTS (
                SELECT FROM applications AS a WHERE a.org_id = n.org_id AND a.id = n.app_id
            )
    ) THEN
        RAISE EXCEPTION 'audit_logs: the application does not exist in the organization'
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'audit_logs_app_fkey';
    END IF;
    IF EXISTS (
        SELECT FROM new_rows AS n
        WHERE n.user_id IS NOT NULL
            AND NOT EXISTS (
                SELECT FROM users AS u WHERE u.org_id = n.org_id AND u.id = n.user_id
            )
    ) THEN
        RAISE EXCEPTION 'audit_logs: the user does not exist in the organization'
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'audit_logs_user_fkey';
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: audit_logs_record_purge(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_logs_record_purge() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
BEGIN
    INSERT INTO audit_logs (org_id, action, resource_type, details)
    SELECT
        o.org_id,
        'audit_logs_purged',
        'audit_logs',
        jsonb_build_object(
            'purged', count(*),
            'before', nullif(current_setting('llmcp.audit_purge_before', true), '')::timestamptz,
            'oldest', min(o.created_at),
            'newest', max(o.created_at),
            'by', session_user,
            'reason', current_setting('llmcp.audit_purge_reason', true)
        )
    FROM old_rows AS o
    GROUP BY o.org_id;
    RETURN NULL;
END;
$$;


--
-- Name: audit_logs_refuse_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_logs_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('llmcp.audit_purge_reason', true), '') <> '' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % is refused (llmcp_purge_audit_logs removes old entries)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;


--
-- Name: audit_logs_refuse_direct_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_logs_refuse_direct_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs: % on a partition is refused (write through audit_logs)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;


--
-- Name: inference_hourly_metrics_apply(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inference_hourly_metrics_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
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


--
-- Name: inference_hourly_metrics_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inference_hourly_metrics_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
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


--
-- Name: inference_hourly_metrics_truncate(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inference_hourly_metrics_truncate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
BEGIN
    TRUNCATE inference_hourly_metrics;
    RETURN NULL;
END;
$$;


--
-- Name: inference_request_keys_apply(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inference_request_keys_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
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


--
-- Name: inference_requests_record_inserts(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inference_requests_record_inserts() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
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


--
-- Name: inference_requests_refuse_identity_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inference_requests_refuse_identity_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'inference_requests: org_id, created_at and request_id do not change'
    USING ERRCODE = 'feature_not_supported',
    HINT = 'insert a new request (and delete the old one) instead';
END;
$$;


--
-- Name: llmcp_cache_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_cache_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('llmcp_cache', '*');
    ELSIF TG_ARGV[0] = 'p' THEN
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('llmcp_cache', 'p/' || OLD.org_id);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('llmcp_cache', 'p/' || NEW.org_id);
        END IF;
    ELSE
        PERFORM pg_notify('llmcp_cache', TG_ARGV[0] || '/' || OLD.org_id || '/' || OLD.id);
        IF TG_OP = 'UPDATE' THEN
            PERFORM pg_notify('llmcp_cache', TG_ARGV[0] || '/' || NEW.org_id || '/' || NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: llmcp_create_month_partition(text, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_create_month_partition(parent text, month_start timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql
    SET "TimeZone" TO 'UTC'
    AS $$
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


--
-- Name: llmcp_create_partitions(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_create_partitions(ahead integer) RETURNS SETOF text
    LANGUAGE plpgsql
    SET "TimeZone" TO 'UTC'
    AS $$
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


--
-- Name: llmcp_current_org(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_current_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT nullif(current_setting('llmcp.org_id', true), '')::uuid
$$;


--
-- Name: llmcp_first_partition_month(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_first_partition_month(oldest timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    SET "TimeZone" TO 'UTC'
    AS $$
    SELECT greatest(
        least(date_trunc('month', oldest, 'UTC'), date_trunc('month', now(), 'UTC')),
        date_trunc('month', now(), 'UTC') - interval '24 months'
    )
$$;


--
-- Name: llmcp_partition_name(text, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_partition_name(parent text, month_start timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT parent || '_p' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM')
$$;


--
-- Name: llmcp_partitions_end(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_partitions_end(parent text) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    SET "TimeZone" TO 'UTC'
    AS $$
    SELECT max(
        (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
    )
    FROM pg_catalog.pg_inherits AS i
    INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
    WHERE i.inhparent = parent::regclass
$$;


--
-- Name: llmcp_prepare_partition(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_prepare_partition(parent text, name text) RETURNS void
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: llmcp_purge_audit_logs(uuid, timestamp with time zone, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_purge_audit_logs(purge_org_id uuid, purge_before timestamp with time zone, purge_reason text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
DECLARE
    purged bigint;
BEGIN
    IF purge_org_id IS NULL OR purge_before IS NULL OR coalesce(purge_reason, '') = '' THEN
        RAISE EXCEPTION 'llmcp_purge_audit_logs: org_id, before and a reason are required'
        USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('llmcp.audit_purge_reason', purge_reason, true);
    PERFORM set_config('llmcp.audit_purge_before', purge_before::text, true);
    -- the records of earlier purges stay: they are the trail of the trail
    DELETE FROM audit_logs
    WHERE org_id = purge_org_id AND created_at < purge_before AND action <> 'audit_logs_purged';
    GET DIAGNOSTICS purged = ROW_COUNT;
    IF purged = 0 THEN
        INSERT INTO audit_logs (org_id, action, resource_type, details)
        VALUES (
            purge_org_id, 'audit_logs_purged', 'audit_logs',
            jsonb_build_object(
                'purged', 0, 'before', purge_before, 'oldest', NULL, 'newest', NULL,
                'by', session_user, 'reason', purge_reason
            )
        );
    END IF;
    PERFORM set_config('llmcp.audit_purge_reason', '', true);
    PERFORM set_config('llmcp.audit_purge_before', '', true);
    RETURN purged;
END;
$$;


--
-- Name: llmcp_retire_partition(text, text, timestamp with time zone, timestamp with time zone, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.llmcp_retire_partition(parent text, name text, range_start timestamp with time zone, range_end timestamp with time zone, reason text) RETURNS bigint
    LANGUAGE plpgsql
    SET "TimeZone" TO 'UTC'
    AS $_$
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
$_$;


--
-- Name: touch_row_version(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.touch_row_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: applications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.applications (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    org_id uuid NOT NULL,
    name text NOT NULL,
    description text,
    api_key_hash text NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT applications_api_key_hash_check CHECK ((api_key_hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT applications_description_check CHECK ((char_length(description) <= 2000)),
    CONSTRAINT applications_name_check CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200)))
);


--
-- Name: audit_logs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_logs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    org_id uuid NOT NULL,
    app_id uuid,
    user_id uuid,
    action public.audit_action NOT NULL,
    resource_type text NOT NULL,
    resource_id uuid,
    request_id text,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    ip_address inet,
    user_agent text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT audit_logs_details_check CHECK ((jsonb_typeof(details) = 'object'::text)),
    CONSTRAINT audit_logs_request_id_check CHECK (((char_length(request_id) >= 1) AND (char_length(request_id) <= 200))),
    CONSTRAINT audit_logs_resource_type_check CHECK (((char_length(resource_type) >= 1) AND (char_length(resource_type) <= 100))),
    CONSTRAINT audit_logs_user_agent_check CHECK ((char_length(user_agent) <= 1000))
)
PARTITION BY RANGE (created_at);


--
-- Name: inference_hourly_metrics; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.inference_hourly_metrics (
    org_id uuid NOT NULL,
    hour timestamp with time zone NOT NULL,
    shard smallint NOT NULL,
    total_requests bigint DEFAULT 0 NOT NULL,
    completed_requests bigint DEFAULT 0 NOT NULL,
    failed_requests bigint DEFAULT 0 NOT NULL,
    rejected_requests bigint DEFAULT 0 NOT NULL,
    total_tokens bigint DEFAULT 0 NOT NULL,
    total_cost numeric DEFAULT 0 NOT NULL,
    latency_sum bigint DEFAULT 0 NOT NULL,
    latency_count bigint DEFAULT 0 NOT NULL
);


--
-- Name: inference_request_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.inference_request_keys (
    org_id uuid NOT NULL,
    request_id text NOT NULL,
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: inference_requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.inference_requests (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    org_id uuid NOT NULL,
    app_id uuid NOT NULL,
    user_id uuid,
    request_id text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    status public.inference_status DEFAULT 'pending'::public.inference_status NOT NULL,
    prompt_tokens integer DEFAULT 0 NOT NULL,
    completion_tokens integer DEFAULT 0 NOT NULL,
    total_tokens integer DEFAULT 0 NOT NULL,
    cost numeric(14,6) DEFAULT 0 NOT NULL,
    latency_ms integer,
    error_message text,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    CONSTRAINT inference_requests_completed_at_check CHECK ((completed_at >= created_at)),
    CONSTRAINT inference_requests_cost_check CHECK ((cost >= (0)::numeric)),
    CONSTRAINT inference_requests_error_message_check CHECK ((char_length(error_message) <= 4000)),
    CONSTRAINT inference_requests_latency_ms_check CHECK ((latency_ms >= 0)),
    CONSTRAINT inference_requests_model_check CHECK (((char_length(model) >= 1) AND (char_length(model) <= 200))),
    CONSTRAINT inference_requests_provider_check CHECK (((char_length(provider) >= 1) AND (char_length(provider) <= 100))),
    CONSTRAINT inference_requests_request_id_check CHECK (((char_length(request_id) >= 1) AND (char_length(request_id) <= 200))),
    CONSTRAINT inference_requests_tokens_check CHECK (((prompt_tokens >= 0) AND (completion_tokens >= 0))),
    CONSTRAINT inference_requests_total_tokens_check CHECK ((total_tokens = (prompt_tokens + completion_tokens)))
)
PARTITION BY RANGE (created_at);


--
-- Name: organizations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.organizations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    slug text NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT organizations_name_check CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200))),
    CONSTRAINT organizations_slug_check CHECK (((slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'::text) AND (char_length(slug) <= 63)))
);


--
-- Name: policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.policies (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    org_id uuid NOT NULL,
    app_id uuid,
    user_id uuid,
    name text NOT NULL,
    policy_type public.policy_type NOT NULL,
    config jsonb NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT policies_config_check CHECK ((jsonb_typeof(config) = 'object'::text)),
    CONSTRAINT policies_config_type_check CHECK ((NOT ((config ->> 'type'::text) IS DISTINCT FROM (policy_type)::text))),
    CONSTRAINT policies_name_check CHECK (((char_length(name) >= 1) AND (char_length(name) <= 200)))
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version character varying NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    org_id uuid NOT NULL,
    email text NOT NULL,
    cognito_sub text NOT NULL,
    display_name text,
    role public.user_role DEFAULT 'member'::public.user_role NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    email_key text NOT NULL,
    CONSTRAINT users_cognito_sub_check CHECK (((char_length(cognito_sub) >= 1) AND (char_length(cognito_sub) <= 128))),
    CONSTRAINT users_display_name_check CHECK ((char_length(display_name) <= 200)),
    CONSTRAINT users_email_check CHECK (((email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'::text) AND (char_length(email) <= 320))),
    CONSTRAINT users_email_key_check CHECK (((char_length(email_key) >= 1) AND (char_length(email_key) <= 1000)))
);


--
-- Name: applications applications_api_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.applications
    ADD CONSTRAINT applications_api_key_hash_key UNIQUE (api_key_hash);


--
-- Name: applications applications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.applications
    ADD CONSTRAINT applications_pkey PRIMARY KEY (org_id, id);


--
-- Name: audit_logs audit_logs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_logs
    ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (org_id, id, created_at);


--
-- Name: inference_hourly_metrics inference_hourly_metrics_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inference_hourly_metrics
    ADD CONSTRAINT inference_hourly_metrics_pkey PRIMARY KEY (org_id, hour, shard);


--
-- Name: inference_request_keys inference_request_keys_org_id_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inference_request_keys
    ADD CONSTRAINT inference_request_keys_org_id_id_key UNIQUE (org_id, id);


--
-- Name: inference_requests inference_requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inference_requests
    ADD CONSTRAINT inference_requests_pkey PRIMARY KEY (org_id, id, created_at);


--
-- Name: inference_request_keys inference_requests_org_id_request_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inference_request_keys
    ADD CONSTRAINT inference_requests_org_id_request_id_key PRIMARY KEY (org_id, request_id);


--
-- Name: organizations organizations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.organizations
    ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);


--
-- Name: organizations organizations_slug_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.organizations
    ADD CONSTRAINT organizations_slug_key UNIQUE (slug);


--
-- Name: policies policies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policies
    ADD CONSTRAINT policies_pkey PRIMARY KEY (org_id, id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: users users_cognito_sub_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_cognito_sub_key UNIQUE (cognito_sub);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (org_id, id);


--
-- Name: applications_org_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX applications_org_id_created_at_idx ON public.applications USING btree (org_id, created_at DESC, id DESC);


--
-- Name: audit_logs_app_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_app_id_created_at_idx ON ONLY public.audit_logs USING btree (app_id, created_at DESC, id DESC);


--
-- Name: audit_logs_org_id_action_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_org_id_action_created_at_idx ON ONLY public.audit_logs USING btree (org_id, action, created_at DESC, id DESC);


--
-- Name: audit_logs_org_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_org_id_created_at_idx ON ONLY public.audit_logs USING btree (org_id, created_at DESC, id DESC);


--
-- Name: audit_logs_org_id_request_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_org_id_request_id_idx ON ONLY public.audit_logs USING btree (org_id, request_id);


--
-- Name: audit_logs_user_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_logs_user_id_created_at_idx ON ONLY public.audit_logs USING btree (user_id, created_at DESC, id DESC);


--
-- Name: inference_requests_app_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inference_requests_app_id_created_at_idx ON ONLY public.inference_requests USING btree (app_id, created_at DESC, id DESC);


--
-- Name: inference_requests_org_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inference_requests_org_id_created_at_idx ON ONLY public.inference_requests USING btree (org_id, created_at DESC, id DESC);


--
-- Name: inference_requests_org_id_status_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inference_requests_org_id_status_created_at_idx ON ONLY public.inference_requests USING btree (org_id, status, created_at DESC, id DESC);


--
-- Name: inference_requests_user_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inference_requests_user_id_created_at_idx ON ONLY public.inference_requests USING btree (user_id, created_at DESC, id DESC);


--
-- Name: policies_app_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX policies_app_id_created_at_idx ON public.policies USING btree (app_id, created_at DESC, id DESC);


--
-- Name: policies_enabled_org_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX policies_enabled_org_id_idx ON public.policies USING btree (org_id, app_id, user_id) WHERE enabled;


--
-- Name: policies_org_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX policies_org_id_created_at_idx ON public.policies USING btree (org_id, created_at DESC, id DESC);


--
-- Name: policies_user_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX policies_user_id_created_at_idx ON public.policies USING btree (user_id, created_at DESC, id DESC);


--
-- Name: users_org_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_org_id_created_at_idx ON public.users USING btree (org_id, created_at DESC, id DESC);


--
-- Name: users_org_id_email_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_org_id_email_key ON public.users USING btree (org_id, email_key);


--
-- Name: applications applications_notify_cache; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER applications_notify_cache AFTER DELETE OR UPDATE ON public.applications FOR EACH ROW EXECUTE FUNCTION public.llmcp_cache_notify('a');


--
-- Name: applications applications_notify_cache_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER applications_notify_cache_truncate AFTER TRUNCATE ON public.applications FOR EACH STATEMENT EXECUTE FUNCTION public.llmcp_cache_notify();


--
-- Name: applications applications_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER applications_touch BEFORE UPDATE ON public.applications FOR EACH ROW EXECUTE FUNCTION public.touch_row_version();


--
-- Name: audit_logs audit_logs_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_logs_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.audit_logs FOR EACH STATEMENT EXECUTE FUNCTION public.audit_logs_refuse_change();


--
-- Name: audit_logs audit_logs_check_purge_entries; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_logs_check_purge_entries AFTER INSERT ON public.audit_logs REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_logs_check_purge_entries();


--
-- Name: audit_logs audit_logs_check_references; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_logs_check_references AFTER INSERT ON public.audit_logs REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_logs_check_references();


--
-- Name: audit_logs audit_logs_record_purge; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_logs_record_purge AFTER DELETE ON public.audit_logs REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_logs_record_purge();


--
-- Name: inference_requests inference_hourly_metrics_on_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_hourly_metrics_on_delete AFTER DELETE ON public.inference_requests REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.inference_hourly_metrics_apply();


--
-- Name: inference_requests inference_hourly_metrics_on_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_hourly_metrics_on_truncate AFTER TRUNCATE ON public.inference_requests FOR EACH STATEMENT EXECUTE FUNCTION public.inference_hourly_metrics_truncate();


--
-- Name: inference_requests inference_hourly_metrics_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_hourly_metrics_on_update AFTER UPDATE ON public.inference_requests FOR EACH ROW WHEN (((((old.status IS DISTINCT FROM new.status) OR (old.total_tokens IS DISTINCT FROM new.total_tokens)) OR (old.cost IS DISTINCT FROM new.cost)) OR (old.latency_ms IS DISTINCT FROM new.latency_ms))) EXECUTE FUNCTION public.inference_hourly_metrics_change();


--
-- Name: inference_requests inference_request_keys_on_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_request_keys_on_delete AFTER DELETE ON public.inference_requests REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.inference_request_keys_apply();


--
-- Name: inference_requests inference_request_keys_on_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_request_keys_on_truncate AFTER TRUNCATE ON public.inference_requests FOR EACH STATEMENT EXECUTE FUNCTION public.inference_request_keys_apply();


--
-- Name: inference_requests inference_requests_keep_identity; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_requests_keep_identity BEFORE UPDATE OF org_id, created_at, request_id ON public.inference_requests FOR EACH ROW WHEN ((((old.org_id IS DISTINCT FROM new.org_id) OR (old.created_at IS DISTINCT FROM new.created_at)) OR (old.request_id IS DISTINCT FROM new.request_id))) EXECUTE FUNCTION public.inference_requests_refuse_identity_change();


--
-- Name: inference_requests inference_requests_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_requests_on_insert AFTER INSERT ON public.inference_requests REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.inference_requests_record_inserts();


--
-- Name: inference_requests inference_requests_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inference_requests_touch BEFORE UPDATE ON public.inference_requests FOR EACH ROW EXECUTE FUNCTION public.touch_row_version();


--
-- Name: organizations organizations_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER organizations_touch BEFORE UPDATE ON public.organizations FOR EACH ROW EXECUTE FUNCTION public.touch_row_version();


--
-- Name: policies policies_notify_cache; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER policies_notify_cache AFTER INSERT OR DELETE OR UPDATE ON public.policies FOR EACH ROW EXECUTE FUNCTION public.llmcp_cache_notify('p');


--
-- Name: policies policies_notify_cache_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER policies_notify_cache_truncate AFTER TRUNCATE ON public.policies FOR EACH STATEMENT EXECUTE FUNCTION public.llmcp_cache_notify();


--
-- Name: policies policies_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER policies_touch BEFORE UPDATE ON public.policies FOR EACH ROW EXECUTE FUNCTION public.touch_row_version();


--
-- Name: users users_notify_cache; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_notify_cache AFTER DELETE OR UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION public.llmcp_cache_notify('u');


--
-- Name: users users_notify_cache_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_notify_cache_truncate AFTER TRUNCATE ON public.users FOR EACH STATEMENT EXECUTE FUNCTION public.llmcp_cache_notify();


--
-- Name: users users_touch; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_touch BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION public.touch_row_version();


--
-- Name: applications applications_org_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.applications
    ADD CONSTRAINT applications_org_id_fkey FOREIGN KEY (org_id) REFERENCES public.organizations(id) ON DELETE CASCADE;


--
-- Name: inference_requests inference_requests_app_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.inference_requests
    ADD CONSTRAINT inference_requests_app_fkey FOREIGN KEY (org_id, app_id) REFERENCES public.applications(org_id, id) ON DELETE CASCADE;


--
-- Name: inference_requests inference_requests_org_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.inference_requests
    ADD CONSTRAINT inference_requests_org_id_fkey FOREIGN KEY (org_id) REFERENCES public.organizations(id) ON DELETE CASCADE;


--
-- Name: inference_requests inference_requests_user_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.inference_requests
    ADD CONSTRAINT inference_requests_user_fkey FOREIGN KEY (org_id, user_id) REFERENCES public.users(org_id, id) ON DELETE SET NULL (user_id);


--
-- Name: policies policies_app_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policies
    ADD CONSTRAINT policies_app_fkey FOREIGN KEY (org_id, app_id) REFERENCES public.applications(org_id, id) ON DELETE CASCADE;


--
-- Name: policies policies_org_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policies
    ADD CONSTRAINT policies_org_id_fkey FOREIGN KEY (org_id) REFERENCES public.organizations(id) ON DELETE CASCADE;


--
-- Name: policies policies_user_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policies
    ADD CONSTRAINT policies_user_fkey FOREIGN KEY (org_id, user_id) REFERENCES public.users(org_id, id) ON DELETE CASCADE;


--
-- Name: users users_org_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_org_id_fkey FOREIGN KEY (org_id) REFERENCES public.organizations(id) ON DELETE CASCADE;


--
-- Name: applications; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.applications ENABLE ROW LEVEL SECURITY;

--
-- Name: applications applications_by_api_key_hash; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY applications_by_api_key_hash ON public.applications FOR SELECT TO llmcp_app USING ((api_key_hash = current_setting('llmcp.api_key_hash'::text, true)));


--
-- Name: applications applications_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY applications_readonly ON public.applications FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: applications applications_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY applications_tenant ON public.applications TO llmcp_app USING ((org_id = public.llmcp_current_org())) WITH CHECK ((org_id = public.llmcp_current_org()));


--
-- Name: audit_logs; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.audit_logs ENABLE ROW LEVEL SECURITY;

--
-- Name: audit_logs audit_logs_append; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY audit_logs_append ON public.audit_logs FOR INSERT TO llmcp_app WITH CHECK (COALESCE((org_id = public.llmcp_current_org()), true));


--
-- Name: audit_logs audit_logs_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY audit_logs_readonly ON public.audit_logs FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: audit_logs audit_logs_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY audit_logs_tenant ON public.audit_logs FOR SELECT TO llmcp_app USING ((org_id = public.llmcp_current_org()));


--
-- Name: inference_hourly_metrics; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.inference_hourly_metrics ENABLE ROW LEVEL SECURITY;

--
-- Name: inference_hourly_metrics inference_hourly_metrics_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY inference_hourly_metrics_readonly ON public.inference_hourly_metrics FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: inference_hourly_metrics inference_hourly_metrics_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY inference_hourly_metrics_tenant ON public.inference_hourly_metrics FOR SELECT TO llmcp_app USING ((org_id = public.llmcp_current_org()));


--
-- Name: inference_request_keys; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.inference_request_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: inference_request_keys inference_request_keys_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY inference_request_keys_readonly ON public.inference_request_keys FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: inference_request_keys inference_request_keys_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY inference_request_keys_tenant ON public.inference_request_keys FOR SELECT TO llmcp_app USING ((org_id = public.llmcp_current_org()));


--
-- Name: inference_requests; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.inference_requests ENABLE ROW LEVEL SECURITY;

--
-- Name: inference_requests inference_requests_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY inference_requests_readonly ON public.inference_requests FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: inference_requests inference_requests_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY inference_requests_tenant ON public.inference_requests TO llmcp_app USING ((org_id = public.llmcp_current_org())) WITH CHECK ((org_id = public.llmcp_current_org()));


--
-- Name: policies; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.policies ENABLE ROW LEVEL SECURITY;

--
-- Name: policies policies_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY policies_readonly ON public.policies FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: policies policies_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY policies_tenant ON public.policies TO llmcp_app USING ((org_id = public.llmcp_current_org())) WITH CHECK ((org_id = public.llmcp_current_org()));


--
-- Name: users; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;

--
-- Name: users users_by_cognito_sub; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY users_by_cognito_sub ON public.users FOR SELECT TO llmcp_app USING ((cognito_sub = current_setting('llmcp.cognito_sub'::text, true)));


--
-- Name: users users_readonly; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY users_readonly ON public.users FOR SELECT TO llmcp_readonly USING (true);


--
-- Name: users users_tenant; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY users_tenant ON public.users TO llmcp_app USING ((org_id = public.llmcp_current_org())) WITH CHECK ((org_id = public.llmcp_current_org()));


--
-- PostgreSQL database dump complete
--

\unrestrict dbmate


--
-- Dbmate schema migrations
--

INSERT INTO public.schema_migrations (version) VALUES
    ('20261126000100'),
    ('20261126000200'),
    ('20261126000300'),
    ('20261126000400'),
    ('20261126000500'),
    ('20261126000600'),
    ('20261126000700'),
    ('20261126000800'),
    ('20261126000900'),
    ('20261126000910'),
    ('20261201000100'),
    ('20261201000200'),
    ('20261201000300'),
    ('20261201000400'),
    ('20261201000500'),
    ('20261201000600'),
    ('20261201000700'),
    ('20261201000850'),
    ('20261201000900');
