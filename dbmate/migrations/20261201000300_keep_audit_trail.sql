-- migrate:up

-- The audit trail outlives what it records and nobody rewrites it.
-- 1. Deleting an organization, application or user leaves its audit logs in
--    place with their ids intact: the foreign keys (which cascaded or set null)
--    give way to a check at insert time, so a new entry still cannot name an
--    organization that does not exist, nor an application or user of another
--    organization.
-- 2. UPDATE and TRUNCATE are refused for everyone (the owner included); a
--    DELETE needs a reason (llmcp_purge_audit_logs gives one) and is recorded
--    as an audit_logs_purged entry whoever runs it. The service role has no
--    UPDATE or DELETE privilege in the first place.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- squawk: the constraints are dropped, not added: nothing is scanned
-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_org_id_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_app_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_user_fkey;

-- One check per statement (the writer's batches included), over the statement's
-- new rows; SECURITY DEFINER so that it sees every organization whatever the
-- row-level security of the inserting role. It raises what the foreign keys
-- raised (SQLSTATE 23503 and the same constraint names), with no values.
CREATE FUNCTION audit_logs_check_references() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
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

CREATE TRIGGER audit_logs_check_references
AFTER INSERT ON audit_logs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_check_references();

-- UPDATE and TRUNCATE are refused outright; a DELETE only with a reason in
-- llmcp.audit_purge_reason (llmcp_purge_audit_logs sets it), and whoever
-- deletes, the next trigger records it: one audit_logs_purged entry per
-- organization with the count, the bound (a purge's), the time span of what
-- went, the role and the reason.
CREATE FUNCTION audit_logs_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('llmcp.audit_purge_reason', true), '') <> '' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % is refused (llmcp_purge_audit_logs removes old entries)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_logs_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_change();

-- SECURITY DEFINER: the entries are written as the owner, the only role that
-- may write audit_logs_purged entries (see audit_logs_check_purge_entries).
CREATE FUNCTION audit_logs_record_purge() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
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

CREATE TRIGGER audit_logs_record_purge
AFTER DELETE ON audit_logs
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_record_purge();

-- audit_logs_purged entries come from a purge only: no other role (the service
-- included) can forge one. Invoker rights, so that current_user is the writer.
CREATE FUNCTION audit_logs_check_purge_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER audit_logs_check_purge_entries
AFTER INSERT ON audit_logs
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_check_purge_entries();

-- Retention and legal erasure: delete an organization's entries older than
-- `before`, for `reason`; returns how many. The trigger above records it (a
-- purge that finds nothing is recorded here, with a count of 0). Only the
-- owner and members of llmcp_audit_admin may call it.
CREATE FUNCTION llmcp_purge_audit_logs(
    purge_org_id uuid, purge_before timestamptz, purge_reason text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
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

REVOKE EXECUTE ON FUNCTION llmcp_purge_audit_logs(uuid, timestamptz, text) FROM public;
GRANT EXECUTE ON FUNCTION llmcp_purge_audit_logs(uuid, timestamptz, text) TO llmcp_audit_admin;

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_purge_audit_logs(uuid, timestamptz, text);
DROP TRIGGER audit_logs_check_purge_entries ON audit_logs;
-- squawk-ignore ban-drop-function
DROP FUNCTION audit_logs_check_purge_entries();
DROP TRIGGER audit_logs_record_purge ON audit_logs;
-- squawk-ignore ban-drop-function
DROP FUNCTION audit_logs_record_purge();
DROP TRIGGER audit_logs_append_only ON audit_logs;
-- squawk-ignore ban-drop-function
DROP FUNCTION audit_logs_refuse_change();
DROP TRIGGER audit_logs_check_references ON audit_logs;
-- squawk-ignore ban-drop-function
DROP FUNCTION audit_logs_check_references();
-- entries of deleted organizations, applications or users would break the old keys
DELETE FROM audit_logs AS l
WHERE
    NOT EXISTS (
        SELECT FROM organizations AS o
        WHERE o.id = l.org_id
    );
UPDATE audit_logs AS l SET app_id = NULL
WHERE
    app_id IS NOT NULL
    AND NOT EXISTS (
        SELECT FROM applications AS a
        WHERE a.org_id = l.org_id AND a.id = l.app_id
    );
UPDATE audit_logs AS l SET user_id = NULL
WHERE
    user_id IS NOT NULL
    AND NOT EXISTS (
        SELECT FROM users AS u
        WHERE u.org_id = l.org_id AND u.id = l.user_id
    );
-- squawk: the keys of the original migration, back on the table they were built for
ALTER TABLE audit_logs
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT audit_logs_org_id_fkey FOREIGN KEY (org_id)
REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE audit_logs
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT audit_logs_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE SET NULL (app_id);
ALTER TABLE audit_logs
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT audit_logs_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE SET NULL (user_id);
