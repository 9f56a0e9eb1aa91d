"""The line in front of the async pool (llmcp.pool_gate): async only, not derived from
a twin.

Callers beyond the pool's size wait in llmcp's line, not in psycopg_pool's queue;
each gets a connection in turn; a wait is bounded by ``acquire_timeout``; and no
way out of a checkout (given back, timed out, cancelled, found dead) keeps a slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from llmcp.config import DatabaseConfig
from llmcp.database_async import AsyncDatabase
from llmcp.errors import DatabaseUnavailableError
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import Organization
from tests.repositories.helpers_async import make_org, terminate_backends

SIZE = 2


@pytest.fixture
def two_connections(one_connection: DatabaseConfig) -> DatabaseConfig:
    return dataclasses.replace(one_connection, min_size=SIZE, max_size=SIZE)


async def _until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.005)


def _pool_queue(database: AsyncDatabase) -> int:
    """Callers waiting in psycopg_pool's own queue (its statistics, read directly)."""
    return database._pool.get_stats().get("requests_waiting", 0)


async def _hold_all(held: AsyncExitStack, database: AsyncDatabase) -> list[Any]:
    """Check every connection of the pool out, until ``held`` closes."""
    conns = []
    for _ in range(SIZE):
        conn = await database.acquire()
        held.push_async_callback(database.release, conn)
        conns.append(conn)
    return conns


async def _all_slots_free(database: AsyncDatabase) -> None:
    """Every one of the pool's connections can be out at once, and one more caller
    waits for them: the line has exactly its ``max_size`` slots."""
    async with AsyncExitStack() as held:
        await _hold_all(held, database)
        extra = asyncio.create_task(database.acquire())
        await _until(lambda: database.pool_stats().waiting == 1)
        assert not extra.done()
    await database.release(await asyncio.wait_for(extra, 5))


async def _in_line(
    database: AsyncDatabase, arepos: AsyncRepositories, org: Organization, count: int
) -> list[asyncio.Task[Organization | None]]:
    """``count`` lookups of ``org``, started once every connection is out, all in line."""
    lookups = [asyncio.create_task(arepos.organizations.get_by_id(org.id)) for _ in range(count)]
    await _until(lambda: database.pool_stats().waiting == count)
    return lookups


async def test_callers_beyond_the_pool_wait_in_line_and_each_gets_a_connection(
    two_connections: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(two_connections) as afactory:
        arepos, database = afactory.repositories(), afactory.database
        org = await make_org(arepos)
        async with AsyncExitStack() as held:
            await _hold_all(held, database)
            lookups = await _in_line(database, arepos, org, 5)
            assert _pool_queue(database) == 0  # none of them in psycopg_pool's queue
            assert not any(lookup.done() for lookup in lookups)
        assert await asyncio.wait_for(asyncio.gather(*lookups), 5) == [org] * 5
        stats = database.pool_stats()
        assert (stats.size, stats.available, stats.waiting) == (SIZE, SIZE, 0)
        await _all_slots_free(afactory.database)


async def test_a_wait_in_line_is_bounded_by_acquire_timeout(
    two_connections: DatabaseConfig,
) -> None:
    config = dataclasses.replace(two_connections, acquire_timeout=0.3)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos, database = afactory.repositories(), afactory.database
        org = await make_org(arepos)
        async with AsyncExitStack() as held:
            await _hold_all(held, database)
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError, match="no pooled connection free in time"):
                await arepos.organizations.get_by_id(org.id)
            assert 0.25 < time.monotonic() - started < 3
        assert await arepos.organizations.get_by_id(org.id) == org
        await _all_slots_free(afactory.database)


async def test_a_caller_cancelled_in_line_keeps_no_slot(two_connections: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(two_connections) as afactory:
        arepos, database = afactory.repositories(), afactory.database
        org = await make_org(arepos)
        async with AsyncExitStack() as held:
            await _hold_all(held, database)
            waiting = await _in_line(database, arepos, org, 3)
            waiting[1].cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting[1]
        assert [await waiting[0], await waiting[2]] == [org, org]
        assert database.pool_stats().waiting == 0
        await _all_slots_free(afactory.database)


async def test_a_connection_found_dead_at_checkout_keeps_no_slot(
    two_connections: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(two_connections) as afactory:
        arepos, database = afactory.repositories(), afactory.database
        org = await make_org(arepos)
        async with AsyncExitStack() as held:
            pids = [conn.info.backend_pid for conn in await _hold_all(held, database)]
        for pid in pids:  # both die while in the pool: the next checkouts replace them
            terminate_backends(two_connections.url, pid)
        lookups = [arepos.organizations.get_by_id(org.id) for _ in range(2 * SIZE)]
        assert await asyncio.wait_for(asyncio.gather(*lookups), 10) == [org] * (2 * SIZE)
        await _all_slots_free(afactory.database)
