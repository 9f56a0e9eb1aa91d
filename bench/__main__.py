"""`make bench`: llmcp against raw psycopg on the same server, in the same run.

Each case times the same work done two ways, alternating rounds so that both
see the same machine state; the figure kept is the best round of each (the
least disturbed), and the ratio is ours / raw throughput (higher is better).
Results are printed as a table and written to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from llmcp.config import DatabaseConfig
from llmcp.factory import RepositoryFactory
from llmcp.generated.organizations import OrganizationsQueries
from llmcp.scratch import ScratchDatabases

RESULTS = Path(__file__).with_name("results.json")


@dataclass
class Case:
    key: str
    description: str
    ours_per_s: float
    raw_per_s: float
    unit: str
    target: float

    @property
    def ratio(self) -> float:
        return self.ours_per_s / self.raw_per_s


def best_rate(work: Callable[[], int], seconds: float) -> float:
    """Units of work per second of the fastest call among those fitting in ``seconds``."""
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        units = work()
        elapsed = time.perf_counter() - start
        best = max(best, units / elapsed)
    return best


def compare(
    ours: Callable[[], int], raw: Callable[[], int], rounds: int, seconds: float
) -> tuple[float, float]:
    ours(), raw()  # warm up: connections, prepared statements, caches
    best_ours = best_raw = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, best_rate(ours, seconds))
        best_raw = max(best_raw, best_rate(raw, seconds))
    return best_ours, best_raw


def seed_organizations(conn: psycopg.Connection[Any], count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with conn.cursor().copy("COPY organizations (id, name, slug) FROM STDIN") as copy:
        for n, org_id in enumerate(ids):
            copy.write_row((org_id, f"Organization {n}", f"org-{n}"))
    conn.commit()
    return ids


def point_lookup(
    conn: psycopg.Connection[Any], ids: list[uuid.UUID], rounds: int, seconds: float
) -> Case:
    queries = OrganizationsQueries()
    raw_sql = (
        "SELECT id, name, slug, version, created_at, updated_at FROM organizations WHERE id = %s"
    )
    batch = ids[:200]

    def ours() -> int:
        for org_id in batch:
            queries.get_by_id(conn, id=org_id)
        return len(batch)

    def raw() -> int:
        for org_id in batch:
            conn.execute(raw_sql, (org_id,), prepare=True).fetchone()
        return len(batch)

    o, r = compare(ours, raw, rounds, seconds)
    return Case("point_lookup_vs_psycopg",
                "get_by_id through the generated query vs raw prepared psycopg",
                o, r, "lookups/s", 0.90)  # fmt: skip


def repository_lookup(
    conn: psycopg.Connection[Any], url: str, ids: list[uuid.UUID], rounds: int, seconds: float
) -> Case:
    """Through the public API: pool checkout, error mapping, logging, generated query."""
    raw_sql = (
        "SELECT id, name, slug, version, created_at, updated_at FROM organizations WHERE id = %s"
    )
    batch = ids[:200]
    with RepositoryFactory.connect(DatabaseConfig(url=url, min_size=1, max_size=1)) as factory:
        organizations = factory.repositories().organizations

        def ours() -> int:
            for org_id in batch:
                organizations.get_by_id(org_id)
            return len(batch)

        def raw() -> int:
            for org_id in batch:
                conn.execute(raw_sql, (org_id,), prepare=True).fetchone()
            return len(batch)

        o, r = compare(ours, raw, rounds, seconds)
    return Case("repository_lookup_vs_psycopg",
                "repos.organizations.get_by_id (pooled) vs raw prepared psycopg on one connection",
                o, r, "lookups/s", 0.90)  # fmt: skip


def list_decode(conn: psycopg.Connection[Any], rounds: int, seconds: float) -> Case:
    queries = OrganizationsQueries()
    raw_sql = (
        "SELECT id, name, slug, version, created_at, updated_at FROM organizations "
        "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
    )

    def ours() -> int:
        return len(queries.list(conn, limit=1000, offset=0))

    def raw() -> int:
        return len(conn.execute(raw_sql, (1000, 0), prepare=True).fetchall())

    o, r = compare(ours, raw, rounds, seconds)
    return Case("list_decode_vs_psycopg", "1000 rows into msgspec structs vs raw psycopg tuples",
                o, r, "rows/s", 0.85)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per round and side")
    args = parser.parse_args()

    cases: list[Case] = []
    with ScratchDatabases() as databases:
        url = databases.url(databases.clone("bench"))
        with psycopg.connect(url) as conn:
            ids = seed_organizations(conn, 5000)
            conn.autocommit = True
            cases.append(point_lookup(conn, ids, args.rounds, args.seconds))
            cases.append(repository_lookup(conn, url, ids, args.rounds, args.seconds))
            cases.append(list_decode(conn, args.rounds, args.seconds))
            server = conn.execute("SHOW server_version").fetchone()

    print(f"{'case':<28} {'ours':>12} {'raw':>12} {'unit':<10} {'ratio':>6} {'target':>7}")
    for case in cases:
        verdict = "ok" if case.ratio >= case.target else "BELOW"
        print(f"{case.key:<28} {case.ours_per_s:>12,.0f} {case.raw_per_s:>12,.0f} {case.unit:<10} "
              f"{case.ratio:>6.3f} {case.target:>6.2f} {verdict}")  # fmt: skip
    report = {
        "server": server[0] if server else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
        **{case.key: round(case.ratio, 4) for case in cases},
        "cases": [asdict(case) | {"ratio": round(case.ratio, 4)} for case in cases],
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
