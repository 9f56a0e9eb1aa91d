-- The ground-truth corpus of tests/codegen/test_corpus.py.
--
-- Each query says, in its doc lines, which construct it exercises
-- (`construct:`), which result columns can come back NULL (`null:`; every
-- other column never does) and which parameters accept None meaningfully
-- (`none:`; every other parameter does not). The test checks each of those
-- claims on the server, then compares codegen's types with them.

-- name: plain_columns(org_id)
-- construct: column
-- null: description
SELECT id, name, description, version FROM applications WHERE org_id = :org_id;

-- name: left_join(org_id)
-- construct: outer_join
-- null: app_id, app_name, app_description
SELECT o.id, o.name, a.id AS app_id, a.name AS app_name, a.description AS app_description
FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
WHERE o.id = :org_id;

-- name: right_join()
-- construct: outer_join
-- null: org_name, app_name
SELECT o.name AS org_name, a.name AS app_name, u.email
FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
RIGHT JOIN users AS u ON u.org_id = o.id AND u.role = 'viewer';

-- name: full_join()
-- construct: outer_join
-- null: app_name, user_email
SELECT a.name AS app_name, u.email AS user_email
FROM applications AS a
FULL JOIN users AS u ON u.id = a.id;

-- name: nested_join()
-- construct: nested_join
-- null: app_name, req_model
SELECT o.slug, a.name AS app_name, r.model AS req_model
FROM organizations AS o
LEFT JOIN (applications AS a JOIN inference_requests AS r ON r.app_id = a.id) ON a.org_id = o.id;

-- name: nested_join_inner_of_left()
-- construct: nested_join
-- null: app_name, user_email
SELECT o.slug, a.name AS app_name, u.email AS user_email
FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
LEFT JOIN users AS u ON u.org_id = a.org_id;

-- name: count_empty()$
-- construct: aggregate_empty
SELECT count(*) AS n FROM applications;

-- name: aggregates_empty()^
-- construct: aggregate_empty
-- null: total, newest, avg_version, names, joined
SELECT
    count(*) AS n,
    count(description) AS described,
    sum(version) AS total,
    max(created_at) AS newest,
    avg(version) AS avg_version,
    array_agg(name) AS names,
    string_agg(name, ',') AS joined,
    bool_or(version > 1) IS TRUE AS any_bumped
FROM applications;

-- name: aggregates_grouped()
-- construct: aggregate_group
-- null: min_description
SELECT
    org_id,
    count(*) AS n,
    sum(version) AS total,
    min(name) AS first_name,
    max(created_at) AS newest,
    avg(version) AS avg_version,
    array_agg(name ORDER BY name) AS names,
    string_agg(name, ',') AS joined,
    min(description) AS min_description
FROM applications
GROUP BY org_id;

-- name: aggregates_filter()
-- construct: filter
-- null: completed_tokens, max_latency
SELECT
    org_id,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    sum(total_tokens) FILTER (WHERE status = 'completed') AS completed_tokens,
    max(latency_ms) AS max_latency,
    sum(total_tokens) AS tokens
FROM inference_requests
GROUP BY org_id;

-- name: aggregates_having()
-- construct: aggregate_group
SELECT org_id, sum(total_tokens) AS tokens, bool_and(total_tokens >= 0) AS all_positive
FROM inference_requests
GROUP BY org_id
HAVING count(*) > 0;

-- name: aggregate_left_join_group()
-- construct: aggregate_group
-- null: first_app
SELECT o.id, count(a.id) AS apps, min(a.name) AS first_app
FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
GROUP BY o.id;

-- name: case_with_else()
-- construct: case
-- null: maybe
SELECT
    CASE WHEN description IS NULL THEN 'none' ELSE description END AS label,
    CASE WHEN version > 1 THEN 'bumped' END AS maybe,
    CASE version WHEN 1 THEN name ELSE api_key_hash END AS simple
FROM applications;

