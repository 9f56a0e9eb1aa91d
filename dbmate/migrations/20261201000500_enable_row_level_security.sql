-- migrate:up

-- Row-level security, the second wall behind every query's own org_id
-- predicate: for llmcp_app a tenant table shows only the rows of the
-- organization in the transaction-local setting llmcp.org_id, which llmcp sets
-- for each tenant-scoped call (in the same round trip as the statement). With
-- no tenant set, the tables show nothing. The owner (migrations, cascades of
-- the foreign keys, the SECURITY DEFINER triggers) is not subject to it.
--
-- Two lookups run before the tenant is known, each reaching exactly the row of
-- one global identity it names through its own setting, never a tenant's
-- other rows: llmcp.api_key_hash (applications.get_by_api_key_hash) and
-- llmcp.cognito_sub (users.get_by_cognito_sub).
--
-- organizations is not a tenant table: its rows are the tenants, and the
-- service lists and resolves them (list, get_by_slug) before any tenant is known.
-- COPY FROM is refused on a table with row-level security, so the audit writer
-- inserts its batches with INSERT ... SELECT.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- The tenant of the current transaction, or NULL (inlined into the policies).
CREATE FUNCTION llmcp_current_org() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('llmcp.org_id', true), '')::uuid
$$;

ALTER TABLE applications ENABLE ROW LEVEL SECURITY;
CREATE POLICY applications_tenant ON applications TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY applications_by_api_key_hash ON applications FOR SELECT TO llmcp_app
USING (api_key_hash = current_setting('llmcp.api_key_hash', true));
CREATE POLICY applications_readonly ON applications FOR SELECT TO llmcp_readonly USING (true);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_tenant ON users TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY users_by_cognito_sub ON users FOR SELECT TO llmcp_app
USING (cognito_sub = current_setting('llmcp.cognito_sub', true));
CREATE POLICY users_readonly ON users FOR SELECT TO llmcp_readonly USING (true);

ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
CREATE POLICY policies_tenant ON policies TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY policies_readonly ON policies FOR SELECT TO llmcp_readonly USING (true);

ALTER TABLE inference_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY inference_requests_tenant ON inference_requests TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY inference_requests_readonly ON inference_requests FOR SELECT TO llmcp_readonly
USING (true);

ALTER TABLE inference_hourly_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY inference_hourly_metrics_tenant ON inference_hourly_metrics FOR SELECT TO llmcp_app
USING (org_id = llmcp_current_org());
CREATE POLICY inference_hourly_metrics_readonly ON inference_hourly_metrics FOR SELECT
TO llmcp_readonly USING (true);

-- The audit trail: a tenant reads its own entries; appending is open to any
-- organization when no tenant is set (the audit writer's batches mix tenants)
-- and to the current tenant's only when one is.
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app
USING (org_id = llmcp_current_org());
CREATE POLICY audit_logs_append ON audit_logs FOR INSERT TO llmcp_app
-- (the comparison is NULL when no tenant is set)
WITH CHECK (coalesce(org_id = llmcp_current_org(), true));
CREATE POLICY audit_logs_readonly ON audit_logs FOR SELECT TO llmcp_readonly USING (true);

-- The rollup is written by its triggers as the owner: the service can neither
-- forge nor hide a count, and the triggers see every row they must adjust.
ALTER FUNCTION inference_hourly_metrics_apply() SECURITY DEFINER;
ALTER FUNCTION inference_hourly_metrics_apply() SET search_path FROM CURRENT;
ALTER FUNCTION inference_hourly_metrics_truncate() SECURITY DEFINER;
ALTER FUNCTION inference_hourly_metrics_truncate() SET search_path FROM CURRENT;

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

ALTER FUNCTION inference_hourly_metrics_truncate() SECURITY INVOKER;
ALTER FUNCTION inference_hourly_metrics_truncate() RESET search_path;
ALTER FUNCTION inference_hourly_metrics_apply() SECURITY INVOKER;
ALTER FUNCTION inference_hourly_metrics_apply() RESET search_path;
DROP POLICY audit_logs_readonly ON audit_logs;
DROP POLICY audit_logs_append ON audit_logs;
DROP POLICY audit_logs_tenant ON audit_logs;
ALTER TABLE audit_logs DISABLE ROW LEVEL SECURITY;
DROP POLICY inference_hourly_metrics_readonly ON inference_hourly_metrics;
DROP POLICY inference_hourly_metrics_tenant ON inference_hourly_metrics;
ALTER TABLE inference_hourly_metrics DISABLE ROW LEVEL SECURITY;
DROP POLICY inference_requests_readonly ON inference_requests;
DROP POLICY inference_requests_tenant ON inference_requests;
ALTER TABLE inference_requests DISABLE ROW LEVEL SECURITY;
DROP POLICY policies_readonly ON policies;
DROP POLICY policies_tenant ON policies;
ALTER TABLE policies DISABLE ROW LEVEL SECURITY;
DROP POLICY users_readonly ON users;
DROP POLICY users_by_cognito_sub ON users;
DROP POLICY users_tenant ON users;
ALTER TABLE users DISABLE ROW LEVEL SECURITY;
DROP POLICY applications_readonly ON applications;
DROP POLICY applications_by_api_key_hash ON applications;
DROP POLICY applications_tenant ON applications;
ALTER TABLE applications DISABLE ROW LEVEL SECURITY;
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_current_org();
