"""``llmcp catalog``: what docs/queries.md and docs/schema.md say, and the --check mode.

The full catalog (100,000 rows seeded) is compared with the committed files by
``make catalog-check``; here the documents are rendered on a small seeded
database, which is enough to check their content and determinism.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import llmcp.dev.catalog
from llmcp.dev.catalog import explain, render_queries, render_schema, repository_callers, run
from llmcp.dev.codegen.config import CodegenConfig
from llmcp.dev.codegen.loader import load_file
from llmcp.dev.seed import seed
from llmcp.testing import TestDatabases

ROOT = Path(__file__).resolve().parents[1]
CONFIG = CodegenConfig.load(ROOT / "pyproject.toml")
ALL_QUERIES = [
    (path.stem, spec.name)
    for path in sorted((ROOT / "sql").glob("*.sql"))
    for spec in load_file(path)
]


@pytest.fixture(scope="module")
def small(databases: TestDatabases) -> Iterator[psycopg.Connection[Any]]:
    """As the owner, as ``llmcp catalog`` is: seeding is COPY, which row-level security
    refuses the application role."""
    name = databases.clone("catalog")
    seed(databases.owner_url(name), organizations=3, requests=2_000, seed=3)
    with psycopg.connect(databases.owner_url(name), autocommit=True) as conn:
        yield conn
    databases.drop(name)


@pytest.fixture(scope="module")
def queries_md(small: psycopg.Connection[Any]) -> str:
    return render_queries(small, CONFIG)


@pytest.fixture(scope="module")
def schema_md(small: psycopg.Connection[Any]) -> str:
    return render_schema(small)


def _section(document: str, title: str) -> str:
    start = document.index(f"\n### {title}\n")
    end = document.find("\n### ", start + 1)
    return document[start : end if end != -1 else None]


def test_repository_callers_are_found_in_the_async_sources() -> None:
    callers = repository_callers()
    assert callers[("audit_logs", "get_by_org_id")] == [
        "audit_logs.get_by_org_id()",
        "audit_logs.page_by_org_id()",
    ]
    assert callers[("audit_logs", "get_by_org_id_after")] == ["audit_logs.page_by_org_id()"]
    assert callers[("policies", "get_applicable")] == ["policies.get_applicable_policies()"]
    # version_of is called from update (through _missing_or_stale)
    assert callers[("users", "version_of")] == ["users.update()"]
    assert all(stem in {s for s, _ in ALL_QUERIES} for stem, _ in callers)


def test_every_query_has_its_section(queries_md: str) -> None:
    for stem, name in ALL_QUERIES:
        section = _section(queries_md, f"{stem}.{name}")
        assert "- Returns: " in section and "- Called by: " in section
        assert "```sql\n" in section and "Plan:\n\n```\n" in section


def test_a_section_reads_well(queries_md: str) -> None:
    section = _section(queries_md, "audit_logs.get_by_org_id_after")
    assert "List the audit log of an organization newest first, the keyset page after" in section
    assert "- Source: `sql/audit_logs.sql`, line 85" in section
    assert "- Called by: `audit_logs.page_by_org_id()`" in section
    assert "- Indexes used: `audit_logs_org_id_created_at_idx`" in section
    assert "| $2 | `:after_created_at` | timestamp with time zone | no |" in section
    assert "| `app_id` | uuid | yes | `audit_logs.app_id` |" in section
    assert "    AND (created_at, id) < (:after_created_at, :after_id)" in section
    # the month partitions the cursor leaves (pruned when the executor starts) are not read
    assert (
        "Index Scan using audit_logs_history_org_id_created_at_id_idx on audit_logs_history"
        in section
    )
    assert "Subplans Removed: 4" in section
    assert not re.search(r"cost=|rows=|actual time", section)
    metrics = _section(queries_md, "inference_requests.get_metrics")
    assert "| `total_cost` | numeric | no | expression |" in metrics


def test_nullability_comes_from_codegen(queries_md: str) -> None:
    section = _section(queries_md, "policies.get_applicable")
    assert "| `:user_id` | uuid | yes |" in section  # the @nullable annotation
    assert "| `:app_id` | uuid | no |" in section


def test_documents_are_deterministic(small: psycopg.Connection[Any], queries_md: str) -> None:
    assert render_queries(small, CONFIG) == queries_md
    assert render_schema(small) == render_schema(small)


def test_schema_has_every_table_key_index_and_constraint(
    small: psycopg.Connection[Any], schema_md: str
) -> None:
    assert "```mermaid\nerDiagram\n" in schema_md
    # tables and partitioned tables; a month's partition is not schema (it comes and goes)
    tables = [r[0] for r in small.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND NOT relispartition AND relname <> 'schema_migrations'"
    )]  # fmt: skip
    assert {"audit_logs", "inference_requests", "inference_request_keys"} <= set(tables)
    for table in tables:
        assert f"\n    {table} {{\n" in schema_md
        assert f"\n## {table}\n" in schema_md
    for (index,) in small.execute(
        "SELECT i.indexrelid::regclass::text FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid"
        " WHERE c.relnamespace = 'public'::regnamespace AND NOT c.relispartition"
    ):
        if not index.startswith("schema_migrations"):
            assert f"| `{index}` | `CREATE " in schema_md
    for (name,) in small.execute(
        "SELECT conname FROM pg_constraint JOIN pg_class AS c ON c.oid = conrelid"
        " WHERE connamespace = 'public'::regnamespace AND NOT c.relispartition"
        " AND conrelid <> 'schema_migrations'::regclass AND contype <> 'n'"
    ):
        assert f"| `{name}` | " in schema_md
    assert '    organizations ||--o{ applications : "org_id"' in schema_md
    assert '    applications |o--o{ policies : "org_id, app_id"' in schema_md
    assert "        text slug UK\n" in schema_md
    # an e-mail address is unique within its organization only (by its key), not on its own
    assert "        text email\n" in schema_md and "        text email_key\n" in schema_md
    assert (
        "| `users_org_id_email_key` | `CREATE UNIQUE INDEX users_org_id_email_key"
        " ON public.users USING btree (org_id, email_key)` |"
    ) in schema_md
    assert '        uuid user_id FK "null"\n' in schema_md
    assert "| `inference_status` | `pending`, `completed`, `failed`, `rejected` |" in schema_md


def test_explain_reports_indexes_and_sequential_scans(small: psycopg.Connection[Any]) -> None:
    by_id = explain(small, "SELECT id FROM audit_logs WHERE id = $1", 1)
    # a partition's scan is reported under its table's index: the primary key, or the
    # unique (org_id, id) each month carries (PostgreSQL 15 picks that one)
    assert by_id.indexes() in (["audit_logs_pkey"], ["audit_logs_org_id_id_key"])
    assert by_id.seq_scans() == []
    whole = explain(small, "SELECT count(*) FROM audit_logs WHERE user_agent = $1", 1)
    assert whole.seq_scans() == ["audit_logs"]
    assert "cost=" not in whole.text


def test_committed_catalog_lists_every_query() -> None:
    committed = (ROOT / "docs" / "queries.md").read_text()
    for stem, name in ALL_QUERIES:
        assert f"\n### {stem}.{name}\n" in committed, f"run `llmcp catalog` ({stem}.{name})"


def test_check_fails_with_a_diff_when_stale_and_write_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.llmcp.codegen]\n")
    rendered = {
        tmp_path / "docs" / "queries.md": "# Query catalog\nnew line\n",
        tmp_path / "docs" / "schema.md": "# Schema\n",
    }
    monkeypatch.setattr(llmcp.dev.catalog, "documents", lambda config: rendered)
    code, message = run(tmp_path / "pyproject.toml", check=True)
    assert code == 1
    assert "+new line" in message and "run `llmcp catalog`" in message
    assert run(tmp_path / "pyproject.toml", check=False) == (0, "wrote 2 of 2 catalog files")
    assert (tmp_path / "docs" / "queries.md").read_text() == "# Query catalog\nnew line\n"
    assert run(tmp_path / "pyproject.toml", check=True) == (0, "")
    assert run(tmp_path / "pyproject.toml", check=False) == (0, "wrote 0 of 2 catalog files")