-- name: coalesce_forms()
-- construct: coalesce
-- null: still_null
SELECT
    coalesce(description, name) AS a,
    coalesce(description, 'x') AS b,
    coalesce(description, description) AS still_null
FROM applications;

-- name: casts()
-- construct: cast
-- null: described_len
SELECT
    version::text AS v,
    id::text AS id_text,
    length(description)::bigint AS described_len,
    created_at::date AS day
FROM applications;

-- name: insert_returning(new_id, org_id)<!
-- construct: returning
-- null: description
INSERT INTO applications (id, org_id, name, api_key_hash)
VALUES (:new_id, :org_id, 'new', repeat('e', 64))
RETURNING id, name, description, version, created_at;

-- name: update_returning(app_id)^
-- construct: returning
-- null: description
UPDATE applications SET version = version + 1 WHERE id = :app_id
RETURNING id, description, version;

-- name: delete_returning(app_id)^
-- construct: returning
-- null: description
DELETE FROM applications WHERE id = :app_id RETURNING id, description;

-- name: upsert_org(new_id, slug)<!
-- construct: upsert
INSERT INTO organizations (id, name, slug)
VALUES (:new_id, 'Upserted', :slug)
ON CONFLICT (slug) DO UPDATE SET name = excluded.name
RETURNING id, name, slug, version;

-- name: upsert_do_nothing(new_id, slug)^
-- construct: upsert
INSERT INTO organizations (id, name, slug)
VALUES (:new_id, 'Upserted', :slug)
ON CONFLICT (slug) DO NOTHING
RETURNING id, slug;

-- name: rollup()
-- construct: rollup
-- null: org_id, app_id, tokens
SELECT org_id, app_id, count(*) AS n, sum(total_tokens) AS tokens
FROM inference_requests
GROUP BY ROLLUP (org_id, app_id);

-- name: rollup_partial()
-- construct: rollup
-- null: app_id
SELECT org_id, app_id, count(*) AS n
FROM inference_requests
GROUP BY org_id, ROLLUP (app_id);

-- name: cube()
-- construct: cube
-- null: status, model
SELECT status, model, count(*) AS n
FROM inference_requests
GROUP BY CUBE (status, model);

-- name: grouping_sets()
-- construct: grouping_sets
-- null: provider, model
SELECT provider, model, count(*) AS n
FROM inference_requests
GROUP BY GROUPING SETS ((provider), (model), ());

-- name: grouping_sets_kept()
-- construct: grouping_sets
-- null: model
SELECT provider, model, count(*) AS n
FROM inference_requests
GROUP BY GROUPING SETS ((provider, model), (provider));

-- name: rollup_expression()
-- construct: rollup
-- null: day
SELECT created_at::date AS day, count(*) AS n
FROM inference_requests
GROUP BY ROLLUP (created_at::date);

-- name: grouping_fn()
-- construct: grouping
-- null: org_id
SELECT org_id, GROUPING(org_id) AS is_total, count(*) AS n
FROM inference_requests
GROUP BY ROLLUP (org_id);

-- name: subquery_from()
-- construct: subquery_from
-- null: description
SELECT s.id, s.name, s.description, s.n
FROM (SELECT id, name, description, 1 AS n FROM applications) AS s;

-- name: subquery_from_aggregate()
-- construct: subquery_from
-- null: total
SELECT s.org_id, s.n, s.total
FROM (
    SELECT o.id AS org_id, count(a.id) AS n, sum(a.version) AS total
    FROM organizations AS o LEFT JOIN applications AS a ON a.org_id = o.id
    GROUP BY o.id
) AS s;

-- name: subquery_from_left_joined()
-- construct: subquery_from
-- null: app_name
SELECT o.name, s.name AS app_name
FROM organizations AS o
LEFT JOIN (SELECT org_id, name FROM applications) AS s ON s.org_id = o.id;

-- name: subquery_column_aliases()
-- construct: subquery_from
SELECT s.a, s.b FROM (SELECT id, name FROM organizations) AS s (a, b);

