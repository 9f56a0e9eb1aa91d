"""Two local servers for the replica and failover tests: an embedded primary on
127.0.0.1 and a streaming standby cloned from it with ``pg_basebackup -R``
(``EmbeddedServer.clone_standby_of``), llmcp migrated on the primary and the
application role made there (the standby gets both by replication)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from llmcp.dev.embedded import EmbeddedServer
from llmcp.dev.scratch import TEST_APP_PASSWORD, TEST_APP_ROLE, ensure_app_login_role, with_role
from llmcp.migrate import Migrator
from tests.servers import free_port

DBNAME = "llmcp"


@dataclass
class Pair:
    primary: EmbeddedServer
    standby: EmbeddedServer

    def owner_url(self, server: EmbeddedServer) -> str:
        """The superuser's URL over TCP (the standby's superuser has the primary's password)."""
        return server.url(DBNAME)

    def app_url(self, server: EmbeddedServer) -> str:
        """The application role's URL (a member of llmcp_app only) over TCP."""
        return with_role(server.url(DBNAME), TEST_APP_ROLE, TEST_APP_PASSWORD)

    def failover_url(self) -> str:
        """Both servers in one URL; libpq takes the one that accepts writes."""
        first, second = self.primary.tcp_port, self.standby.tcp_port
        hosts = f"127.0.0.1:{first},127.0.0.1:{second}"
        url = self.app_url(self.primary).replace(f"127.0.0.1:{first}", hosts)
        return url + "?target_session_attrs=read-write"

    def replay_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed every commit made on the primary so far:
        a transaction committed now is seen committed there (``pg_xact_status``), and
        commits are replayed in order. (Comparing WAL positions can wait for the next
        record when the insert position sits past a page header.)"""
        with (
            psycopg.connect(self.owner_url(self.primary), autocommit=True) as conn,
            conn.transaction(),
        ):
            row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert row is not None
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.owner_url(self.standby), autocommit=True) as conn:
            while True:
                try:
                    done = conn.execute("SELECT pg_xact_status(%s::xid8)", (row[0],)).fetchone()
                except psycopg.errors.InvalidParameterValue:  # "in the future": not there yet
                    done = None
                if done and done[0] == "committed":
                    return
                assert time.monotonic() < deadline, "the standby did not catch up"
                time.sleep(0.005)

    def set_synchronous(self, synchronous: bool) -> None:
        """Make the primary wait for the standby's flush at each commit (or not):
        ``synchronous_standby_names`` on the primary only, set after the clone, so
        that a promoted standby does not wait for a standby of its own."""
        names = "*" if synchronous else ""
        with psycopg.connect(self.owner_url(self.primary), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 30
            wanted = "sync" if synchronous else "async"
            while True:  # the walsender takes the new state a moment after the reload
                row = conn.execute("SELECT sync_state FROM pg_stat_replication").fetchone()
                if row is not None and row[0] == wanted:
                    return
                assert time.monotonic() < deadline, f"the standby did not become {wanted}"
                time.sleep(0.02)


def crash(server: EmbeddedServer) -> None:
    """Kill the server's postmaster and every backend of it at once (SIGKILL), as a
    machine that dies would: no walsender gets to send what it has not sent yet."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == postmaster:  # its parent
                children.append(int(stat.parent.name))
    for pid in [postmaster, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{postmaster}").exists():  # gone once its parent reaped it
        assert time.monotonic() < deadline, "the killed postmaster did not go away"
        time.sleep(0.01)
    # a dead postmaster leaves its pid file; pg_ctl would wait for it to go
    (server.data_dir / "postmaster.pid").unlink(missing_ok=True)


@contextlib.contextmanager
def primary_and_standby(*, durable: bool = False) -> Iterator[Pair]:
    """A migrated primary and its running standby; both stopped and removed at the end.

    ``durable=False`` (fsync off) is enough for routing tests; a crash test that
    must count what an acknowledged commit guarantees wants ``durable=True``."""
    with EmbeddedServer(durable=durable, tcp_port=free_port()) as primary:
        Migrator(primary.url(DBNAME)).up()
        ensure_app_login_role(primary.url(DBNAME))
        standby = EmbeddedServer(durable=durable, tcp_port=free_port())
        standby.clone_standby_of(primary)
        with standby:
            pair = Pair(primary, standby)
            pair.replay_caught_up()
            yield pair
