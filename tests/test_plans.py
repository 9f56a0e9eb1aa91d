"""Plan regression tests: every hot query reads through its index, never a sequential scan.

On a database seeded like the query catalog's (``llmcp.dev.catalog.SEED``: 200
organizations with about 550 applications, 1,600 users and 2,000 policies,
then 100,000 inference requests and 100,000 audit log entries), the *generic*
plan (the one a server-side prepared statement settles on) of each hot query
(every lookup by key, every offset and keyset page, get_applicable,
get_metrics) must

- read every index listed for it below, and
- scan no table sequentially.

"Large" therefore means every table but ``organizations``: at that scale each
of them spans 10+ pages, and PostgreSQL prefers an index to reading the table
for a key or a page of rows. ``organizations`` holds one row per tenant (200
rows, 3 pages) and is legitimately read whole; its lookups are checked on a
copy with 20,000 organizations instead.

Dropping an index, or rewriting a predicate so that it cannot use its index,
fails these tests: ``test_a_dropped_index_is_caught`` and
``test_a_predicate_that_cannot_use_its_index_is_caught`` do it on purpose.

As the owner (``databases.owner_url``), as the catalog is: seeding is COPY, the
teeth drop indexes and ``VACUUM`` needs the table's owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from llmcp.dev.catalog import SEED, Plan, explain
from llmcp.dev.codegen.loader import QuerySpec, load_file
from llmcp.testing import TestDatabases

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"

# (SQL file, query) -> indexes its plan must read
HOT: dict[tuple[str, str], set[str]] = {
    # lookups by key (reads, and the writes that find their row by id)
    ("applications", "get_by_id"): {"applications_pkey"},
    ("applications", "get_by_api_key_hash"): {"applications_api_key_hash_key"},
    ("applications", "version_of"): {"applications_pkey"},
    ("applications", "update"): {"applications_pkey"},
    ("applications", "delete"): {"applications_pkey"},
    ("users", "get_by_id"): {"users_pkey"},
    ("users", "get_by_cognito_sub"): {"users_cognito_sub_key"},
    ("users", "get_by_email"): {"users_org_id_email_key"},
    ("users", "version_of"): {"users_pkey"},
    ("users", "update"): {"users_pkey"},
    ("users", "delete"): {"users_pkey"},
    ("policies", "get_by_id"): {"policies_pkey"},
    ("policies", "version_of"): {"policies_pkey"},
    ("policies", "update"): {"policies_pkey"},
    ("policies", "delete"): {"policies_pkey"},
    ("audit_logs", "get_by_id"): {"audit_logs_pkey"},
    ("audit_logs", "get_by_request_id"): {"audit_logs_org_id_request_id_idx"},
    # the key table gives created_at, then one month's partition is read (pruned at run time)
    ("inference_requests", "get_by_id"): {
        "inference_request_keys_org_id_id_key",
        "inference_requests_org_id_created_at_idx",
    },
    ("inference_requests", "get_by_request_id"): {
        "inference_requests_org_id_request_id_key",
        "inference_requests_org_id_created_at_idx",
    },
    ("inference_requests", "version_of"): {"inference_requests_pkey"},
    ("inference_requests", "update"): {"inference_requests_pkey"},
    # offset pages
    ("applications", "get_by_org_id"): {"applications_org_id_created_at_idx"},
    ("users", "get_by_org_id"): {"users_org_id_created_at_idx"},
    ("policies", "get_by_org_id"): {"policies_org_id_created_at_idx"},
    ("policies", "get_by_app_id"): {"policies_app_id_created_at_idx"},
    ("policies", "get_by_user_id"): {"policies_user_id_created_at_idx"},
    ("audit_logs", "get_by_org_id"): {"audit_logs_org_id_created_at_idx"},
    ("audit_logs", "get_by_app_id"): {"audit_logs_app_id_created_at_idx"},
    ("audit_logs", "get_by_user_id"): {"audit_logs_user_id_created_at_idx"},
    ("audit_logs", "get_by_date_range"): {"audit_logs_org_id_created_at_idx"},
    ("audit_logs", "get_by_action"): {"audit_logs_org_id_action_created_at_idx"},
    ("inference_requests", "get_by_org_id"): {"inference_requests_org_id_created_at_idx"},
    ("inference_requests", "get_by_app_id"): {"inference_requests_app_id_created_at_idx"},
    ("inference_requests", "get_by_user_id"): {"inference_requests_user_id_created_at_idx"},
    ("inference_requests", "get_by_status"): {"inference_requests_org_id_status_created_at_idx"},
    ("inference_requests", "get_by_date_range"): {"inference_requests_org_id_created_at_idx"},
    # keyset pages: the cursor condition must be part of the index condition (checked below)
    ("audit_logs", "get_by_org_id_after"): {"audit_logs_org_id_created_at_idx"},
    ("audit_logs", "get_by_app_id_after"): {"audit_logs_app_id_created_at_idx"},
    ("audit_logs", "get_by_user_id_after"): {"audit_logs_user_id_created_at_idx"},
    ("audit_logs", "get_by_date_range_after"): {"audit_logs_org_id_created_at_idx"},
    ("audit_logs", "get_by_action_after"): {"audit_logs_org_id_action_created_at_idx"},
    ("inference_requests", "get_by_org_id_after"): {"inference_requests_org_id_created_at_idx"},
    ("inference_requests", "get_by_app_id_after"): {"inference_requests_app_id_created_at_idx"},
    ("inference_requests", "get_by_user_id_after"): {"inference_requests_user_id_created_at_idx"},
    ("inference_requests", "get_by_status_after"): {
        "inference_requests_org_id_status_created_at_idx"
    },
    ("inference_requests", "get_by_date_range_after"): {"inference_requests_org_id_created_at_idx"},
    # policy resolution and metrics
    ("policies", "get_applicable"): {"policies_enabled_org_id_idx"},
    ("inference_requests", "get_metrics"): {
        "inference_hourly_metrics_pkey",
        "inference_requests_org_id_created_at_idx",
    },
    ("inference_requests", "get_metrics_raw"): {"inference_requests_org_id_created_at_idx"},
}

# the tenants table: read whole at 200 rows, by index at 20,000 (test below)
ORGANIZATIONS: dict[str, set[str]] = {
    "get_by_id": {"organizations_pkey"},
    "get_by_slug": {"organizations_slug_key"},
    "version_of": {"organizations_pkey"},
    "update": {"organizations_pkey"},
    "delete": {"organizations_pkey"},
}

# queries that need no plan check, and why
EXEMPT = {
    ("organizations", "list"): "all tenants newest first: no index on created_at, a top-N sort"
    " of the small tenants table",
    ("audit_logs", "purge"): "calls llmcp_purge_audit_logs: its plan is a function call; the"
    " DELETE inside is an occasional maintenance task, not a hot query",
}

Conn = psycopg.Connection[tuple[Any, ...]]


def _queries() -> dict[tuple[str, str], QuerySpec]:
    return {
        (path.stem, spec.name): spec
        for path in sorted(SQL_DIR.glob("*.sql"))
        for spec in load_file(path)
    }


QUERIES = _queries()


def problems(
    plan: Plan, expected: set[str], *, allow_seq_scan: frozenset[str] = frozenset()
) -> list[str]:
    """What is wrong with ``plan``: sequential scans, expected indexes it does not read."""
    found = []
    for table in plan.seq_scans():
        if table not in allow_seq_scan:
            found.append(f"sequential scan on {table}")
    used = set(plan.indexes())
    for index in sorted(expected - used):
        found.append(f"does not use {index} (uses {', '.join(sorted(used)) or 'no index'})")
    return found


@pytest.fixture(scope="session")
def seeded(databases: TestDatabases) -> Iterator[str]:
    """The catalog's seeded database, loaded once for the whole run."""
    name = databases.clone("plans")
    SEED.load(databases.owner_url(name))
    yield databases.owner_url(name)
    databases.drop(name)


