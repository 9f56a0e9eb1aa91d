-- migrate:up

-- The admission cache (llmcp/cache_async.py) keeps, in each service process,
-- the application of an API key hash, the user of a Cognito subject and the
-- applicable policies of (org, app, user). These triggers tell it what to drop:
-- a NOTIFY on the channel llmcp_cache, sent when the writing transaction commits
-- (never for one that rolls back). Payloads hold ids only, never a key hash or
-- a subject (any role may LISTEN):
--   a/<org_id>/<application id>   an application changed or went
--   u/<org_id>/<user id>          a user changed or went
--   p/<org_id>                    a policy of that organization changed, came or went
--   *                             a table was truncated: drop everything
-- Inserts of applications and users need no notice: the cache keeps no
-- "not found". PostgreSQL sends a payload repeated in one transaction once, so
-- a statement touching many policies of an organization costs one notice.
-- Cascades (an organization, application or user deleted) fire these triggers
-- on the rows they delete.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

CREATE FUNCTION llmcp_cache_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER applications_notify_cache
AFTER UPDATE OR DELETE ON applications
FOR EACH ROW EXECUTE FUNCTION llmcp_cache_notify('a');
CREATE TRIGGER applications_notify_cache_truncate
AFTER TRUNCATE ON applications
FOR EACH STATEMENT EXECUTE FUNCTION llmcp_cache_notify();

CREATE TRIGGER users_notify_cache
AFTER UPDATE OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION llmcp_cache_notify('u');
CREATE TRIGGER users_notify_cache_truncate
AFTER TRUNCATE ON users
FOR EACH STATEMENT EXECUTE FUNCTION llmcp_cache_notify();

CREATE TRIGGER policies_notify_cache
AFTER INSERT OR UPDATE OR DELETE ON policies
FOR EACH ROW EXECUTE FUNCTION llmcp_cache_notify('p');
CREATE TRIGGER policies_notify_cache_truncate
AFTER TRUNCATE ON policies
FOR EACH STATEMENT EXECUTE FUNCTION llmcp_cache_notify();

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

DROP TRIGGER policies_notify_cache_truncate ON policies;
DROP TRIGGER policies_notify_cache ON policies;
DROP TRIGGER users_notify_cache_truncate ON users;
DROP TRIGGER users_notify_cache ON users;
DROP TRIGGER applications_notify_cache_truncate ON applications;
DROP TRIGGER applications_notify_cache ON applications;
-- squawk: the down migration drops only what the up migration created.
-- squawk-ignore ban-drop-function
DROP FUNCTION llmcp_cache_notify();