-- name: cte_plain()
-- construct: cte
-- null: description
WITH apps AS (SELECT id, name, description FROM applications)
SELECT id, name, description FROM apps;

-- name: cte_aggregate()
-- construct: cte
-- null: latest
WITH per_org AS (
    SELECT org_id, count(*) AS n, max(completed_at) AS latest
    FROM inference_requests GROUP BY org_id
)
SELECT p.org_id, p.n, p.latest FROM per_org AS p;

-- name: cte_joined()
-- construct: cte
-- null: n
WITH per_org AS (SELECT org_id, count(*) AS n FROM applications GROUP BY org_id)
SELECT o.slug, p.n FROM organizations AS o LEFT JOIN per_org AS p ON p.org_id = o.id;

-- name: cte_chain()
-- construct: cte
WITH a AS (SELECT id, slug FROM organizations), b AS (SELECT id, upper(slug) AS s FROM a)
SELECT id, s FROM b;

-- name: cte_recursive(n)
-- construct: cte
-- null: parent
WITH RECURSIVE t (i, parent) AS (
    SELECT 1, NULL::int
    UNION ALL
    SELECT i + 1, i FROM t WHERE i < :n
)
SELECT i, parent FROM t;

-- name: cte_write(app_id)
-- construct: cte
-- null: description
WITH gone AS (DELETE FROM applications WHERE id = :app_id RETURNING id, description)
SELECT id, description FROM gone;

-- name: lateral_subquery()
-- construct: lateral
-- null: last_model
SELECT a.name, l.last_model, l.n
FROM applications AS a
LEFT JOIN LATERAL (
    SELECT max(r.model) AS last_model, count(*) AS n
    FROM inference_requests AS r WHERE r.app_id = a.id
) AS l ON true;

-- name: lateral_cross()
-- construct: lateral
SELECT a.name, l.model
FROM applications AS a
CROSS JOIN LATERAL (SELECT r.model FROM inference_requests AS r WHERE r.app_id = a.id) AS l;

-- name: lateral_left()
-- construct: lateral
-- null: model
SELECT a.name, l.model
FROM applications AS a
LEFT JOIN LATERAL (SELECT r.model FROM inference_requests AS r WHERE r.app_id = a.id) AS l
    ON true;

-- name: union_all()
-- construct: union
-- null: extra
SELECT name, description AS extra FROM applications
UNION ALL
SELECT slug, name FROM organizations;

-- name: union_distinct()
-- construct: union
SELECT name FROM applications UNION SELECT slug FROM organizations;

-- name: union_null_branch()
-- construct: union
-- null: d
SELECT name, NULL::text AS d FROM applications UNION SELECT slug, slug FROM organizations;

-- name: intersect()
-- construct: intersect
SELECT org_id, description FROM applications
INTERSECT
SELECT id, name FROM organizations;

-- name: intersect_one_side()
-- construct: intersect
SELECT org_id AS id FROM applications INTERSECT SELECT id FROM organizations;

-- name: intersect_both_nullable()
-- construct: intersect
-- null: d
SELECT description AS d FROM applications INTERSECT SELECT display_name FROM users;

-- name: except_plain()
-- construct: except
SELECT id, name FROM organizations
EXCEPT
SELECT org_id, description FROM applications;

-- name: except_left_nullable()
-- construct: except
-- null: d
SELECT description AS d FROM applications EXCEPT SELECT name FROM organizations;

-- name: values_named()
-- construct: values
-- null: label
SELECT v.n, v.label FROM (VALUES (1, 'one'), (2, NULL)) AS v (n, label);

-- name: values_bare()
-- construct: bare_values
VALUES (1, 'one'), (2, 'two');

-- name: values_bare_null()
-- construct: bare_values
-- null: column2
VALUES (1, 'one'), (2, NULL);

-- name: values_joined()
-- construct: values
SELECT o.slug, v.kind FROM organizations AS o CROSS JOIN (VALUES ('a'), ('b')) AS v (kind);

