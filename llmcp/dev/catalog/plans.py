"""Generic plans of named queries (``EXPLAIN (COSTS OFF)``), on a seeded database.

The plans of ``docs/queries.md`` and the plan regression tests (``tests/test_plans.py``)
are taken on a database loaded by :data:`SEED`.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from llmcp.dev.seed import WINDOW_END, seed


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
        # statistics from every row, not ANALYZE's random sample of 30,000 (300 x the
        # target): with a sample, a partition's plan flipped between index and bitmap
        # scans from run to run, and docs/queries.md with it
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"SET default_statistics_target = {_STATISTICS_TARGET}")
            conn.execute("ANALYZE")


SEED = Scale(organizations=200, requests=100_000, audit_logs=100_000, seed=1)
_STATISTICS_TARGET = 1000  # a sample of 300,000 rows: all of SEED's rows of any table
"""The seeded database the plans are taken on (also used by the plan tests)."""

_PLAN_STATEMENT = "llmcp_catalog_plan"

LARGE_TABLES = frozenset({"audit_logs", "inference_requests"})
"""Tables that grow without bound: a sequential scan of them is a regression."""


# a month's partition, in plan text: which months exist depends on the day
_MONTH = re.compile(r"\b(audit_logs|inference_requests)_p\d{4}_\d{2}")
_PARTITION = re.compile(r"^(audit_logs|inference_requests)_(?:p\d{4}_\d{2}|history)_(.+)$")
# each partition (table or index) and its root; the partitions with no rows
_PARTITIONS = """
SELECT c.relname, r.relname, c.relkind = 'r' AND c.reltuples <= 0
FROM pg_catalog.pg_class AS c
INNER JOIN pg_catalog.pg_class AS r ON r.oid = pg_catalog.pg_partition_root(c.oid)
WHERE c.relispartition AND c.relnamespace = current_schema()::regnamespace
"""


@dataclass(frozen=True, slots=True)
class Plan:
    """A generic plan: EXPLAIN's text (no costs) and its JSON tree.

    On a partitioned table, partitions and their indexes are reported under the
    name of the table and index they belong to (``roots``), and a sequential scan
    of an empty partition (a month ahead) is no scan of a large table (``empty``).
    """

    text: str
    tree: dict[str, Any]
    roots: dict[str, str] = field(default_factory=dict)
    empty: frozenset[str] = frozenset()

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.get("Plans", [])))

    def _root(self, name: str) -> str:
        if name in self.roots:
            return self.roots[name]
        own = _PARTITION.match(name)  # a partition's own index: <table>_<columns>_key
        return f"{own[1]}_{own[2]}" if own else name

    def indexes(self) -> list[str]:
        """Every index the plan reads, sorted."""
        return sorted({self._root(n["Index Name"]) for n in self.nodes() if "Index Name" in n})

    def seq_scans(self) -> list[str]:
        """Every table the plan reads with a (possibly parallel) sequential scan, sorted."""
        return sorted(
            {
                self._root(n["Relation Name"])
                for n in self.nodes()
                if n["Node Type"].endswith("Seq Scan") and n["Relation Name"] not in self.empty
            }
        )

    def partitions(self) -> tuple[int, int] | None:
        """Of the partitions of the plan's partitioned scans: (how many it may read, how
        many there are), pruning by the parameters included; None without any."""
        read = removed = 0
        for node in self.nodes():
            if node["Node Type"] in ("Append", "Merge Append"):
                children = [c.get("Relation Name", "") for c in node.get("Plans", [])]
                if any(c in self.roots for c in children) or node.get("Subplans Removed"):
                    read += len(children)
                    removed += int(node.get("Subplans Removed", 0))
        return (read, read + removed) if read + removed else None


def explain(conn: psycopg.Connection[Any], statement: str, params: int) -> Plan:
    """The generic plan of ``statement`` (``$n`` parameters), without running it.

    Works inside a transaction (the plan tests drop an index in one) and on
    PostgreSQL 15 (no ``EXPLAIN (GENERIC_PLAN)``): the statement is prepared,
    ``plan_cache_mode`` forces the generic plan, and ``EXPLAIN EXECUTE`` binds
    NULLs, which a generic plan does not look at; except a ``timestamptz``
    parameter, bound to the last day of the seeded data: the executor prunes
    partitions by the values bound when it starts (a NULL would prune them all).
    The plan shows which months a query then reads (a keyset page's cursor prunes
    the months after it), under names that do not change with the month
    (``audit_logs_pYYYY_MM``).
    """
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute("SET jit = off")  # no JIT section in the output; it never changes a plan
    name = sql.Identifier(_PLAN_STATEMENT)
    conn.execute(sql.SQL("PREPARE {} AS {}").format(name, sql.SQL(statement)))
    try:
        types = conn.execute(
            "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s",
            (_PLAN_STATEMENT,),
        ).fetchone()
        moment = sql.Literal(WINDOW_END - datetime.timedelta(days=1))
        values = [
            moment if kind == "timestamp with time zone" else sql.NULL
            for kind in (types[0] if types and types[0] else [None] * params)
        ]
        nulls = sql.SQL("({})").format(sql.SQL(", ").join(values)) if params else sql.SQL("")
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
    roots, empty = {}, set()
    for name, root, nothing in conn.execute(_PARTITIONS):
        roots[name] = root
        if nothing:
            empty.add(name)
    shown = _MONTH.sub(r"\1_pYYYY_MM", "\n".join(line for (line,) in text))
    return Plan(shown, document[0]["Plan"], roots, frozenset(empty))
