"""Replicas and synchronous replication on this machine: `python -m bench.replicas`.

Two embedded servers on 127.0.0.1 (a durable primary and its streaming standby,
tests.replication), as the application role:

- the cost of synchronous replication: the audit writer's ingest (rows/s) and
  ``organizations.create`` latency with ``synchronous_standby_names`` set and not;
- read routing: a stale-tolerant list on the replica vs on the primary, and how
  often the replica misses a row read right after its create (what read-your-writes
  keeps a context from seeing).
"""

from __future__ import annotations

import argparse
import contextvars
import statistics
import time
import uuid

from llmcp.audit_writer import AuditWriter
from llmcp.config import DatabaseConfig
from llmcp.factory import RepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog, NewOrganization
from tests.replication import Pair, primary_and_standby


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"median {statistics.median(ordered) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def _writes(pair: Pair, rows: int, creates: int) -> tuple[float, list[float]]:
    config = DatabaseConfig(url=pair.app_url(pair.primary), min_size=2, max_size=4)
    with RepositoryFactory.connect(config) as factory:
        repos = factory.repositories()
        org = repos.organizations.create(
            NewOrganization(name="b", slug=f"b-{uuid.uuid4().hex[:8]}")
        )
        writer = AuditWriter(factory.database)
        logs = [
            NewAuditLog(org_id=org.id, action=AuditAction.USER_CREATED, resource_type="user")
            for _ in range(rows)
        ]
        started = time.perf_counter()
        for log in logs:
            writer.submit(log)
        assert not writer.flush(timeout=300)
        ingest = rows / (time.perf_counter() - started)
        writer.close()
        latencies = []
        for _ in range(creates):
            slug = f"c-{uuid.uuid4().hex[:12]}"
            began = time.perf_counter()
            repos.organizations.create(NewOrganization(name="c", slug=slug))
            latencies.append(time.perf_counter() - began)
    return ingest, latencies


def _reads(pair: Pair, samples: int) -> None:
    config = DatabaseConfig(url=pair.app_url(pair.primary),
                            replica_urls=(pair.app_url(pair.standby),))  # fmt: skip
    with RepositoryFactory.connect(config) as factory:
        repos, tx = factory.repositories(), factory.transaction_manager()
        for _ in range(200):  # rows to list
            repos.organizations.create(NewOrganization(name="r", slug=f"r-{uuid.uuid4().hex[:12]}"))
        pair.replay_caught_up()

        def timed(stale: bool) -> list[float]:
            with tx.stale_ok(stale):
                out = []
                for _ in range(samples):
                    began = time.perf_counter()
                    repos.organizations.list(limit=100)
                    out.append(time.perf_counter() - began)
                return out

        replica = contextvars.copy_context().run(timed, True)
        primary = contextvars.copy_context().run(timed, False)
        print(f"list of 100: replica {_ms(replica)}; primary {_ms(primary)}")
        misses = 0
        lags = []
        for _ in range(samples):
            org = repos.organizations.create(
                NewOrganization(name="m", slug=f"m-{uuid.uuid4().hex[:12]}")
            )
            created = time.perf_counter()

            def on_replica(org_id: uuid.UUID) -> bool:
                with tx.stale_ok():
                    return org_id in {o.id for o in repos.organizations.list(limit=5)}

            seen = contextvars.copy_context().run(on_replica, org.id)
            misses += not seen
            while not seen:
                seen = contextvars.copy_context().run(on_replica, org.id)
            lags.append(time.perf_counter() - created)
        print(f"read on the replica right after a create (a context that did not write): "
              f"missed {misses} of {samples}; visible there after {_ms(lags)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="audit rows per mode")
    parser.add_argument("--creates", type=int, default=500, help="creates per mode")
    args = parser.parse_args()
    with primary_and_standby(durable=True) as pair:
        results = {}
        for synchronous in (False, True):
            pair.set_synchronous(synchronous)
            results[synchronous] = _writes(pair, args.rows, args.creates)
            ingest, latencies = results[synchronous]
            mode = "synchronous " if synchronous else "asynchronous"
            print(f"{mode} replication: writer {ingest:,.0f} rows/s; create {_ms(latencies)}")
        ratio = results[True][0] / results[False][0]
        slower = statistics.median(results[True][1]) / statistics.median(results[False][1])
        print(f"synchronous / asynchronous: ingest x{ratio:.2f}, create latency x{slower:.2f}")
        pair.set_synchronous(False)
        _reads(pair, args.creates)


if __name__ == "__main__":
    main()