-- name: generate_series_plain(n)
-- construct: srf
SELECT g FROM generate_series(1, :n) AS g;

-- name: generate_series_column(n)
-- construct: srf
SELECT g.i FROM generate_series(1, :n) AS g (i);

-- name: generate_series_hours(since)
-- construct: srf
SELECT h AS hour FROM generate_series(:since::timestamptz, :since::timestamptz + interval '3 hours', interval '1 hour') AS h;

-- name: unnest_nullable()
-- construct: srf
-- null: x
SELECT x FROM unnest(ARRAY[1, NULL, 3]) AS x;

-- name: generate_series_left_join(n)
-- construct: srf
-- null: name
SELECT g, a.name
FROM generate_series(1, :n) AS g
LEFT JOIN applications AS a ON a.version = g;

-- name: functions_non_null()
-- construct: function
SELECT
    lower(name) AS lo,
    upper(name) AS up,
    length(name) AS len,
    char_length(name) AS clen,
    concat(name, description) AS cat,
    concat_ws('-', name, description) AS cat_ws,
    date_trunc('hour', created_at) AS hour,
    greatest(version, 2) AS g,
    least(version, 2) AS l,
    substr(name, 1, 2) AS sub,
    replace(name, 'a', 'b') AS rep,
    abs(version) AS a,
    round(version::numeric, 1) AS r,
    md5(name) AS m,
    trim(name) AS t,
    left(name, 1) AS lft,
    format('%s/%s', name, description) AS fmt,
    extract(epoch FROM created_at) AS epoch,
    to_char(created_at, 'YYYY') AS yr,
    jsonb_build_object('name', name) AS obj,
    now() AS at,
    current_timestamp AS ts,
    gen_random_uuid() AS fresh
FROM applications;

-- name: functions_nullable_args()
-- construct: function
-- null: lo, len, g, sub
SELECT
    lower(description) AS lo,
    length(description) AS len,
    greatest(description, NULL) AS g,
    substr(description, 1, 2) AS sub
FROM applications;

-- name: functions_nullable_anyway()
-- construct: nullable_function
-- null: ni, rm, ap, field, arr_len, ptr
SELECT
    nullif(name, 'Alpha app') AS ni,
    regexp_match(name, 'zzz') AS rm,
    array_position(ARRAY['x'], name) AS ap,
    jsonb_build_object('a', name) ->> 'b' AS field,
    array_length(ARRAY[]::int[], 1) AS arr_len,
    split_part(name, ' ', 1) AS sp,
    jsonb_build_object('a', 1) #>> '{b}' AS ptr
FROM applications;

-- name: json_access()
-- construct: nullable_function
-- null: k, kt, ks
SELECT details -> 'k' AS k, details ->> 'k' AS kt, jsonb_typeof(details) AS t,
       details -> 'k' ->> 'x' AS ks
FROM audit_logs;

-- name: predicates_non_null()
-- construct: predicate
SELECT
    version BETWEEN 1 AND 3 AS b,
    name LIKE 'A%' AS l,
    name ILIKE 'a%' AS il,
    name NOT LIKE 'x%' AS nl,
    version IN (1, 2) AS i,
    version NOT IN (1, 2) AS ni,
    name ~ '^A' AS re,
    name <> 'x' AND version > 0 AS both_true,
    NOT (version > 0) AS negated
FROM applications;

-- name: predicates_nullable()
-- construct: predicate
-- null: b, l, i, ni, e
SELECT
    length(description) BETWEEN 1 AND 3 AS b,
    description LIKE 'f%' AS l,
    description IN ('first', 'x') AS i,
    version NOT IN (5, NULL) AS ni,
    description = name AS e
FROM applications;

-- name: jsonb_predicates()
-- construct: predicate
SELECT details ? 'k' AS has_k, details @> '{}' AS contains, details ?| ARRAY['k'] AS any_k
FROM audit_logs;

