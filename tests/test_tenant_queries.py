"""Every tenant query names its tenant: each named query that reads or writes a
tenant table (one with an ``org_id`` column) carries ``org_id = :org_id`` for
each such table it touches, directly or through an ``org_id`` join to a table
that does, and every insert into one sets ``org_id``. That is what keeps each
query on one shard when the tables are distributed by ``org_id``
(docs/scale-out.md), and it is row-level security's second line today.

The exceptions are the cross-tenant lookups that run before the tenant is known;
each is documented in its SQL file ("in any organization") and in
docs/scale-out.md. Keys follow the same rule: every primary key, unique key and
foreign key of a tenant table includes ``org_id``, but for the global keys those
lookups use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
from pglast import ast
from pglast.enums.primnodes import BoolExprType

from llmcp.dev.codegen.loader import QuerySpec, load_file

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
SCALE_OUT = Path(__file__).resolve().parents[1] / "docs" / "scale-out.md"

CROSS_TENANT_LOOKUPS = frozenset({"applications.get_by_api_key_hash", "users.get_by_cognito_sub"})
"""Queries that find the tenant from a global key (an API key, a sign-in subject)."""
GLOBAL_KEYS = frozenset({"applications_api_key_hash_key", "users_cognito_sub_key"})
"""The unique keys those lookups read through: global by design (docs/scale-out.md)."""


def _queries() -> Iterator[tuple[str, QuerySpec]]:
    for path in sorted(SQL_DIR.glob("*.sql")):
        for spec in load_file(path):
            yield f"{path.stem}.{spec.name}", spec


def _conjuncts(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
        for arg in node.args or ():
            yield from _conjuncts(arg)
    elif node is not None:
        yield node


def _org_column(node: Any, tables: dict[str, str]) -> str | None:
    """The alias (of ``tables``: alias -> table) whose ``org_id`` this column
    reference is, if it is one."""
    if not isinstance(node, ast.ColumnRef):
        return None
    names = [str(f.sval) for f in node.fields or () if isinstance(f, ast.String)]
    if not names or names[-1] != "org_id":
        return None
    if len(names) == 1:
        return next(iter(tables)) if len(tables) == 1 else None
    return names[-2] if names[-2] in tables else None


def _scoped(conditions: list[Any], tables: dict[str, str], org_param: int | None) -> set[str]:
    """The aliases held to the tenant parameter by ``org_id = $n`` or an ``org_id``
    equality with an alias that is."""
    direct: set[str] = set()
    joins: list[tuple[str, str]] = []
    for condition in conditions:
        for term in _conjuncts(condition):
            if not (isinstance(term, ast.A_Expr) and term.name and term.name[-1].sval == "="):
                continue
            sides = (term.lexpr, term.rexpr)
            aliases = [_org_column(side, tables) for side in sides]
            params = [side.number for side in sides if isinstance(side, ast.ParamRef)]
            if org_param is not None and params == [org_param]:
                direct.update(a for a in aliases if a is not None)
            elif None not in aliases:
                joins.append((str(aliases[0]), str(aliases[1])))
    scoped = set(direct)
    while True:
        grown = scoped | {b for a, b in joins if a in scoped} | {a for a, b in joins if b in scoped}
        if grown == scoped:
            return scoped
        scoped = grown


def _from_items(items: Any, tenants: frozenset[str]) -> Iterator[tuple[str, str, Any]]:
    """(alias, table, join condition) of each tenant table in a FROM list."""
    for item in items or ():
        if isinstance(item, ast.RangeVar) and item.relname in tenants:
            yield str(item.alias.aliasname if item.alias else item.relname), item.relname, None
        elif isinstance(item, ast.JoinExpr):
            yield from _from_items((item.larg, item.rarg), tenants)
            yield "", "", item.quals


def unscoped_tables(spec: QuerySpec, tenants: frozenset[str]) -> list[str]:
    """The tenant tables the query touches without holding them to ``:org_id``."""
    org_param = spec.params.index("org_id") + 1 if "org_id" in spec.params else None
    missing: list[str] = []
    for raw in pglast.parse_sql(spec.positional_sql):
        node: Any
        for node in _walk(raw.stmt):
            if isinstance(node, ast.InsertStmt):
                target: Any = node.relation
                if target.relname in tenants and "org_id" not in {c.name for c in node.cols or ()}:
                    missing.append(target.relname)
                continue
            if isinstance(node, ast.SelectStmt):
                found: list[tuple[str, str, Any]] = list(_from_items(node.fromClause, tenants))
            elif isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
                relation: Any = node.relation
                alias = str(relation.alias.aliasname if relation.alias else relation.relname)
                extra = node.fromClause if isinstance(node, ast.UpdateStmt) else node.usingClause
                found = [(alias, relation.relname, None)] if relation.relname in tenants else []
                found += list(_from_items(extra, tenants))
            else:
                continue
            tables = {alias: table for alias, table, _ in found if table}
            if not tables:
                continue
            conditions = [q for _, table, q in found if not table and q is not None]
            conditions.append(node.whereClause)
            scoped = _scoped(conditions, tables, org_param)
            missing += [table for alias, table in tables.items() if alias not in scoped]
    return missing


def _walk(node: object) -> Iterator[ast.Node]:
    """Every node under ``node``, itself first (statements nested in CTEs,
    subqueries and set operations included)."""
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _walk(getattr(node, name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


@pytest.fixture(scope="module")
def catalog(shared_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """The migrated schema's catalog, as the application role reads it."""
    with psycopg.connect(shared_db, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def tenant_tables(catalog: psycopg.Connection[tuple[object, ...]]) -> frozenset[str]:
    """The tables with an org_id column, from the migrated schema itself."""
    rows = catalog.execute(
        "SELECT c.relname FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
        " AND NOT c.relispartition AND a.attname = 'org_id' AND NOT a.attisdropped"
    ).fetchall()
    return frozenset(str(row[0]) for row in rows)


def test_the_tenant_tables_are_the_five_entities_the_rollup_and_the_request_keys(
    tenant_tables: frozenset[str],
) -> None:
    assert tenant_tables == {
        "applications", "users", "policies", "audit_logs", "inference_requests",
        "inference_hourly_metrics", "inference_request_keys",
    }  # fmt: skip


@pytest.mark.parametrize(("key", "spec"), list(_queries()), ids=lambda v: str(v)[:60])
def test_every_tenant_query_carries_its_organization(
    key: str, spec: QuerySpec, tenant_tables: frozenset[str]
) -> None:
    missing = unscoped_tables(spec, tenant_tables)
    if key in CROSS_TENANT_LOOKUPS:
        assert missing, f"{key} is scoped now: take it off CROSS_TENANT_LOOKUPS"
        assert "in any organization" in spec.doc, f"{key}: its SQL comment must say why"
    else:
        assert not missing, f"{key} touches {missing} without org_id = :org_id"


def test_the_cross_tenant_lookups_are_documented_for_scale_out() -> None:
    text = SCALE_OUT.read_text()
    for key in CROSS_TENANT_LOOKUPS:
        assert f"`{key}`" in text, key
    for name in GLOBAL_KEYS:
        assert f"`{name}`" in text, name


@pytest.mark.parametrize(
    ("sql", "missing"),
    [
        ("SELECT id FROM users WHERE id = :id", ["users"]),
        ("SELECT id FROM users WHERE org_id = :id", ["users"]),  # not the tenant parameter
        ("SELECT id FROM users WHERE org_id = :org_id OR id = :id", ["users"]),
        ("SELECT u.id FROM users AS u JOIN policies AS p ON p.user_id = u.id"
         " WHERE u.org_id = :org_id", ["policies"]),
        ("SELECT u.id FROM users AS u JOIN policies AS p ON p.org_id = u.org_id"
         " WHERE u.org_id = :org_id", []),
        ("SELECT id FROM users WHERE org_id = :org_id AND id IN"
         " (SELECT user_id FROM policies WHERE id = :id)", ["policies"]),
        ("WITH x AS (SELECT id FROM audit_logs) SELECT 1 FROM x WHERE 1 = :org_id",
         ["audit_logs"]),
        ("INSERT INTO users (id, email) VALUES (:id, :email)", ["users"]),
        ("UPDATE users SET role = :role WHERE id = :id", ["users"]),
        ("DELETE FROM users WHERE org_id = :org_id AND id = :id", []),
        ("SELECT id FROM organizations WHERE id = :id", []),
    ],
)  # fmt: skip
def test_the_check_finds_a_query_without_its_organization(
    sql: str, missing: list[str], tenant_tables: frozenset[str], tmp_path: Path
) -> None:
    params = ", ".join(dict.fromkeys(re.findall(r"(?<!:):([a-z_]+)", sql)))
    path = tmp_path / "probe.sql"
    path.write_text(f"-- name: probe({params})\n-- A probe.\n{sql};\n")
    (spec,) = load_file(path)
    assert unscoped_tables(spec, tenant_tables) == missing


def test_every_tenant_key_includes_the_organization(
    catalog: psycopg.Connection[tuple[object, ...]], tenant_tables: frozenset[str]
) -> None:
    rows = catalog.execute(
        "SELECT con.conname, con.contype, c.relname,"
        "  EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = con.conrelid"
        "          AND a.attnum = ANY (con.conkey) AND a.attname = 'org_id')"
        " FROM pg_constraint AS con JOIN pg_class AS c ON c.oid = con.conrelid"
        " WHERE con.contype IN ('p', 'u', 'f') AND c.relnamespace = 'public'::regnamespace"
        "  AND NOT c.relispartition AND con.conparentid = 0"
    ).fetchall()
    indexes = catalog.execute(
        "SELECT i.indexrelid::regclass::text, c.relname,"
        "  EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = i.indrelid"
        "          AND a.attnum = ANY (i.indkey) AND a.attname = 'org_id')"
        " FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid"
        " WHERE i.indisunique AND c.relnamespace = 'public'::regnamespace"
        "  AND NOT c.relispartition"
    ).fetchall()
    keys = [(name, table, has_org) for name, _, table, has_org in rows]
    keys += [(name, table, has_org) for name, table, has_org in indexes]
    checked = [(name, has_org) for name, table, has_org in keys if table in tenant_tables]
    assert {name for name, has_org in checked if not has_org} == GLOBAL_KEYS
    assert len(checked) >= 10  # the five entities' keys and foreign keys, the rollup's


def test_every_tenant_table_has_row_level_security(
    catalog: psycopg.Connection[tuple[object, ...]], tenant_tables: frozenset[str]
) -> None:
    rows = catalog.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relname = ANY (%s) AND relrowsecurity",
        (list(tenant_tables),),
    ).fetchall()
    assert {row[0] for row in rows} == tenant_tables
