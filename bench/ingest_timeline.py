"""Where the sync audit writer's ingest time goes (the ``audit_ingest_vs_copy`` case):
how many rows are stored while the caller is still submitting, how fast the
rest goes once it waits in ``flush``, and what each row costs the server: the
writer's INSERT against COPY of the same rows (read from /proc: a local server).

``python -m bench.ingest_timeline [--rows N] [--rounds R]``, on an embedded
server, client and server pinned as in ``make bench``: the caller's thread and
the writer's share the client's one CPU (and the GIL).
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from bench.__main__ import AUDIT_COPY, as_row, audit_inputs, seed_organizations, separate_cpus
from bench.gateway import BACKENDS, _cpu_seconds
from llmcp.audit_writer import AuditWriter
from llmcp.config import DatabaseConfig
from llmcp.database import Database
from llmcp.dev.scratch import ScratchDatabases


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_timeline", description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with ScratchDatabases() as databases:
        url = databases.owner_url(databases.clone("ingest"))
        with psycopg.connect(url) as conn, psycopg.connect(url, autocommit=True) as observer:
            org = seed_organizations(conn, 1)[0]
            conn.commit()
            with separate_cpus(conn) as placed:
                print(placed)
                service = DatabaseConfig(url=make_conninfo(url, options="-c role=llmcp_app"),
                                         min_size=1, max_size=2)  # fmt: skip
                for _ in range(args.rounds):
                    writer_server = _round(service, org, args.rows, observer)
                    before = _server_cpu(observer)
                    with conn.cursor().copy(AUDIT_COPY) as copy:
                        for new in audit_inputs(org, args.rows):
                            copy.write_row(as_row(new))
                    conn.commit()
                    copy_server = _spent(before, _server_cpu(observer))
                    print(f"  server CPU per row: the writer's INSERT {writer_server / args.rows * 1e6:.1f} us, "
                          f"COPY {copy_server / args.rows * 1e6:.1f} us")  # fmt: skip


def _server_cpu(observer: psycopg.Connection[Any]) -> dict[int, float]:
    """CPU seconds so far of the database's other client backends."""
    found = {pid: _cpu_seconds(pid) for (pid,) in observer.execute(BACKENDS).fetchall()}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _round(
    config: DatabaseConfig, org: uuid.UUID, rows: int, observer: psycopg.Connection[Any]
) -> float:
    """One round of the writer; the server CPU (s) its backends spent."""
    logs = audit_inputs(org, rows)
    with Database.connect(config) as database:
        writer = AuditWriter(database, queue_size=rows, batch_size=2000)
        before = _server_cpu(observer)
        started, cpu = time.perf_counter(), time.process_time()
        for new in logs:
            writer.submit(new)
        submitted, by_then = time.perf_counter(), writer.stats.written
        writer.flush()
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        server = _spent(before, _server_cpu(observer))
        batches = writer.stats.batches
        writer.close()
    rest = rows - by_then
    print(f"submitting: {submitted - started:.2f} s, {by_then:,} rows stored meanwhile "
          f"({(submitted - started) / max(by_then, 1) * 1e6:.0f} us/row); flush: "
          f"{ended - submitted:.2f} s for the other {rest:,} "
          f"({(ended - submitted) / max(rest, 1) * 1e6:.0f} us/row); in all {rows / (ended - started):,.0f} "
          f"rows/s, client CPU {cpu / rows * 1e6:.1f} us/row, {batches} batches")  # fmt: skip
    return server


if __name__ == "__main__":
    main()