-- name: distinct_from()
-- construct: distinct_from
SELECT
    description IS DISTINCT FROM name AS d,
    description IS NOT DISTINCT FROM NULL AS nd,
    description IS NULL AS n,
    (description = 'x') IS TRUE AS t,
    (description = 'x') IS NOT FALSE AS nf
FROM applications;

-- name: window_functions()
-- construct: window
-- null: prev, nxt, first_desc
SELECT
    row_number() OVER w AS rn,
    rank() OVER w AS rk,
    dense_rank() OVER w AS drk,
    percent_rank() OVER w AS pr,
    cume_dist() OVER w AS cd,
    ntile(2) OVER w AS nt,
    count(*) OVER w AS running,
    sum(version) OVER w AS running_sum,
    lag(name) OVER w AS prev,
    lead(name) OVER w AS nxt,
    first_value(description) OVER w AS first_desc,
    first_value(name) OVER w AS first_name
FROM applications
WINDOW w AS (PARTITION BY org_id ORDER BY created_at, id);

-- name: window_sum_frame()
-- construct: window
-- null: s
SELECT sum(version) OVER (ORDER BY id ROWS BETWEEN 1 FOLLOWING AND 1 FOLLOWING) AS s
FROM applications;

-- name: scalar_subquery()
-- construct: scalar_subquery
-- null: first_app
SELECT
    o.slug,
    (SELECT min(a.name) FROM applications AS a WHERE a.org_id = o.id) AS first_app,
    (SELECT count(*) FROM applications AS a WHERE a.org_id = o.id) AS n_apps,
    EXISTS (SELECT 1 FROM users AS u WHERE u.org_id = o.id) AS has_users
FROM organizations AS o;

-- name: fk_inner_join()
-- construct: fk_join
SELECT a.name, o.slug
FROM applications AS a
JOIN organizations AS o ON o.id = a.org_id;

-- name: fk_left_join()
-- construct: fk_join
SELECT a.name, o.slug
FROM applications AS a
LEFT JOIN organizations AS o ON o.id = a.org_id;

-- name: nullable_fk_left_join()
-- construct: fk_join
-- null: email
SELECT r.model, u.email
FROM inference_requests AS r
LEFT JOIN users AS u ON u.id = r.user_id;

-- name: where_is_not_null()
-- construct: is_not_null_where
SELECT description FROM applications WHERE description IS NOT NULL;

-- name: where_is_not_null_joined()
-- construct: is_not_null_where
SELECT a.description, r.latency_ms
FROM applications AS a
JOIN inference_requests AS r ON r.app_id = a.id
WHERE a.description IS NOT NULL AND r.latency_ms IS NOT NULL;

-- name: where_equals_implies_not_null()
-- construct: is_not_null_where
SELECT user_id FROM inference_requests WHERE user_id IS NOT NULL AND status = 'completed';

-- name: where_or_keeps_null()
-- construct: is_not_null_where
-- null: description
SELECT description FROM applications WHERE description IS NOT NULL OR version = 1;

-- name: arithmetic()
-- construct: column
-- null: latency_s
SELECT total_tokens * 2 AS double_tokens, latency_ms / 1000.0 AS latency_s, -version AS neg
FROM inference_requests;

-- name: string_concat()
-- construct: column
-- null: with_description
SELECT name || '!' AS shout, name || description AS with_description FROM applications;

-- name: enum_and_compare()
-- construct: column
SELECT role, role = 'admin' AS is_admin, role::text AS role_text FROM users;

-- name: array_constructors()
-- construct: column
SELECT ARRAY[name, description] AS pair, ARRAY(SELECT slug FROM organizations) AS slugs
FROM applications;

-- name: row_count_param(org_id)$
-- construct: aggregate_empty
SELECT count(*) FROM applications WHERE org_id = :org_id;

-- name: max_param(org_id)$
-- construct: aggregate_empty
-- null: max
SELECT max(version) FROM applications WHERE org_id = :org_id;

