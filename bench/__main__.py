"""`make bench`: llmcp against the plain way of doing the same work, in one run.

Every figure is a ratio measured in the same run on the same (embedded)
server. Each case alternates rounds of the two sides, so both see the same
machine state, and keeps the best round of each (the least disturbed); the
ratio is ours / theirs (throughput; higher is better), except
``metrics_speedup_vs_raw`` (raw time / ours). Results are printed as a table
and written to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from bench import gateway
from llmcp import tenancy
from llmcp.adapter import encode_json
from llmcp.audit_writer import AuditWriter
from llmcp.audit_writer_base import COLUMNS
from llmcp.config import DatabaseConfig
from llmcp.database import Database
from llmcp.dev.scratch import ScratchDatabases
from llmcp.dev.seed import WINDOW_END, seed
from llmcp.errors import QueueFullError
from llmcp.factory import RepositoryFactory
from llmcp.generated.applications import ApplicationsQueries
from llmcp.generated.inference_requests import InferenceRequestsQueries
from llmcp.generated.models import AuditAction
from llmcp.generated.organizations import OrganizationsQueries
from llmcp.ids import uuid7
from llmcp.inputs import NewAuditLog

Conn = psycopg.Connection[Any]
RESULTS = "bench/results.json"
ORG_COLUMNS = "id, name, slug, version, created_at, updated_at"
AUDIT_COPY = f"COPY audit_logs ({', '.join(COLUMNS)}) FROM STDIN"


@dataclass
class Case:
    key: str
    description: str
    ours: float
    theirs: float
    unit: str
    target: float | None

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs


def best_rate(work: Callable[[], int], seconds: float) -> float:
    """Units per second of the fastest call among those fitting in ``seconds``."""
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        units = work()
        best = max(best, units / (time.perf_counter() - started))
    return best


def compare(
    ours: Callable[[], int], theirs: Callable[[], int], rounds: int, seconds: float
) -> tuple[float, float]:
    ours(), theirs()  # warm up: connections, prepared statements, caches
    best_ours = best_theirs = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, best_rate(ours, seconds))
        best_theirs = max(best_theirs, best_rate(theirs, seconds))
    return best_ours, best_theirs


# -- where the processes run ----------------------------------------------------


def _server_processes(backend_pid: int) -> list[int]:
    """The postmaster of ``backend_pid`` and all its children (Linux /proc)."""

    def parent_of(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as stat:  # "pid (comm) state ppid ..."
            return int(stat.read().rsplit(")", 1)[1].split()[1])

    postmaster = parent_of(backend_pid)
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if parent_of(int(entry)) == postmaster:
                    children.append(int(entry))
    return [postmaster, *children]


@contextlib.contextmanager
def separate_cpus(conn: Conn) -> Iterator[str]:
    """This process on one CPU, the server (and the backends it forks) on another.

    The lookup, list and ingest cases run so.

    On a small machine a one-client round trip costs what the scheduler makes
    it: the same raw lookup on two connections differs by up to 25 % depending on
    where each backend runs. Keeping client and server apart, as on two machines,
    makes the two sides of a comparison see the same placement. Affinities are
    restored on exit (the metrics case uses parallel workers).
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        yield "client and server not pinned: fewer than 2 CPUs"
        return
    try:
        server = _server_processes(conn.info.backend_pid)
        for pid in server:
            os.sched_setaffinity(pid, {cpus[-1]})
    except OSError as exc:  # a server elsewhere, or not ours
        yield f"client and server not pinned: {exc}"
        return
    os.sched_setaffinity(0, {cpus[0]})
    try:
        yield f"client on CPU {cpus[0]}, server on CPU {cpus[-1]}"
    finally:
        os.sched_setaffinity(0, cpus)
        for pid in _server_processes(conn.info.backend_pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)


# -- point lookups and lists ---------------------------------------------------


