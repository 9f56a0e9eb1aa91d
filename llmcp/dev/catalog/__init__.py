"""``llmcp catalog``: the query catalog and the schema document, for DBAs.

Writes two Markdown files, generated (never edited by hand) and committed:

- ``docs/queries.md``: every named query of ``sql/*.sql`` with its SQL, doc
  line, parameters and result columns (PostgreSQL types and nullability, as
  ``llmcp codegen`` infers them), the repository methods that run it, and its
  plan on a seeded database of realistic size, with the indexes it uses;
- ``docs/schema.md``: the schema read back from the migrated database: a
  Mermaid ER diagram, then per table its columns, indexes, constraints and
  triggers, then the enum types.

Plans are generic plans (``PREPARE`` + ``plan_cache_mode = force_generic_plan``,
what a server-side prepared statement settles on), printed by
``EXPLAIN (COSTS OFF)``: node types, index names and conditions, no costs, row
counts or timings, so that they stay the same from run to run. The data comes
from :func:`llmcp.dev.seed.seed` with a fixed seed, then ``VACUUM (ANALYZE)``.

``llmcp catalog --check`` regenerates both in memory and fails with a diff
when the committed files differ. The same plan helpers back the plan
regression tests (``tests/test_plans.py``).
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from llmcp.dev.catalog.plans import LARGE_TABLES, SEED, Plan, Scale, explain
from llmcp.dev.catalog.queries_doc import (
    QueryEntry,
    load_queries,
    render_queries,
    repository_callers,
)
from llmcp.dev.catalog.schema_doc import render_schema
from llmcp.dev.codegen.config import CodegenConfig
from llmcp.dev.codegen.output import diff
from llmcp.dev.scratch import ScratchDatabases

__all__ = [
    "LARGE_TABLES",
    "SEED",
    "Plan",
    "QueryEntry",
    "Scale",
    "explain",
    "load_queries",
    "render_queries",
    "render_schema",
    "repository_callers",
    "run",
]


def documents(config: CodegenConfig) -> dict[Path, str]:
    """Both documents, rendered on a fresh seeded scratch database."""
    with ScratchDatabases(migrations_dirs=config.migrations_dirs) as databases:
        url = databases.owner_url(databases.clone("catalog"))  # seeded with COPY
        SEED.load(url)
        with psycopg.connect(url, autocommit=True) as conn:
            docs = config.root / "docs"
            return {
                docs / "queries.md": render_queries(conn, config),
                docs / "schema.md": render_schema(conn),
            }


def run(pyproject: Path, *, check: bool) -> tuple[int, str]:
    """Write the documents, or with ``check`` compare them: (exit code, message)."""
    config = CodegenConfig.load(pyproject)
    rendered = documents(config)
    if check:
        changes = diff(rendered, [])
        if changes:
            return 1, changes + "\nthe catalog is stale: run `llmcp catalog`"
        return 0, ""
    changed = [path for path, text in rendered.items() if _write(path, text)]
    return 0, f"wrote {len(changed)} of {len(rendered)} catalog files"


def _write(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True