-- name: param_into_nullable_column(new_id, org_id, description)<!
-- construct: param_write
-- none: description
INSERT INTO applications (id, org_id, name, description, api_key_hash)
VALUES (:new_id, :org_id, 'p', :description, repeat('f', 64))
RETURNING id;

-- name: param_cast_into_nullable_column(new_id, org_id, ip_address)<!
-- construct: param_cast_write
-- none: ip_address
INSERT INTO audit_logs (id, org_id, action, resource_type, ip_address)
VALUES (:new_id, :org_id, 'user_created', 'user', :ip_address::inet)
RETURNING id;

-- name: param_cast_into_not_null_column(new_id, org_id, name)<!
-- construct: param_cast_write
INSERT INTO applications (id, org_id, name, api_key_hash)
VALUES (:new_id, :org_id, :name::text, repeat('a', 64))
RETURNING id;

-- name: param_insert_select(new_id, description, org_id)<!
-- construct: param_insert_select
-- none: description
-- null: description
INSERT INTO applications (id, org_id, name, description, api_key_hash)
SELECT :new_id, o.id, 'sel', :description, repeat('b', 64)
FROM organizations AS o WHERE o.id = :org_id
RETURNING id, description;

-- name: param_update_set(app_id, description)!
-- construct: param_write
-- none: description
UPDATE applications SET description = :description WHERE id = :app_id;

-- name: param_optional_filter(org_id, role)
-- construct: param_optional_filter
-- none: role
SELECT id, email FROM users WHERE org_id = :org_id AND (:role::user_role IS NULL OR role = :role);

-- name: param_optional_filter_text(name)
-- construct: param_optional_filter
-- none: name
SELECT id FROM applications WHERE :name::text IS NULL OR name = :name;

-- name: param_not_distinct(user_id)
-- construct: param_distinct_from
-- none: user_id
SELECT id FROM inference_requests WHERE user_id IS NOT DISTINCT FROM :user_id;

-- name: param_compared(name)
-- construct: param_compared
SELECT id FROM applications WHERE name = :name;

-- name: param_coalesce(name)
-- construct: coalesce
-- none: name
SELECT coalesce(:name, 'default') AS chosen;

-- name: param_jsonb_default(new_id, org_id, details)<!
-- construct: jsonb_param
-- none: details
INSERT INTO audit_logs (id, org_id, action, resource_type, details)
VALUES (:new_id, :org_id, 'user_created', 'user', coalesce(:details::jsonb, '{}'))
RETURNING id, details;

-- name: param_jsonb_into_nullable(details)
-- construct: jsonb_param
-- none: details
-- null: t
SELECT jsonb_typeof(:details::jsonb) AS t;

-- name: executemany(app_id, description)*!
-- construct: executemany
-- none: description
UPDATE applications SET description = :description WHERE id = :app_id;

-- name: executemany_insert(new_id, org_id)*!
-- construct: executemany
INSERT INTO applications (id, org_id, name, api_key_hash)
VALUES (:new_id, :org_id, 'many', repeat('c', 64));

-- name: exists_value(org_id)$
-- construct: scalar_subquery
SELECT EXISTS (SELECT 1 FROM applications WHERE org_id = :org_id) AS present;

-- name: metrics_by_hour(org_id)
-- construct: aggregate_group
SELECT hour, sum(total_requests) AS requests, sum(total_cost) AS cost
FROM inference_hourly_metrics
WHERE org_id = :org_id
GROUP BY hour;

-- name: distinct_on()
-- construct: column
-- null: description
SELECT DISTINCT ON (org_id) org_id, description FROM applications ORDER BY org_id, created_at;

-- The cases below try to trick the inference into an unsafe claim.

-- name: group_by_empty_set()
-- construct: aggregate_empty
-- null: total
SELECT sum(version) AS total, count(*) AS n FROM applications GROUP BY ();

-- name: rollup_where_not_null()
-- construct: rollup
-- null: app_id
SELECT app_id, count(*) AS n FROM inference_requests WHERE app_id IS NOT NULL
GROUP BY ROLLUP (app_id);

