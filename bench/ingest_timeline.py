"""Where the sync audit writer's ingest time goes (the ``audit_ingest_vs_copy`` case):
how many rows are stored while the caller is still submitting, and how fast the
rest goes once it waits in ``flush``.

``python -m bench.ingest_timeline [--rows N] [--rounds R]``, on an embedded
server, client and server pinned as in ``make bench``: the caller's thread and
the writer's share the client's one CPU (and the GIL).
"""

from __future__ import annotations

import argparse
import time
import uuid

import psycopg
from psycopg.conninfo import make_conninfo

from bench.__main__ import audit_inputs, seed_organizations, separate_cpus
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
        with psycopg.connect(url) as conn:
            org = seed_organizations(conn, 1)[0]
            conn.commit()
            with separate_cpus(conn) as placed:
                print(placed)
                service = DatabaseConfig(url=make_conninfo(url, options="-c role=llmcp_app"),
                                         min_size=1, max_size=2)  # fmt: skip
                for _ in range(args.rounds):
                    _round(service, org, args.rows)


def _round(config: DatabaseConfig, org: uuid.UUID, rows: int) -> None:
    logs = audit_inputs(org, rows)
    with Database.connect(config) as database:
        writer = AuditWriter(database, queue_size=rows, batch_size=2000)
        started, cpu = time.perf_counter(), time.process_time()
        for new in logs:
            writer.submit(new)
        submitted, by_then = time.perf_counter(), writer.stats.written
        writer.flush()
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        batches = writer.stats.batches
        writer.close()
    rest = rows - by_then
    print(f"submitting: {submitted - started:.2f} s, {by_then:,} rows stored meanwhile "
          f"({(submitted - started) / max(by_then, 1) * 1e6:.0f} us/row); flush: "
          f"{ended - submitted:.2f} s for the other {rest:,} "
          f"({(ended - submitted) / max(rest, 1) * 1e6:.0f} us/row); in all {rows / (ended - started):,.0f} "
          f"rows/s, client CPU {cpu / rows * 1e6:.1f} us/row, {batches} batches")  # fmt: skip


if __name__ == "__main__":
    main()
