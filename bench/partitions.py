"""Partitioned vs unpartitioned audit_logs: lookups at scale and retention of a month.

``python -m bench.partitions [--rows 10000000]`` (not part of ``make test`` or
``make bench``: loading ten million rows takes minutes). On a private embedded
server (or ``LLMCP_DATABASE_URL``'s), one database is migrated to the schema before
partitioning and loaded with ``--rows`` audit entries spread evenly over 12 months
(1,000 organizations, INSERT ... SELECT generate_series, every trigger firing); a copy
of it is then migrated, which converts it to monthly partitions (timed). Then:

- ``get_by_id(org_id, id)`` and a keyset page of 100 (``get_by_org_id_after`` at a
  random cursor) on each, the SQL of each schema's own ``sql/audit_logs.sql``,
  prepared, rounds alternating between the two databases; the best round of each;
- retention of the oldest month: ``DELETE`` (with a purge reason, as
  ``llmcp_purge_audit_logs`` does) + ``VACUUM`` on the unpartitioned table, against
  ``llmcp db partitions drop`` (``DETACH ... CONCURRENTLY`` + ``DROP``) on the
  partitioned one: time, WAL written (``pg_current_wal_lsn`` before and after) and
  the database's size before and after.

Queries run as the owner (row-level security is the same on both sides).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from llmcp.dev.scratch import ScratchDatabases
from llmcp.migrate import Migrator, packaged_migrations_dir
from llmcp.partitions import Partitions, month_start

PARTITIONING = "20261201000700_partition_audit_logs_and_inference_requests_by_month.sql"
COLUMNS = (
    "id, org_id, app_id, user_id, action, resource_type, resource_id, request_id, details,"
    " ip_address, user_agent, created_at"
)
GET_BY_ID = f"SELECT {COLUMNS} FROM audit_logs WHERE org_id = %s AND id = %s"
PAGE_FLAT = (
    f"SELECT {COLUMNS} FROM audit_logs WHERE org_id = %(org)s"
    " AND (created_at, id) < (%(at)s, %(id)s) ORDER BY created_at DESC, id DESC LIMIT 100"
)
PAGE_PARTITIONED = (
    f"SELECT {COLUMNS} FROM audit_logs WHERE org_id = %(org)s"
    " AND (created_at, id) < (%(at)s, %(id)s) AND created_at <= %(at)s"
    " ORDER BY created_at DESC, id DESC LIMIT 100"
)

Conn = psycopg.Connection[tuple[Any, ...]]


def _load(url: str, rows: int, orgs: int, start: dt.datetime, end: dt.datetime) -> float:
    began = time.perf_counter()
    span = (end - start).total_seconds()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organizations (id, name, slug)"
            " SELECT md5('org' || n)::uuid, 'Org ' || n, 'org-' || n FROM generate_series(1, %s) AS n",
            (orgs,),
        )
        chunk = 1_000_000
        for first in range(0, rows, chunk):
            last = min(rows, first + chunk)
            conn.execute(
                "INSERT INTO audit_logs (id, org_id, action, resource_type, request_id, details, created_at)"
                " SELECT gen_random_uuid(), md5('org' || (1 + g %% %(orgs)s))::uuid, 'inference_requested',"
                " 'inference_request', 'r-' || g, '{\"n\": 1}',"
                " %(start)s::timestamptz + make_interval(secs => %(span)s * g / %(rows)s)"
                " FROM generate_series(%(first)s, %(last)s - 1) AS g",
                {
                    "orgs": orgs,
                    "start": start,
                    "span": span,
                    "rows": rows,
                    "first": first,
                    "last": last,
                },
            )
            print(f"  loaded {last:,} rows ({time.perf_counter() - began:.0f} s)", flush=True)
        conn.execute("VACUUM (ANALYZE) audit_logs")
    return time.perf_counter() - began


def _rate(conn: Conn, statement: str, params: list[Any]) -> float:
    """Statements per second over ``params`` (prepared, warm)."""
    for p in params[:50]:
        conn.execute(statement, p, prepare=True).fetchall()
    began = time.perf_counter()
    for p in params:
        conn.execute(statement, p, prepare=True).fetchall()
    return len(params) / (time.perf_counter() - began)


def _alternate(
    rounds: int, flat: Callable[[], float], partitioned: Callable[[], float]
) -> tuple[float, float]:
    best = [0.0, 0.0]
    for _ in range(rounds):
        best[0] = max(best[0], flat())
        best[1] = max(best[1], partitioned())
    return best[0], best[1]


def _wal_and_size(conn: Conn) -> tuple[int, int]:
    row = conn.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, pg_database_size(current_database())"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _retention_by_delete(url: str, before: dt.datetime) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        wal0, size0 = _wal_and_size(conn)
        began = time.perf_counter()
        with conn.transaction():
            conn.execute("SELECT set_config('llmcp.audit_purge_reason', 'retention: bench', true)")
            deleted = conn.execute(
                "DELETE FROM audit_logs WHERE created_at < %s AND action <> 'audit_logs_purged'",
                (before,),
            ).rowcount
        conn.execute("VACUUM audit_logs")
        took = time.perf_counter() - began
        wal1, size1 = _wal_and_size(conn)
    return {"rows": deleted, "seconds": took, "wal_mb": (wal1 - wal0) / 2**20,
            "size_before_mb": size0 / 2**20, "size_after_mb": size1 / 2**20}  # fmt: skip


def _retention_by_partition(url: str, older_than: int) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        wal0, size0 = _wal_and_size(conn)
        began = time.perf_counter()
        retired = [r for r in Partitions(url).drop(older_than) if r.parent == "audit_logs"]
        took = time.perf_counter() - began
        wal1, size1 = _wal_and_size(conn)
    return {"rows": sum(r.rows for r in retired), "seconds": took, "wal_mb": (wal1 - wal0) / 2**20,
            "size_before_mb": size0 / 2**20, "size_after_mb": size1 / 2**20}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.partitions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=2000, help="statements per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    now = dt.datetime.now(dt.UTC)
    start, end = month_start(now, 11), month_start(now + dt.timedelta(days=32))  # 12 months
    staged = Path(tempfile.mkdtemp(prefix="llmcp-bench-"))
    for file in sorted(packaged_migrations_dir().glob("*.sql")):
        if file.name < PARTITIONING:
            shutil.copy(file, staged / file.name)
    with ScratchDatabases(migrations_dirs=[staged]) as databases:
        flat_db = databases.clone("flat")
        flat = databases.owner_url(flat_db)
        print(
            f"loading {args.rows:,} audit rows over 12 months into the unpartitioned schema",
            flush=True,
        )
        loaded = _load(flat, args.rows, args.orgs, start, end)
        parted_db = f"{flat_db}_parted"
        with psycopg.connect(databases.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(parted_db), sql.Identifier(flat_db)
                )
            )
        parted = databases.owner_url(parted_db)
        began = time.perf_counter()
        Migrator(parted).up()
        migrated = time.perf_counter() - began
        with psycopg.connect(parted, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) audit_logs")
            months = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_logs'::regclass"
            ).fetchone()
        print(f"loaded in {loaded:.0f} s; the partitioning migration converted it in {migrated:.0f} s"
              f" ({months[0] if months else '?'} partitions)", flush=True)  # fmt: skip

        with psycopg.connect(flat) as a, psycopg.connect(parted) as b:
            sample = a.execute(
                "SELECT org_id, id, created_at FROM audit_logs TABLESAMPLE SYSTEM (1) LIMIT %s",
                (args.lookups,),
            ).fetchall()
            random.Random(1).shuffle(sample)
            ids = [(r[0], r[1]) for r in sample]
            pages = [{"org": r[0], "at": r[2], "id": r[1]} for r in sample]
            a.commit()
            b.commit()
            a.autocommit = b.autocommit = True
            by_id = _alternate(
                args.rounds, lambda: _rate(a, GET_BY_ID, ids), lambda: _rate(b, GET_BY_ID, ids)
            )
            page = _alternate(
                args.rounds,
                lambda: _rate(a, PAGE_FLAT, pages),
                lambda: _rate(b, PAGE_PARTITIONED, pages),
            )
            missing = [(r[0], uuid.uuid4()) for r in sample]
            miss = _alternate(
                args.rounds,
                lambda: _rate(a, GET_BY_ID, missing),
                lambda: _rate(b, GET_BY_ID, missing),
            )

        oldest_end = month_start(start + dt.timedelta(days=32))
        deleted = _retention_by_delete(flat, oldest_end)
        older_than = (now.year * 12 + now.month) - (oldest_end.year * 12 + oldest_end.month)
        dropped = _retention_by_partition(parted, older_than)

    shutil.rmtree(staged, ignore_errors=True)
    print(
        f"\n{args.rows:,} rows, 12 months, {args.orgs} organizations; best of {args.rounds} rounds"
    )
    print(f"{'':34} {'unpartitioned':>14} {'partitioned':>12} {'ratio':>6}")
    for label, (x, y) in (("get_by_id (found), /s", by_id), ("get_by_id (missing), /s", miss),
                          ("keyset page of 100, pages/s", page)):  # fmt: skip
        print(f"{label:34} {x:14.0f} {y:12.0f} {y / x:6.2f}")
    print("\nretention of the oldest month")
    print(f"{'':34} {'DELETE+VACUUM':>14} {'DETACH+DROP':>12}")
    for key in ("rows", "seconds", "wal_mb", "size_before_mb", "size_after_mb"):
        print(f"{key:34} {deleted[key]:14.2f} {dropped[key]:12.2f}")


if __name__ == "__main__":
    main()
