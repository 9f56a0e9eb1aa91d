-- migrate:up

-- Every tenant table's primary key is (org_id, id): an id is unique within its
-- organization, so creating a row with an explicit id that another tenant's row
-- already has succeeds instead of telling the caller, through a ConflictError,
-- that the id exists elsewhere. Every lookup by id already names the
-- organization, so each one is a primary-key lookup; the composite foreign
-- keys that keep children inside their organization now point at these keys.
-- (It is also the key a distribution by org_id needs, see docs/scale-out.md.)
--
-- squawk: the keys are rebuilt in this migration's transaction, under ACCESS
-- EXCLUSIVE locks, while the tables are small; on large live tables build the
-- unique indexes CONCURRENTLY first and swap them in with USING INDEX.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '10min';

-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_app_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_user_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_app_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_user_fkey;

-- squawk-ignore ban-drop-constraint
ALTER TABLE applications DROP CONSTRAINT applications_pkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE applications DROP CONSTRAINT applications_org_id_id_key;
ALTER TABLE applications
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT applications_pkey PRIMARY KEY (org_id, id);

-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_pkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_org_id_id_key;
ALTER TABLE users
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT users_pkey PRIMARY KEY (org_id, id);

-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_pkey;
ALTER TABLE policies
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT policies_pkey PRIMARY KEY (org_id, id);

-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey;
ALTER TABLE audit_logs
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (org_id, id);

-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_pkey;
ALTER TABLE inference_requests
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT inference_requests_pkey PRIMARY KEY (org_id, id);

-- squawk: the tables were just rebuilt in this transaction; the keys are checked as they are added
ALTER TABLE policies
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT policies_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE CASCADE;
ALTER TABLE policies
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT policies_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE SET NULL (user_id);

-- migrate:down

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '10min';

-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_app_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_user_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_app_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_user_fkey;
-- squawk-ignore ban-drop-constraint
ALTER TABLE inference_requests DROP CONSTRAINT inference_requests_pkey;
ALTER TABLE inference_requests
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT inference_requests_pkey PRIMARY KEY (id);
-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey;
ALTER TABLE audit_logs
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (id);
-- squawk-ignore ban-drop-constraint
ALTER TABLE policies DROP CONSTRAINT policies_pkey;
ALTER TABLE policies
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT policies_pkey PRIMARY KEY (id);
-- squawk-ignore ban-drop-constraint
ALTER TABLE users DROP CONSTRAINT users_pkey;
ALTER TABLE users
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE users
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT users_org_id_id_key UNIQUE (org_id, id);
-- squawk-ignore ban-drop-constraint
ALTER TABLE applications DROP CONSTRAINT applications_pkey;
ALTER TABLE applications
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT applications_pkey PRIMARY KEY (id);
ALTER TABLE applications
-- squawk-ignore adding-serial-primary-key-field, constraint-missing-not-valid, disallowed-unique-constraint
ADD CONSTRAINT applications_org_id_id_key UNIQUE (org_id, id);
ALTER TABLE policies
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT policies_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE CASCADE;
ALTER TABLE policies
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT policies_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_app_fkey FOREIGN KEY (org_id, app_id)
REFERENCES applications (org_id, id) ON DELETE CASCADE;
ALTER TABLE inference_requests
-- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
ADD CONSTRAINT inference_requests_user_fkey FOREIGN KEY (org_id, user_id)
REFERENCES users (org_id, id) ON DELETE SET NULL (user_id);
