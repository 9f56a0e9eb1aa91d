"""Nothing queued is lost at exit without a word: real processes, 60,000 rows queued.

The table is locked (SHARE) while the child queues its rows, so that they are
all still queued when it exits or gets SIGTERM; the lock goes a moment later.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.tenancy import set_tenant

ROWS = 60_000
ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import asyncio, atexit, logging, sys, time, uuid
from llmcp import AuditAction, DatabaseConfig, NewAuditLog
logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
url, org = sys.argv[1], uuid.UUID(sys.argv[2])
config = DatabaseConfig(url=url, min_size=1, max_size=2)
def log(n):
    return NewAuditLog(org_id=org, action=AuditAction.USER_CREATED, resource_type="user",
                       request_id=f"r-{n}")
"""

SYNC = (
    PRELUDE
    + """
from llmcp import AuditWriter, RepositoryFactory
factory = RepositoryFactory.connect(config)
writer = AuditWriter(factory.database, queue_size=100_000, exit_timeout=60)
# registered before the writer's own exit handler, so it runs after it (last in, first out)
atexit.register(lambda: print("exit", writer.stats.accepted, writer.stats.written, flush=True))
for n in range(ROWS):
    writer.submit(log(n))
print("queued", writer.stats.queue_depth, flush=True)
if sys.argv[3] == "sleep":
    time.sleep(120)  # until SIGTERM
"""
)

ASYNC = (
    PRELUDE
    + """
from llmcp import AsyncAuditWriter, AsyncDatabase, AsyncRepositoryFactory
async def main():
    database = await AsyncDatabase.connect(config)
    writer = AsyncAuditWriter(database, queue_size=100_000)
    factory = AsyncRepositoryFactory(database, audit_writer=writer)
    if sys.argv[3] == "lifespan":
        async with factory:  # what a service's lifespan does: close() drains
            await fill(factory)
    else:
        await fill(factory)  # never closed: its rows are lost, with an error that counts them
async def fill(factory):
    logs = factory.repositories().audit_logs
    for n in range(ROWS):
        await logs.async_insert(log(n))
    print("queued", factory.audit_writer.stats.queue_depth, flush=True)
asyncio.run(main())
"""
)


def _org(url: str) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO organizations (name, slug) VALUES ('X', %s) RETURNING id",
            (f"x-{uuid.uuid4().hex[:8]}",),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _stored(url: str, org: uuid.UUID) -> tuple[int, int]:
    """(rows, distinct request ids) of ``org``, read as its tenant."""
    with psycopg.connect(url) as conn:
        set_tenant(conn, org)
        row = conn.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM audit_logs WHERE org_id = %s",
            (org,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _run_locked(
    url: str, source: str, mode: str, *, sigterm: bool, org: uuid.UUID, owner_url: str
) -> tuple[int, str, str, float]:
    """Run ``source`` (on ``url``) while audit_logs is locked; SIGTERM it once its rows
    are queued (if asked); release the lock; return (exit code, stdout, stderr, drain
    seconds). The lock is the owner's: SHARE mode needs more than the application
    role's SELECT and INSERT."""
    code = source.replace("ROWS", str(ROWS))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with psycopg.connect(owner_url) as lock:
        lock.execute("LOCK TABLE audit_logs IN SHARE MODE")  # the INSERTs wait for it
        child = subprocess.Popen(  # the child writes as the service role
            [sys.executable, "-c", textwrap.dedent(code), url, str(org), mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert child.stdout is not None
        watchdog = threading.Timer(60, child.kill)  # a hung child fails the test, not the run
        watchdog.start()
        line = child.stdout.readline()
        assert line.startswith("queued"), child.communicate()
        assert int(line.split()[1]) == ROWS  # all of them still queued
        if sigterm:
            child.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the child is exiting, its rows still queued
        released = time.monotonic()
    out, err = child.communicate(timeout=120)
    watchdog.cancel()
    return child.returncode, line + out, err, time.monotonic() - released


@pytest.mark.parametrize("how", ["normal exit", "SIGTERM"])
def test_the_sync_writer_drains_at_exit(fresh_db: str, fresh_owner_db: str, how: str) -> None:
    org = _org(fresh_db)
    sigterm = how == "SIGTERM"
    code, out, err, took = _run_locked(
        fresh_db, SYNC, "sleep" if sigterm else "end", sigterm=sigterm, org=org,
        owner_url=fresh_owner_db,
    )  # fmt: skip
    assert code == (128 + signal.SIGTERM if sigterm else 0), err
    assert out.split("\n")[1].split() == ["exit", str(ROWS), str(ROWS)], out + err
    assert _stored(fresh_db, org) == (ROWS, ROWS)
    print(f"\nsync writer, {how}: accepted {ROWS}, stored {ROWS}, lost 0; "
          f"drained {took:.2f} s after the lock went")  # fmt: skip


def test_the_async_writer_is_drained_by_the_factory_close(
    fresh_db: str, fresh_owner_db: str
) -> None:
    org = _org(fresh_db)
    code, _, err, took = _run_locked(
        fresh_db, ASYNC, "lifespan", sigterm=False, org=org, owner_url=fresh_owner_db
    )
    assert code == 0, err
    assert _stored(fresh_db, org) == (ROWS, ROWS)
    print(f"\nasync writer, lifespan close: accepted {ROWS}, stored {ROWS}, lost 0; "
          f"{took:.2f} s")  # fmt: skip


def test_an_async_writer_left_open_says_how_many_rows_it_loses(
    fresh_db: str, fresh_owner_db: str
) -> None:
    org = _org(fresh_db)
    code, _, err, _ = _run_locked(
        fresh_db, ASYNC, "forgotten", sigterm=False, org=org, owner_url=fresh_owner_db
    )
    assert code == 0, err
    stored, _ = _stored(fresh_db, org)
    assert "rows not stored" in err, err
    lost = [int(word) for line in err.splitlines() if "rows not stored" in line
            for word in line.split() if word.isdigit()]  # fmt: skip
    assert lost and lost[0] == ROWS - stored, err
    print(f"\nasync writer never closed: accepted {ROWS}, stored {stored}, lost {ROWS - stored}, "
          f"all of them counted in the error logged")  # fmt: skip
