"""Shared fixtures: one server and one migrated template per run, clones per test.

The server is the embedded one (a private temporary folder) unless
``LLMCP_DATABASE_URL`` names an external server; either way every database
made here is dropped at the end of the run.

Tests run as the application role (``databases.url``, ``fresh_db``,
``shared_db``: a login role that is a member of ``llmcp_app`` and nothing else).
The ``*_owner_db`` fixtures are the same databases as the owner, for the few
tests that need more than the service may do; each use says why.

The pooled pass (``make test-pgbouncer``: ``LLMCP_TEST_POOLER_URL`` names a
PgBouncer in transaction mode) runs the application role through PgBouncer;
there the tests marked ``direct_connection`` (they take one client connection
for one server backend: its pid, its session) are skipped, with their reason.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.dev.embedded import EmbeddedServer
from llmcp.dev.scratch import pooler_url
from llmcp.migrate import Migrator
from llmcp.testing import TestDatabases


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop (no plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


REPEAT_PASS_VARIABLE = "LLMCP_TEST_REPEAT_PASS"
"""Set by ``make test`` for the passes after the first (another server behind
``LLMCP_DATABASE_URL``, or PgBouncer): only the tests that use that server run again."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a repeat pass, deselect the tests that do not use the server under test
    (no ``databases`` fixture: no server at all, or embedded servers of their own):
    they ran in the first pass, and would run exactly the same again. In the pooled
    pass, skip the tests that need one server backend per connection."""
    if os.environ.get(REPEAT_PASS_VARIABLE) == "1":
        uses_server = [i for i in items if "databases" in getattr(i, "fixturenames", ())]
        config.hook.pytest_deselected(items=[i for i in items if i not in uses_server])
        items[:] = uses_server
    if pooler_url() is None:
        return
    for item in items:
        marker = item.get_closest_marker("direct_connection")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"through a transaction pooler: {reason}"))


@pytest.fixture(scope="session")
def databases() -> Iterator[TestDatabases]:
    with TestDatabases() as dbs:
        yield dbs


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    """A private embedded server this test may stop and start (whatever
    LLMCP_DATABASE_URL says), with a migrated database ``own``."""
    with EmbeddedServer() as server:
        Migrator(server.url("own")).up()
        yield server


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A folder of our own that the embedded server's user may enter: pytest's
    tmp_path sits in a 0700 folder, which llmcp rightly refuses to widen (and
    another pytest run may prune)."""
    path = Path(tempfile.mkdtemp(prefix="llmcp-test-"))
    path.chmod(0o711)  # mkdtemp makes it 0700; the test, not llmcp, opens it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fresh_name(databases: TestDatabases) -> Iterator[str]:
    """A new database cloned from the migrated template (its name), dropped afterwards."""
    name = databases.clone("fresh")
    yield name
    databases.drop(name)


@pytest.fixture
def fresh_db(databases: TestDatabases, fresh_name: str) -> str:
    """The URL of a new database cloned from the migrated template, as the application role."""
    return databases.url(fresh_name)


@pytest.fixture
def fresh_owner_db(databases: TestDatabases, fresh_name: str) -> str:
    """``fresh_db``'s database as its owner (who migrated it): for DDL and setup the
    application role may not do."""
    return databases.owner_url(fresh_name)


@pytest.fixture(scope="session")
def shared_name(databases: TestDatabases) -> str:
    """One migrated database shared by the tests that roll back what they do (its name)."""
    return databases.clone("shared")


@pytest.fixture(scope="session")
def shared_db(databases: TestDatabases, shared_name: str) -> str:
    """``shared_name`` as the application role."""
    return databases.url(shared_name)


@pytest.fixture(scope="session")
def shared_owner_db(databases: TestDatabases, shared_name: str) -> str:
    """``shared_name`` as its owner: for what the application role may not do."""
    return databases.owner_url(shared_name)


@pytest.fixture
def conn(shared_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection inside a transaction that is rolled back when the test ends."""
    with psycopg.connect(shared_db) as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def owner_conn(shared_owner_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """``conn`` as the owner, whom row-level security lets see and write every tenant's
    rows: for tests of the schema itself (its constraints, cascades) in raw SQL."""
    with psycopg.connect(shared_owner_db) as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def db_config(fresh_db: str) -> DatabaseConfig:
    """Settings for a factory on a fresh database (small pool, short timeouts)."""
    return DatabaseConfig(url=fresh_db, min_size=1, max_size=4, acquire_timeout=10.0)