-- name: rollup_in_subquery()
-- construct: rollup
-- null: org_id
SELECT s.org_id, s.n FROM (
    SELECT org_id, count(*) AS n FROM inference_requests GROUP BY ROLLUP (org_id)
) AS s;

-- name: rollup_case()
-- construct: rollup
SELECT CASE WHEN GROUPING(model) = 1 THEN 'all' ELSE model END AS label,
       coalesce(model, 'total') AS named, count(*) AS n
FROM inference_requests
GROUP BY ROLLUP (model);

-- name: cube_aggregate_grouped()
-- construct: cube
-- null: provider, tokens
SELECT provider, sum(total_tokens) AS tokens, min(model) FILTER (WHERE true) IS NULL AS odd
FROM inference_requests
GROUP BY CUBE (provider);

-- name: fk_left_join_extra_condition()
-- construct: fk_join
-- null: slug
SELECT a.name, o.slug
FROM applications AS a
LEFT JOIN organizations AS o ON o.id = a.org_id AND o.slug = 'beta';

-- name: fk_left_join_child_nullable()
-- construct: fk_join
-- null: app_name, parent_slug
SELECT o.slug, a.name AS app_name, p.slug AS parent_slug
FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
LEFT JOIN organizations AS p ON p.id = a.org_id;

-- name: star_in_subquery()
-- construct: subquery_from
-- null: description
SELECT s.name, s.description FROM (SELECT * FROM applications) AS s;

-- name: cte_shadows_table()
-- construct: cte
-- null: name
WITH applications AS (SELECT NULL::text AS name)
SELECT name FROM applications;

-- name: cte_recursive_null_later()
-- construct: cte
-- null: x
WITH RECURSIVE t (i, x) AS (
    SELECT 1, 'a'::text
    UNION ALL
    SELECT i + 1, CASE WHEN i = 2 THEN NULL ELSE x END FROM t WHERE i < 4
)
SELECT i, x FROM t;

-- name: functions_tricky()
-- construct: nullable_function
-- null: re_sub, sep, fmt, sim
SELECT
    substring(name FROM 'zz(.)') AS re_sub,
    concat_ws(description, name, 'x') AS sep,
    format(description) AS fmt,
    substring(name SIMILAR 'q%' ESCAPE '#') AS sim,
    substring(name, 2) AS tail
FROM applications;

-- name: scalar_subquery_offset()
-- construct: scalar_subquery
-- null: skipped, filtered
SELECT
    (SELECT count(*) FROM applications OFFSET 1) AS skipped,
    (SELECT count(*) FROM applications HAVING count(*) > 100) AS filtered,
    (SELECT coalesce(max(version), 0) FROM applications) AS top
FROM organizations;

-- name: in_subquery()
-- construct: predicate
-- null: described_user
SELECT description IN (SELECT display_name FROM users) AS described_user FROM applications;

-- name: aggregate_where_not_null()
-- construct: is_not_null_where
SELECT org_id, min(description) AS first_description FROM applications
WHERE description IS NOT NULL GROUP BY org_id;

-- name: aggregates_of_nullable_grouped()
-- construct: aggregate_group
-- null: joined, top
SELECT org_id, array_agg(description) AS described, jsonb_agg(description) AS as_json,
       string_agg(description, ',') AS joined, max(description) AS top,
       bool_and(description IS NULL) AS none_described
FROM applications
GROUP BY org_id;

-- name: correlated_rollup()
-- construct: rollup
-- null: org_id, slug
SELECT r.org_id, (SELECT o.slug FROM organizations AS o WHERE o.id = r.org_id) AS slug,
       count(*) AS n
FROM inference_requests AS r
GROUP BY ROLLUP (r.org_id);

-- name: update_from_returning(app_id)
-- construct: returning
-- null: description
UPDATE applications AS a SET version = a.version
FROM organizations AS o
WHERE o.id = a.org_id AND a.id = :app_id
RETURNING o.slug, a.description;