def seed_organizations(conn: Conn, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with conn.cursor().copy("COPY organizations (id, name, slug) FROM STDIN") as copy:
        for n, org_id in enumerate(ids):
            copy.write_row((org_id, f"Organization {n}", f"org-{n}"))
    conn.commit()
    return ids


def raw_lookup(conn: Conn, ids: list[uuid.UUID]) -> Callable[[], int]:
    sql = f"SELECT {ORG_COLUMNS} FROM organizations WHERE id = %s"

    def run() -> int:
        for org_id in ids:
            conn.execute(sql, (org_id,), prepare=True).fetchone()
        return len(ids)

    return run


def point_lookup(conn: Conn, ids: list[uuid.UUID], rounds: int, seconds: float) -> Case:
    queries = OrganizationsQueries()

    def ours() -> int:
        for org_id in ids:
            queries.get_by_id(conn, id=org_id)
        return len(ids)

    o, r = compare(ours, raw_lookup(conn, ids), rounds, seconds)
    return Case("point_lookup_vs_psycopg", "generated get_by_id vs raw prepared psycopg, one connection",
                o, r, "lookups/s", 0.90)  # fmt: skip


def repository_lookup(
    conn: Conn, url: str, ids: list[uuid.UUID], rounds: int, seconds: float, *, per_call: bool
) -> Case:
    """Repository lookups in a ``factory.request()`` scope, as the README serves a
    request, or with a pool checkout per call (``per_call``: no scope)."""
    with RepositoryFactory.connect(DatabaseConfig(url=url, min_size=1, max_size=1)) as factory:
        every_call = contextlib.nullcontext(factory.repositories())

        def ours() -> int:
            with every_call if per_call else factory.request() as repos:
                for org_id in ids:
                    repos.organizations.get_by_id(org_id)
            return len(ids)

        o, r = compare(ours, raw_lookup(conn, ids), rounds, seconds)
    if per_call:
        return Case("repository_lookup_per_call_vs_psycopg",
                    "repos.organizations.get_by_id, a pool checkout per call, vs raw prepared psycopg",
                    o, r, "lookups/s", None)  # fmt: skip
    return Case("repository_lookup_vs_psycopg",
                "repos.organizations.get_by_id in factory.request() (validation, errors, logging) "
                "vs raw prepared psycopg",
                o, r, "lookups/s", 0.90)  # fmt: skip


def pooled_lookup(url: str, ids: list[uuid.UUID], rounds: int, seconds: float) -> Case:
    """What a service does by hand: a pool checkout per request, then the query."""
    sql = f"SELECT {ORG_COLUMNS} FROM organizations WHERE id = %s"
    with RepositoryFactory.connect(DatabaseConfig(url=url, min_size=1, max_size=1)) as factory:
        organizations = factory.repositories().organizations
        pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=1, kwargs={"autocommit": True}
        )

        def ours() -> int:
            for org_id in ids:
                organizations.get_by_id(org_id)
            return len(ids)

        def theirs() -> int:
            for org_id in ids:
                with pool.connection() as conn:
                    conn.execute(sql, (org_id,), prepare=True).fetchone()
            return len(ids)

        o, r = compare(ours, theirs, rounds, seconds)
        pool.close()
    return Case("repository_lookup_vs_pooled_psycopg",
                "repos.organizations.get_by_id vs psycopg_pool checkout + prepared query",
                o, r, "lookups/s", None)  # fmt: skip


def sqlalchemy_lookup(url: str, ids: list[uuid.UUID], rounds: int, seconds: float) -> Case | None:
    try:
        from sqlalchemy import DateTime, Integer, Text, Uuid, create_engine
        from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
    except ImportError:
        print(
            "(sqlalchemy not installed: point_lookup_vs_sqlalchemy skipped; `make bench` installs it)"
        )
        return None

    class Base(DeclarativeBase):
        pass

    class Organization(Base):  # the usual ORM mapping of the same table
        __tablename__ = "organizations"
        id = mapped_column(Uuid, primary_key=True)
        name = mapped_column(Text, nullable=False)
        slug = mapped_column(Text, nullable=False)
        version = mapped_column(Integer, nullable=False)
        created_at = mapped_column(DateTime(timezone=True), nullable=False)
        updated_at = mapped_column(DateTime(timezone=True), nullable=False)

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1)
    with RepositoryFactory.connect(DatabaseConfig(url=url, min_size=1, max_size=1)) as factory:
        organizations = factory.repositories().organizations

        def ours() -> int:
            for org_id in ids:
                organizations.get_by_id(org_id)
            return len(ids)

        def theirs() -> int:
            for org_id in ids:
                with Session(engine) as session:  # a session per request, as services do
                    session.get(Organization, org_id)
            return len(ids)

        o, r = compare(ours, theirs, rounds, seconds)
    engine.dispose()
    return Case("point_lookup_vs_sqlalchemy", "repos.organizations.get_by_id vs SQLAlchemy 2 ORM session.get",
                o, r, "lookups/s", None)  # fmt: skip


