-- migrate:up

-- Check the existing rows against policies_config_type_check (added NOT VALID
-- by the previous migration). VALIDATE takes only a SHARE UPDATE EXCLUSIVE
-- lock: reads and writes go on meanwhile.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';

ALTER TABLE policies VALIDATE CONSTRAINT policies_config_type_check;

-- migrate:down

-- Back to the unvalidated constraint of the previous migration.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '1min';

-- squawk: re-added at once as the NOT VALID constraint it was before.
-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_config_type_check;

ALTER TABLE policies
ADD CONSTRAINT policies_config_type_check
CHECK ((config ->> 'type') IS NOT DISTINCT FROM policy_type::text) NOT VALID;