@pytest.fixture
def seeded_conn(seeded: str) -> Iterator[Conn]:
    with psycopg.connect(seeded) as conn:
        yield conn
        conn.rollback()


def _plan(conn: Conn, key: tuple[str, str], statement: str | None = None) -> Plan:
    spec = QUERIES[key]
    return explain(conn, statement or spec.positional_sql, len(spec.params))


def test_every_query_that_reads_is_checked_or_exempt() -> None:
    """A new SELECT (or UPDATE/DELETE by key) needs an entry here: its plan is part of review."""
    checked = set(HOT) | {("organizations", name) for name in ORGANIZATIONS} | set(EXEMPT)
    missing = [
        key
        for key, spec in QUERIES.items()
        if key not in checked and not spec.positional_sql.lstrip().upper().startswith("INSERT")
    ]
    assert missing == []
    assert not checked - set(QUERIES), "an entry names a query that no longer exists"


@pytest.mark.parametrize("key", sorted(HOT), ids=lambda key: ".".join(key))
def test_hot_query_reads_through_its_index(seeded_conn: Conn, key: tuple[str, str]) -> None:
    plan = _plan(seeded_conn, key)
    assert problems(plan, HOT[key]) == [], plan.text


@pytest.mark.parametrize("key", sorted(k for k in HOT if k[1].endswith("_after")))
def test_keyset_cursor_is_an_index_condition(seeded_conn: Conn, key: tuple[str, str]) -> None:
    """The ``(created_at, id) < (...)`` row comparison seeks in the index, not a filter."""
    plan = _plan(seeded_conn, key)
    conditions = [n.get("Index Cond", "") for n in plan.nodes()]
    assert any("ROW(created_at, id) <" in c for c in conditions), plan.text


