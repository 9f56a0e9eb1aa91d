"""Concurrency and outages, for both APIs: not derived from an async twin.

- Two transactions update the same row: the second blocks on the row lock and,
  once the first commits, gets ConflictError (its version is stale), both with
  threads on the sync API and with tasks on the async API.
- health_check against a server that stops: DatabaseUnavailableError (never a
  psycopg or pool error), and health again once the server is back.

Nothing sleeps to wait: the tests poll pg_stat_activity, with a deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import psycopg_pool
import pytest

from llmcp.config import DatabaseConfig
from llmcp.dev.embedded import EmbeddedServer
from llmcp.errors import ConflictError, DatabaseUnavailableError, LlmcpError
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from tests.repositories import helpers, helpers_async

DEADLINE_S = 10.0
POLL_S = 0.002
_WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %s AND wait_event_type = 'Lock'
"""


@pytest.fixture
def lock_config(shared_config: DatabaseConfig) -> DatabaseConfig:
    """Its own application name, to find its backends; a statement timeout as a backstop."""
    return dataclasses.replace(
        shared_config,
        application_name=f"llmcp-lock-{helpers.token()}",
        statement_timeout=DEADLINE_S,
    )


def wait_until_blocked(config: DatabaseConfig) -> None:
    """Return once a backend of ``config``'s application waits for a lock."""
    deadline = time.monotonic() + DEADLINE_S
    with psycopg.connect(config.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(_WAITING, (config.application_name,)).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(POLL_S)
    raise AssertionError("no transaction waited for the row lock")


async def await_until_blocked(config: DatabaseConfig) -> None:
    deadline = time.monotonic() + DEADLINE_S
    async with await psycopg.AsyncConnection.connect(config.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cursor = await conn.execute(_WAITING, (config.application_name,))
            row = await cursor.fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(POLL_S)
    raise AssertionError("no transaction waited for the row lock")


def test_threads_second_writer_waits_for_the_lock_then_conflicts(
    lock_config: DatabaseConfig,
) -> None:
    with RepositoryFactory.connect(lock_config) as factory:
        repos, tm = factory.repositories(), factory.transaction_manager()
        org = helpers.make_org(repos)
        outcome: dict[str, Any] = {}

        def contender() -> None:  # a thread starts with no transaction of its own
            try:
                with tm.transaction():
                    outcome["row"] = repos.organizations.update(
                        msgspec.structs.replace(org, name="Second")
                    )
            except LlmcpError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=contender)
        with tm.transaction():
            first = repos.organizations.update(msgspec.structs.replace(org, name="First"))
            thread.start()
            wait_until_blocked(lock_config)
            assert thread.is_alive() and not outcome
        thread.join(DEADLINE_S)
        assert not thread.is_alive()

        assert "row" not in outcome
        assert isinstance(outcome["error"], ConflictError)
        assert outcome["error"].constraint == "version"
        assert repos.organizations.get_by_id(org.id) == first


async def test_tasks_second_writer_waits_for_the_lock_then_conflicts(
    lock_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(lock_config) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await helpers_async.make_org(arepos)
        locked, release = asyncio.Event(), asyncio.Event()

        async def holder() -> Any:
            async with tm.transaction():
                row = await arepos.organizations.update(msgspec.structs.replace(org, name="First"))
                locked.set()
                await release.wait()
            return row

        async def contender() -> Any:
            await locked.wait()
            async with tm.transaction():  # each task has its own context: its own transaction
                return await arepos.organizations.update(
                    msgspec.structs.replace(org, name="Second")
                )

        holding = asyncio.create_task(holder())
        contending = asyncio.create_task(contender())
        await asyncio.wait_for(locked.wait(), DEADLINE_S)
        await await_until_blocked(lock_config)
        assert not contending.done()
        release.set()
        first = await asyncio.wait_for(holding, DEADLINE_S)
        with pytest.raises(ConflictError) as caught:
            await asyncio.wait_for(contending, DEADLINE_S)
        assert caught.value.constraint == "version"
        assert await arepos.organizations.get_by_id(org.id) == first


# -- the server goes away ------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    """A private server of this module's own, to stop and start again."""
    embedded = EmbeddedServer().start()
    try:
        yield embedded
    finally:
        embedded.close()


@pytest.fixture
def outage_config(server: EmbeddedServer) -> Iterator[DatabaseConfig]:
    server.restart_stopped()  # whatever the previous test left
    yield DatabaseConfig(
        url=server.url(), min_size=1, max_size=2, acquire_timeout=2, connect_timeout=2
    )
    server.restart_stopped()


def _unavailable(exc: BaseException) -> None:
    assert type(exc) is DatabaseUnavailableError
    assert not isinstance(exc, psycopg.Error | psycopg_pool.PoolTimeout)


def test_health_check_when_the_server_stops_sync(
    server: EmbeddedServer, outage_config: DatabaseConfig
) -> None:
    with RepositoryFactory.connect(outage_config) as factory:
        database = factory.database
        assert database.health_check().server_version
        server.stop()
        # first the pooled connection is found dead, then no new one can be made
        with pytest.raises(LlmcpError) as caught:
            factory.repositories().organizations.list()
        _unavailable(caught.value)
        with pytest.raises(LlmcpError) as caught:
            database.health_check()
        _unavailable(caught.value)
        server.restart_stopped()
        # the pool reconnects on its own schedule (backoff): poll, with a deadline
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                health = database.health_check()
                break
            except DatabaseUnavailableError:
                assert time.monotonic() < deadline, "no health after the restart"
        assert health.server_version and health.pool.size >= 1


async def test_health_check_when_the_server_stops_async(
    server: EmbeddedServer, outage_config: DatabaseConfig
) -> None:
    async with await AsyncRepositoryFactory.connect(outage_config) as afactory:
        database = afactory.database
        assert (await database.health_check()).server_version
        server.stop()
        with pytest.raises(LlmcpError) as caught:
            await afactory.repositories().organizations.list()
        _unavailable(caught.value)
        with pytest.raises(LlmcpError) as caught:
            await database.health_check()
        _unavailable(caught.value)
        server.restart_stopped()
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                health = await database.health_check()
                break
            except DatabaseUnavailableError:
                assert time.monotonic() < deadline, "no health after the restart"
        assert health.server_version and health.pool.size >= 1
