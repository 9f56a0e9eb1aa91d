"""Optional-ness of result columns and parameters, in both directions."""

from __future__ import annotations

import re

from tests.codegen.conftest import Generate


def _fields(source: str, struct: str) -> dict[str, str]:
    body = source.split(f"class {struct}(", 1)[1].split("\n\n\n", 1)[0]
    return dict(re.findall(r"^    (\w+): (.+)$", body, flags=re.M))


def _params(source: str, method: str) -> dict[str, str]:
    signature = source.split(f"    def {method}(", 1)[1].split(") ->", 1)[0]
    return dict(re.findall(r"(\w+): ([^,\n]+(?:\[[^\]]*\])?)", signature))


def test_result_columns(generate_sql: Generate) -> None:
    files = generate_sql(
        """-- name: report(org_id)
-- Columns of every kind of nullability.
SELECT
    o.id,
    o.name,
    a.name AS app_name,
    a.description AS app_description,
    u.email AS user_email,
    count(*) AS total,
    count(a.id) AS apps,
    coalesce(sum(a.version), 0) AS version_sum,
    sum(a.version) AS raw_sum,
    max(o.created_at) AS newest,
    coalesce(max(a.description), o.name) AS label,
    o.version + 1 AS next_version,
    a.version + 1 AS next_app_version,
    'x' AS constant,
    (SELECT count(*) FROM users) AS subquery
FROM organizations AS o
LEFT JOIN applications AS a ON a.org_id = o.id
RIGHT JOIN users AS u ON u.org_id = o.id
WHERE o.id = :org_id
GROUP BY o.id, o.name, a.name, a.description, u.email, a.version;
"""
    )
    fields = _fields(files["models.py"], "ReportRow")
    assert fields == {
        # RIGHT JOIN: organizations is on the nullable side, but WHERE o.id = :org_id
        # drops the rows where it is null-extended
        "id": "uuid.UUID",
        "name": "str",
        "app_name": "str | None",  # LEFT JOIN
        "app_description": "str | None",
        "user_email": "str",  # the preserved side of the RIGHT JOIN, NOT NULL
        "total": "int",  # count(*)
        "apps": "int",  # count(x) is never null
        "version_sum": "int",  # coalesce(..., 0)
        "raw_sum": "int | None",  # sum of a LEFT JOINed (all-NULL) column
        "newest": "datetime.datetime",  # max of a non-null column: groups are never empty
        "label": "str",  # coalesce(nullable, o.name): o.name is non-null here
        "next_version": "int",  # o is not null-extended (WHERE)
        "next_app_version": "int | None",
        "constant": "str",
        "subquery": "int",  # an aggregate without GROUP BY: always one row
    }


def test_inner_join_keeps_not_null(generate_sql: Generate) -> None:
    files = generate_sql(
        """-- name: pairs(org_id)
-- Inner join.
SELECT o.slug, a.name, a.description
FROM organizations AS o
JOIN applications AS a ON a.org_id = o.id
WHERE o.id = :org_id;
"""
    )
    assert _fields(files["models.py"], "PairsRow") == {
        "slug": "str",
        "name": "str",
        "description": "str | None",  # nullable in the table
    }


def test_whole_table_queries_share_one_struct(generate_sql: Generate) -> None:
    columns = "id, name, slug, version, created_at, updated_at"
    files = generate_sql(
        f"""-- name: one(id)^
-- One.
SELECT {columns} FROM organizations WHERE id = :id;

-- name: many(limit)
-- Many.
SELECT {columns} FROM organizations ORDER BY id LIMIT :limit;

-- name: partial(id)^
-- Not all columns.
SELECT id, name FROM organizations WHERE id = :id;
"""
    )
    models = files["models.py"]
    assert "class Organization(" in models
    assert "class PartialRow(" in models
    assert "class OneRow(" not in models and "class ManyRow(" not in models
    assert "-> models.Organization | None" in files["queries.py"]
    assert "-> builtins.list[models.Organization]" in files["queries.py"]


def test_parameters_written_into_columns_follow_the_columns(generate_sql: Generate) -> None:
    files = generate_sql(
        """-- name: add(id, org_id, name, description, api_key_hash, created_at)<!
-- Insert.
INSERT INTO applications (id, org_id, name, description, api_key_hash, created_at)
VALUES (:id, :org_id, :name, :description, :api_key_hash, coalesce(:created_at, now()))
RETURNING id;

-- name: rename(id, name, description)!
-- Update.
UPDATE applications SET name = :name, description = :description WHERE id = :id;

-- name: find(name, description, limit)
-- Compare in WHERE.
SELECT id FROM applications WHERE name = :name AND description = :description LIMIT :limit;
"""
    )
    queries = files["queries.py"]
    assert _params(queries, "add") == {
        "conn": "psycopg.Connection[Any]",
        "id": "uuid.UUID",  # NOT NULL column
        "org_id": "uuid.UUID",
        "name": "str",
        "description": "str | None",  # nullable column
        "api_key_hash": "str",
        "created_at": "datetime.datetime | None",  # coalesce(:p, now())
    }
    assert _params(queries, "rename") == {
        "conn": "psycopg.Connection[Any]",
        "id": "uuid.UUID",  # compared in WHERE
        "name": "str",  # SET into NOT NULL
        "description": "str | None",  # SET into nullable
    }
    assert _params(queries, "find") == {
        "conn": "psycopg.Connection[Any]",
        "name": "str",
        "description": "str",  # compared in WHERE: None would match nothing
        "limit": "int",
    }


def test_annotations_override_in_both_directions(generate_sql: Generate) -> None:
    files = generate_sql(
        """-- name: applicable(org_id, user_id)
-- Annotated.
-- @nullable :user_id
-- @notnull newest
-- @nullable slug
SELECT max(created_at) AS newest, slug
FROM organizations
WHERE id = :org_id AND (:user_id::uuid IS NULL OR id = :user_id)
GROUP BY slug;

-- name: set_description(id, description)!
-- Forced non-null parameter.
-- @notnull :description
UPDATE applications SET description = :description WHERE id = :id;
"""
    )
    assert _fields(files["models.py"], "ApplicableRow") == {
        "newest": "datetime.datetime",
        "slug": "str | None",
    }
    params = _params(files["queries.py"], "applicable")
    assert params["user_id"] == "uuid.UUID | None" and params["org_id"] == "uuid.UUID"
    assert _params(files["queries.py"], "set_description")["description"] == "str"
