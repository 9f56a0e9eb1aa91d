"""The aiosql adapter: registered, positional struct decoding, server-side preparation."""

from __future__ import annotations

import uuid
from typing import Any

import aiosql
import psycopg
from psycopg.rows import dict_row

from llmcp.adapter import ASYNC_ADAPTER, SYNC_ADAPTER, AsyncPsycopgAdapter, PsycopgAdapter
from llmcp.generated import models, organizations
from llmcp.generated.organizations import OrganizationsQueries

Conn = psycopg.Connection[Any]


def test_adapters_are_registered_with_aiosql() -> None:
    # aiosql types its registry as protocol factories, which our adapter classes are not
    # (see llmcp.adapter): compare them as plain objects
    registry: dict[str, object] = dict(aiosql.aiosql._ADAPTERS)
    assert registry[SYNC_ADAPTER] is PsycopgAdapter
    assert registry[ASYNC_ADAPTER] is AsyncPsycopgAdapter


def test_rows_are_built_positionally_by_the_struct_class() -> None:
    # the row maker is the struct itself: no per-row dict, no Python-level wrapper
    assert organizations.ROWS["get_by_id"] is models.Organization
    assert organizations.ROWS["list"] is models.Organization
    row = models.Organization(*range(6))
    assert row.id == 0 and row.updated_at == 5


def test_hot_queries_are_prepared_server_side(conn: Conn) -> None:
    queries = OrganizationsQueries()
    for _ in range(6):  # psycopg prepares a statement from its 5th execution
        assert queries.get_by_id(conn, id=uuid.uuid4()) is None
    statements = [r[0] for r in conn.execute("SELECT statement FROM pg_prepared_statements")]
    assert any("FROM organizations" in s and "$1" in s for s in statements), statements


def test_a_connection_with_another_row_factory_still_gets_structs(shared_db: str) -> None:
    with psycopg.connect(shared_db, row_factory=dict_row) as conn:
        slug = f"dict-{uuid.uuid4().hex[:8]}"
        org = OrganizationsQueries().create(
            conn, id=uuid.uuid4(), name="Dict", slug=slug, created_at=None
        )
        assert isinstance(org, models.Organization)
        assert OrganizationsQueries().get_by_slug(conn, slug=slug) == org
        conn.rollback()