-- name: upsert_param(app_id, org_id, description)<!
-- construct: upsert
-- none: description
-- null: description
INSERT INTO applications (id, org_id, name, description, api_key_hash)
VALUES (:app_id, :org_id, 'up', 'initial', repeat('d', 64))
ON CONFLICT (org_id, id) DO UPDATE SET description = :description
RETURNING id, description;

-- name: param_selected(name)
-- construct: param_selected
-- none: name
-- null: echoed, len
SELECT :name::text AS echoed, length(:name::text) AS len;

-- name: left_join_anti()
-- construct: outer_join
-- null: app_name
SELECT o.slug, a.name AS app_name FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
WHERE a.id IS NULL;

-- name: left_join_where_on_right()
-- construct: outer_join
SELECT o.slug, a.name AS app_name, a.version FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
WHERE a.version > 0;

-- name: lateral_rollup_row()
-- construct: lateral
-- null: model
SELECT a.name, l.model, l.n
FROM applications AS a
CROSS JOIN LATERAL (
    SELECT r.model, count(*) AS n FROM inference_requests AS r WHERE r.app_id = a.id
    GROUP BY ROLLUP (r.model)
) AS l;

-- name: param_tested_in_select(role)
-- construct: param_selected
SELECT count(*) FILTER (WHERE role = :role::user_role) AS n,
       CASE WHEN :role::user_role = 'admin' THEN 1 ELSE 0 END AS flag
FROM users;

-- name: rollup_with_having()
-- construct: rollup
-- null: org_id
SELECT org_id, count(*) AS n FROM inference_requests GROUP BY ROLLUP (org_id) HAVING count(*) > 0;

-- name: case_guards()
-- construct: case
-- null: wrong_guard, unguarded
SELECT
    CASE WHEN description IS NOT NULL THEN description ELSE name END AS guarded,
    CASE WHEN description IS NULL THEN description ELSE name END AS wrong_guard,
    CASE WHEN version = 1 THEN description ELSE 'x' END AS unguarded,
    CASE WHEN description IS NULL THEN 'none' WHEN version > 5 THEN 'big'
         ELSE upper(description) END AS chained
FROM applications;

-- name: window_frames()
-- construct: window
-- null: excluded, first_desc, max_desc
SELECT
    min(version) OVER (PARTITION BY org_id) AS partition_min,
    max(version) OVER (ORDER BY created_at) AS running_max,
    array_agg(description) OVER (PARTITION BY org_id) AS descriptions,
    sum(version) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND CURRENT ROW EXCLUDE CURRENT ROW)
        AS excluded,
    first_value(description) OVER (PARTITION BY org_id ORDER BY created_at) AS first_desc,
    max(description) OVER (PARTITION BY org_id) AS max_desc,
    last_value(name) OVER (PARTITION BY org_id) AS last_name
FROM applications;

-- name: cte_insert_then_left_join_parent(new_id, app_id)
-- construct: fk_join
-- null: slug
WITH o AS (
    INSERT INTO organizations (id, name, slug) VALUES (:new_id, 'Fresh', 'fresh-one') RETURNING id
), a AS (
    INSERT INTO applications (id, org_id, name, api_key_hash)
    SELECT :app_id, o.id, 'fresh app', repeat('9', 64) FROM o
    RETURNING org_id
)
SELECT a.org_id, p.slug FROM a LEFT JOIN organizations AS p ON p.id = a.org_id;

-- name: cte_update_param(app_id, description)
-- construct: param_write
-- none: description
-- null: description
WITH u AS (UPDATE applications SET description = :description WHERE id = :app_id
           RETURNING id, description)
SELECT id, description FROM u;

-- name: fk_left_join_cte_parent()
-- construct: fk_join
-- null: slug
WITH organizations AS (SELECT id, slug FROM organizations WHERE slug = 'beta')
SELECT a.name, o.slug FROM applications AS a LEFT JOIN organizations AS o ON o.id = a.org_id;
