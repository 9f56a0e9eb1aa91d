-- migrate:up

-- A policy's config carries its own type tag ({"type": "rate_limit", ...});
-- it must agree with policy_type, or resolution would file the policy under
-- the wrong type (a config without a tag fails too). Added NOT VALID here (a brief lock, no scan) and validated
-- by the next migration, in a transaction of its own that does not block
-- reads or writes.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

ALTER TABLE policies
ADD CONSTRAINT policies_config_type_check
CHECK ((config ->> 'type') IS NOT DISTINCT FROM policy_type::text) NOT VALID;

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- squawk: the down migration drops only what the up migration added.
-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_config_type_check;