def list_decode(conn: Conn, rounds: int, seconds: float) -> Case:
    queries = OrganizationsQueries()
    sql = f"SELECT {ORG_COLUMNS} FROM organizations ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"

    def ours() -> int:
        return len(queries.list(conn, limit=1000, offset=0))

    def raw() -> int:
        return len(conn.execute(sql, (1000, 0), prepare=True).fetchall())

    o, r = compare(ours, raw, rounds, seconds)
    return Case("list_decode_vs_psycopg", "1000 rows into msgspec structs vs raw psycopg tuples",
                o, r, "rows/s", 0.85)  # fmt: skip


def tenant_lookup(url: str, rounds: int, seconds: float) -> Case | None:
    """A tenant-scoped point lookup (applications.get_by_id in tenancy.scoped, as a
    member of llmcp_app: row-level security applies) against the same lookup
    unscoped, as the owner (whom row-level security does not restrict), both
    through the adapter. Alternating rounds; the median round of each side."""
    role = "llmcp_bench_app"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(
            f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        owner.execute(f"GRANT llmcp_app TO {role}")
        org = uuid.uuid4()
        owner.execute(
            "INSERT INTO organizations (id, name, slug) VALUES (%s, 'Tenant', %s)",
            (org, f"tenant-{org.hex[:8]}"),
        )
        apps = [uuid.uuid4() for _ in range(200)]
        with owner.cursor().copy(
            "COPY applications (id, org_id, name, api_key_hash) FROM STDIN"
        ) as copy:
            for n, app_id in enumerate(apps):
                copy.write_row((app_id, org, f"Application {n}", app_id.hex * 2))
        try:
            app_conn = psycopg.connect(make_conninfo(url, user=role), autocommit=True)
        except psycopg.OperationalError as exc:
            print(f"(tenant_lookup_vs_unscoped skipped: cannot connect as {role}: {exc})")
            return None
        queries = ApplicationsQueries()

        def scoped() -> int:
            with tenancy.scoped(tenancy.ORG_ID, str(org)):
                for app_id in apps:
                    queries.get_by_id(app_conn, org_id=org, id=app_id)
            return len(apps)

        def unscoped() -> int:
            for app_id in apps:
                queries.get_by_id(owner, org_id=org, id=app_id)
            return len(apps)

        with tenancy.scoped(tenancy.ORG_ID, str(org)):
            assert queries.get_by_id(app_conn, org_id=org, id=apps[0]) is not None
        # unscoped, llmcp_app sees nothing
        assert queries.get_by_id(app_conn, org_id=org, id=apps[0]) is None
        scoped(), unscoped()  # warm up
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(max(rounds, 3)):
            ours.append(best_rate(scoped, seconds))
            theirs.append(best_rate(unscoped, seconds))
        app_conn.close()
        owner.execute(f"DROP OWNED BY {role}")
        owner.execute(f"DROP ROLE {role}")
    return Case("tenant_lookup_vs_unscoped",
                "applications.get_by_id in tenancy.scoped as llmcp_app vs unscoped as the owner, "
                "both through the adapter (median of alternating rounds)",
                statistics.median(ours), statistics.median(theirs), "lookups/s", 0.90)  # fmt: skip


# -- audit ingest ----------------------------------------------------------------


def audit_inputs(org: uuid.UUID, count: int) -> list[NewAuditLog]:
    now = dt.datetime.now(dt.UTC)
    return [
        NewAuditLog(
            org_id=org, action=AuditAction.INFERENCE_COMPLETED, resource_type="inference_request",
            resource_id=uuid.uuid4(), request_id=f"req-{n}", details={"model": "gpt-4o-mini", "tokens": n},
            created_at=now,
        )
        for n in range(count)
    ]  # fmt: skip


def as_row(new: NewAuditLog, new_id: Callable[[], uuid.UUID] = uuid7) -> tuple[Any, ...]:
    """What hand-written code would send: the same columns and ids, no validation."""
    return (
        new_id(), new.org_id, new.app_id, new.user_id, new.action.value, new.resource_type,
        new.resource_id, new.request_id, Jsonb(new.details, dumps=encode_json), new.ip_address,
        new.user_agent, new.created_at,
    )  # fmt: skip


def audit_ingest(url: str, org: uuid.UUID, count: int, rounds: int) -> list[Case]:
    """The writer as the service role (llmcp_app: row-level security, INSERT only) against
    raw statements as the owner (COPY FROM is refused under row-level security)."""
    logs = audit_inputs(org, count)
    service_url = make_conninfo(url, options="-c role=llmcp_app")
    insert_sql = (
        f"INSERT INTO audit_logs ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )

    def writer() -> float:
        config = DatabaseConfig(url=service_url, min_size=1, max_size=2)
        with Database.connect(config) as database:
            audit = AuditWriter(database, queue_size=count, batch_size=2000)
            started = time.perf_counter()
            for new in logs:
                audit.submit(new)
            audit.flush()
            elapsed = time.perf_counter() - started
            stats = audit.stats
            audit.close()
        assert stats.written == count and stats.dropped == stats.failed == 0, stats
        return count / elapsed

    def raw(how: str) -> float:
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            if how == "copy":
                with conn.cursor().copy(AUDIT_COPY) as copy:
                    for new in logs:
                        copy.write_row(as_row(new))
            elif how == "executemany":
                conn.cursor().executemany(insert_sql, [as_row(new) for new in logs])
            else:  # one INSERT per row, one transaction
                for new in logs[: count // 10]:
                    conn.execute(insert_sql, as_row(new), prepare=True)
            conn.commit()
            return (count if how != "insert" else count // 10) / (time.perf_counter() - started)

    # The writer and COPY take turns, one round each, which goes first alternating;
    # each side's figure is its median round. The best of two rounds per side, as
    # before, moved the ratio by about 0.15 from one run to the next on this
    # shared machine. executemany and the per-row INSERT (no target) run twice.
    rates: dict[str, list[float]] = {"writer": [], "copy": [], "executemany": [], "insert": []}
    for turn in range(rounds):
        pair = [("writer", writer), ("copy", lambda: raw("copy"))]
        for name, run in pair if turn % 2 == 0 else pair[::-1]:
            rates[name].append(run())
        if turn < 2:
            rates["executemany"].append(raw("executemany"))
            rates["insert"].append(raw("insert"))
    median = {name: statistics.median(values) for name, values in rates.items()}
    return [
        Case("audit_ingest_vs_copy", f"{count:,} audit rows through the writer (submit + flush, llmcp_app) "
             f"vs raw COPY, the median of {rounds} alternating rounds each",
             median["writer"], median["copy"], "rows/s", 0.8),
        Case("audit_ingest_vs_executemany", "the writer vs psycopg executemany of the same rows",
             median["writer"], median["executemany"], "rows/s", None),
        Case("audit_ingest_vs_insert_per_row", "the writer vs one prepared INSERT per row",
             median["writer"], median["insert"], "rows/s", None),
    ]  # fmt: skip


def writer_memory(rows: int) -> dict[str, float]:
    """Peak Python memory of a writer whose queue is full (the database is away)."""
    logs = audit_inputs(uuid.uuid4(), rows)
    config = DatabaseConfig(url="postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", min_size=0,
                            acquire_timeout=0.2, connect_timeout=1)  # fmt: skip
    database = Database(config)
    audit = AuditWriter(
        database, queue_size=rows, batch_size=1000, put_timeout=0.01, max_backoff=0.5
    )
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    accepted = 0
    try:
        for new in logs + logs[:5000]:  # more than fits: the queue must refuse the rest
            audit.submit(new)
            accepted += 1
        full = False
    except QueueFullError:
        full = True
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    database.close()
    audit.close()  # stores nothing: counted as failed, the database is closed
    return {"queue_size": rows, "accepted": accepted, "peak_mib": round(peak / 2**20, 2),
            "bytes_per_row": round(peak / accepted), "refused_when_full": full}  # fmt: skip


def id_kinds(databases: ScratchDatabases, count: int) -> Case:
    """Raw COPY of audit rows, 1000 per transaction as the writer does: time-ordered ids
    (what llmcp makes for audit logs and inference requests) against random ones, each
    load into a database of its own (the audit trail refuses TRUNCATE, rightly)."""
    org = uuid7()
    logs = audit_inputs(org, 1000)
    sizes: dict[str, int] = {}

    def load(name: str, new_id: Callable[[], uuid.UUID]) -> float:
        clone = databases.clone("ids")
        with psycopg.connect(databases.owner_url(clone), autocommit=True) as conn:
            conn.execute("INSERT INTO organizations (id, name, slug) VALUES (%s, 'Ids', 'ids')",
                         (org,))  # fmt: skip
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            for _ in range(count // len(logs)):
                with conn.transaction(), conn.cursor().copy(AUDIT_COPY) as copy:
                    for new in logs:
                        copy.write_row(as_row(new, new_id))
            rate = count / (time.perf_counter() - started)
            # the partitioned primary key has no storage: its partitions' indexes have
            size = conn.execute(
                "SELECT coalesce(sum(pg_relation_size(relid)), 0)::bigint"
                " FROM pg_partition_tree('audit_logs_pkey') WHERE isleaf"
            ).fetchone()
            sizes[name] = size[0] if size else 0
        databases.drop(clone)
        return rate

    best: dict[str, float] = {}
    for _ in range(2):
        for name, new_id in (("uuid4", uuid.uuid4), ("uuid7", uuid7)):
            best[name] = max(best.get(name, 0.0), load(name, new_id))
    mib = {name: size / 2**20 for name, size in sizes.items()}
    return Case("audit_ids_uuid7_vs_uuid4",
                f"raw COPY of {count:,} audit rows, time-ordered vs random ids "
                f"(primary key {mib['uuid7']:.0f} MiB vs {mib['uuid4']:.0f} MiB)",
                best["uuid7"], best["uuid4"], "rows/s", None)  # fmt: skip


# -- metrics -----------------------------------------------------------------------


def metrics_speedup(url: str, requests: int, rounds: int) -> Case:
    summary = seed(url, organizations=1, requests=requests, audit_logs=0, seed=11)
    queries = InferenceRequestsQueries()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM organizations").fetchone()
        assert row is not None
        org = row[0]
        # 30 days, starting and ending off the hour
        end = WINDOW_END - dt.timedelta(minutes=7, seconds=13)
        start = end - dt.timedelta(days=30)
        fast = queries.get_metrics(conn, org_id=org, start_time=start, end_time=end)
        raw = queries.get_metrics_raw(conn, org_id=org, start_time=start, end_time=end)
        assert fast is not None and raw is not None
        assert [getattr(fast, f) for f in fast.__struct_fields__] == [
            getattr(raw, f) for f in raw.__struct_fields__
        ]

        def timed(fn: Callable[[], object]) -> float:
            started = time.perf_counter()
            fn()
            return time.perf_counter() - started

        ours = min(timed(lambda: queries.get_metrics(conn, org_id=org, start_time=start, end_time=end))
                   for _ in range(rounds * 4))  # fmt: skip
        theirs = min(timed(lambda: queries.get_metrics_raw(conn, org_id=org, start_time=start, end_time=end))
                     for _ in range(rounds))  # fmt: skip
    return Case("metrics_speedup_vs_raw",
                f"get_metrics over 30 days, {summary.inference_requests:,} requests, vs the plain aggregate "
                f"(both exact: {fast.total_requests:,} requests counted)",
                1 / ours, 1 / theirs, "calls/s", 50.0)  # fmt: skip


def gateway_cases(
    databases: ScratchDatabases, lookup_url: str, ids: list[uuid.UUID], rounds: int, seconds: float
) -> list[Case]:
    """The async request path (bench/gateway.py), on a database of its own."""
    name = databases.clone("gateway")
    # turns of ``seconds``, three times ``rounds`` of them: the time of ``rounds`` rounds of 3 * seconds
    sides = asyncio.run(gateway.run(databases.url(name), databases.owner_url(name), 3 * rounds,
                                    seconds))  # fmt: skip
    (ours, our_cpu) = sides.pop("llmcp")
    what = f"{gateway.IN_FLIGHT} requests in flight on a pool of {gateway.POOL_SIZE}"
    cases = [
        Case(
            f"gateway_vs_{key}",
            f"gateway request, llmcp as the README shows vs {label}; {what}",
            ours,
            sides[side][0],
            "requests/s",
            target,
        )
        for key, side, label, target in (
            ("psycopg_async", "psycopg", "psycopg async + psycopg_pool", None),
            ("asyncpg", "asyncpg", "asyncpg + its pool", 1.3),
            ("sqlalchemy_async", "sqlalchemy", "SQLAlchemy 2 async ORM (asyncpg)", 4.0),
        )
        if side in sides
    ]
    if "llmcp_inline_audit" in sides:  # the audit log inserted by the request, as by hand
        cases.append(Case("gateway_inline_audit_vs_asyncpg",
                          f"gateway request, llmcp with audit_logs.insert() in the request vs asyncpg; {what}",
                          sides["llmcp_inline_audit"][0], sides["asyncpg"][0], "requests/s", None))  # fmt: skip
    if "llmcp_per_call" in sides:  # no request scope: a pool checkout per call
        cases.append(Case("gateway_per_call_vs_asyncpg",
                          f"gateway request, llmcp without factory.request() vs asyncpg; {what}",
                          sides["llmcp_per_call"][0], sides["asyncpg"][0], "requests/s", None))  # fmt: skip
    if "cached" in sides:  # the same requests, the admission cache on
        cases.append(Case("gateway_cached_vs_asyncpg",
                          f"gateway request, llmcp with its admission cache vs asyncpg; {what}",
                          sides["cached"][0], sides["asyncpg"][0], "requests/s", None))  # fmt: skip
    # CPU per request: theirs / ours, so that higher is better here too
    cases.append(Case("gateway_client_cpu_vs_asyncpg", "client CPU per gateway request, asyncpg's / llmcp's",
                      1 / our_cpu, 1 / sides["asyncpg"][1], "requests/CPU-s", 1.0))  # fmt: skip
    lookups = asyncio.run(gateway.lookup_rates(lookup_url, ids, rounds, seconds))
    for key, side, target in (("psycopg_async", "psycopg", 0.9), ("asyncpg", "asyncpg", None)):
        description = (
            f"async organizations.get_by_id in factory.request() vs raw {side}, one connection"
        )
        cases.append(Case(f"async_lookup_vs_{key}", description, lookups["llmcp"],
                          lookups[side], "lookups/s", target))  # fmt: skip
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per round and side")
    parser.add_argument(
        "--requests", type=int, default=1_000_000, help="inference requests for metrics"
    )
    parser.add_argument("--audit-rows", type=int, default=50_000)
    parser.add_argument(
        "--id-rows", type=int, default=1_000_000, help="audit rows for the id comparison"
    )
    args = parser.parse_args()
    from bench.telemetry import telemetry_cases  # here: it imports this module

    cases: list[Case] = []
    with ScratchDatabases() as databases:
        bench_name = databases.clone("bench")
        url = databases.owner_url(bench_name)
        with psycopg.connect(url) as conn:
            ids = seed_organizations(conn, 5000)
            conn.autocommit = True
            batch = ids[:200]
            with separate_cpus(conn) as placement:
                print(placement)
                cases.append(point_lookup(conn, batch, args.rounds, args.seconds))
                for per_call in (False, True):
                    cases.append(
                        repository_lookup(
                            conn, url, batch, args.rounds, args.seconds, per_call=per_call
                        )
                    )
                cases.append(pooled_lookup(url, batch, args.rounds, args.seconds))
                sqlalchemy = sqlalchemy_lookup(url, batch, args.rounds, args.seconds)
                cases += [sqlalchemy] if sqlalchemy else []
                cases += telemetry_cases(url, 3 * args.rounds, args.seconds / 2)
                cases.append(list_decode(conn, args.rounds, args.seconds))
                tenant = tenant_lookup(url, args.rounds, args.seconds)
                cases += [tenant] if tenant else []
                cases += gateway_cases(databases, databases.url(bench_name), batch, args.rounds,
                                       args.seconds)  # fmt: skip
                cases += audit_ingest(url, ids[0], args.audit_rows, 2 * args.rounds)
                cases.append(id_kinds(databases, args.id_rows))
            server = conn.execute("SHOW server_version").fetchone()
        metrics_url = databases.owner_url(databases.clone("metrics"))
        cases.append(metrics_speedup(metrics_url, args.requests, args.rounds))
    memory = writer_memory(100_000)

    print(f"\n{'case':<32} {'ours':>12} {'theirs':>12} {'unit':<10} {'ratio':>8} {'target':>7}")
    for case in cases:
        verdict = "" if case.target is None else ("ok" if case.ratio >= case.target else "BELOW")
        target = "" if case.target is None else f"{case.target:.2f}"
        print(f"{case.key:<32} {case.ours:>12,.0f} {case.theirs:>12,.0f} {case.unit:<10} "
              f"{case.ratio:>8.3f} {target:>7} {verdict}")  # fmt: skip
    print(f"\nwriter memory with a full queue: {memory}")
    report = {
        "server": server[0] if server else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "placement": placement,
        **{case.key: round(case.ratio, 4) for case in cases},
        "writer_memory_full_queue": memory,
        "cases": [asdict(case) | {"ratio": round(case.ratio, 4)} for case in cases],
    }
    with open(RESULTS, "w") as file:
        file.write(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
