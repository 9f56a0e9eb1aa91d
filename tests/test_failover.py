"""Failover: a multi-host URL with target_session_attrs=read-write, a primary that
stops, and a streaming replica promoted 8 s later (two embedded servers on
127.0.0.1). The pool and the audit writer resume within a second of the promotion."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg

from llmcp.audit_writer import AuditWriter
from llmcp.config import DatabaseConfig
from llmcp.dev.embedded import EmbeddedServer
from llmcp.factory import RepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog, NewOrganization
from llmcp.migrate import Migrator
from tests.servers import free_port

OUTAGE_S = 8.0


def _log(org: uuid.UUID, n: int) -> NewAuditLog:
    return NewAuditLog(org_id=org, action=AuditAction.USER_CREATED, resource_type="user",
                       request_id=f"r-{n}")  # fmt: skip


def _wait_replayed(replica_url: str, org: uuid.UUID, rows: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(replica_url) as conn:
            found = conn.execute(
                "SELECT count(*) FROM audit_logs WHERE org_id = %s", (org,)
            ).fetchone()
        if found is not None and found[0] == rows:
            return
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


def test_pool_and_writer_resume_within_a_second_of_a_promotion() -> None:
    p1, p2 = free_port(), free_port()
    with EmbeddedServer(durable=True, tcp_port=p1) as primary:
        Migrator(primary.url("own")).up()
        replica = EmbeddedServer(durable=True, tcp_port=p2)
        replica.clone_standby_of(primary)
        with replica:
            # both servers' superuser has the primary's password (the standby is its copy)
            url = (
                primary.url("own").replace(f"127.0.0.1:{p1}/", f"127.0.0.1:{p1},127.0.0.1:{p2}/")
                + "?target_session_attrs=read-write"
            )
            config = DatabaseConfig(url=url, min_size=4, max_size=4, connect_timeout=2.0,
                                    acquire_timeout=30.0)  # fmt: skip
            with RepositoryFactory.connect(config) as factory:
                repos = factory.repositories()
                writer = AuditWriter(factory.database, flush_interval=0.01)
                org = repos.organizations.create(NewOrganization(name="F", slug="failover"))
                ids = [writer.submit(_log(org.id, n)) for n in range(1000)]
                assert not writer.flush(timeout=30)
                _wait_replayed(replica.url("own"), org.id, 1000)
                primary.stop("fast")
                stopped = time.monotonic()
                waited: list[float] = []

                def call_during_the_outage() -> None:  # waits in acquire until the promotion
                    assert repos.organizations.get_by_id(org.id) == org
                    waited.append(time.monotonic())

                caller = threading.Thread(target=call_during_the_outage)
                caller.start()
                while time.monotonic() - stopped < OUTAGE_S:  # rows keep coming meanwhile
                    ids += [writer.submit(_log(org.id, len(ids) + n)) for n in range(50)]
                    time.sleep(0.1)
                replica.promote()
                promoted = time.monotonic()
                caller.join(timeout=30)
                assert waited, "the call made during the outage never returned"
                assert repos.organizations.get_by_id(org.id) == org
                next_call = time.monotonic() - promoted
                assert not writer.flush(timeout=30)
                flushed = time.monotonic() - promoted
                with psycopg.connect(replica.url("own")) as conn:
                    found = conn.execute(
                        "SELECT count(*), count(DISTINCT id) FROM audit_logs WHERE org_id = %s",
                        (org.id,),
                    ).fetchone()
                assert found is not None and tuple(found) == (len(ids), len(ids))
                stats = writer.stats
                assert (stats.accepted, stats.written, stats.failed) == (len(ids), len(ids), 0)
                print(f"\nfailover ({OUTAGE_S:.0f} s outage): the waiting call returned "
                      f"{(waited[0] - promoted) * 1000:.0f} ms after the promotion, the next "
                      f"in {next_call * 1000:.0f} ms; writer: accepted {len(ids)}, stored "
                      f"{found[0]}, failed 0, lost 0, all stored {flushed * 1000:.0f} ms "
                      "after the promotion")  # fmt: skip
                assert waited[0] - promoted < 1.5 and flushed < 1.5
                writer.close()
