-- migrate:up

-- Three group roles (NOLOGIN): a login role becomes one of them with
-- `llmcp db grant LOGIN_ROLE --app|--readonly|--audit-admin`. Roles belong to the
-- whole server, not to one database, so they are created only when missing (a
-- server where they exist, or another database migrated at the same moment, is
-- fine) and the down migration leaves them in place. Creating them needs
-- CREATEROLE; a migrating role without it can run these migrations once an
-- administrator has created the three roles.
--   llmcp_app          the service: exactly the privileges its queries need, owns nothing
--   llmcp_readonly     reporting and replicas: SELECT on every llmcp table, every tenant
--   llmcp_audit_admin  retention and legal erasure: may call llmcp_purge_audit_logs only
-- The migrating role (the owner) keeps ownership of every object.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['llmcp_app', 'llmcp_readonly', 'llmcp_audit_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by the migration of another database
            END;
        END IF;
    END LOOP;
    EXECUTE format(
        'GRANT USAGE ON SCHEMA %I TO llmcp_app, llmcp_readonly, llmcp_audit_admin',
        current_schema()
    );
END;
$$;

-- Column lists on UPDATE: the service can change what its queries change and
-- nothing else (never a row's org_id, id or created_at; version and updated_at
-- are the touch trigger's).
GRANT SELECT, INSERT, DELETE ON organizations TO llmcp_app;
GRANT UPDATE (name, slug) ON organizations TO llmcp_app;
GRANT SELECT, INSERT, DELETE ON applications TO llmcp_app;
GRANT UPDATE (name, description, api_key_hash) ON applications TO llmcp_app;
GRANT SELECT, INSERT, DELETE ON users TO llmcp_app;
GRANT UPDATE (email, display_name, role) ON users TO llmcp_app;
GRANT SELECT, INSERT, DELETE ON policies TO llmcp_app;
GRANT UPDATE (name, policy_type, config, priority, enabled) ON policies TO llmcp_app;
-- the audit trail is append-only: no UPDATE, DELETE or TRUNCATE for the service
GRANT SELECT, INSERT ON audit_logs TO llmcp_app;
-- inference requests go when their application or organization goes (the
-- foreign keys' cascade, run as the owner), never by a DELETE of the service
GRANT SELECT, INSERT ON inference_requests TO llmcp_app;
GRANT UPDATE (
    status, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms, error_message,
    completed_at
) ON inference_requests TO llmcp_app;
-- the rollup is kept by its triggers alone (they run as the owner)
GRANT SELECT ON inference_hourly_metrics TO llmcp_app;

GRANT SELECT ON
organizations, applications, users, policies, audit_logs, inference_requests,
inference_hourly_metrics
TO llmcp_readonly;

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- The roles stay: other databases on the server may use them.
REVOKE ALL ON
organizations, applications, users, policies, audit_logs, inference_requests,
inference_hourly_metrics
FROM llmcp_app, llmcp_readonly;
