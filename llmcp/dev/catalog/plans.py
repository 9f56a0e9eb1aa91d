"""Generic plans of named queries (``EXPLAIN (COSTS OFF)``), on a seeded database.

The plans of ``docs/queries.md`` and the plan regression tests (``tests/test_plans.py``)
are taken on a database loaded by :data:`SEED`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from llmcp.dev.seed import seed


@dataclass(frozen=True, slots=True)
class Scale:
    """Arguments of :func:`llmcp.dev.seed.seed`."""

    organizations: int
    requests: int
    audit_logs: int
    seed: int

    def load(self, url: str) -> None:
        seed(
            url,
            organizations=self.organizations,
            requests=self.requests,
            audit_logs=self.audit_logs,
            seed=self.seed,
        )


SEED = Scale(organizations=200, requests=100_000, audit_logs=100_000, seed=1)
"""The seeded database the plans are taken on (also used by the plan tests)."""

_PLAN_STATEMENT = "llmcp_catalog_plan"

LARGE_TABLES = frozenset({"audit_logs", "inference_requests"})
"""Tables that grow without bound: a sequential scan of them is a regression."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A generic plan: EXPLAIN's text (no costs) and its JSON tree."""

    text: str
    tree: dict[str, Any]

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.get("Plans", [])))

    def indexes(self) -> list[str]:
        """Every index the plan reads, sorted."""
        return sorted({n["Index Name"] for n in self.nodes() if "Index Name" in n})

    def seq_scans(self) -> list[str]:
        """Every table the plan reads with a (possibly parallel) sequential scan, sorted."""
        return sorted(
            {n["Relation Name"] for n in self.nodes() if n["Node Type"].endswith("Seq Scan")}
        )


def explain(conn: psycopg.Connection[Any], statement: str, params: int) -> Plan:
    """The generic plan of ``statement`` (``$n`` parameters), without running it.

    Works inside a transaction (the plan tests drop an index in one) and on
    PostgreSQL 15 (no ``EXPLAIN (GENERIC_PLAN)``): the statement is prepared,
    ``plan_cache_mode`` forces the generic plan, and ``EXPLAIN EXECUTE`` binds
    NULLs, which a generic plan does not look at.
    """
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute("SET jit = off")  # no JIT section in the output; it never changes a plan
    name = sql.Identifier(_PLAN_STATEMENT)
    conn.execute(sql.SQL("PREPARE {} AS {}").format(name, sql.SQL(statement)))
    try:
        nulls = (
            sql.SQL("({})").format(sql.SQL(", ").join([sql.NULL] * params))
            if params
            else sql.SQL("")
        )
        text = conn.execute(
            sql.SQL("EXPLAIN (COSTS OFF) EXECUTE {}{}").format(name, nulls)
        ).fetchall()
        tree = conn.execute(
            sql.SQL("EXPLAIN (COSTS OFF, FORMAT JSON) EXECUTE {}{}").format(name, nulls)
        ).fetchone()
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute(sql.SQL("DEALLOCATE {}").format(name))
            conn.execute("RESET plan_cache_mode")
            conn.execute("RESET jit")
    assert tree is not None
    document = tree[0] if not isinstance(tree[0], str) else json.loads(tree[0])
    return Plan("\n".join(line for (line,) in text), document[0]["Plan"])