@pytest.mark.parametrize("key", sorted(k for k in HOT if k[1].endswith("_after")))
def test_keyset_pages_prune_the_months_after_their_cursor(
    seeded_conn: Conn, key: tuple[str, str]
) -> None:
    """``created_at <= :after_created_at`` lets the executor drop the month partitions
    after the cursor before it reads any (the cursor is bound to the seeded month)."""
    plan = _plan(seeded_conn, key)
    partitions = plan.partitions()
    assert partitions is not None and partitions[0] < partitions[1], plan.text
    assert "Subplans Removed" in plan.text, plan.text


@pytest.fixture
def many_organizations(databases: TestDatabases) -> Iterator[Conn]:
    """A migrated database with 20,000 organizations, analyzed."""
    name = databases.clone("plans_orgs")
    with psycopg.connect(databases.owner_url(name), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organizations (name, slug)"
            " SELECT 'Organization ' || n, 'org-' || n FROM generate_series(1, 20000) AS n"
        )
        conn.execute("VACUUM (ANALYZE) organizations")
        yield conn
    databases.drop(name)


@pytest.mark.parametrize("query", sorted(ORGANIZATIONS))
def test_organization_lookups_read_through_their_index(
    many_organizations: Conn, query: str
) -> None:
    plan = _plan(many_organizations, ("organizations", query))
    assert problems(plan, ORGANIZATIONS[query]) == [], plan.text


def test_a_dropped_index_is_caught(seeded_conn: Conn) -> None:
    """Drop indexes inside a transaction: the check reports it; the rollback restores them."""
    key = ("audit_logs", "get_by_org_id")
    assert problems(_plan(seeded_conn, key), HOT[key]) == []
    # without its index the page falls back to another index on org_id (each month's
    # unique (org_id, id)), and sorts every row of the organization: an index is used,
    # but not the right one
    seeded_conn.execute("DROP INDEX audit_logs_org_id_created_at_idx")
    plan = _plan(seeded_conn, key)
    found = problems(plan, HOT[key])
    assert len(found) == 1 and found[0].startswith(
        "does not use audit_logs_org_id_created_at_idx"
    ), plan.text
    # without any index on org_id: a sequential scan of the whole table
    seeded_conn.execute("DROP INDEX audit_logs_org_id_action_created_at_idx")
    seeded_conn.execute("DROP INDEX audit_logs_org_id_request_id_idx")
    seeded_conn.execute("ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey")
    for (index,) in seeded_conn.execute(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid::regclass::text"
        " LIKE 'audit\\_logs\\_%' AND indexrelid::regclass::text LIKE '%\\_org\\_id\\_id\\_key'"
    ).fetchall():
        seeded_conn.execute(f'DROP INDEX "{index}"')  # each partition's own (org_id, id)
    plan = _plan(seeded_conn, key)
    assert problems(plan, HOT[key]) == [
        "sequential scan on audit_logs",
        "does not use audit_logs_org_id_created_at_idx (uses no index)",
    ], plan.text
    seeded_conn.rollback()
    assert problems(_plan(seeded_conn, key), HOT[key]) == []


def test_a_predicate_that_cannot_use_its_index_is_caught(seeded_conn: Conn) -> None:
    """The same query with the key wrapped in an expression cannot seek in its index:
    it reads the organization's rows through another index (or the whole table)."""
    key = ("inference_requests", "get_by_request_id")
    rewritten = QUERIES[key].positional_sql.replace(
        "AND k.request_id = $2", "AND lower(k.request_id) = $2"
    )
    assert rewritten != QUERIES[key].positional_sql
    plan = _plan(seeded_conn, key, rewritten)
    found = problems(plan, HOT[key])
    assert any(
        f.startswith("does not use inference_requests_org_id_request_id_key") for f in found
    ), plan.text
